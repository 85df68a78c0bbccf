"""The ``lumo-hydra`` command line.

``parser`` builds the arguments, ``app`` runs a command and maps errors to exit codes, ``runs`` (list,
export, show, note, tag), ``code`` (diff, rerun, checkout) and ``maintenance`` (rm, gc) are the thin
commands over the store, record and watcher packages, ``render`` prints tables, JSON and CSV.
"""
from __future__ import annotations

from lumo_hydra.cli.app import main
from lumo_hydra.cli.parser import build_parser

__all__ = ["main", "build_parser"]
