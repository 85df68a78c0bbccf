"""The command line the user typed, as the decorator captured it (a leaf: the decorator writes it, the job
recorder reads it)."""
from __future__ import annotations

import sys

#: ``sys.argv`` as the user typed it, captured when a ``@lumo_hydra.main`` function is called (empty before)
ORIGINAL_ARGV: list[str] = []


def user_argv() -> list[str]:
    """The command line the user typed (``lumo_hydra.main`` adds an override to ``sys.argv``; this undoes it)."""
    return list(ORIGINAL_ARGV) if ORIGINAL_ARGV else list(sys.argv)
