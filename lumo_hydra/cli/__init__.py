"""The ``lumo-hydra`` command line: parser, commands (thin: they call store, record and watcher), rendering."""
from __future__ import annotations

from lumo_hydra.cli.commands import build_parser, main

__all__ = ["main", "build_parser"]
