"""Judging a run's status from its record (DESIGN.md section 6, docs/store.md "Status, as readers judge it").

Pure functions: everything they need is passed in (the record, the heartbeat time, the clock, the
host name and an optional liveness probe), so the Watcher, the command line and the board agree, and
tests can judge any situation without waiting. Only ``process_alive`` touches the system (psutil).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lumo_hydra.store.times import parse_time

RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
INTERRUPTED = "interrupted"
KILLED = "killed"
CRASHED = "crashed"

#: every status a reader can report; ``crashed`` is never written by a run, only inferred
STATUSES: tuple[str, ...] = (RUNNING, FINISHED, FAILED, INTERRUPTED, KILLED, CRASHED)
#: the statuses a run writes itself when it ends
END_STATUSES: frozenset[str] = frozenset({FINISHED, FAILED, INTERRUPTED, KILLED})

DEFAULT_STALE_AFTER = 120.0
#: how far a recorded process start time may differ from the live process's (clock rounding)
PSTART_TOLERANCE = 2.0

_HOSTNAME: str | None = None


def this_host() -> str:
    """The host name runs record in ``pinfo.host`` (``socket.gethostname()``), cached."""
    global _HOSTNAME
    if _HOSTNAME is None:
        import socket  # lazy: the command line's start-up does not need it (issue 14)

        _HOSTNAME = socket.gethostname()
    return _HOSTNAME


def parse_heartbeat(data: bytes | str | None) -> float | None:
    """The Unix time in a ``heartbeat`` file's content, or ``None`` when it is missing or garbled."""
    if data is None:
        return None
    try:
        return float(data.strip() or "nan") if isinstance(data, str) else float(data.strip() or b"nan")
    except ValueError:
        return None


def process_alive(pid: Any, pstart: Any, tolerance: float = PSTART_TOLERANCE) -> bool:
    """True if process ``pid`` exists on this host and (when ``pstart`` is known) started at ``pstart``.

    Comparing the start time tells a live run from an unrelated process that reused its pid.
    """
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return True  # nothing to check: do not call a run crashed on missing data
    if pid <= 0:
        return True
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except (psutil.AccessDenied, OSError):  # pragma: no cover - exists but cannot be inspected
        return True
    start = parse_time(pstart)
    if start is None:
        return True
    return bool(abs(float(created) - start) <= tolerance)


def last_sign_of_life(record: Mapping[str, Any], heartbeat: float | None) -> float | None:
    """The heartbeat time; without a heartbeat file ``progress.last_edit_time``, else ``progress.start``."""
    if heartbeat is not None:
        return heartbeat
    progress = record.get("progress")
    if isinstance(progress, Mapping):
        for key in ("last_edit_time", "start"):
            t = parse_time(progress.get(key))
            if t is not None:
                return t
    return None


def judge_status(
    record: Mapping[str, Any],
    heartbeat: float | None = None,
    *,
    now: float,
    stale_after: float = DEFAULT_STALE_AFTER,
    host: str | None = None,
    alive: Callable[[Any, Any], bool] | None = process_alive,
) -> str:
    """The status a reader reports for the run whose ``run.json`` is ``record``.

    - a written end status (``finished``, ``failed``, ``interrupted``, ``killed``) is reported as is;
    - otherwise (``running`` or missing) the run is ``running`` if its last sign of life (``heartbeat``,
      the time in the ``heartbeat`` file; without one ``progress.last_edit_time``) is at most
      ``stale_after`` seconds old and, when it ran on ``host`` (this host by default),
      ``alive(pid, pstart)`` is true; else ``crashed``.

    ``alive=None`` skips the pid check (e.g. for records from another machine's clock).
    """
    status = record.get("status")
    if status in END_STATUSES:
        return str(status)
    seen = last_sign_of_life(record, heartbeat)
    if seen is None or now - seen > stale_after:
        return CRASHED
    if alive is not None:
        pinfo = record.get("pinfo")
        if (isinstance(pinfo, Mapping) and (host or this_host()) == pinfo.get("host")
                and not alive(pinfo.get("pid"), pinfo.get("pstart"))):
            return CRASHED
    return RUNNING
