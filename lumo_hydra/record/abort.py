"""Recording how a run ends when nobody calls ``end()``: exceptions, Ctrl-C, SIGTERM, ``sys.exit``, exit.

Process-wide and idempotent (the Hydra basic launcher runs many jobs in one process). ``watch(exp)``
adds an experiment to the set of open runs this module ends on:

- an uncaught exception (``sys.excepthook``, chained to the previous hook): ``failed`` with the
  traceback, or ``interrupted`` for ``KeyboardInterrupt`` (Ctrl-C with Python's default SIGINT handler);
- SIGTERM: ``killed`` (end code -15), then the previous handler: ``SIG_DFL`` is restored and the
  signal re-raised so the process still dies by SIGTERM; ``SIG_IGN`` stays ignored and nothing is
  recorded; a Python callable (e.g. submitit's) is called after ``killed`` is written: if it raises or
  exits, the run ends ``killed``; if it returns and the process goes on, the run stays open (the record
  says ``killed`` until a later ``end()`` writes the real outcome);
- SIGINT whose previous handler is ``SIG_DFL``: ``interrupted``, then the signal is re-raised;
  with Python's default handler ``interrupted`` (with the real end time) is written at once, then the
  ``KeyboardInterrupt`` path above ends the run (a process pool such as joblib's loky catches the
  exception in its worker and the launcher then SIGKILLs it: the record written first is what stays;
  a program that catches the ``KeyboardInterrupt`` and goes on has its real outcome written by ``end()``,
  or stays ``interrupted`` if it exits without calling it);
- :func:`on_interrupted` callbacks run at SIGINT before the ``KeyboardInterrupt`` (a sweep launcher
  waits there, briefly, for the jobs in its pool's processes to write their own ``interrupted``);
- a process that must stop (e.g. a sweep job whose launcher is gone) calls :func:`kill_self`: SIGTERM as
  above, ``progress.ended_by`` naming the reason; :func:`on_killed` callbacks (the sweep's end record
  in a launching process) run when the process dies by SIGTERM, after its runs are ended;
- ``sys.exit(n)`` (and the ``exit``/``quit`` builtins): the code is remembered; the atexit handler
  then ends open runs as ``finished`` (n == 0) or ``failed`` with end code n;
- interpreter exit with runs still open: ``finished`` with end code 0 and ``progress.ended_by:
  "atexit"`` (the script ended without calling ``end()``); a bare ``raise SystemExit(n)`` outside
  ``with exp:`` is seen as a normal exit (Python gives atexit no exit code);
- SIGKILL and ``os._exit``: nothing can run; the record stays ``running`` and readers infer ``crashed``
  from the stale heartbeat or the dead pid.

Signal handlers are installed only from the main thread. Handlers do nothing in a forked child
(e.g. a DataLoader worker) whose pid differs from the process that installed them.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from lumo_hydra.record import registry

_lock = threading.RLock()
_installed_pid: int | None = None
_prev_excepthook: Callable[..., Any] | None = None
_prev_handlers: dict[int, Any] = {}
_exit_code: list[int] = []  # last code given to sys.exit
_orig_exit: Callable[..., Any] | None = None
_killed_callbacks: list[Callable[[], None]] = []
_interrupted_callbacks: list[Callable[[], None]] = []
_in_interrupted: list[bool] = []  # set while those callbacks run: a second Ctrl-C does not wait again
_kill_reason: list[str] = []  # set by kill_self: the ended_by of the SIGTERM it sends


def open_runs() -> list[Any]:
    """The experiments this process will end on an abort (copy)."""
    return registry.open_runs(watched=True)


def watch(exp: Any) -> str:
    """Install the handlers (once) and add ``exp`` to the open runs. Returns a short status message."""
    msg = install()
    registry.watch(exp)
    return msg


def unwatch(exp: Any) -> None:
    """Stop ending ``exp`` on an abort (it stays an open run)."""
    registry.watch(exp, on=False)


def _end_all(status: str | None, end_code: int | None, exception: Any = None, ended_by: str = "") -> None:
    if os.getpid() != _installed_pid:
        return
    for exp in reversed(open_runs()):
        try:
            exp.end(end_code, status=status, exception=exception, ended_by=ended_by)
        except Exception:  # never let recording break the process's own exit path
            pass
        unwatch(exp)


# -- exceptions --------------------------------------------------------------------------------
def _excepthook(et: type[BaseException], ev: BaseException, tb: Any) -> None:
    try:
        if issubclass(et, KeyboardInterrupt):
            _end_all("interrupted", -int(signal.SIGINT), ev, "excepthook")
        elif not issubclass(et, SystemExit):
            _end_all("failed", 1, ev, "excepthook")
    finally:
        prev = _prev_excepthook or sys.__excepthook__
        prev(et, ev, tb)


# -- signals -----------------------------------------------------------------------------------
def _chain(signum: int, frame: Any) -> None:
    prev = _prev_handlers.get(signum, signal.SIG_DFL)
    if prev is signal.SIG_IGN:
        return
    if prev in (signal.SIG_DFL, None):
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    if callable(prev):
        prev(signum, frame)


def _mark_all(status: str, end_code: int, ended_by: str, keep: bool = False) -> None:
    if os.getpid() != _installed_pid:
        return
    for exp in reversed(open_runs()):
        try:
            if keep:  # what an exit with the run still open ends it as (not "finished" by atexit)
                exp._abort_mark = (status, end_code, ended_by)
            exp._provisional_end(status, end_code, ended_by)
        except Exception:
            pass


def on_killed(callback: Callable[[], None]) -> None:
    """Call ``callback()`` when this process dies by SIGTERM, after its runs are ended (installs the handlers)."""
    install()
    _killed_callbacks.append(callback)


def on_interrupted(callback: Callable[[], None]) -> None:
    """Call ``callback()`` at SIGINT in this process, after its own runs are marked and before the
    ``KeyboardInterrupt`` is raised (installs the handlers). A second Ctrl-C while it runs interrupts it."""
    install()
    _interrupted_callbacks.append(callback)


def _run_interrupted_callbacks() -> None:
    if os.getpid() != _installed_pid or _in_interrupted:
        return
    _in_interrupted.append(True)
    try:
        for cb in list(_interrupted_callbacks):
            try:
                cb()
            except Exception:
                pass
    finally:
        _in_interrupted.clear()


def kill_self(reason: str) -> None:
    """Stop this process by SIGTERM, its open runs ending ``killed`` with ``progress.ended_by = reason``."""
    _kill_reason[:] = [reason]
    os.kill(os.getpid(), signal.SIGTERM)


def stop_with_parent(parent: Mapping[str, Any], reason: str = "sweep launcher gone") -> None:
    """For a sweep job in a worker process of the sweep's launcher (``parent``: its ``pid``, ``host``,
    ``pstart``), e.g. joblib's loky workers, which go on taking queued jobs after the launcher died:
    :func:`kill_self` now when the launcher is already gone, else as soon as it goes (a direct child:
    the heartbeat thread sees its parent pid change). Cheap when the launcher lives: one ``getppid``."""
    pid = parent.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return
    if os.getppid() == pid:
        from lumo_hydra.store.writer import watch_parent

        watch_parent(pid, lambda: kill_self(reason))
        return
    from lumo_hydra.store.status import process_alive, this_host

    if parent.get("host") == this_host() and not process_alive(pid, parent.get("pstart")):
        kill_self(reason)


def _killed(signum: int) -> None:
    _end_all("killed", -int(signum), None, _kill_reason[0] if _kill_reason else "SIGTERM")
    if os.getpid() == _installed_pid:
        for cb in list(_killed_callbacks):
            try:
                cb()
            except Exception:
                pass


def _on_sigterm(signum: int, frame: Any) -> None:
    prev = _prev_handlers.get(signum)
    if prev is signal.SIG_IGN:
        return
    if prev in (signal.SIG_DFL, None) or not callable(prev):
        _killed(signum)
        _chain(signum, frame)
        return
    # A Python handler was there first (e.g. submitit's, which only logs SIGTERM and lets the job go on
    # until Slurm's SIGKILL): write "killed" now, call it, and end the run for good only if it leaves.
    _mark_all("killed", -int(signum), _kill_reason[0] if _kill_reason else "SIGTERM")
    try:
        prev(signum, frame)
    except BaseException:
        _killed(signum)
        raise
    # it returned: the process goes on; the record says killed unless the run ends normally later

def _on_sigint(signum: int, frame: Any) -> None:
    prev = _prev_handlers.get(signum)
    if prev in (signal.SIG_DFL, None):  # the process is about to die by the signal: record it now
        _end_all("interrupted", -int(signum), None, "SIGINT")
    elif prev is signal.default_int_handler:  # KeyboardInterrupt next: write the end now, in case it never lands
        _mark_all("interrupted", -int(signum), "SIGINT", keep=True)  # (a joblib worker, issue 11.10)
    if prev is not signal.SIG_IGN:
        _run_interrupted_callbacks()  # e.g. a sweep launcher gives its jobs' processes time to record theirs
    _chain(signum, frame)  # Python's default handler raises KeyboardInterrupt: recorded where it lands


def _install_signal(signum: int, handler: Callable[[int, Any], None]) -> None:
    cur = signal.getsignal(signum)
    if cur is handler:
        return
    _prev_handlers[signum] = cur
    signal.signal(signum, handler)


# -- sys.exit and interpreter exit ------------------------------------------------------------
def _exit(code: Any = None) -> None:
    _remember_exit(code)
    assert _orig_exit is not None
    _orig_exit(code)


def _remember_exit(code: Any) -> None:
    n = 0 if code is None else (code if isinstance(code, int) else 1)
    _exit_code[:] = [n]


class _Quitter:
    """Wraps the ``exit``/``quit`` builtins so their code is remembered too."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return repr(self._inner)

    def __call__(self, code: Any = None) -> None:
        _remember_exit(code)
        self._inner(code)


def _atexit() -> None:
    for exp in reversed(open_runs()):  # marked by a signal (e.g. Ctrl-C whose KeyboardInterrupt a pool caught)
        mark = getattr(exp, "_abort_mark", None)
        if mark is not None and os.getpid() == _installed_pid:
            try:
                exp.end(mark[1], status=mark[0], ended_by=mark[2])
            except Exception:
                pass
            unwatch(exp)
    if not open_runs():
        return
    if _exit_code:
        n = _exit_code[0]
        _end_all(None, n, None, "sys.exit")
    else:
        _end_all("finished", 0, None, "atexit")


def install() -> str:
    """Install the excepthook, atexit handler, ``sys.exit`` wrapper and (main thread only) signal handlers.

    Idempotent; if another library replaced our SIGTERM handler since, ours is installed again in
    front of it (chaining to it). Returns a message for the hook record.
    """
    global _installed_pid, _prev_excepthook, _orig_exit
    with _lock:
        if _installed_pid != os.getpid():
            _installed_pid = os.getpid()
            atexit.register(_atexit)
        if sys.excepthook is not _excepthook:
            _prev_excepthook = sys.excepthook
            sys.excepthook = _excepthook
        if sys.exit is not _exit:
            _orig_exit = sys.exit
            sys.exit = _exit  # type: ignore[assignment]
            import builtins

            for name in ("exit", "quit"):
                b = getattr(builtins, name, None)
                if b is not None and not isinstance(b, _Quitter):
                    setattr(builtins, name, _Quitter(b))
        if threading.current_thread() is not threading.main_thread():
            return "signal handlers not installed (not the main thread); excepthook and atexit are"
        try:
            _install_signal(signal.SIGTERM, _on_sigterm)
            _install_signal(signal.SIGINT, _on_sigint)
        except (ValueError, OSError) as e:  # pragma: no cover - e.g. embedded interpreters
            return f"signal handlers not installed: {e}"
        return ""
