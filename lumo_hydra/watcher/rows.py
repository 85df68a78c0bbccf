"""Run folders into the Watcher's rows: finding the runs of a store, reading their ``run.json`` and
``metrics.json`` through :mod:`lumo_hydra.store.reader` (serially, or by threads on a slow file
system), building the index row of each run, and judging the status of runs without an end record.
"""
from __future__ import annotations

import os
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from lumo_hydra.store import status as _status
from lumo_hydra.store.layout import METRICS_JSON, RUN_JSON
from lumo_hydra.store.moved import rebase_if_moved
from lumo_hydra.store.reader import RunFiles, parse_many, read_heartbeat, read_run_files, warn_bad
from lumo_hydra.store.times import parse_time
from lumo_hydra.watcher.query import name_matches

__all__ = ["RunRef", "iter_runs", "read_rows", "make_row", "repair_row", "judge", "judge_all", "JUDGE_KEYS"]

# the record keys judging a run without an end record needs
JUDGE_KEYS = ("status", "progress", "pinfo", "_start", "_end")
# a file modified less than this before we read it may be rewritten again within the same mtime tick:
# its index entry is not trusted (re-read next time), like git's "racily clean" entries
_RACY_NS = 2_000_000_000
# runs read and parsed at a time
_CHUNK = 4096
# a first read slower than this per run means a network file system: read the rest with threads
_SLOW_READ_S = 300e-6
# warnings about damaged files point at the caller of ``Watcher.load`` (read_rows <- RunIndex.refresh
# <- Watcher._rows_of or RunIndex.cached_frame <- Watcher.load <- the caller)
_WARN_LEVEL = 6
# the record keys whose values are usually equal for the runs of a sweep
_SHARED_KEYS = ("lock", "hooks", "execute", "git", "pinfo")


class RunRef(tuple[str, str, str]):
    """``(exp_name, test_name, info_dir)`` of one run folder."""

    __slots__ = ()

    def __new__(cls, exp_name: str, test_name: str, info_dir: str) -> RunRef:
        return tuple.__new__(cls, (exp_name, test_name, info_dir))

    def __getnewargs__(self) -> tuple[str, str, str]:  # pickling and copying call __new__ with these
        return (self[0], self[1], self[2])

    @property
    def exp_name(self) -> str:
        return self[0]

    @property
    def test_name(self) -> str:
        return self[1]

    @property
    def info_dir(self) -> str:
        return self[2]


def iter_runs(experiments_dir: str, pats: list[str] | None = None) -> Iterator[RunRef]:
    """Every run folder under ``experiments_dir`` (of the experiments matching ``pats``), unsorted,
    as plain ``(exp_name, test_name, info_dir)`` tuples."""
    try:
        exps = [e for e in os.scandir(experiments_dir)
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
    except FileNotFoundError:
        return
    for e in exps:
        if pats is not None and not name_matches(e.name, pats):
            continue
        try:
            it = os.scandir(e.path)
        except OSError:
            continue
        ename = e.name
        with it:
            for r in it:
                if r.name[0] != "." and r.is_dir(follow_symlinks=False):
                    yield (ename, r.name, r.path)  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# reading runs


def _time_of(value: Any) -> float | None:
    if type(value) is str:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    return parse_time(value)


def make_row(rec: dict[str, Any], summary: Any, exp_name: str, test_name: str) -> dict[str, Any]:
    """The index's row of a run: the record with the reader's derived fields (status not judged yet)."""
    rec.setdefault("exp_name", exp_name)
    rec.setdefault("test_name", test_name)
    pinfo = rec.get("pinfo")
    rec["host"] = pinfo.get("host") if type(pinfo) is dict else None
    best: dict[str, Any] = {}
    last: dict[str, Any] = {}
    if type(summary) is dict:
        for k, v in summary.items():
            if type(v) is dict:
                lv = v.get("last")
                best[k] = v["best"] if "best" in v else lv  # noqa: SIM401 (no method call: hot)
                last[k] = lv
    rec["metrics"] = best
    rec["metrics_last"] = last
    prog = rec.get("progress")
    if type(prog) is dict:
        rec["_start"] = _time_of(prog.get("start"))
        rec["_end"] = _time_of(prog.get("end"))
    else:
        rec["_start"] = rec["_end"] = None
    return rec


# Unix times pandas can hold as nanosecond timestamps (years 1678-2261)
_TIME_RANGE = 9.2e9


def repair_row(row: dict[str, Any], exp_name: str, test_name: str) -> list[str]:
    """Replace the values of ``row`` (from :func:`make_row`) that would break a load for every run (a
    name that is not text, a time pandas cannot hold, a status that is not text) by what the folder
    says or by ``None``; returns the keys replaced (empty for a sound record)."""
    bad: list[str] = []
    for k, folder in (("exp_name", exp_name), ("test_name", test_name)):
        if type(row[k]) is not str:
            row[k] = folder
            bad.append(k)
    for k, key in (("_start", "progress.start"), ("_end", "progress.end")):
        t = row[k]
        if t is not None and not (-_TIME_RANGE < t < _TIME_RANGE):  # also NaN
            row[k] = None
            bad.append(key)
    st = row.get("status")
    if st is not None and type(st) is not str:
        row["status"] = None
        bad.append("status")
    return bad


def read_rows(
    todo: list[RunRef], progress: Callable[[int, int], None] | None, workers: int | None
) -> tuple[list[tuple[RunRef, dict[str, Any], Any]], int]:
    """Read the runs ``todo``: ``(ref, row, (run.json sig, metrics.json sig) or None if racy)`` each, and
    how many were skipped. A damaged file is reported through ``warn_bad`` (the run skipped for a bad
    ``run.json``, kept with empty metrics for a bad ``metrics.json``); a folder without ``run.json`` is
    skipped silently."""
    out: list[tuple[RunRef, dict[str, Any], Any]] = []
    skipped = 0
    roots: dict[tuple[str, str], bool] = {}  # a moved run's paths are re-based (store/moved.py)
    if not todo:
        return out, skipped
    for c0 in range(0, len(todo), _CHUNK):  # in chunks: the bytes read never pile up (peak memory)
        part = todo[c0:c0 + _CHUNK]
        files, workers = _read_all(part, progress, workers, c0, len(todo))
        ok = [i for i, f in enumerate(files) if f.run is not None]
        recs = parse_many([files[i].run for i in ok])  # type: ignore[misc]
        mets_at = [i for i in ok if isinstance(files[i].metrics, bytes)]
        mets = dict(zip(mets_at, parse_many([files[i].metrics for i in mets_at])))  # type: ignore[misc]
        racy_after = time.time_ns() - _RACY_NS
        for i, rec in zip(ok, recs):
            ref = part[i]
            rsig, _, msig, mdata, _ = files[i]
            if isinstance(rec, Exception):
                warn_bad(f"{ref[2]}/{RUN_JSON}", "skipped corrupt or truncated record", rec, stacklevel=_WARN_LEVEL)
                skipped += 1
                continue
            summary = mets.get(i)
            if isinstance(mdata, Exception) or isinstance(summary, Exception):
                err = mdata if isinstance(mdata, Exception) else summary
                warn_bad(f"{ref[2]}/{METRICS_JSON}", "ignored corrupt or truncated metrics", err, stacklevel=_WARN_LEVEL)
                summary, msig = None, (-1, -1, -1)  # never matches: read again next time
            row = make_row(rebase_if_moved(ref[2], rec, roots), summary, ref[0], ref[1])
            bad = repair_row(row, ref[0], ref[1])
            if bad:
                warn_bad(f"{ref[2]}/{RUN_JSON}", "ignored bad values (" + ", ".join(bad) + ") of record", "kept the run",
                         stacklevel=_WARN_LEVEL)
            racy = max(rsig[1], msig[1] if msig else 0) > racy_after  # type: ignore[index]
            out.append((ref, row, None if racy else (rsig, msig)))
        for f, ref in zip(files, part):
            if f.error is not None:
                warn_bad(f"{ref[2]}/{RUN_JSON}", "cannot read record", f.error, stacklevel=_WARN_LEVEL)
                skipped += 1
    _share_equal_values([r[1] for r in out])
    return out, skipped


def _read_all(
    todo: list[RunRef], progress: Callable[[int, int], None] | None, workers: int | None, done: int = 0,
    total: int = 0,
) -> tuple[list[RunFiles], int]:
    """The files of ``todo`` and the number of threads that read them (chosen by the first reads when
    ``workers`` is ``None``); ``progress`` gets ``done + i`` of ``total``."""
    n = len(todo)
    total = max(total, n)
    out: list[RunFiles] = []
    i = 0
    if workers is None:
        # read serially while reads are fast (local disk, page cache: threads only add overhead);
        # switch to threads when the first reads show network latency (NFS, Lustre)
        t0 = time.perf_counter()
        while i < n and i < 64:
            out.append(read_run_files(todo[i][2]))
            i += 1
        slow = i and (time.perf_counter() - t0) / i > _SLOW_READ_S
        workers = 8 if slow and n - i >= 64 else 1
        if progress is not None and i:
            progress(done + i, total)
    if workers == 1 or n - i < 2:
        for j in range(i, n):
            out.append(read_run_files(todo[j][2]))
            if progress is not None and (j % 500 == 0 or j == n - 1):
                progress(done + j + 1, total)
        return out, workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for j, f in enumerate(pool.map(read_run_files, [r[2] for r in todo[i:]], chunksize=32), start=i):
            out.append(f)
            if progress is not None and (j % 500 == 0 or j == n - 1):
                progress(done + j + 1, total)
    return out, workers


def _share_equal_values(rows: list[dict[str, Any]]) -> None:
    """Make equal values of the usually repeated record keys (the lock, hooks, snapshot of a sweep, ...)
    one object when they repeat from one run to the next (runs of a sweep are read together), so the
    index stores them once and loads create them once."""
    prev: dict[str, Any] = {}
    for row in rows:
        for k in _SHARED_KEYS:
            v = row.get(k)
            if v is None:
                continue
            p = prev.get(k)
            if p is not None and p is not v and type(p) is type(v) and p == v:
                row[k] = p
            else:
                prev[k] = v


# --------------------------------------------------------------------------------------------------
# judging


def judge(rec: Mapping[str, Any], info_dir: str, now: float, stale_after: float, host: str) -> tuple[str, float]:
    """Status and duration (NaN if unknown) of a run whose record has no end status, judged at ``now``."""
    hb = read_heartbeat(info_dir)
    st = _status.judge_status(rec, hb, now=now, stale_after=stale_after, host=host)
    if st == _status.CRASHED:  # the run may have ended since its record was read: read it again first
        fresh = _read_again(info_dir)
        if fresh is not None:
            rec, hb = fresh, read_heartbeat(info_dir)
            st = _status.judge_status(rec, hb, now=time.time(), stale_after=stale_after, host=host)
    start, end = rec.get("_start"), rec.get("_end")
    if start is None:
        return st, float("nan")
    if end is not None:
        return st, end - start
    if st == _status.RUNNING:
        return st, now - start
    seen = _status.last_sign_of_life(rec, hb)
    return st, (seen - start) if seen is not None else float("nan")


def _read_again(info_dir: str) -> dict[str, Any] | None:
    """The run's ``run.json`` read now, with the keys :func:`judge` needs, or ``None`` (silently: the
    load that read it first has already warned about a damaged file)."""
    try:
        with open(f"{info_dir}/{RUN_JSON}", "rb") as f:
            rec = parse_many([f.read()])[0]
    except OSError:
        return None
    if isinstance(rec, Exception):
        return None
    prog = rec.get("progress")
    start = _time_of(prog.get("start")) if type(prog) is dict else None
    end = _time_of(prog.get("end")) if type(prog) is dict else None
    rec["_start"] = start if start is not None and -_TIME_RANGE < start < _TIME_RANGE else None
    rec["_end"] = end if end is not None and -_TIME_RANGE < end < _TIME_RANGE else None
    if type(rec.get("status")) is not str:
        rec["status"] = None
    return rec


def judge_all(table: dict[str, Any], stale_after: float) -> tuple[list[Any], Any]:
    """The status (judged now) and duration (a float array, ``array('d')``: no numpy) of every row of
    the index ``table``."""
    cols = table["cols"]
    n = len(table["keys"])
    rec_status = cols.get("status") or [None] * n
    nan = float("nan")
    dur = array("d", [nan if s is None or e is None else e - s for s, e in zip(cols["_start"], cols["_end"])]
                if n else [])
    status = list(rec_status)
    ends = _status.END_STATUSES
    now = time.time()
    host = _status.this_host()
    rkeys = table["rkeys"]
    live_recs = table.get("live_recs") if rkeys is None else None  # the index's meta part only
    for i in [i for i, st in enumerate(rec_status) if st not in ends]:  # the few unfinished runs
        rec = {k: cols[k][i] for k in rkeys[i]} if live_recs is None else live_recs.get(table["keys"][i], {})
        status[i], dur[i] = judge(rec, table["dirs"][i], now, stale_after, host)
    return status, dur
