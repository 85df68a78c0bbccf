"""The Watcher: every recorded run in a ``pandas.DataFrame``, with its true status, in an instant.

It reads the store exactly as ``docs/store.md`` describes it (``run.json`` and ``metrics.json`` per
run; ``heartbeat`` for runs without an end record) and keeps an incremental index beside the reader
(``lumo_hydra.paths.cache_dir("watcher")``): a run is re-read only when one of its two files changed
(inode, mtime, size). The index can be deleted at any time; it is rebuilt on the next load.

``C`` is the condition helper: ``df[C['params.lr'] >= 0.1]`` or ``w.load(where=C['status'] == 'finished')``.
"""
from __future__ import annotations

import difflib
import fnmatch
import gc
import hashlib
import json
import marshal
import operator
import os
import re
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from . import status as _status
from .errors import LumoValueError, RunNotFoundError
from .paths import cache_dir, lumo_home

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Watcher", "C", "Condition", "RunRef", "parse_when"]

INDEX_VERSION = 1
# a file modified less than this before we read it may be rewritten again within the same mtime tick:
# its index entry is not trusted (re-read next time), like git's "racily clean" entries
_RACY_NS = 2_000_000_000

# column order of ``load()``: lumo's columns, then ours, then any other record keys
_FRONT = [
    "exp_name", "test_name", "status", "host", "start", "end", "duration", "sweep",
    "params", "metrics", "git", "progress", "execute", "exception", "note", "tags", "lock", "hooks",
    "info_dir",
]
_RECORD_KEYS_LATER = ["pinfo", "paths", "hydra", "info", "return_value", "rerun_of", "version"]
_NOT_FLATTENED = {"hydra.config"}
_NESTED_FRONT = {"params", "metrics", "git", "progress", "execute", "exception", "lock", "hooks"}
_FRONT_SET = set(_FRONT)
_FLAT_ORDER = ["params", "metrics", "git", "progress", "execute", "exception", "lock", "hooks", "pinfo", "paths",
               "hydra", "info", "return_value", "rerun_of"]  # the resolved composed config repeats params; kept in the nested column


class RunRef(tuple):
    """``(exp_name, test_name, info_dir)`` of one run folder."""

    __slots__ = ()

    def __new__(cls, exp_name: str, test_name: str, info_dir: str) -> "RunRef":
        return tuple.__new__(cls, (exp_name, test_name, info_dir))

    @property
    def exp_name(self) -> str:
        return self[0]

    @property
    def test_name(self) -> str:
        return self[1]

    @property
    def info_dir(self) -> str:
        return self[2]


# --------------------------------------------------------------------------------------------------
# time filters


_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(value: Any, *, now: float | None = None, key: str = "since") -> float:
    """A Unix time from a number, a ``datetime``/``date``, an ISO-8601 string (local time unless it has
    an offset) or a relative age like ``'90m'``, ``'2h'``, ``'3d'``, ``'1w'`` (that long before now)."""
    if isinstance(value, bool):
        raise LumoValueError(f"invalid value for '{key}': {value!r}; allowed: a time or an age like '2h'")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).timestamp()
    ts = getattr(value, "timestamp", None)  # pandas.Timestamp
    if callable(ts) and not isinstance(value, str):
        return float(ts())
    if isinstance(value, str):
        m = _REL.match(value)
        if m:
            base = time.time() if now is None else now
            return base - float(m.group(1)) * _UNITS[m.group(2)]
        try:
            return datetime.fromisoformat(value.strip()).timestamp()
        except ValueError:
            pass
    raise LumoValueError(
        f"invalid value for '{key}': {value!r}; allowed: a Unix time, an ISO date/time like "
        f"'2025-11-28' or '2025-11-28T14:00', or an age like '30m', '2h', '3d', '1w'"
    )


# --------------------------------------------------------------------------------------------------
# reading files


def _read(path: str) -> tuple[tuple[int, int, int], bytes]:
    """The content of ``path`` and the ``(inode, mtime_ns, size)`` of exactly the file that was read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        chunks = []
        want = st.st_size + 1
        while True:
            b = os.read(fd, max(want, 65536))
            if not b:
                break
            chunks.append(b)
        data = b"".join(chunks) if len(chunks) != 1 else chunks[0]
    finally:
        os.close(fd)
    return (st.st_ino, st.st_mtime_ns, st.st_size), data


def _sig(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _progress_time(rec: Mapping[str, Any], key: str) -> float | None:
    prog = rec.get("progress")
    if isinstance(prog, dict):
        return _status.parse_time(prog.get(key))
    return None


# one run's files as read from disk: (run.json sig, run.json bytes or None, metrics sig, metrics bytes, error)
_Files = tuple[Any, Any, Any, Any, Any]


def _read_files(info_dir: str) -> _Files:
    """Read ``run.json`` and ``metrics.json`` of one run (I/O only, safe in a worker thread)."""
    try:
        rsig, rdata = _read(info_dir + "/run.json")
    except FileNotFoundError:
        return None, None, None, None, None  # a folder just claimed: its run.json is not written yet
    except OSError as e:
        return None, None, None, None, e
    try:
        msig, mdata = _read(info_dir + "/metrics.json")
    except FileNotFoundError:
        msig, mdata = None, None
    except OSError as e:
        msig, mdata = (-1, -1, -1), e
    return rsig, rdata, msig, mdata, None


def _json_many(datas: list[bytes]) -> list[Any]:
    """Parse many JSON documents; a document that does not parse becomes its ``ValueError``.

    All documents are parsed in one call when they are all valid, which also makes their keys share
    one string object per distinct key (smaller index, faster loads).
    """
    if not datas:
        return []
    try:
        out = json.loads(b"[" + b",".join(datas) + b"]")
        if isinstance(out, list) and len(out) == len(datas) and all(type(x) is dict for x in out):
            return out
    except ValueError:
        pass
    res: list[Any] = []
    for d in datas:
        try:
            x = json.loads(d)
            res.append(x if type(x) is dict else ValueError(f"expected a JSON object, got {type(x).__name__}"))
        except ValueError as e:
            res.append(e)
    return res


def _make_row(rec: dict, summary: Any, exp_name: str, test_name: str) -> dict:
    """The index's row of a run: the record with the reader's derived fields (status not judged yet)."""
    rec.setdefault("exp_name", exp_name)
    rec.setdefault("test_name", test_name)
    pinfo = rec.get("pinfo")
    rec["host"] = pinfo.get("host") if isinstance(pinfo, dict) else None
    best: dict[str, Any] = {}
    last: dict[str, Any] = {}
    if isinstance(summary, dict):
        for k, v in summary.items():
            if isinstance(v, dict):
                best[k] = v.get("best", v.get("last"))
                last[k] = v.get("last")
    rec["metrics"] = best
    rec["metrics_last"] = last
    rec["_start"] = _progress_time(rec, "start")
    rec["_end"] = _progress_time(rec, "end")
    return rec


def _read_heartbeat(info_dir: str) -> float | None:
    try:
        with open(os.path.join(info_dir, "heartbeat"), "rb") as f:
            return _status.parse_heartbeat(f.read())
    except OSError:
        return None


# --------------------------------------------------------------------------------------------------
# flattening


def _flatten_into(out: dict[str, Any], prefix: str, value: Any) -> None:
    if isinstance(value, dict):
        if not value:
            return
        for k, v in value.items():
            key = f"{prefix}.{k}"
            if key in _NOT_FLATTENED:
                continue
            _flatten_into(out, key, v)
    else:
        out[prefix] = value


def _flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k == "metrics":
            last = row.get("metrics_last") or {}
            for name, best in v.items():
                out["metrics." + name] = best
                out["metrics." + name + ".last"] = last.get(name)
        elif k == "metrics_last" or k[0] == "_":
            continue
        elif type(v) is dict:
            _flatten_into(out, k, v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------------
# the Watcher


class Watcher:
    """Loads every run of a store into a DataFrame.

    ``root`` is the store root (default ``$LUMO_HOME`` or ``~/.lumo-hydra``); ``stale_after`` the
    seconds after which a run without an end record and without a fresh heartbeat is ``crashed``;
    ``cache=False`` disables the on-disk index; ``workers`` the threads that read changed runs
    (useful on NFS; ``None`` picks a small number, ``1`` reads in the calling thread).

    After each load, ``stats`` says how many runs were scanned, read, taken from the index, skipped.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        stale_after: float = _status.DEFAULT_STALE_AFTER,
        *,
        cache: bool = True,
        workers: int | None = None,
    ) -> None:
        try:
            stale_after = float(stale_after)
        except (TypeError, ValueError):
            raise LumoValueError(f"invalid value for 'stale_after': {stale_after!r}; allowed: seconds > 0") from None
        if not stale_after > 0:
            raise LumoValueError(f"invalid value for 'stale_after': {stale_after!r}; allowed: seconds > 0")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise LumoValueError(f"invalid value for 'workers': {workers!r}; allowed: an integer >= 1 or None")
        self.root = str(lumo_home(root))
        self.stale_after = stale_after
        self.cache = bool(cache)
        self.workers = workers
        self.stats: dict[str, int] = {}
        self._mem: dict[str, list] | None = None  # the index, kept between loads of this object

    def __repr__(self) -> str:
        return f"Watcher(root={self.root!r}, stale_after={self.stale_after!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_mem"] = None
        return state

    # ---- paths -----------------------------------------------------------------------------------

    @property
    def experiments_dir(self) -> str:
        return os.path.join(self.root, "experiments")

    @property
    def index_path(self) -> str:
        """The index file of this root (local to the reader, safe to delete)."""
        digest = hashlib.sha256(self.root.encode("utf-8")).hexdigest()[:16]
        tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
        return os.path.join(str(cache_dir("watcher")), f"{digest}-{tag}.index")

    def clear_cache(self) -> None:
        """Forget the index (memory and disk); the next load reads every run again."""
        self._mem = None
        try:
            os.unlink(self.index_path)
        except OSError:
            pass

    def iter_runs(self, exp: str | Sequence[str] | None = None) -> Iterator[RunRef]:
        """Every run folder in the store (optionally of the experiments matching ``exp``), unsorted."""
        base = self.experiments_dir
        try:
            exps = [e for e in os.scandir(base) if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
        except FileNotFoundError:
            return
        pats = _as_list(exp)
        for e in exps:
            if pats is not None and not _name_matches(e.name, pats):
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

    # ---- the index -------------------------------------------------------------------------------

    def _load_index(self) -> dict[str, list]:
        if self._mem is not None:
            return self._mem
        if not self.cache:
            return {}
        try:
            with open(self.index_path, "rb") as f:
                blob = marshal.loads(f.read())
            if not (isinstance(blob, dict) and blob.get("version") == INDEX_VERSION and blob.get("root") == self.root):
                return {}
            runs = blob["runs"]
            return runs if isinstance(runs, dict) else {}
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            return {}

    def _save_index(self, runs: dict[str, list]) -> None:
        self._mem = runs
        if not self.cache:
            return
        from ._io import atomic_write_bytes

        path = self.index_path
        try:
            _share_equal_values(runs)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write_bytes(path, marshal.dumps({"version": INDEX_VERSION, "root": self.root, "runs": runs}))
        except (OSError, ValueError) as e:  # a read-only cache must not break loading
            warnings.warn(f"lumo-hydra: could not write the watcher index {path}: {e}", stacklevel=3)

    def _sync(
        self, exp: str | Sequence[str] | None = None, progress: Callable[[int, int], None] | None = None
    ) -> list[tuple[dict, str]]:
        """Bring the index up to date with the store; return ``(row, info_dir)`` of the scanned runs."""
        index = self._load_index()
        refs = list(self.iter_runs(exp))
        pats = _as_list(exp)
        if pats is None:
            new_index: dict[str, list] = {}
        else:  # keep the entries of experiments that were not scanned
            new_index = {k: v for k, v in index.items() if not _name_matches(k.split("/", 1)[0], pats)}
        records: list[tuple[dict, str]] = []
        todo: list[RunRef] = []
        cached = 0
        get = index.get
        for ref in refs:
            key = ref[0] + "/" + ref[1]
            entry = get(key)
            if entry is not None and not entry[2]:
                d = ref[2]
                if _sig(d + "/run.json") == entry[0] and _sig(d + "/metrics.json") == entry[1]:
                    new_index[key] = entry
                    records.append((entry[3], d))
                    cached += 1
                    continue
            todo.append(ref)
        skipped = 0
        if todo:
            files = self._read_all(todo, progress)
            ok = [i for i, f in enumerate(files) if f[1] is not None]
            recs = _json_many([files[i][1] for i in ok])
            mets_at = [i for i in ok if isinstance(files[i][3], bytes)]
            mets = dict(zip(mets_at, _json_many([files[i][3] for i in mets_at])))
            racy_after = time.time_ns() - _RACY_NS
            for i, rec in zip(ok, recs):
                ref = todo[i]
                rsig, _, msig, mdata, _ = files[i]
                if isinstance(rec, Exception):
                    warnings.warn(f"lumo-hydra: skipped corrupt or truncated record {ref[2]}/run.json: {rec}", stacklevel=4)
                    skipped += 1
                    continue
                summary = mets.get(i)
                if isinstance(mdata, Exception) or isinstance(summary, Exception):
                    err = mdata if isinstance(mdata, Exception) else summary
                    warnings.warn(f"lumo-hydra: ignored corrupt or truncated metrics {ref[2]}/metrics.json "
                                  f"of run {ref[1]}: {err}", stacklevel=4)
                    summary, msig = None, (-1, -1, -1)  # never matches: read again next time
                row = _make_row(rec, summary, ref[0], ref[1])
                racy = max(rsig[1], msig[1] if msig else 0) > racy_after
                new_index[ref[0] + "/" + ref[1]] = [rsig, msig, racy, row]
                records.append((row, ref[2]))
            for f, ref in zip(files, todo):
                if f[4] is not None:
                    warnings.warn(f"lumo-hydra: skipped run {ref[2]}: cannot read run.json ({f[4]})", stacklevel=4)
                    skipped += 1
        removed = sum(1 for k in index if k not in new_index)
        self.stats = {"scanned": len(refs), "read": len(todo), "cached": cached, "skipped": skipped, "removed": removed}
        if todo or removed:
            self._save_index(new_index)
        else:
            self._mem = new_index
        return records

    def _read_all(self, todo: list[RunRef], progress: Callable[[int, int], None] | None) -> list[_Files]:
        n = len(todo)
        workers = self.workers or (4 if n >= 512 else 1)
        if workers == 1:
            out = []
            for i, r in enumerate(todo):
                out.append(_read_files(r[2]))
                if progress is not None and (i % 500 == 0 or i == n - 1):
                    progress(i + 1, n)
            return out
        with ThreadPoolExecutor(max_workers=workers) as pool:
            out = []
            for i, f in enumerate(pool.map(_read_files, [r[2] for r in todo], chunksize=128)):
                out.append(f)
                if progress is not None and (i % 500 == 0 or i == n - 1):
                    progress(i + 1, n)
            return out

    # ---- rows ------------------------------------------------------------------------------------

    def rows(
        self,
        *,
        exp: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        sweep: str | Sequence[str] | None = None,
        tag: str | Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[tuple[dict[str, Any], str, str, float | None]]:
        """The runs as ``(row, info_dir, status, duration)``, filtered, oldest first.

        ``row`` is the index's record of the run (shared with the index: do not modify it)."""
        statuses = _as_list(status)
        if statuses is not None:
            bad = [s for s in statuses if s not in _status.STATUSES]
            if bad:
                raise LumoValueError(
                    f"invalid value for 'status': {bad[0]!r}; allowed: one of {list(_status.STATUSES)}"
                )
        t0 = parse_when(since, key="since") if since is not None else None
        t1 = parse_when(until, key="until") if until is not None else None
        sweeps = _as_list(sweep)
        tags = _as_list(tag)
        now = time.time()
        host = _status.this_host()
        stale = self.stale_after
        ends = _status.END_STATUSES
        out: list[tuple[dict[str, Any], str, str, float | None]] = []
        gc_was = gc.isenabled()
        gc.disable()  # millions of small containers: the cyclic collector would triple the time
        try:
            records = self._sync(exp, progress)
            for rec, info_dir in records:
                st = rec.get("status")
                start = rec["_start"]
                end = rec["_end"]
                if st in ends:
                    duration = end - start if (end is not None and start is not None) else None
                else:
                    hb = _read_heartbeat(info_dir)
                    st = _status.judge_status(rec, hb, now=now, stale_after=stale, host=host)
                    if start is None:
                        duration = None
                    elif end is not None:
                        duration = end - start
                    elif st == _status.RUNNING:
                        duration = now - start
                    else:
                        seen = _status.last_sign_of_life(rec, hb)
                        duration = (seen - start) if seen is not None else None
                if statuses is not None and st not in statuses:
                    continue
                if t0 is not None and (start is None or start < t0):
                    continue
                if t1 is not None and (start is None or start > t1):
                    continue
                if sweeps is not None:
                    sw = rec.get("sweep")
                    if not (isinstance(sw, str) and any(sw.startswith(x) for x in sweeps)):
                        continue
                if tags is not None:
                    rtags = rec.get("tags") or ()
                    if not all(t in rtags for t in tags):
                        continue
                out.append((rec, info_dir, st, duration))
        finally:
            if gc_was:
                gc.enable()
        inf = float("inf")
        out.sort(key=lambda r: (r[0]["_start"] if r[0]["_start"] is not None else inf, str(r[0].get("test_name"))))
        return out

    def load(
        self,
        flatten: bool = False,
        *,
        exp: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        sweep: str | Sequence[str] | None = None,
        tag: str | Sequence[str] | None = None,
        where: "Condition | Callable[[pd.DataFrame], Any] | None" = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> "pd.DataFrame":
        """One row per run, oldest first.

        Nested columns (lumo's): ``exp_name, test_name, status, host, start, end, duration, sweep,
        params, metrics, git, progress, execute, exception, note, tags, lock, hooks, info_dir``, then
        ``pinfo, paths, hydra, info, return_value, rerun_of, version, metrics_last`` and any other
        record key. ``metrics`` is ``{name: best value}``, ``metrics_last`` ``{name: last value}``.
        ``flatten=True`` gives scalar dotted columns instead: ``params.<path>``, ``metrics.<name>``
        (best), ``metrics.<name>.last``, ``git.commit``, ``lock.digest``, ...

        Filters: ``exp`` (names or glob patterns), ``status``, ``since``/``until`` (start time: a
        datetime, ISO string, Unix time or an age like ``'2h'``), ``sweep`` (id or prefix), ``tag`` (all
        given tags), ``where`` (a ``C`` condition or any ``df -> bool mask`` callable).
        ``start``/``end`` are local-time timestamps, ``duration`` seconds (so far, for runs without end).
        Nested values are shared with the Watcher's index: copy them before modifying them in place.
        """
        import numpy as np
        import pandas as pd

        rows = self.rows(exp=exp, status=status, since=since, until=until, sweep=sweep, tag=tag, progress=progress)
        gc_was = gc.isenabled()
        gc.disable()
        try:
            recs = [r[0] for r in rows]
            if flatten:
                flat = [_flat_row(r) for r in recs]
                seen: dict[str, None] = {}
                for f in flat:
                    seen.update(dict.fromkeys(f))
                rank = {p: i for i, p in enumerate(_FLAT_ORDER)}
                rest = sorted((k for k in seen if k not in _FRONT_SET),
                              key=lambda k: rank.get(k.split(".", 1)[0], len(rank)))  # stable: first-seen order
                data_keys = [k for k in _FRONT if k not in _NESTED_FRONT] + rest
                src = flat
            else:
                seen = dict.fromkeys(_FRONT + _RECORD_KEYS_LATER)
                for r in recs:
                    seen.update(dict.fromkeys(r))
                data_keys = [k for k in seen if k[0] != "_"]
                src = recs
            cols: dict[str, Any] = {}
            for k in data_keys:
                if k == "status":
                    cols[k] = [r[2] for r in rows]
                elif k == "info_dir":
                    cols[k] = [r[1] for r in rows]
                elif k == "duration":
                    cols[k] = np.array([r[3] for r in rows], dtype=float)
                elif k in ("start", "end"):
                    cols[k] = _to_local_time(np.array([r["_" + k] for r in recs], dtype=float))
                elif k in ("params", "metrics", "metrics_last", "git", "progress", "execute", "lock", "hooks"):
                    cols[k] = [r.get(k) or {} for r in src]
                elif k == "tags":
                    cols[k] = [r.get(k) or [] for r in src]
                elif k == "note":
                    cols[k] = [r.get(k) or "" for r in src]
                else:
                    cols[k] = [r.get(k) for r in src]
            df = pd.DataFrame(cols)
        finally:
            if gc_was:
                gc.enable()
        if where is not None:
            mask = where(df)
            df = df[mask].reset_index(drop=True)
        return df

    # ---- one run ---------------------------------------------------------------------------------

    def resolve(self, run: str) -> RunRef:
        """The run named by ``run``: a test_name, ``exp_name/test_name``, an info folder path, or an
        unambiguous prefix of a test_name. Raises ``RunNotFoundError`` with the closest ids."""
        if not isinstance(run, str) or not run.strip():
            raise RunNotFoundError(f"invalid run id {run!r}; allowed: a test_name, exp_name/test_name or a prefix")
        run = run.strip()
        if os.path.isfile(os.path.join(run, "run.json")):
            d = os.path.abspath(run)
            return RunRef(os.path.basename(os.path.dirname(d)), os.path.basename(d), d)
        exp_part, _, name = run.rpartition("/")
        refs = list(self.iter_runs(exp_part or None))
        exact = [r for r in refs if r[1] == name]
        if len(exact) == 1:
            return RunRef(*exact[0])
        if len(exact) > 1:
            raise RunNotFoundError(
                f"run id {run!r} is ambiguous: it names {len(exact)} runs "
                f"({', '.join(r[0] + '/' + r[1] for r in sorted(exact))}); write exp_name/test_name"
            )
        pref = [r for r in refs if r[1].startswith(name)]
        if len(pref) == 1:
            return RunRef(*pref[0])
        if len(pref) > 1:
            shown = sorted(r[1] for r in pref)
            more = f" and {len(shown) - 8} more" if len(shown) > 8 else ""
            raise RunNotFoundError(
                f"run id {run!r} is ambiguous: it is the start of {len(shown)} runs "
                f"({', '.join(shown[:8])}{more}); give more characters"
            )
        names = sorted({r[1] for r in refs})
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        where_ = f" in {self.root}"
        hint = f"; did you mean {', '.join(close)}?" if close else ("" if names else " (the store has no runs)")
        raise RunNotFoundError(f"no run {run!r}{where_}{hint}")

    def record(self, run: str) -> dict[str, Any]:
        """The ``run.json`` of ``run`` (any form ``resolve`` accepts), with ``status`` judged now."""
        ref = self.resolve(run)
        path = os.path.join(ref[2], "run.json")
        try:
            _, data = _read(path)
            rec = json.loads(data)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            raise LumoValueError(f"the record {path} of run {ref[1]!r} cannot be read: {e}") from None
        rec["recorded_status"] = rec.get("status")
        hb = _read_heartbeat(ref[2]) if rec.get("status") not in _status.END_STATUSES else None
        rec["status"] = _status.judge_status(rec, hb, now=time.time(), stale_after=self.stale_after)
        rec.setdefault("exp_name", ref[0])
        rec.setdefault("test_name", ref[1])
        try:
            _, mdata = _read(os.path.join(ref[2], "metrics.json"))
            m = json.loads(mdata)
            rec["metrics"] = m if isinstance(m, dict) else {}
        except (OSError, ValueError):
            rec["metrics"] = {}
        rec["info_dir"] = ref[2]
        return rec

    def retrieve(self, test_name: str) -> Any:
        """The ``Experiment`` of run ``test_name`` (``Experiment.from_disk``)."""
        ref = self.resolve(test_name)
        from .experiment import Experiment

        return Experiment.from_disk(ref[2])

    def history(self, test_name: str, metric: str | None = None) -> "pd.DataFrame":
        """The steps of ``metric`` (all metrics if ``None``) of run ``test_name``:
        columns ``metric, step, value, time`` (``time`` a Unix float), in the order they were logged."""
        import pandas as pd

        ref = self.resolve(test_name)
        path = os.path.join(ref[2], "history.jsonl")
        rows: list[tuple[Any, Any, Any, Any]] = []
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        lines = data.split(b"\n")
        lines.pop()  # the part after the last newline: empty, or a line still being written
        bad = 0
        for line in lines:
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                k = d["k"]
            except (ValueError, KeyError, TypeError):
                bad += 1
                continue
            if metric is None or k == metric:
                rows.append((k, d.get("s"), d.get("v"), d.get("t")))
        if bad:
            warnings.warn(f"lumo-hydra: skipped {bad} corrupt line(s) of {path}", stacklevel=2)
        if metric is not None and not rows:
            known = sorted(self.record(ref[2]).get("metrics", {}))
            if metric not in known:
                close = difflib.get_close_matches(metric, known, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else f"; recorded metrics: {known}"
                raise LumoValueError(f"run {ref[1]!r} has no metric {metric!r}{hint}")
        return pd.DataFrame(rows, columns=["metric", "step", "value", "time"])

    def sweep(self, sweep_id: str, flatten: bool = False) -> "pd.DataFrame":
        """The jobs of sweep ``sweep_id`` (or an unambiguous prefix), ordered by job number.
        ``df.attrs['sweep']`` holds ``sweeps/<id>/sweep.json`` when it exists."""
        sid = self.resolve_sweep(sweep_id)
        df = self.load(flatten=flatten, sweep=sid)
        df = df[df["sweep"] == sid]
        if len(df):
            nums = [(_job_num(h) if isinstance(h, dict) else None) for h in (df["hydra"] if "hydra" in df else [None] * len(df))] \
                if not flatten else list(df.get("hydra.job_num", [None] * len(df)))
            order = sorted(range(len(df)), key=lambda i: (nums[i] is None, nums[i] if nums[i] is not None else 0, i))
            df = df.iloc[order]
        df = df.reset_index(drop=True)
        try:
            with open(os.path.join(self.root, "sweeps", sid, "sweep.json"), "rb") as f:
                df.attrs["sweep"] = json.loads(f.read())
        except (OSError, ValueError):
            pass
        return df

    def resolve_sweep(self, sweep_id: str) -> str:
        """The full id of the sweep named by ``sweep_id`` (exact or unambiguous prefix)."""
        ids: set[str] = set()
        try:
            ids.update(e.name for e in os.scandir(os.path.join(self.root, "sweeps")) if e.is_dir())
        except OSError:
            pass
        if sweep_id in ids:
            return sweep_id
        for rec, _ in self._sync():
            if rec.get("sweep"):
                ids.add(str(rec["sweep"]))
        if sweep_id in ids:
            return sweep_id
        pref = sorted(i for i in ids if i.startswith(sweep_id))
        if len(pref) == 1:
            return pref[0]
        if len(pref) > 1:
            raise RunNotFoundError(f"sweep id {sweep_id!r} is ambiguous: {', '.join(pref[:8])}")
        close = difflib.get_close_matches(sweep_id, sorted(ids), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RunNotFoundError(f"no sweep {sweep_id!r} in {self.root}{hint}")


_SHARED_KEYS = ("lock", "hooks", "execute", "git", "tags", "info", "exception", "pinfo")


def _share_equal_values(runs: dict[str, list]) -> None:
    """Make equal values of the usually repeated record keys (the lock, hooks, snapshot of a sweep, ...)
    one object, so the index stores them once and loads create them once."""
    memo: dict[bytes, Any] = {}
    dumps = marshal.dumps
    for entry in runs.values():
        row = entry[3]
        for k in _SHARED_KEYS:
            v = row.get(k)
            if v is not None:
                try:
                    row[k] = memo.setdefault(k.encode() + dumps(v), v)
                except ValueError:  # pragma: no cover - not marshallable (cannot come from JSON)
                    pass


def _job_num(hydra: Mapping[str, Any]) -> int | None:
    n = hydra.get("job_num")
    try:
        return int(n) if n is not None else None
    except (TypeError, ValueError):
        return None


def _as_list(v: str | Sequence[str] | None) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


def _name_matches(name: str, pats: list[str]) -> bool:
    for p in pats:
        if any(c in p for c in "*?["):
            if fnmatch.fnmatchcase(name, p):
                return True
        elif name == p:
            return True
    return False


_LOCAL_TZ: Any = None


def _to_local_time(values: Any) -> "pd.Series":
    """Unix times (NaN for missing) as timezone-aware timestamps in the machine's current local offset."""
    import pandas as pd

    global _LOCAL_TZ
    if _LOCAL_TZ is None:
        _LOCAL_TZ = datetime.now().astimezone().tzinfo
    return pd.Series(pd.to_datetime(values, unit="s", utc=True)).dt.tz_convert(_LOCAL_TZ)


# --------------------------------------------------------------------------------------------------
# the condition helper C


_MISSING = object()


def _dig(value: Any, path: Sequence[str]) -> Any:
    for p in path:
        if isinstance(value, dict):
            value = value.get(p, _MISSING)
            if value is _MISSING:
                return None
        else:
            return None
    return value


def _column(df: "pd.DataFrame", key: str) -> "pd.Series":
    """The values of the dotted ``key`` in ``df``: a flat column, or a path into a nested column."""
    if key in df.columns:
        return df[key]
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        rest = parts[i:]
        if head == "metrics" and "metrics" in df.columns:
            name = ".".join(rest)
            col = "metrics"
            if len(rest) > 1 and rest[-1] in ("last", "best"):
                name, col = ".".join(rest[:-1]), ("metrics_last" if rest[-1] == "last" else "metrics")
            if col in df.columns:
                return df[col].map(lambda m, name=name: m.get(name) if isinstance(m, dict) else None)
        if head in df.columns:
            return df[head].map(lambda v, rest=rest: _dig(v, rest))
    close = difflib.get_close_matches(key, [str(c) for c in df.columns], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise LumoValueError(f"unknown column {key!r} in condition{hint}")


def _mask(s: "pd.Series") -> "pd.Series":
    import pandas as pd

    return pd.Series(s, index=s.index).fillna(False).astype(bool)


def _compare(series: "pd.Series", op: Callable[[Any, Any], Any], other: Any) -> "pd.Series":
    import pandas as pd

    if isinstance(other, (int, float)) and not isinstance(other, bool) and op not in (operator.eq, operator.ne):
        series = pd.to_numeric(series, errors="coerce")
    try:
        res = op(series, other)
        if isinstance(res, pd.Series):
            return _mask(res)
    except TypeError:
        pass

    def one(v: Any) -> bool:
        try:
            return bool(op(v, other))
        except TypeError:
            return False

    return series.map(one).astype(bool)


class Condition:
    """A row filter built with ``C``: call it on a DataFrame to get a boolean mask.

    Works as ``df[cond]``, ``df.loc[cond]``, ``cond.apply(df)`` and ``w.load(where=cond)``; combine
    with ``&``, ``|`` and ``~``.
    """

    def __init__(self, fn: Callable[["pd.DataFrame"], "pd.Series"], text: str) -> None:
        self._fn = fn
        self._text = text

    def __call__(self, df: "pd.DataFrame") -> "pd.Series":
        return _mask(self._fn(df))

    def apply(self, df: "pd.DataFrame") -> "pd.DataFrame":
        """The rows of ``df`` that satisfy the condition."""
        return df[self(df)]

    def __and__(self, other: "Condition") -> "Condition":
        return Condition(lambda df: self(df) & other(df), f"({self._text}) & ({other._text})")

    def __or__(self, other: "Condition") -> "Condition":
        return Condition(lambda df: self(df) | other(df), f"({self._text}) | ({other._text})")

    def __invert__(self) -> "Condition":
        return Condition(lambda df: ~self(df), f"~({self._text})")

    def __bool__(self) -> bool:
        raise TypeError("a Condition has no truth value: use & | ~ instead of and/or/not, and a == b chains")

    def __repr__(self) -> str:
        return f"<Condition {self._text}>"


class Column:
    """``C['params.lr']``: a column of a Watcher DataFrame, nested (``params`` dict) or flat."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, key: str) -> None:
        self.key = key

    def values(self, df: "pd.DataFrame") -> "pd.Series":
        """The column's values in ``df``."""
        return _column(df, self.key)

    def _op(self, op: Callable[[Any, Any], Any], sym: str, other: Any) -> Condition:
        return Condition(lambda df: _compare(self.values(df), op, other), f"{self.key} {sym} {other!r}")

    def __eq__(self, other: Any) -> Condition:  # type: ignore[override]
        return self._op(operator.eq, "==", other)

    def __ne__(self, other: Any) -> Condition:  # type: ignore[override]
        return self._op(operator.ne, "!=", other)

    def __lt__(self, other: Any) -> Condition:
        return self._op(operator.lt, "<", other)

    def __le__(self, other: Any) -> Condition:
        return self._op(operator.le, "<=", other)

    def __gt__(self, other: Any) -> Condition:
        return self._op(operator.gt, ">", other)

    def __ge__(self, other: Any) -> Condition:
        return self._op(operator.ge, ">=", other)

    def isin(self, values: Iterable[Any]) -> Condition:
        """The value is one of ``values``."""
        vals = list(values)
        return Condition(lambda df: self.values(df).map(lambda v: _in(v, vals)), f"{self.key} in {vals!r}")

    def contains(self, item: Any) -> Condition:
        """A list value (e.g. ``tags``) holds ``item``, or a string value contains the substring ``item``."""

        def one(v: Any) -> bool:
            if isinstance(v, str):
                return isinstance(item, str) and item in v
            if isinstance(v, (list, tuple, set, dict)):
                return item in v
            return False

        return Condition(lambda df: self.values(df).map(one), f"{self.key} contains {item!r}")

    def matches(self, pattern: str) -> Condition:
        """A string value matches the regular expression ``pattern`` (``re.search``)."""
        rx = re.compile(pattern)
        return Condition(lambda df: self.values(df).map(lambda v: isinstance(v, str) and rx.search(v) is not None),
                         f"{self.key} matches {pattern!r}")

    def between(self, low: Any, high: Any) -> Condition:
        """``low <= value <= high``."""
        return (self >= low) & (self <= high)

    def isna(self) -> Condition:
        """The value is missing."""
        import pandas as pd

        return Condition(lambda df: self.values(df).map(lambda v: v is None or (isinstance(v, float) and pd.isna(v))),
                         f"{self.key} is missing")

    def notna(self) -> Condition:
        """The value is present."""
        return ~self.isna()

    def __repr__(self) -> str:
        return f"C[{self.key!r}]"


def _in(v: Any, vals: list[Any]) -> bool:
    try:
        return v in vals
    except TypeError:
        return False


class _ConditionFactory:
    """``C['params.lr'] >= 0.1``: build row conditions for Watcher DataFrames (see ``Condition``)."""

    def __getitem__(self, key: str) -> Column:
        if not isinstance(key, str) or not key:
            raise LumoValueError(f"invalid column {key!r} for C[...]; allowed: a column name like 'params.lr'")
        return Column(key)

    def __getattr__(self, key: str) -> Column:
        if key.startswith("__"):
            raise AttributeError(key)
        return Column(key)

    def __repr__(self) -> str:
        return "C"


C = _ConditionFactory()
