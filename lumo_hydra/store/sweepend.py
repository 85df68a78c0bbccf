"""How a sweep ended (issue 11.11): ``sweeps/<id>/sweep-end.json``, written once by the launching process.

``sweep.json`` stays a single write made when the sweep starts (with the launcher's ``pinfo``); the
end record is a separate file written atomically when the sweep ends: ``{"status", "end", "jobs":
{"expected", "started", "finished", "failed"}}``. :func:`sweep_status` judges a sweep the way
:func:`lumo_hydra.store.status.judge_status` judges a run: the end record's status when there is one,
else ``running`` while the launching process lives, ``crashed`` once it is gone (killed, or it died
before it could write the end record).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lumo_hydra.store.files import atomic_write_json
from lumo_hydra.store.layout import StoreLayout
from lumo_hydra.store.reader import read_json_object_or_none
from lumo_hydra.store.status import CRASHED, FAILED, FINISHED, INTERRUPTED, RUNNING, process_alive, this_host
from lumo_hydra.store.times import now_iso

__all__ = ["SWEEP_END_JSON", "SWEEP_END_STATUSES", "sweep_end_path", "job_counts", "write_sweep_end",
           "read_sweep_end", "sweep_status", "wait_jobs_ended"]

SWEEP_END_JSON = "sweep-end.json"
#: the statuses a launching process writes when its sweep ends
SWEEP_END_STATUSES = frozenset({FINISHED, FAILED, INTERRUPTED, "killed"})


def sweep_end_path(home: str | os.PathLike[str] | None, sweep_id: str) -> str:
    """``sweeps/<id>/sweep-end.json``."""
    return os.path.join(StoreLayout(home).sweep_dir(sweep_id), SWEEP_END_JSON)


def job_counts(home: str | os.PathLike[str] | None, sweep_id: str, exp_name: str | None) -> dict[str, int]:
    """``{"started", "finished", "failed"}``: the job markers of the sweep, and how many of those jobs'
    ``run.json`` say ``finished`` / ``failed`` (or ``interrupted``/``killed``: not finished)."""
    layout = StoreLayout(home)
    try:
        markers = os.listdir(layout.sweep_jobs_dir(sweep_id))
    except OSError:
        markers = []
    finished = failed = 0
    for m in markers:
        test_name = m.partition(".")[2]
        rec = None
        if exp_name and test_name:
            rec = read_json_object_or_none(layout.info_dir(exp_name, test_name) / "run.json", stacklevel=3)
        st = rec.get("status") if rec else None
        finished += st == FINISHED
        failed += st in (FAILED, INTERRUPTED, "killed")
    return {"started": len(markers), "finished": finished, "failed": failed}


def _running_jobs_elsewhere(home: str | os.PathLike[str] | None, sweep_id: str,
                            exp_name: str | None) -> list[tuple[Path, Mapping[str, Any]]]:
    """The ``run.json`` paths of this sweep's jobs that say ``running`` and run in another live process
    of this host (e.g. joblib's loky workers)."""
    layout = StoreLayout(home)
    try:
        markers = os.listdir(layout.sweep_jobs_dir(sweep_id))
    except OSError:
        return []
    me, host = os.getpid(), this_host()
    out: list[tuple[Path, Mapping[str, Any]]] = []
    for m in markers:
        test_name = m.partition(".")[2]
        if not test_name:
            continue
        if exp_name:
            paths = [layout.info_dir(exp_name, test_name) / "run.json"]
        else:  # the jobs' experiment is not known here: the run id is unique in the store
            paths = list(layout.experiments_dir.glob(f"*/{test_name}/run.json"))
        for path in paths:
            rec = read_json_object_or_none(path, stacklevel=4)
            pinfo = rec.get("pinfo") if rec else None
            if (rec is None or rec.get("status") != RUNNING or not isinstance(pinfo, Mapping)
                    or pinfo.get("pid") == me or pinfo.get("host") != host):
                continue
            if process_alive(pinfo.get("pid"), pinfo.get("pstart")):
                out.append((path, pinfo))
    return out


def wait_jobs_ended(home: str | os.PathLike[str] | None, sweep_id: str, exp_name: str | None,
                    timeout: float = 2.0, poll: float = 0.01) -> list[str]:
    """Launching process, at Ctrl-C: wait (at most ``timeout`` s) until every job of the sweep that runs
    in another live process of this host has written its end (its ``run.json`` leaves ``running``) or is
    gone. A pool such as joblib's loky SIGKILLs its workers as soon as the launcher's
    ``KeyboardInterrupt`` reaches it; without this wait a busy machine can kill a worker before its own
    SIGINT handler wrote ``interrupted``. Returns the paths still ``running`` at the deadline."""
    deadline = time.monotonic() + timeout
    pending = _running_jobs_elsewhere(home, sweep_id, exp_name)
    while pending:
        left = []
        for path, pinfo in pending:
            rec = read_json_object_or_none(path, stacklevel=3)
            if rec is not None and rec.get("status") == RUNNING and process_alive(pinfo.get("pid"), pinfo.get("pstart")):
                left.append((path, pinfo))
        pending = left
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    return [str(p) for p, _ in pending]


def write_sweep_end(home: str | os.PathLike[str] | None, sweep_id: str, status: str, *,
                    exp_name: str | None, expected: int | None) -> dict[str, Any]:
    """Write ``sweeps/<id>/sweep-end.json`` atomically (launching process, once) and return it.

    ``status`` ``finished`` becomes ``failed`` when a started job did not finish."""
    if status not in SWEEP_END_STATUSES:
        raise ValueError(f"invalid sweep end status: {status!r}; allowed: {sorted(SWEEP_END_STATUSES)}")
    jobs: dict[str, Any] = {"expected": expected, **job_counts(home, sweep_id, exp_name)}
    if status == FINISHED and (jobs["failed"] or jobs["finished"] < jobs["started"]):
        status = FAILED
    rec = {"status": status, "end": now_iso(time.time()), "jobs": jobs}
    atomic_write_json(sweep_end_path(home, sweep_id), rec)
    return rec


def read_sweep_end(home: str | os.PathLike[str] | None, sweep_id: str) -> dict[str, Any] | None:
    """The end record of a sweep, or ``None`` (no end written yet; a damaged one warns)."""
    return read_json_object_or_none(sweep_end_path(home, sweep_id), "sweep end record", stacklevel=3)


def sweep_status(sweep: Mapping[str, Any] | None, end: Mapping[str, Any] | None, *, host: str | None = None,
                 alive: Callable[[Any, Any], bool] | None = process_alive) -> str:
    """The status a reader reports for a sweep with record ``sweep`` (``sweep.json``) and end record ``end``.

    The end record's status when it has one; else ``crashed`` when the launching process
    (``sweep['pinfo']``) ran on this host and is gone, ``running`` otherwise (another host, or an older
    ``sweep.json`` without ``pinfo``: nothing to check)."""
    if end is not None and end.get("status") in SWEEP_END_STATUSES:
        return str(end["status"])
    pinfo = sweep.get("pinfo") if sweep is not None else None
    if (alive is not None and isinstance(pinfo, Mapping) and pinfo.get("host") == (host or this_host())
            and not alive(pinfo.get("pid"), pinfo.get("pstart"))):
        return CRASHED
    return RUNNING
