"""The ``lumo-hydra`` command line (also ``python -m lumo_hydra``).

Exit codes: 0 success, 1 error, 2 usage.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lumo-hydra",
        description="Inspect and manage the experiments recorded by lumo-hydra (store: $LUMO_HOME, default ~/.lumo-hydra).",
    )
    parser.add_argument("--version", action="version", version=f"lumo-hydra {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    func = getattr(args, "func", None)
    if func is None:  # pragma: no cover
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
