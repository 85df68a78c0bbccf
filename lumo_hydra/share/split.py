"""A pack of many runs read by two processes (docs/share.md, "Speed").

``tar czf`` is two processes, ``tar`` and ``gzip``, on two cores; one Python process reading 5,000 small
files is held by its interpreter (the GIL: a second thread does not help). So ``pack`` forks once: the
child reads, hashes and compresses the second half of the runs into a deflate part of its own and hands
it back through a pipe (``marshal``: bytes, numbers, strings, lists and dicts), which the parent puts in
its stream (:meth:`~lumo_hydra.share.tarfast.TarGzWriter.splice`), as ``pigz`` joins its blocks. Only
where ``os.fork`` exists, from a process with no other thread running (a fork
copies no thread, and a lock another thread holds would stay locked in the child); ``lumo-hydra pack``
also only when a core looks idle.
"""
from __future__ import annotations

import marshal
import os
import threading
from collections.abc import Callable
from typing import Any

from lumo_hydra.errors import StoreError

__all__ = ["Child", "can_fork", "LOADAVG"]

#: Linux's load figures: the fourth field, ``running/total``, counts the tasks running right now
LOADAVG = "/proc/loadavg"


def can_fork(idle: bool = False) -> bool:
    """Whether a second packing process can run: ``os.fork`` and no other thread running; ``idle``: and a
    core looks free for it (else two processes only slow each other down): on Linux, the tasks running
    right now (``/proc/loadavg``) besides this one leave two usable cores; elsewhere the 1-minute load
    average leaves one."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    if not idle:
        return True
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        with open(LOADAVG, "rb") as f:
            others = int(f.read().split()[3].split(b"/")[0]) - 1  # "running/total": this process is running
        return cores - others >= 2
    except (OSError, ValueError, IndexError):
        return cores - (os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0) >= 1.0


class Child:
    """``fn()`` run in a forked process: :meth:`result` is its return value (``marshal``-able), or raises
    its exception. :meth:`close` ends and reaps the process if it is still there (always call it)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child: coverage is not collected there); never returns
            _child(r, w, fn)
        os.close(w)
        self.pid: int | None = pid
        self._r: int | None = r

    def result(self) -> Any:
        """What ``fn()`` returned in the child; its exception, re-raised here."""
        assert self._r is not None and self.pid is not None, "result() is called once"
        with os.fdopen(self._r, "rb") as f:
            self._r = None
            data = f.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if not data:
            raise StoreError(f"pack: the second packing process ended without a result (wait status {status}); "
                             "pack again (processes=1 packs in this process alone)")
        if data[:1] == b"M":
            return marshal.loads(data[1:])
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


def _child(r: int, w: int, fn: Callable[[], Any]) -> None:  # pragma: no cover (runs in the child)
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
                payload = b"P" + pickle.dumps(StoreError(f"pack: {type(e).__name__}: {e}"))
        view = memoryview(payload)
        while view:
            view = view[os.write(w, view):]
    except BaseException:  # noqa: BLE001
        code = 1
    finally:
        os._exit(code)
