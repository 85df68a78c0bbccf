"""Run folders into the Watcher's rows: finding the runs of a store, reading their ``run.json`` and
``metrics.json`` through :mod:`lumo_hydra.store.reader` (serially, by threads on a slow file system,
or half of them in a forked second process for thousands of runs: :mod:`lumo_hydra.watcher.parallel`),
building the index row of each run (re-basing the paths of runs that moved), and judging the status of
runs without an end record.
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
from lumo_hydra.store.moved import UNPACKED_JSON, _swap, rebase_record
from lumo_hydra.store.reader import RunFiles, parse_many, read_heartbeat, read_run_files, warn_bad
from lumo_hydra.store.times import parse_time
from lumo_hydra.watcher import parallel as _parallel
from lumo_hydra.watcher.query import name_matches

__all__ = ["RunRef", "iter_runs", "read_rows", "make_row", "repair_row", "judge", "judge_all", "judged_again", "live_rows",
           "JUDGE_KEYS"]

# the record keys judging a run without an end record needs
JUDGE_KEYS = ("status", "progress", "pinfo", "_start", "_end")
# a file modified less than this before we read it may be rewritten again within the same mtime tick:
# its index entry is not trusted (re-read next time), like git's "racily clean" entries
_RACY_NS = 2_000_000_000
# runs read and parsed at a time
_CHUNK = 512
# the share of a two-process read this process reads (the child also encodes its rows, this process decodes them)
_OWN_PCT = 55
# a first read slower than this per run means a network file system: read the rest with threads
_SLOW_READ_S = 300e-6
# warnings about damaged files point at the caller of ``Watcher.load`` (warn_bad <- read_rows <- RunIndex.refresh
# <- Watcher._rows_of or RunIndex.cached_frame <- Watcher.load <- the caller; _read_serial adds one level)
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


def experiment_folders(experiments_dir: str, pats: list[str] | None = None) -> list[tuple[str, str, Any]]:
    """``(name, path, (inode, mtime_ns) or None)`` of every experiment folder (matching ``pats``)."""
    out: list[tuple[str, str, Any]] = []
    try:
        it = os.scandir(experiments_dir)
    except FileNotFoundError:
        return out
    with it:
        for e in it:
            if e.name[0] == "." or not e.is_dir(follow_symlinks=False):
                continue
            if pats is not None and not name_matches(e.name, pats):
                continue
            try:
                st = e.stat(follow_symlinks=False)
                out.append((e.name, e.path, (st.st_ino, st.st_mtime_ns)))
            except OSError:
                out.append((e.name, e.path, None))
    return out


def _folder_sigs(part: list[RunRef], out: dict[str, Any]) -> None:
    """``out[key]``: the ``(inode, mtime_ns)`` of each run folder of ``part`` now, ``None`` if it cannot be
    trusted yet (modified in the last ``_RACY_NS``) or read."""
    racy_after = time.time_ns() - _RACY_NS
    stat = os.stat
    for ref in part:
        try:
            st = stat(ref[2])
            mt = st.st_mtime_ns
            out[ref[0] + "/" + ref[1]] = (st.st_ino, mt) if 0 <= mt <= racy_after else None
        except OSError:
            out[ref[0] + "/" + ref[1]] = None


# --------------------------------------------------------------------------------------------------
# reading runs


def _time_of(value: Any) -> float | None:
    if type(value) is str:
        try:
            return _fromiso(value).timestamp()
        except ValueError:
            pass
    return parse_time(value)


_fromiso = datetime.fromisoformat


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
        t = prog.get("start")
        try:  # _time_of, its usual case inlined
            rec["_start"] = _fromiso(t).timestamp() if type(t) is str else _time_of(t)
        except ValueError:
            rec["_start"] = parse_time(t)
        t = prog.get("end")
        try:
            rec["_end"] = _fromiso(t).timestamp() if type(t) is str else _time_of(t)
        except ValueError:
            rec["_end"] = parse_time(t)
    else:
        rec["_start"] = rec["_end"] = None
    return rec


# Unix times pandas can hold as nanosecond timestamps (years 1678-2261)
_TIME_RANGE = 9.2e9


def _sound(row: dict[str, Any]) -> bool:
    """Whether :func:`repair_row` would leave ``row`` as it is (the usual case, checked without a loop)."""
    s, e, st = row["_start"], row["_end"], row.get("status")
    return (type(row["exp_name"]) is str and type(row["test_name"]) is str and (st is None or type(st) is str)
            and (s is None or -_TIME_RANGE < s < _TIME_RANGE) and (e is None or -_TIME_RANGE < e < _TIME_RANGE))


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
    todo: list[RunRef], progress: Callable[[int, int], None] | None, workers: int | None,
    folders: dict[str, Any] | None = None,
) -> tuple[list[tuple[RunRef, dict[str, Any], Any]], int]:
    """Read the runs ``todo``: ``(ref, row, (run.json sig, metrics.json sig) or None if racy)`` each, and
    how many were skipped. A damaged file is reported through ``warn_bad`` (the run skipped for a bad
    ``run.json``, kept with empty metrics for a bad ``metrics.json``); a folder without ``run.json`` is
    skipped silently. Thousands of runs (``workers`` ``None``) are read by two processes when the
    machine allows it (:mod:`lumo_hydra.watcher.parallel`), with the same result. ``folders`` (a dict) gets
    the signature of each run folder, taken right before its files are read (as ``RunIndex.plan`` does)."""
    n = len(todo)
    split = (n * _OWN_PCT // 100 + _CHUNK // 2) // _CHUNK * _CHUNK  # at a chunk boundary: the same chunks, warnings in order
    job = _parallel.start(_read_part, (todo[split:], folders is not None)) \
        if workers is None and n >= _parallel.MIN_RUNS and 0 < split < n and _parallel.can_fork() else None
    if job is None:
        return _read_serial(todo, progress, workers, n, folders=folders)
    began = time.perf_counter()
    try:
        out, skipped = _read_serial(todo[:split], progress, workers, n, folders=folders)
    except BaseException:
        job.cancel()
        raise
    res = job.result(_parallel.patience(time.perf_counter() - began))
    if res is None:  # the child failed: this process reads its slice too
        more, sk = _read_serial(todo[split:], progress, workers, n, split, folders)
    else:
        (rows, sk, theirs), caught = res
        _parallel.warn_again(caught, _WARN_LEVEL - 1)
        slice_ = todo[split:]
        more = [(slice_[j], row, sig) for j, row, sig in rows]  # the child sends positions, not refs
        if folders is not None:
            folders.update(theirs)
        del res, rows
        if progress is not None:
            progress(n, n)
    out.extend(more)
    return out, skipped + sk


def _read_part(arg: tuple[list[RunRef], bool]) -> tuple[list[Any], int, dict[str, Any]]:
    """:func:`_read_serial` of ``todo`` in the child process (``marshal``-able: each run's position in
    ``todo`` instead of its ref), and the run folders' signatures if asked."""
    todo, want = arg
    folders: dict[str, Any] | None = {} if want else None
    out, skipped = _read_serial(todo, None, None, len(todo), folders=folders)
    pos = {id(r): j for j, r in enumerate(todo)}  # out's refs are todo's objects
    return [(pos[id(ref)], row, sig) for ref, row, sig in out], skipped, folders or {}


def _read_serial(
    todo: list[RunRef], progress: Callable[[int, int], None] | None, workers: int | None, total: int,
    done: int = 0, folders: dict[str, Any] | None = None,
) -> tuple[list[tuple[RunRef, dict[str, Any], Any]], int]:
    """:func:`read_rows` in this process (``progress`` gets ``done`` + the runs read so far, of ``total``)."""
    out: list[tuple[RunRef, dict[str, Any], Any]] = []
    skipped = 0
    rebase = _Rebase()  # a moved run's paths are re-based (store/moved.py)
    shared: dict[str, Any] = {}
    if not todo:
        return out, skipped
    for c0 in range(0, len(todo), _CHUNK):  # in chunks: the bytes read never pile up (peak memory)
        part = todo[c0:c0 + _CHUNK]
        first = len(out)
        if folders is not None:
            _folder_sigs(part, folders)
        files, workers = _read_all(part, progress, workers, done + c0, total)
        ok = [i for i, f in enumerate(files) if f.run is not None]
        recs = parse_many([files[i].run for i in ok])  # type: ignore[misc]
        mets_at = [i for i in ok if isinstance(files[i].metrics, bytes)]
        mets = dict(zip(mets_at, parse_many([files[i].metrics for i in mets_at])))  # type: ignore[misc]
        racy_after = time.time_ns() - _RACY_NS
        for i, rec in zip(ok, recs):
            ref = part[i]
            rsig, _, msig, mdata, _ = files[i]
            if isinstance(rec, Exception):
                warn_bad(f"{ref[2]}/{RUN_JSON}", "skipped corrupt or truncated record", rec, stacklevel=_WARN_LEVEL + 1)
                skipped += 1
                continue
            summary = mets.get(i)
            if isinstance(mdata, Exception) or isinstance(summary, Exception):
                err = mdata if isinstance(mdata, Exception) else summary
                warn_bad(f"{ref[2]}/{METRICS_JSON}", "ignored corrupt or truncated metrics", err, stacklevel=_WARN_LEVEL + 1)
                summary, msig = None, (-1, -1, -1)  # never matches: read again next time
            row = make_row(rebase(ref[2], rec), summary, ref[0], ref[1])
            if not _sound(row) and (bad := repair_row(row, ref[0], ref[1])):
                warn_bad(f"{ref[2]}/{RUN_JSON}", "ignored bad values (" + ", ".join(bad) + ") of record", "kept the run",
                         stacklevel=_WARN_LEVEL + 1)
            racy = max(rsig[1], msig[1] if msig else 0) > racy_after  # type: ignore[index]
            out.append((ref, row, None if racy else (rsig, msig)))
        for f, ref in zip(files, part):
            if f.error is not None:
                warn_bad(f"{ref[2]}/{RUN_JSON}", "cannot read record", f.error, stacklevel=_WARN_LEVEL + 1)
                skipped += 1
        _share_equal_values([r[1] for r in out[first:]], shared)  # per chunk: copies freed early
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


def _share_equal_values(rows: list[dict[str, Any]], prev: dict[str, Any]) -> None:
    """Make equal values of the usually repeated record keys (the lock, hooks, snapshot of a sweep, ...)
    one object when they repeat from one run to the next (runs of a sweep are read together), so the
    index stores them once and loads create them once; ``prev`` (updated) holds the last row's values."""
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


# the record keys store/moved.py re-bases, of which the usually repeated ones (a sweep's) are re-based once
_REBASED = ("execute", "git", "hooks", "hydra", "rerun", "rerun_of_info")
_REBASED_SHARED = ("execute", "git", "hooks")


class _Rebase:
    """:func:`lumo_hydra.store.moved.rebase_record` for many runs, with the same result: a run that did
    not move costs a comparison (a root pair's symlinks resolved once per pair, as ``rebase_if_moved``);
    a moved one without ``unpacked.json`` (a copied store) costs a ``stat`` and the swap of its own
    paths: the store roots are worked out once per experiment folder, the ``moved`` mapping is one
    object per pair of roots, and a value of ``execute``, ``git`` or ``hooks`` equal to the previous
    run's (a sweep's snapshot, hooks) is re-based once and shared."""

    __slots__ = ("roots", "prev", "exps", "maps", "ups")

    def __init__(self) -> None:
        self.roots: dict[tuple[str, str], bool] = {}
        self.prev: dict[str, tuple[Any, Any, Any]] = {}  # key: (value as read, mapping, value re-based)
        self.exps: dict[str, tuple[str, str] | None] = {}  # experiment folder: (absolute, store root now)
        self.maps: dict[tuple[str, str], dict[str, Any]] = {}  # (root was, root now): the ``moved`` mapping
        self.ups: dict[str, str] = {}  # a recorded experiment folder: the store root above it

    def __call__(self, info_dir: str, rec: dict[str, Any]) -> dict[str, Any]:
        paths: Any = rec.get("paths")
        was = paths.get("info_dir") if type(paths) is dict else None
        if type(was) is not str or was == info_dir:
            return rec
        key = (was.rstrip("/").rsplit("/", 3)[0], info_dir.rsplit("/", 3)[0])
        moved = self.roots.get(key)
        if moved is None:
            moved = self.roots[key] = os.path.realpath(key[0]) != os.path.realpath(key[1])
        if not moved:
            return rec
        exp, _, name = info_dir.rpartition("/")
        if exp not in self.exps:
            ap = os.path.abspath(exp)
            self.exps[exp] = (ap, os.path.dirname(os.path.dirname(ap))) if ap != "/" else None
        where = self.exps[exp]
        if where is None or not name or name in (".", ".."):
            return self._generic(info_dir, rec)
        here = where[0] + "/" + name  # os.path.abspath(info_dir)
        try:
            os.stat(here + "/" + UNPACKED_JSON)
        except FileNotFoundError:
            pass
        except OSError:
            return self._generic(info_dir, rec)
        else:  # unpacked: its code may have moved too
            return self._generic(info_dir, rec)
        if was == here:
            return rec
        d1 = os.path.dirname(was.rstrip("/"))  # the root it was written in: three folders up
        root_was = self.ups.get(d1)
        if root_was is None:
            root_was = self.ups[d1] = os.path.dirname(os.path.dirname(d1))
        if not root_was or root_was == "/":
            return rec
        mkey = (root_was, where[1])
        mapping = self.maps.get(mkey)
        if mapping is None:
            mapping = self.maps[mkey] = {"root": [root_was, where[1]]}
        old, new = mapping["root"]
        olds, n = old + "/", len(old)
        rec["paths"] = {k: new + v[n:] if type(v) is str and v.startswith(olds) else _swap(v, old, new)
                        for k, v in paths.items()}  # _swap(paths, old, new), the usual case inlined
        for k in _REBASED:
            v = rec.get(k)
            if v is not None:
                rec[k] = self._swapped(k, v, mapping, old, new) if k in _REBASED_SHARED else _swap(v, old, new)
        rec["moved"] = mapping
        return rec

    def _swapped(self, k: str, v: Any, mapping: dict[str, Any], old: str, new: str) -> Any:
        """``v`` (the value of ``k``) re-based, shared with the previous run's when equal to it."""
        p = self.prev.get(k)
        if p is not None and p[1] is mapping and (p[0] is v or (type(p[0]) is type(v) and p[0] == v)):
            return p[2]
        out = _swap(v, old, new)
        self.prev[k] = (v, mapping, out)
        return out

    def _generic(self, info_dir: str, rec: dict[str, Any]) -> dict[str, Any]:
        """A moved run the fast path does not cover (unpacked, an odd folder): ``rebase_record`` itself."""
        return rebase_record(info_dir, rec)


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


def judged_again(df: Any, live: list[Any], stale_after: float) -> Any:
    """``df`` with the status and duration of its runs without an end record (``live``) judged now."""
    if not live:
        return df
    import numpy as np

    now = time.time()
    host = _status.this_host()
    status = df["status"].tolist()
    dur = df["duration"].to_numpy(dtype=float, copy=True)
    for i, rec, info_dir in live:
        status[i], dur[i] = judge(rec, info_dir, now, stale_after, host)
    df["status"] = status
    df["duration"] = np.asarray(dur, dtype=float)
    return df


def live_rows(table: dict[str, Any]) -> list[int]:
    """The rows of ``table`` whose record has no end status (found once per table)."""
    at = table.get("live_at")
    if at is None:
        ends = _status.END_STATUSES
        st = table["cols"].get("status") or [None] * len(table["keys"])
        at = table["live_at"] = [i for i, s in enumerate(st) if s not in ends]
    return at  # type: ignore[no-any-return]
