"""One slice of a large read in a second process (``fork``), beside the caller reading the rest.

Used by :func:`lumo_hydra.watcher.rows.read_rows` for a cold load of thousands of runs: parsing JSON
and building rows is CPU work that one process cannot spread over two cores, while the rows the child
sends back (``marshal``, shared values kept shared) load several times faster than the JSON they came
from. Only where a fork is safe and cheap: Linux, two cores or more, no other thread running in the
caller (a thread holding a lock at the fork would leave the child stuck on it). Anything that goes
wrong in the child (it cannot start, raises, is killed, sends garbage) makes :meth:`Forked.result`
``None``: the caller then reads that slice itself, so a failure costs time, never a run.
"""
from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

from lumo_hydra.errors import StoreWarning
from lumo_hydra.store.forked import Child, settle

__all__ = ["MIN_RUNS", "ENV", "can_fork", "patience", "Forked", "start", "warn_again"]

#: runs read by one call below which everything is read in one process (a fork costs a few ms)
MIN_RUNS = 2000
#: set to ``"0"`` to never fork (the result is the same, only slower)
ENV = "LUMO_WATCHER_FORK"


def patience(own_s: float) -> float:
    """How long to wait for a child reading a slice like the one this process read in ``own_s`` seconds:
    generous (a busy machine can slow the child several times), bounded below for tiny slices."""
    return max(30.0, 10.0 * own_s)


def can_fork() -> bool:
    """Whether reading a slice in a forked child is possible and safe here (after the reaper threads of
    earlier forks ended: :func:`lumo_hydra.store.forked.settle`)."""
    settle()
    return (sys.platform.startswith("linux") and hasattr(os, "fork") and (os.cpu_count() or 1) >= 2
            and threading.active_count() == 1 and os.environ.get(ENV, "1") != "0")


class Forked:
    """A child process computing ``fn(arg)`` (:class:`lumo_hydra.store.forked.Child`); :meth:`result`
    waits for it, and says ``None`` for anything that went wrong there."""

    def __init__(self, child: Child) -> None:
        self._child: Child | None = child

    def result(self, timeout: float | None = None) -> tuple[Any, list[tuple[str, str]]] | None:
        """``(fn(arg), [(warning text, category name), ...])`` of the child, or ``None`` if it failed or has
        not finished within ``timeout`` seconds (then it is killed: a child stuck on a lock some native
        thread held at the fork costs time, never a hang)."""
        child, self._child = self._child, None
        if child is None:
            return None
        try:
            res: tuple[Any, list[tuple[str, str]]] = child.result(timeout)
            return res
        except BaseException:  # noqa: BLE001 - whatever happened there, the caller reads the slice itself
            return None
        finally:
            child.close()

    def cancel(self) -> None:
        """Stop the child (the caller failed) and reap it."""
        child, self._child = self._child, None
        if child is not None:
            child.close()


def start(fn: Callable[[Any], Any], arg: Any) -> Forked | None:
    """``fn(arg)`` in a forked child (its result must be marshal-able; the warnings it raises are sent
    back as text), or ``None`` when no child could be started."""
    try:
        return Forked(Child(lambda: _caught(fn, arg), "the Watcher's second reading process"))
    except OSError:
        return None


def _caught(fn: Callable[[Any], Any], arg: Any) -> tuple[Any, list[tuple[str, str]]]:  # pragma: no cover - in the child
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fn(arg)
    return res, [(str(m.message), m.category.__name__) for m in caught]


def warn_again(caught: list[tuple[str, str]], stacklevel: int) -> None:
    """Raise the child's warnings in this process (``stacklevel`` counted from the caller of this)."""
    for text, cat in caught:
        warnings.warn(text, StoreWarning if cat == "StoreWarning" else UserWarning, stacklevel=stacklevel + 1)
