"""The Watcher: every recorded run in a ``pandas.DataFrame``, with its true status, in an instant.

It reads the store exactly as ``docs/store.md`` describes it (``run.json`` and ``metrics.json`` per
run; ``heartbeat`` for runs without an end record) and keeps an incremental, columnar index beside the
reader (``lumo_hydra.paths.cache_dir("watcher")``): a run is re-read only when one of its two files
changed (inode, mtime, size). Beside it, the frame cache holds the DataFrame of the last unfiltered
load, returned as is (statuses of unfinished runs judged again) while no run changed. Both can be
deleted at any time; they are rebuilt on the next load (see ``docs/watcher.md``).

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
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from lumo_hydra.store import status as _status
from lumo_hydra.errors import LumoValueError, RunNotFoundError
from lumo_hydra.store.layout import cache_dir, lumo_home

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Watcher", "C", "Condition", "RunRef", "parse_when"]

INDEX_VERSION = 2
FRAME_VERSION = 1
_FRAME_MAGIC = b"LUMOFRM1"
# the record keys judging a run without an end record needs
_JUDGE_KEYS = ("status", "progress", "pinfo", "_start", "_end")
# a file modified less than this before we read it may be rewritten again within the same mtime tick:
# its index entry is not trusted (re-read next time), like git's "racily clean" entries
_RACY_NS = 2_000_000_000

# a first read slower than this per run means a network file system: read the rest with threads
_SLOW_READ_S = 300e-6
# columns whose missing or empty values are ``{}``
_DICT_COLS = frozenset({"params", "metrics", "metrics_last", "git", "progress", "execute", "lock", "hooks"})

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
        size = st.st_size
        data = os.read(fd, max(size + 1, 65536))
        if len(data) != size:  # the file changed size since fstat (an in-place writer): read to the end
            chunks = [data]
            while True:
                b = os.read(fd, 65536)
                if not b:
                    break
                chunks.append(b)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return (st.st_ino, st.st_mtime_ns, st.st_size), data


def _time_of(value: Any) -> float | None:
    if type(value) is str:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    return _status.parse_time(value)


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
    msig: Any
    mdata: Any
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
    rec["host"] = pinfo.get("host") if type(pinfo) is dict else None
    best: dict[str, Any] = {}
    last: dict[str, Any] = {}
    if type(summary) is dict:
        for k, v in summary.items():
            if type(v) is dict:
                lv = v.get("last")
                best[k] = v["best"] if "best" in v else lv
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


def _read_heartbeat(info_dir: str) -> float | None:
    try:
        with open(os.path.join(info_dir, "heartbeat"), "rb") as f:
            return _status.parse_heartbeat(f.read())
    except OSError:
        return None


def _judge(rec: Mapping[str, Any], info_dir: str, now: float, stale_after: float, host: str) -> tuple[str, float]:
    """Status and duration (NaN if unknown) of a run whose record has no end status, judged at ``now``."""
    hb = _read_heartbeat(info_dir)
    st = _status.judge_status(rec, hb, now=now, stale_after=stale_after, host=host)
    start, end = rec.get("_start"), rec.get("_end")
    if start is None:
        return st, float("nan")
    if end is not None:
        return st, end - start
    if st == _status.RUNNING:
        return st, now - start
    seen = _status.last_sign_of_life(rec, hb)
    return st, (seen - start) if seen is not None else float("nan")


def _frame_from_bytes(header: dict[str, Any], data: memoryview) -> "pd.DataFrame":
    """The DataFrame of a frame cache file's payload (see ``Watcher._save_frame``)."""
    import pickle

    import pandas as pd

    n = int.from_bytes(data[:8], "little")
    lists = marshal.loads(data[8:8 + n])
    typed = pickle.loads(data[8 + n:])
    obj = header["obj"]
    if not (isinstance(lists, list) and len(lists) == len(obj) and isinstance(typed, pd.DataFrame)
            and all(type(x) is list and len(x) == len(typed) for x in lists)):
        raise ValueError("damaged frame cache")
    by_name = dict(zip(obj, lists))
    df = pd.DataFrame({k: by_name[k] if k in by_name else typed[k] for k in header["columns"]})
    if [str(k) for k in df.columns if df[k].dtype == object] != obj:
        raise ValueError("frame cache columns changed type")
    return df


def _patch_table(old: dict[str, Any], keep: set[str], new: list[tuple[RunRef, dict, Any]]) -> dict[str, Any]:
    """The rows of ``old`` whose key is in ``keep``, plus the ``new`` rows, sorted as ``load()`` returns them."""
    keys, dirs, rkeys, cols, sigs = old["keys"], old["dirs"], old["rkeys"], old["cols"], old["sigs"]
    idx: list[int] | None = [i for i, k in enumerate(keys) if k in keep]
    if idx is not None and len(idx) == len(keys):
        idx = None

    def kept(lst: list) -> list:
        return list(lst) if idx is None else [lst[i] for i in idx]

    nkeys, ndirs, nrkeys = kept(keys), kept(dirs), kept(rkeys)
    n_kept = len(nkeys)
    memo = {t: t for t in {id(t): t for t in nrkeys}.values()}  # one tuple object per distinct key list
    names: dict[str, None] = {}
    for t in memo:
        names.update(dict.fromkeys(t))
    nsigs = {k: sigs[k] for k in nkeys}
    inf = float("inf")
    # new rows in order first: a first load then needs no reordering of the columns
    new = sorted(new, key=lambda x: (x[1]["_start"] if x[1]["_start"] is not None else inf,
                                     str(x[1]["test_name"]), x[0][0] + "/" + x[0][1]))
    for ref, row, sig in new:
        key = ref[0] + "/" + ref[1]
        nkeys.append(key)
        ndirs.append(ref[2])
        t = tuple(row)
        nrkeys.append(memo.setdefault(t, t))
        names.update(dict.fromkeys(t))
        nsigs[key] = sig
    ncols: dict[str, list] = {}
    new_rows = [x[1] for x in new]
    for name in names:
        col = cols.get(name)
        vals = kept(col) if col is not None else [None] * n_kept
        vals.extend([row.get(name) for row in new_rows])
        ncols[name] = vals
    n = len(nkeys)
    starts = ncols.get("_start") or [None] * n
    tns = ncols.get("test_name") or [None] * n
    order = sorted(range(n), key=lambda i: (starts[i] if starts[i] is not None else inf, str(tns[i]), nkeys[i]))
    if order != list(range(n)):
        nkeys, ndirs, nrkeys = [nkeys[i] for i in order], [ndirs[i] for i in order], [nrkeys[i] for i in order]
        ncols = {name: [c[i] for i in order] for name, c in ncols.items()}
    return {"keys": nkeys, "dirs": ndirs, "rkeys": nrkeys, "cols": ncols, "sigs": nsigs}


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
    ``cache=False`` disables the on-disk index and frame cache (the object still keeps them in memory);
    ``workers`` the threads that read changed runs (``None``: serially, switching to 8 threads when
    the first reads are slow, as on NFS; ``1`` always reads in the calling thread).

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
        self._mem: dict[str, Any] | None = None  # the index, kept between loads of this object
        self._frame: tuple[dict[str, Any], Any] | None = None  # the frame cache, kept likewise

    def __repr__(self) -> str:
        return f"Watcher(root={self.root!r}, stale_after={self.stale_after!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_mem"] = None
        state["_frame"] = None
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
        self._frame = None
        for path in (self.index_path, self.frame_path):
            try:
                os.unlink(path)
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
    #
    # The index is a table: one list per record key (the raw values of ``run.json`` plus the reader's
    # derived keys ``host, metrics, metrics_last, _start, _end``), its rows in the order ``load()``
    # returns them, and per run the signature ``(inode, mtime_ns, size)`` of its two files. A load
    # where nothing changed costs one scan, two ``stat`` calls per run and building the DataFrame from
    # those lists: no per-run Python work. Changed, new and deleted runs patch the lists.

    def _load_table(self) -> dict[str, Any] | None:
        if self._mem is not None:
            return self._mem
        if not self.cache:
            return None
        try:
            with open(self.index_path, "rb") as f:
                blob = marshal.loads(f.read())
            if isinstance(blob, dict) and blob.get("version") == INDEX_VERSION and blob.get("root") == self.root:
                t = blob["table"]
                n = len(t["keys"])
                if (len(t["dirs"]) == n and len(t["rkeys"]) == n and isinstance(t["sigs"], dict)
                        and all(type(c) is list and len(c) == n for c in t["cols"].values())):
                    return t
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
            pass
        return None

    def _save_table(self, table: dict[str, Any]) -> None:
        self._mem = table
        if not self.cache:
            return
        from lumo_hydra.store.files import atomic_write_bytes

        path = self.index_path
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write_bytes(path, marshal.dumps({"version": INDEX_VERSION, "root": self.root, "table": table}))
        except (OSError, ValueError) as e:  # a read-only cache must not break loading
            warnings.warn(f"lumo-hydra: could not write the watcher index {path}: {e}", stacklevel=4)

    def _scan(
        self, known: dict[str, dict[str, Any]] | None = None, pats: list[str] | None = None
    ) -> tuple[list[tuple[RunRef, Any]], int]:
        """Every run folder with the signature ``(run.json sig, metrics.json sig)`` of its files (``None``
        when ``run.json`` cannot be stat'ed: just claimed, or unreadable: the reader decides), and how
        many of them have the signature ``known[exp_name][test_name]``."""
        stat = os.stat
        out: list[tuple[RunRef, Any]] = []
        same = 0
        empty: dict[str, Any] = {}
        base = self.experiments_dir
        try:
            exps = [e for e in os.scandir(base) if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
        except FileNotFoundError:
            return out, 0
        for e in exps:
            ename = e.name
            if pats is not None and not _name_matches(ename, pats):
                continue
            get = (known.get(ename) or empty).get if known is not None else empty.get
            try:
                it = os.scandir(e.path)
            except OSError:
                continue
            with it:
                for r in it:
                    name = r.name
                    if name[0] == "." or not r.is_dir(follow_symlinks=False):
                        continue
                    d = r.path
                    try:
                        st = stat(d + "/run.json")
                    except OSError:
                        out.append(((ename, name, d), None))  # type: ignore[arg-type]
                        continue
                    try:
                        mt = stat(d + "/metrics.json")
                        sig: Any = ((st.st_ino, st.st_mtime_ns, st.st_size), (mt.st_ino, mt.st_mtime_ns, mt.st_size))
                    except OSError:
                        sig = ((st.st_ino, st.st_mtime_ns, st.st_size), None)
                    out.append(((ename, name, d), sig))  # type: ignore[arg-type]
                    if get(name) == sig:
                        same += 1
        return out, same

    def _refresh(
        self, progress: Callable[[int, int], None] | None = None, scanned: list[tuple[RunRef, Any]] | None = None,
        exp: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Bring the index table up to date with the store (only the experiments matching ``exp``, if
        given; the others' rows are kept as they are) and return it (shared: do not modify)."""
        old = self._load_table() or {"keys": [], "dirs": [], "rkeys": [], "cols": {}, "sigs": {}}
        sigs = old["sigs"]
        pats = _as_list(exp) if scanned is None else None
        todo: list[RunRef] = []
        hits: list[str] = []
        if not sigs and scanned is None:  # nothing indexed: no need to stat what will be read anyway
            todo = list(self.iter_runs(pats))
        else:
            get = sigs.get
            for ref, sig in self._scan(None, pats)[0] if scanned is None else scanned:
                key = ref[0] + "/" + ref[1]
                if sig is not None and get(key) == sig:
                    hits.append(key)
                else:
                    todo.append(ref)
        cached = len(hits)
        others = [] if pats is None else [k for k in sigs if not _name_matches(k.split("/", 1)[0], pats)]
        if not todo and cached + len(others) == len(sigs):  # every indexed run is still there, unchanged
            self._mem = old
            self.stats = {"scanned": cached, "read": 0, "cached": cached, "skipped": 0, "removed": 0}
            return old
        new, skipped = self._read_rows(todo, progress)
        gone = len(sigs) - cached - len(others) - sum(1 for r in todo if r[0] + "/" + r[1] in sigs)
        table = _patch_table(old, set(hits).union(others), new)
        self.stats = {"scanned": cached + len(todo), "read": len(todo), "cached": cached, "skipped": skipped,
                      "removed": gone}
        self._save_table(table)
        return table

    # ---- the frame cache -------------------------------------------------------------------------
    #
    # The DataFrame of the last unfiltered ``load()`` (pickled, beside the index) with the signatures
    # it was built from. When a scan finds exactly those signatures, it is returned as is, after
    # judging the status of its runs without an end record again (a running run can crash without any
    # file changing). Otherwise the index is brought up to date and the frame is rebuilt.

    @property
    def frame_path(self) -> str:
        """The frame cache file of this root (local to the reader, safe to delete)."""
        return self.index_path[: -len(".index")] + ".frame"

    def _frame_key(self) -> list[str]:
        import pandas as pd

        return [str(FRAME_VERSION), self.root, pd.__version__, repr(_local_tz())]

    def _load_frame(self) -> tuple[dict[str, Any], Any] | None:
        """``(header, pickled frame bytes or DataFrame)`` of the frame cache, if it is usable."""
        if self._frame is not None:
            return self._frame
        if not self.cache:
            return None
        try:
            with open(self.frame_path, "rb") as f:
                data = f.read()
            if data[:8] != _FRAME_MAGIC:
                return None
            n = int.from_bytes(data[8:16], "little")
            header = marshal.loads(data[16:16 + n])
            if not (isinstance(header, dict) and header.get("key") == self._frame_key()
                    and isinstance(header.get("sigs"), dict) and isinstance(header.get("live"), list)
                    and isinstance(header.get("n"), int)):
                return None
            st = os.stat(self.index_path)  # derived from exactly this index file (deleted: both rebuilt)
            if header.get("index") != [st.st_ino, st.st_mtime_ns, st.st_size]:
                return None
            return header, memoryview(data)[16 + n:]
        except (OSError, EOFError, ValueError, TypeError):
            return None

    def _save_frame(self, table: dict[str, Any], status: list[Any], df: "pd.DataFrame") -> None:
        sigs = table["sigs"]
        if any(v is None for v in sigs.values()):
            self._frame = None  # some runs were written too recently to be trusted: no frame cache yet
            return
        ends = _status.END_STATUSES
        cols, rkeys, dirs = table["cols"], table["rkeys"], table["dirs"]
        rec_status = cols.get("status") or [None] * len(dirs)
        live = [(i, {k: cols[k][i] for k in _JUDGE_KEYS if k in rkeys[i]}, dirs[i])
                for i, st in enumerate(rec_status) if st not in ends]
        nested: dict[str, dict[str, Any]] = {}
        for key, sig in sigs.items():
            e, _, t = key.partition("/")
            nested.setdefault(e, {})[t] = sig
        header: dict[str, Any] = {"key": self._frame_key(), "sigs": nested, "n": len(sigs), "live": live}
        self._frame = (header, df)
        if not self.cache:
            return
        try:
            st = os.stat(self.index_path)
        except OSError:
            return
        header["index"] = [st.st_ino, st.st_mtime_ns, st.st_size]
        import pickle

        from lumo_hydra.store.files import atomic_write_bytes

        path = self.frame_path
        try:
            # object columns (the records' nested values) as lists with marshal, several times faster
            # than pickling them; the typed columns (strings, times, numbers) with pickle
            obj = [str(k) for k in df.columns if df[k].dtype == object]
            header["columns"] = [str(k) for k in df.columns]
            header["obj"] = obj
            hb = marshal.dumps(header)
            lists = marshal.dumps([df[k].tolist() for k in obj])
            typed = pickle.dumps(df.drop(columns=obj), protocol=pickle.HIGHEST_PROTOCOL)
            atomic_write_bytes(path, _FRAME_MAGIC + len(hb).to_bytes(8, "little") + hb
                               + len(lists).to_bytes(8, "little") + lists + typed)
        except (OSError, ValueError, pickle.PicklingError) as e:
            warnings.warn(f"lumo-hydra: could not write the watcher frame cache {path}: {e}", stacklevel=4)

    def _cached_frame(self, progress: Callable[[int, int], None] | None) -> "pd.DataFrame | dict[str, Any] | None":
        """The frame cache's DataFrame with fresh statuses when no run changed; else the index table,
        brought up to date with the same scan (``None`` without a frame cache)."""
        import numpy as np

        fr = self._load_frame()
        if fr is None:
            return None
        header, df = fr
        scanned, same = self._scan(header["sigs"])
        n = header["n"]
        if not (same == n == len(scanned)):
            self._frame = None
            return self._refresh(progress, scanned)
        if isinstance(df, memoryview):  # not unpickled yet
            try:
                df = _frame_from_bytes(header, df)
            except Exception:  # a damaged cache file: rebuild it
                self._frame = None
                return self._refresh(progress, scanned)
            self._frame = (header, df)
        self.stats = {"scanned": n, "read": 0, "cached": n, "skipped": 0, "removed": 0}
        df = df.copy()  # the cached frame stays as it is
        live = header["live"]
        if live:
            now = time.time()
            host = _status.this_host()
            status = df["status"].tolist()
            dur = df["duration"].to_numpy(dtype=float, copy=True)
            for i, rec, info_dir in live:
                status[i], dur[i] = _judge(rec, info_dir, now, self.stale_after, host)
            df["status"] = status
            df["duration"] = np.asarray(dur, dtype=float)
        return df

    def _read_rows(
        self, todo: list[RunRef], progress: Callable[[int, int], None] | None
    ) -> tuple[list[tuple[RunRef, dict, Any]], int]:
        """Read the runs ``todo``: ``(ref, row, (run.json sig, metrics.json sig) or None if racy)``."""
        out: list[tuple[RunRef, dict, Any]] = []
        skipped = 0
        if not todo:
            return out, skipped
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
                warnings.warn(f"lumo-hydra: skipped corrupt or truncated record {ref[2]}/run.json: {rec}", stacklevel=5)
                skipped += 1
                continue
            summary = mets.get(i)
            if isinstance(mdata, Exception) or isinstance(summary, Exception):
                err = mdata if isinstance(mdata, Exception) else summary
                warnings.warn(f"lumo-hydra: ignored corrupt or truncated metrics {ref[2]}/metrics.json "
                              f"of run {ref[1]}: {err}", stacklevel=5)
                summary, msig = None, (-1, -1, -1)  # never matches: read again next time
            row = _make_row(rec, summary, ref[0], ref[1])
            racy = max(rsig[1], msig[1] if msig else 0) > racy_after
            out.append((ref, row, None if racy else (rsig, msig)))
        for f, ref in zip(files, todo):
            if f[4] is not None:
                warnings.warn(f"lumo-hydra: skipped run {ref[2]}: cannot read run.json ({f[4]})", stacklevel=5)
                skipped += 1
        _share_equal_values([r[1] for r in out])
        return out, skipped

    def _read_all(self, todo: list[RunRef], progress: Callable[[int, int], None] | None) -> list[_Files]:
        n = len(todo)
        out: list[_Files] = []
        i = 0
        workers = self.workers
        if workers is None:
            # read serially while reads are fast (local disk, page cache: threads only add overhead);
            # switch to threads when the first reads show network latency (NFS, Lustre)
            t0 = time.perf_counter()
            while i < n and i < 64:
                out.append(_read_files(todo[i][2]))
                i += 1
            slow = i and (time.perf_counter() - t0) / i > _SLOW_READ_S
            workers = 8 if slow and n - i >= 64 else 1
            if progress is not None and i:
                progress(i, n)
        if workers == 1 or n - i < 2:
            for j in range(i, n):
                out.append(_read_files(todo[j][2]))
                if progress is not None and (j % 500 == 0 or j == n - 1):
                    progress(j + 1, n)
            return out
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for j, f in enumerate(pool.map(_read_files, [r[2] for r in todo[i:]], chunksize=32), start=i):
                out.append(f)
                if progress is not None and (j % 500 == 0 or j == n - 1):
                    progress(j + 1, n)
        return out

    def _judge_all(self, table: dict[str, Any]) -> tuple[list[Any], Any]:
        """The status (judged now) and duration of every row of ``table``."""
        import numpy as np

        cols = table["cols"]
        n = len(table["keys"])
        rec_status = cols.get("status") or [None] * n
        starts = np.array(cols["_start"], dtype=float) if n else np.zeros(0)
        dur = (np.array(cols["_end"], dtype=float) - starts) if n else np.zeros(0)
        status = list(rec_status)
        ends = _status.END_STATUSES
        now = time.time()
        host = _status.this_host()
        rkeys = table["rkeys"]
        for i, st in enumerate(rec_status):
            if st not in ends:
                rec = {k: cols[k][i] for k in rkeys[i]}
                status[i], dur[i] = _judge(rec, table["dirs"][i], now, self.stale_after, host)
        return status, dur

    def _select(
        self, table: dict[str, Any], status: list[Any], *, exp: Any, statuses: Any, since: Any, until: Any,
        sweep: Any, tag: Any,
    ) -> list[int] | None:
        """The rows that pass the filters (``None``: all rows)."""
        if exp is None and statuses is None and since is None and until is None and sweep is None and tag is None:
            return None
        t0 = parse_when(since, key="since") if since is not None else None
        t1 = parse_when(until, key="until") if until is not None else None
        pats, sweeps, tags = _as_list(exp), _as_list(sweep), _as_list(tag)
        keys, cols = table["keys"], table["cols"]
        n = len(keys)
        starts = cols.get("_start") or [None] * n
        sws = cols.get("sweep") or [None] * n
        tgs = cols.get("tags") or [None] * n
        sel = []
        for i in range(n):
            if statuses is not None and status[i] not in statuses:
                continue
            start = starts[i]
            if t0 is not None and (start is None or start < t0):
                continue
            if t1 is not None and (start is None or start > t1):
                continue
            if sweeps is not None:
                sw = sws[i]
                if not (isinstance(sw, str) and any(sw.startswith(x) for x in sweeps)):
                    continue
            if tags is not None:
                rtags = tgs[i] or ()
                if not all(t in rtags for t in tags):
                    continue
            if pats is not None and not _name_matches(keys[i].split("/", 1)[0], pats):
                continue
            sel.append(i)
        return sel

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

        ``row`` is the run's record with the reader's keys (its values are shared with the index: do
        not modify them)."""
        table, sel, status_, dur = self._rows_of(exp, status, since, until, sweep, tag, progress)
        cols, rkeys, dirs = table["cols"], table["rkeys"], table["dirs"]
        idx = range(len(dirs)) if sel is None else sel
        return [({k: cols[k][i] for k in rkeys[i]}, dirs[i], status_[i],
                 None if dur[i] != dur[i] else float(dur[i])) for i in idx]

    def _rows_of(
        self, exp: Any, status: Any, since: Any, until: Any, sweep: Any, tag: Any,
        progress: Callable[[int, int], None] | None, table: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], list[int] | None, list[Any], Any]:
        statuses = _as_list(status)
        if statuses is not None:
            bad = [s for s in statuses if s not in _status.STATUSES]
            if bad:
                raise LumoValueError(
                    f"invalid value for 'status': {bad[0]!r}; allowed: one of {list(_status.STATUSES)}"
                )
        if since is not None:
            parse_when(since, key="since")  # a bad value fails before any reading
        if until is not None:
            parse_when(until, key="until")
        gc_was = gc.isenabled()
        gc.disable()  # hundreds of thousands of small containers: the cyclic collector would triple the time
        try:
            if table is None:
                table = self._refresh(progress, exp=exp)
            status_, dur = self._judge_all(table)
            sel = self._select(table, status_, exp=exp, statuses=statuses, since=since, until=until,
                               sweep=sweep, tag=tag)
        finally:
            if gc_was:
                gc.enable()
        return table, sel, status_, dur

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

        whole = not flatten and exp is None and status is None and since is None and until is None \
            and sweep is None and tag is None
        if whole:
            gc_was = gc.isenabled()
            gc.disable()
            try:
                cached = self._cached_frame(progress)
            finally:
                if gc_was:
                    gc.enable()
            if cached is not None and not isinstance(cached, dict):  # the frame cache's DataFrame
                return cached if where is None else cached[where(cached)].reset_index(drop=True)
        else:
            cached = None
        table, sel, status_, dur = self._rows_of(exp, status, since, until, sweep, tag, progress, cached)
        gc_was = gc.isenabled()
        gc.disable()
        try:
            cols, rkeys = table["cols"], table["rkeys"]
            n = len(table["keys"]) if sel is None else len(sel)

            def take(lst: list) -> list:
                return lst if sel is None else [lst[i] for i in sel]

            out: dict[str, Any] = {}
            if flatten:
                idx = range(len(rkeys)) if sel is None else sel
                flat = [_flat_row({k: cols[k][i] for k in rkeys[i]}) for i in idx]
                seen: dict[str, None] = {}
                for f in flat:
                    seen.update(dict.fromkeys(f))
                rank = {p: i for i, p in enumerate(_FLAT_ORDER)}
                rest = sorted((k for k in seen if k not in _FRONT_SET),
                              key=lambda k: rank.get(k.split(".", 1)[0], len(rank)))  # stable: first-seen order
                data_keys = [k for k in _FRONT if k not in _NESTED_FRONT] + rest
            else:
                seen = dict.fromkeys(_FRONT + _RECORD_KEYS_LATER)
                distinct = {id(t): t for t in take(rkeys)}  # rows share their key tuples
                for t in distinct.values():
                    seen.update(dict.fromkeys(t))
                data_keys = [k for k in seen if k[:1] != "_"]
            for k in data_keys:
                if k == "status":
                    out[k] = take(status_)
                elif k == "info_dir":
                    out[k] = take(table["dirs"])
                elif k == "duration":
                    out[k] = dur if sel is None else dur[np.asarray(sel, dtype=np.intp)]
                elif k in ("start", "end"):
                    out[k] = _to_local_time(np.array(take(cols.get("_" + k) or [None] * len(rkeys)), dtype=float))
                else:
                    if flatten:
                        vals = [f.get(k) for f in flat]
                    elif k in cols:
                        vals = take(cols[k])
                    else:
                        vals = [None] * n
                    if k in _DICT_COLS:
                        vals = [v or {} for v in vals]
                    elif k == "tags":
                        vals = [v or [] for v in vals]
                    elif k == "note":
                        vals = [v or "" for v in vals]
                    out[k] = vals
            df = pd.DataFrame(out)
            if whole:
                self._save_frame(table, status_, df)
                df = df.copy()
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
        from lumo_hydra.record.experiment import Experiment

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
        gc_was = gc.isenabled()
        gc.disable()
        try:
            sws = self._refresh().get("cols", {}).get("sweep") or ()
        finally:
            if gc_was:
                gc.enable()
        ids.update(str(x) for x in sws if x)
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


_SHARED_KEYS = ("lock", "hooks", "execute", "git", "pinfo")  # usually equal for the runs of a sweep


def _share_equal_values(rows: list[dict]) -> None:
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


def _local_tz() -> Any:
    global _LOCAL_TZ
    if _LOCAL_TZ is None:
        _LOCAL_TZ = datetime.now().astimezone().tzinfo
    return _LOCAL_TZ


def _to_local_time(values: Any) -> "pd.Series":
    """Unix times (NaN for missing) as timezone-aware timestamps in the machine's current local offset."""
    import pandas as pd

    return pd.Series(pd.to_datetime(values, unit="s", utc=True)).dt.tz_convert(_local_tz())


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
