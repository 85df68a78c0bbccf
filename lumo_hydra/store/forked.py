"""One function run in a forked child process, its result handed back through a pipe.

Shared by the two places that split CPU-bound work over two cores: ``pack``/``unpack`` of many runs
(:mod:`lumo_hydra.share.split`) and cold Watcher loads (:mod:`lumo_hydra.watcher.parallel`). The result
travels as ``marshal`` (bytes, numbers, strings, lists, dicts, tuples); an exception raised in the child
is re-raised here (pickled; its text if it does not pickle). Fork only from a process with no other
thread running: a fork copies no thread, and a lock another thread holds would stay locked in the child.

:func:`reap_later` reaps a child that is ending from a short-lived thread, so that the caller does not wait
for the kernel to tear down the child's copy of its memory; :func:`settle` waits for those threads, and
both ``can_fork`` checks call it first.
"""
from __future__ import annotations

import marshal
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from lumo_hydra.errors import StoreError

__all__ = ["Child", "ChildTimeout", "reap_later", "settle"]

# the reaper threads started by reap_later and not yet joined by settle
_reapers: list[threading.Thread] = []


def reap_later(pid: int) -> None:
    """Reap the child ``pid`` (which is ending) from a short-lived daemon thread instead of waiting here:
    the exit of a forked copy of a large process takes the kernel ~20 ms. Here if no thread can start."""
    t = threading.Thread(target=_reap, args=(pid,), name="lumo-hydra-reaper", daemon=True)
    try:
        t.start()
    except RuntimeError:  # no new thread (the interpreter is shutting down): reap it here
        _reap(pid)
        return
    _reapers.append(t)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # already reaped (SIGCHLD ignored by the application)
        pass


def settle(timeout: float = 5.0) -> None:
    """Wait (at most ``timeout`` s each) for the threads :func:`reap_later` started, so that a check for
    "no other thread running" before a fork sees only the threads that are not ours."""
    while _reapers:
        _reapers.pop().join(timeout)


class ChildTimeout(StoreError):
    """The child did not finish in the time given to :meth:`Child.result` (it has been killed)."""


class Child:
    """``fn()`` run in a forked process: :meth:`result` is its return value, or raises its exception.
    :meth:`close` ends and reaps the process if it is still there (always call it)."""

    def __init__(self, fn: Callable[[], Any], what: str = "the second process") -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child: coverage is not collected there); never returns
            _child(r, w, fn, what)
        os.close(w)
        self.what = what
        self.pid: int | None = pid
        self._r: int | None = r

    def result(self, timeout: float | None = None) -> Any:
        """What ``fn()`` returned in the child; its exception, re-raised here; :class:`ChildTimeout` (the
        child killed) if it has not finished within ``timeout`` seconds."""
        assert self._r is not None and self.pid is not None, "result() is called once"
        deadline = None if timeout is None else time.monotonic() + timeout
        chunks: list[bytes] = []
        while True:
            if deadline is not None and not select.select([self._r], [], [], max(0.0, deadline - time.monotonic()))[0]:
                self.close()
                raise ChildTimeout(f"{self.what} did not finish within {timeout:.0f} s: stopped")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(self._r)
        self._r = None
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        data = b"".join(chunks)
        del chunks
        if not data:
            raise StoreError(f"{self.what} ended without a result (wait status {status})")
        if data[:1] == b"M":
            return marshal.loads(memoryview(data)[1:])
        import pickle  # here: only an error travels as a pickle (lumo-hydra's errors pickle with their message)

        raise pickle.loads(data[1:])

    def close(self) -> None:
        """Stop the child if it still runs (this process failed first) and reap it."""
        if self._r is not None:
            os.close(self._r)
            self._r = None
        if self.pid is not None:
            import signal

            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:  # pragma: no cover
                pass
            os.waitpid(self.pid, 0)
            self.pid = None


def _child(r: int, w: int, fn: Callable[[], Any], what: str) -> None:  # pragma: no cover (runs in the child)
    """Run ``fn`` and write ``b"M" + marshal`` of its result, or ``b"P" + pickle`` of its exception, to ``w``;
    leave with ``os._exit`` (no ``atexit`` handlers, no flush of the parent's buffered output)."""
    code = 0
    try:
        os.close(r)
        import gc

        gc.disable()  # short-lived: a collection would touch (and copy) every page shared with the parent
        try:
            payload = b"M" + marshal.dumps(fn())
        except BaseException as e:  # noqa: BLE001 (handed to the parent)
            import pickle

            try:
                payload = b"P" + pickle.dumps(e)
            except Exception:  # noqa: BLE001 (an exception that does not pickle: its text)
                payload = b"P" + pickle.dumps(StoreError(f"{what}: {type(e).__name__}: {e}"))
        view = memoryview(payload)
        while view:
            view = view[os.write(w, view):]
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)
