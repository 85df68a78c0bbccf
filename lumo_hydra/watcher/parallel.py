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

import marshal
import os
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

from lumo_hydra.errors import StoreWarning

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
    """Whether reading a slice in a forked child is possible and safe here."""
    return (sys.platform.startswith("linux") and hasattr(os, "fork") and (os.cpu_count() or 1) >= 2
            and threading.active_count() == 1 and os.environ.get(ENV, "1") != "0")


class Forked:
    """A child process computing ``fn(arg)``; :meth:`result` waits for it."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._data: list[bytes] = []
        self._pump = threading.Thread(target=self._read, args=(fd,), daemon=True)  # the pipe never fills up
        self._pump.start()
        self._done = False

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as f:
            self._data.append(f.read())

    def _wait(self) -> int:
        self._pump.join()
        self._done = True
        try:
            return os.waitpid(self.pid, 0)[1]
        except ChildProcessError:
            return -1

    def result(self, timeout: float | None = None) -> tuple[Any, list[tuple[str, str]]] | None:
        """``(fn(arg), [(warning text, category name), ...])`` of the child, or ``None`` if it failed or has
        not finished within ``timeout`` seconds (then it is killed: a child stuck on a lock some native
        thread held at the fork costs time, never a hang)."""
        if self._done:
            return None
        self._pump.join(timeout)
        if self._pump.is_alive():
            self.cancel()
            return None
        status = self._wait()
        if status != 0 or not self._data:
            return None
        data = self._data.pop()  # dropped once decoded (tens of MB at 100,000 runs: the peak memory)
        try:
            res, caught = marshal.loads(data)
        except (ValueError, EOFError, TypeError):
            return None
        return res, caught

    def cancel(self) -> None:
        """Stop the child (the caller failed) and reap it."""
        if self._done:
            return
        try:
            os.kill(self.pid, 9)
        except OSError:
            pass
        self._wait()


def start(fn: Callable[[Any], Any], arg: Any) -> Forked | None:
    """``fn(arg)`` in a forked child (its result must be marshal-able; the warnings it raises are sent
    back as text), or ``None`` when no child could be started."""
    try:
        r, w = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # pragma: no cover - the child (coverage does not follow forks)
        _child(fn, arg, r, w)
    os.close(w)
    return Forked(pid, r)


def _child(fn: Callable[[Any], Any], arg: Any, r: int, w: int) -> None:  # pragma: no cover - in the child
    code = 1
    try:
        os.close(r)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = fn(arg)
        data = memoryview(marshal.dumps((res, [(str(m.message), m.category.__name__) for m in caught])))
        while data:
            data = data[os.write(w, data):]
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the parent reads the slice itself
        pass
    finally:
        os._exit(code)


def warn_again(caught: list[tuple[str, str]], stacklevel: int) -> None:
    """Raise the child's warnings in this process (``stacklevel`` counted from the caller of this)."""
    for text, cat in caught:
        warnings.warn(text, StoreWarning if cat == "StoreWarning" else UserWarning, stacklevel=stacklevel + 1)
