"""``python -m lumo_hydra`` is the ``lumo-hydra`` command."""
import sys

from lumo_hydra.cli import main

if __name__ == "__main__":
    sys.exit(main())
