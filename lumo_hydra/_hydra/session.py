"""What one Hydra app's process knows across the decorator, the callback and the job recorder (a leaf
module: they all import it, it imports nothing of theirs)."""
from __future__ import annotations

import sys

#: ``sys.argv`` as the user typed it, captured when a ``@lumo_hydra.main`` function is called (empty before)
ORIGINAL_ARGV: list[str] = []

# True between the callback's check of a RUN-mode config (on_run_start) and the job of that run, which
# then need not check the same values again (RUN mode runs its one job in the launching process).
_run_validated: list[bool] = [False]


def user_argv() -> list[str]:
    """The command line the user typed (``lumo_hydra.main`` adds an override to ``sys.argv``; this undoes it)."""
    return list(ORIGINAL_ARGV) if ORIGINAL_ARGV else list(sys.argv)


def mark_run_validated() -> None:
    """The callback validated the config of the RUN-mode run this process is about to execute."""
    _run_validated[0] = True


def take_run_validated() -> bool:
    """True once after :func:`mark_run_validated` (the job skips its own check), then False again."""
    done, _run_validated[0] = _run_validated[0], False
    return done
