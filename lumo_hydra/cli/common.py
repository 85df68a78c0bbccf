"""What every command needs: the Watcher of ``--root``, the filtered runs, a confirmation prompt."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lumo_hydra.cli.parser import FILTER_KEYS
from lumo_hydra.cli.render import console, progress_cb
from lumo_hydra.errors import CLIError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from lumo_hydra.watcher import Watcher


def watcher(args: argparse.Namespace) -> Watcher:
    """The Watcher of the store ``--root`` (default ``$LUMO_HOME``) with ``--stale-after``."""
    from lumo_hydra.watcher import Watcher

    return Watcher(root=getattr(args, "root", None), stale_after=getattr(args, "stale_after", 120.0))


def load(args: argparse.Namespace, flatten: bool = True) -> pd.DataFrame:
    """The runs that pass the filter options, read with a progress bar on stderr for long loads."""
    w = watcher(args)
    update, close = progress_cb(console(stderr=True), "reading runs")
    try:
        return w.load(flatten=flatten, exp=args.exp, status=args.status, since=args.since, until=args.until,
                      sweep=args.sweep, tag=args.tag, progress=update)
    finally:
        close()


def lazy_progress(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """:func:`~lumo_hydra.cli.render.progress_cb` on stderr, but rich is imported only when the bar is
    shown (many runs to read, stderr a terminal): ``(update, close)``."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "cb" not in state:
            if total < 500 or not sys.stderr.isatty():
                return
            state["cb"], state["close"] = progress_cb(console(stderr=True), label)
        state["cb"](done, total)

    def close() -> None:
        if "close" in state:
            state["close"]()

    return update, close


def filtered(args: argparse.Namespace) -> bool:
    """Whether any filter option was given."""
    return any(getattr(args, k, None) for k in FILTER_KEYS)


def confirm(args: argparse.Namespace, question: str) -> bool:
    """``True`` with ``--yes`` or a "y" answer; ``CLIError`` when stdin is not a terminal to ask on."""
    if getattr(args, "yes", False):
        return True
    if not sys.stdin.isatty():
        raise CLIError(f"{question} needs a confirmation: stdin is not a terminal, so pass --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")
