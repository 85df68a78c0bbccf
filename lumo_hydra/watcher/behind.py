"""Cache writes after a cold load, off its critical path: the Watcher's index, its body files, the
experiment signatures and the frame cache of a cold load of thousands of runs are encoded and written
by a detached process (forked twice: the process between ends at once and is reaped by a short-lived thread,
:func:`lumo_hydra.store.forked.reap_later`; nothing else to reap, no zombie) while ``load()`` returns its
DataFrame.

The files are the same, written the same atomic way; a writer that fails or is killed only means the
next load is cold again. Only where :func:`lumo_hydra.watcher.parallel.can_fork` says a fork is safe;
otherwise (or if the fork fails) the writes happen here, before ``load()`` returns, as they always did.
:meth:`Behind.wait` waits for the writer (``Watcher.clear_cache`` does, and benchmarks before the next
round).
"""
from __future__ import annotations

import gc
import os
import resource
import select
import time
from collections.abc import Callable
from typing import Any

from lumo_hydra.store.forked import reap_later

__all__ = ["Behind", "WAIT_S"]

# file descriptors above this are not closed in the writer (none are open there in practice)
_MAX_FD = 65536
#: seconds ``clear_cache`` and the next cold load wait for the last writer before going on without it
WAIT_S = 60.0


class Behind:
    """The writes of one load, queued (:meth:`add`), then run by a detached process (:meth:`flush`)."""

    __slots__ = ("jobs", "fd", "tables", "cpu", "_said")

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self.fd: int | None = None  # the read end of a pipe the last writer holds open until it ends
        self.tables: list[int] = []  # id() of the tables whose writes are queued
        self.cpu: float | None = None  # CPU seconds of the last writer that ended (what it said at its end)
        self._said = b""

    def add(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``."""
        self.jobs.append((fn, args))

    def flush(self) -> None:
        """Run the queued writes in a detached process (here if none can be started)."""
        jobs, self.jobs, self.tables = self.jobs, [], []
        if not jobs:
            return
        self.forget(WAIT_S)
        self.cpu, self._said = None, b""
        fd = _detached(jobs)
        if fd is None:
            for fn, args in jobs:
                fn(*args)
        self.fd = fd

    def forget(self, timeout: float) -> None:
        """Wait for the last writer at most ``timeout`` seconds, then stop following it (a stuck writer
        holds no lock: its files are replaced atomically, or never)."""
        if not self.wait(timeout) and self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the last writer to end (at most ``timeout`` seconds); whether it has."""
        fd = self.fd
        if fd is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], left)[0]:
                return False
            got = os.read(fd, 4096)
            if not got:
                break
            self._said += got
        os.close(fd)
        self.fd = None
        try:
            self.cpu = float(self._said) if self._said else None
        except ValueError:
            self.cpu = None
        return True


def _detached(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> int | None:  # pragma: no cover (the writer's part runs in it)
    """Fork a process that forks the writer and ends (reaped by a thread of this process, without waiting
    here for its exit: the writer is nobody's child to reap).

    Returns the read end of a pipe the writer holds until it ends, or ``None`` if no fork."""
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
    if pid == 0:
        code = 0
        try:
            os.close(r)
            if os.fork() == 0:
                gc.disable()  # short-lived: a collection would touch (and copy) every page shared with the parent
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):  # a caller reading our output to its end does not wait for the writer
                    os.dup2(null, fd)
                # nor holds anything else of the caller's (a server's listening socket, a flock'd file, a
                # pipe another process reads to its end): the writer opens its own files
                os.closerange(3, w)
                os.closerange(w + 1, _MAX_FD)
                for fn, args in jobs:
                    fn(*args)
                ru = resource.getrusage(resource.RUSAGE_SELF)
                os.write(w, f"{ru.ru_utime + ru.ru_stime:.6f}".encode())
        except BaseException:  # noqa: BLE001 - a failed writer: the next load is cold again
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    reap_later(pid)
    return r
