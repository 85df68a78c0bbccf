"""The Watcher's caches of one store root, local to the reader (``cache_dir(WATCHER_CACHE)``), both
safe to delete at any time (see ``docs/watcher.md``):

- the **index**: a table, one list per record key (the raw values of ``run.json`` plus the reader's
  derived keys ``host, metrics, metrics_last, _start, _end``), its rows in the order ``load()`` returns
  them, and per run the signature ``(inode, mtime_ns, size)`` of its two files. A load where nothing
  changed costs one scan, two ``stat`` calls per run and building the DataFrame from those lists: no
  per-run Python work. Changed, new and deleted runs patch the lists.
- the **frame cache**: the DataFrame of the last unfiltered ``load()`` with the signatures it was built
  from. When a scan finds exactly those signatures, it is returned as is, after judging the status of
  its runs without an end record again (a running run can crash without any file changing).
  Otherwise the index is brought up to date and the frame is rebuilt.
"""
from __future__ import annotations

import hashlib
import marshal
import os
import sys
import time
import warnings
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lumo_hydra.store import status as _status
from lumo_hydra.store.files import atomic_open
from lumo_hydra.store.layout import METRICS_JSON, RUN_JSON, WATCHER_CACHE, StoreLayout, cache_dir
from lumo_hydra.watcher import behind as _behind
from lumo_hydra.watcher import frame as _frame
from lumo_hydra.watcher import nested
from lumo_hydra.watcher import parallel as _parallel
from lumo_hydra.watcher.behind import Behind
from lumo_hydra.watcher.columns import plain_table
from lumo_hydra.watcher.frame import frame_from_bytes, local_tz, sealed, split_frame_file, unsealed, write_frame, write_sealed
from lumo_hydra.watcher.query import key_matcher, name_matches
from lumo_hydra.watcher.rows import _RACY_NS as RACY_NS
from lumo_hydra.watcher.rows import JUDGE_KEYS, RunRef, experiment_folders, judged_again, live_rows, read_rows
from lumo_hydra.watcher.sigs import SigMap, pack, packed_sigs

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["RunIndex", "INDEX_VERSION", "FRAME_VERSION"]

INDEX_VERSION = 7
FRAME_VERSION = 6
_INDEX_MAGIC = b"LUMOIDX9"
_META_MAGIC = b"LUMOMET8"
#: the record columns kept in the index's meta part: what filters, sorts by time or status and judging need
HEAD = ("status", "_start", "_end", "sweep", "tags")
_ESIGS_MAGIC = b"LUMOESG1"
#: runs whose two files are stat'ed at every load (a rolling slice; every run in smaller stores)
VERIFY = 1000
_RUN = "/" + RUN_JSON
_METRICS = "/" + METRICS_JSON
# a cache that cannot be written warns at the caller of ``Watcher.load`` (save_frame <- Watcher.load;
# _save_table <- refresh <- Watcher._rows_of <- Watcher.load)
_WARN_FRAME = 3
_WARN_TABLE = 5

Table = dict[str, Any]


def _empty_table() -> Table:
    return {"keys": [], "dirs": [], "rkeys": [], "cols": {}, "sigs": {}}


def _write_frame_file(path: str, header: dict[str, Any], df: pd.DataFrame, refs: dict[str, Any]) -> None:
    """Write the frame cache file ``path`` atomically; a failure warns (at the caller of ``Watcher.load``)."""
    import pickle
    try:
        with atomic_open(path) as f:
            write_frame(f, header, df, refs)
    except (OSError, ValueError, pickle.PicklingError) as e:
        warnings.warn(f"lumo-hydra: could not write the watcher frame cache {path}: {e}", stacklevel=_WARN_FRAME + 1)


class RunIndex:
    """The index table and the frame cache of one store root, on disk and in memory.

    ``cache=False`` keeps both in memory only; ``workers`` as for the Watcher. After each refresh,
    ``stats`` says how many runs were scanned, read, taken from the index, skipped and removed.
    """

    def __init__(self, layout: StoreLayout, cache: bool = True, workers: int | None = None) -> None:
        self.layout = layout
        self.root = str(layout.root)
        self.experiments_dir = str(layout.experiments_dir)
        self.cache = cache
        self.workers = workers
        self.stats: dict[str, int] = {}
        self.mem: Table | None = None  # the index, kept between loads of this object
        self._live: tuple[Table, list[str]] | None = None  # live_dirs() of self.mem
        self._esigs: dict[str, Any] | None = None  # the experiment folder signatures of the index
        self.changed = False  # whether the last refresh changed the index
        self.patched: tuple[Table, Table, list[str]] | None = None  # (old, new, the runs read again): see refresh
        self.flat_of: tuple[Any, Any] | None = None  # (a table or index file signature, its whole flat frame): a patch's base
        self.frames: dict[bool, tuple[dict[str, Any], Any] | None] = {False: None, True: None}  # frame caches
        self.behind: Behind | None = None  # during a load: the cache writes a detached process may do
        self._writer = Behind()  # the last detached writer of this object

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(mem=None, _live=None, _esigs=None, patched=None, flat_of=None, behind=None, _writer=Behind())
        state["frames"] = {False: None, True: None}
        return state

    # ---- paths -----------------------------------------------------------------------------------

    @property
    def index_path(self) -> str:
        """The index file of this root (local to the reader, safe to delete)."""
        digest = hashlib.sha256(self.root.encode("utf-8")).hexdigest()[:16]
        tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
        return os.path.join(str(cache_dir(WATCHER_CACHE)), f"{digest}-{tag}.index")

    @property
    def frame_path(self) -> str:
        """The frame cache file of this root (local to the reader, safe to delete)."""
        return self.index_path[: -len(".index")] + ".frame"

    @property
    def flat_frame_path(self) -> str:
        """The frame cache file of ``load(flatten=True)`` (local to the reader, safe to delete)."""
        return self.index_path[: -len(".index")] + ".flatframe"

    def clear(self) -> None:
        """Forget the index and the frame cache, in memory and on disk (after the last detached writer)."""
        self._writer.forget(_behind.WAIT_S)
        self.mem = None
        self._esigs = None
        self.frames = {False: None, True: None}
        for path in (self.index_path, self.frame_path, self.flat_frame_path, self.esigs_path):
            try:
                os.unlink(path)
            except OSError:
                pass
        self._drop_bodies(set(), grace=-1.0)

    def live_dirs(self) -> list[str]:
        """The run folders of the runs without an end record in the index last loaded by this object
        (none before a load)."""
        t = self.mem
        if t is None:
            fr = self.frames[False] or self.frames[True]  # a load answered by the frame cache
            return [d for _, _, d in fr[0]["live"]] if fr is not None else []
        if self._live is None or self._live[0] is not t:
            ends = _status.END_STATUSES
            st = t["cols"].get("status") or [None] * len(t["dirs"])
            self._live = (t, [d for d, s in zip(t["dirs"], st) if s not in ends])
        return self._live[1]

    # ---- the index -------------------------------------------------------------------------------

    def _load_table(self, partial: bool = False, again: bool = True) -> Table | None:
        """The index table (memory, else disk); with ``partial``, maybe only its meta part (keys,
        signatures, the ``HEAD`` columns; ``rkeys`` ``None``), read without the records' other columns."""
        if self.mem is not None and (partial or not self.mem.get("partial")):
            return self.mem
        if not self.cache:
            return None
        try:
            with open(self.index_path, "rb") as f:
                if f.read(len(_INDEX_MAGIC)) != _INDEX_MAGIC:
                    return None
                m = int.from_bytes(f.read(8), "little")
                if m > os.fstat(f.fileno()).st_size:
                    return None
                meta, blobs = _frame.read_meta(unsealed(f.read(m), _META_MAGIC))
                if not (isinstance(meta, dict) and meta.get("version") == INDEX_VERSION and meta.get("root") == self.root):
                    return None
                t = meta["table"]
                t["keys"] = keys = blobs["keys"][0]
                t["head"] = {name[2:]: v for name, (v, _) in blobs.items() if name[:2] == "h:"}
                t["blobs"] = blobs
                n = len(keys)
                if not (type(keys) is list and type(t["head"]) is dict
                        and all(type(c) is list and len(c) == n for c in t["head"].values())):
                    return None
                base = self.experiments_dir + "/"
                t["dirs"] = [base + k for k in keys]
                t["sigs"] = SigMap(keys, t.pop("sigs_p"), 6)
                t["dsigs"] = SigMap(keys, t.pop("dsigs_p"), 2)
                st = os.fstat(f.fileno())
                t["file"] = [st.st_ino, st.st_mtime_ns, st.st_size]
                if partial:
                    return {**t, "cols": t["head"], "rkeys": None, "partial": True}
            return nested.with_body(t, self._bodies(t["files"]), n)
        except FileNotFoundError:  # a body file deleted by a writer that replaced the index meanwhile
            if again:
                return self._load_table(partial, again=False)
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
            pass
        return None

    def _save_table(self, table: Table) -> None:
        self.mem = table
        self.changed = True
        self.frames = {False: None, True: None}  # built from the table before
        if not self.cache:
            return

        path = self.index_path
        cols, rkeys = table["cols"], table["rkeys"]
        if not isinstance(cols, nested.Cols):
            cols = table["cols"] = nested._as_cols(cols, len(rkeys), HEAD) or nested.Cols([], {}, {}, {})
        live_recs = {table["keys"][i]: {k: cols[k][i] for k in JUDGE_KEYS if k in rkeys[i]} for i in live_rows(table)}
        gen = os.urandom(8)
        distinct = list({id(t): t for t in rkeys}.values())
        code = {id(t): c for c, t in enumerate(distinct)}
        meta = {k: v for k, v in table.items()
                if k not in ("cols", "rkeys", "dirs", "sigs", "dsigs", "file", "live_at", "blobs", "keys")}
        table.pop("file", None)
        meta.update(gen=gen, live_recs=live_recs, sizes=cols.sizes,
                    rk=[distinct, array("i", [code[id(t)] for t in rkeys]).tobytes()],
                    sigs_p=pack(table["keys"], table["sigs"], 6), dsigs_p=pack(table["keys"], table["dsigs"], 2))
        table["gen"] = gen
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._save_body(cols, gen)
            meta.update(files=cols.files, layout=[[k, [len(p) for p in cols.payloads[k]], cols.nested[k],
                                                   cols.locs[k]] for k in cols.payloads])
            parts = _frame.meta_parts({"version": INDEX_VERSION, "root": self.root, "table": meta}, table, cols.head)
            with atomic_open(path) as f:
                f.write(_INDEX_MAGIC + (len(_META_MAGIC) + 12 + sum(map(len, parts))).to_bytes(8, "little"))
                write_sealed(f, parts, _META_MAGIC)
                f.flush()
                st = os.fstat(f.fileno())  # the file renamed into place keeps its inode and times
            table["file"] = [st.st_ino, st.st_mtime_ns, st.st_size]
            self._drop_bodies({f[0] for f in cols.files})
        except (OSError, ValueError) as e:  # a read-only cache must not break loading
            warnings.warn(f"lumo-hydra: could not write the watcher index {path}: {e}", stacklevel=_WARN_TABLE)

    def _save_body(self, cols: nested.Cols, gen: bytes) -> None:
        nested.save_body(self.index_path[: -len(".index")], cols, gen)

    def _drop_bodies(self, keep: set[str], grace: float | None = None) -> None:
        nested.drop_bodies(self.index_path[: -len(".index")], keep, grace)

    def _bodies(self, files: list[list[Any]]) -> list[memoryview]:
        return nested.read_bodies(os.path.dirname(self.index_path), files)

    @property
    def esigs_path(self) -> str:
        """The experiment folder signatures of the index (a small file beside it)."""
        return self.index_path[: -len(".index")] + ".esigs"

    def _index_sig(self) -> list[int] | None:
        try:
            st = os.stat(self.index_path)
        except OSError:
            return None
        return [st.st_ino, st.st_mtime_ns, st.st_size]

    def _load_esigs(self) -> dict[str, Any]:
        """``{experiment: (inode, mtime_ns) or None}`` as seen by the refresh the index is the result of
        (a separate file: settling signatures does not rewrite the index or invalidate the frame cache)."""
        if self._esigs is not None:
            return self._esigs
        if not self.cache:
            return {}
        try:
            with open(self.esigs_path, "rb") as f:
                blob = marshal.loads(unsealed(f.read(), _ESIGS_MAGIC))
            if blob.get("root") == self.root and blob.get("index") == self._index_sig() and type(blob["esigs"]) is dict:
                self._esigs = blob["esigs"]
                return self._esigs  # type: ignore[no-any-return]
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
            pass
        return {}

    def _save_esigs(self, esigs: dict[str, Any]) -> None:
        self._esigs = esigs
        if not self.cache:
            return
        from lumo_hydra.store.files import atomic_write_bytes

        try:
            atomic_write_bytes(self.esigs_path, sealed(marshal.dumps(
                {"root": self.root, "index": self._index_sig(), "esigs": esigs}), _ESIGS_MAGIC))
        except (OSError, ValueError):
            pass  # the next load lists the experiment folders again

    def experiments(self, pats: list[str] | None = None) -> list[tuple[str, str, Any]]:
        """``(name, path, (inode, mtime_ns) or None)`` of every experiment folder (matching ``pats``)."""
        return experiment_folders(self.experiments_dir, pats)

    def plan(  # long: the three levels of checking, in one pass
        self, old: Table, pats: list[str] | None
    ) -> tuple[list[str], list[RunRef], dict[str, Any], dict[str, Any]]:
        """What changed since ``old``: the keys of its rows still valid, the runs to read, and the new
        experiment and run folder signatures (see the module docstring: experiment folders, then the
        run folders of the changed ones, then the files of some runs)."""
        sigs, dsigs = old["sigs"], old.get("dsigs") or {}
        esigs = self._load_esigs() if sigs else {}
        racy_after = time.time_ns() - RACY_NS
        exps = self.experiments(pats)
        todo: list[RunRef] = []
        new_e: dict[str, Any] = {}
        new_d: dict[str, Any] = {}
        quiet = {e for e, _, s in exps if s is not None and esigs.get(e) == s}
        if len(quiet) == len(exps) and (pats is not None or len(quiet) == len(esigs)):
            kept = list(old["keys"]) if pats is None else [k for k in old["keys"] if k[:k.index("/")] in quiet]
        else:
            busy = tuple(e + "/" for e, _, _ in exps if e not in quiet) + tuple(e + "/" for e in esigs if e not in quiet)
            kept = [k for k in old["keys"] if not k.startswith(busy)] if pats is None else \
                [k for k in old["keys"] if k[:k.index("/")] in quiet]
        stat = os.stat
        recheck: list[str] = []
        same = nested.folder_sig_check(old["keys"], sigs, dsigs)
        cold = not old["keys"]  # no index: the readers take each folder's signature, before its files (read_rows)
        for ename, path, esig in exps:
            if ename in quiet:
                new_e[ename] = esig
                continue
            new_e[ename] = esig if esig is not None and esig[1] <= racy_after else None
            try:
                it = os.scandir(path)
            except OSError:
                continue
            with it:
                for r in it:
                    name = r.name
                    if name[0] == "." or not r.is_dir(follow_symlinks=False):
                        continue
                    if cold:
                        todo.append(RunRef(ename, name, r.path))
                        continue
                    key = ename + "/" + name
                    try:
                        st = stat(r.path)
                        ino, mt = st.st_ino, st.st_mtime_ns
                    except OSError:
                        ino = mt = -1
                    was = same(key, ino, mt)
                    if was is None:  # not in the index: read, with the folder's signature seen now
                        todo.append(RunRef(ename, name, r.path))
                        new_d[key] = (ino, mt) if 0 <= mt <= racy_after else None
                        continue
                    kept.append(key)
                    if not was:  # a rename in it, or a time not to be trusted: its files are checked
                        recheck.append(key)
                        new_d[key] = (ino, mt) if 0 <= mt <= racy_after else None
        kept, more = self.verify(sigs, kept, [*(old.get("unsure") or ()), *(old.get("live") or ()), *recheck])
        todo.extend(more)
        for ref in old.get("pending") or ():  # damaged or just claimed: read again at every load
            if ref[0] in quiet:
                todo.append(RunRef(*ref))
        return kept, todo, new_e, new_d

    def verify(self, sigs: dict[str, Any], kept: list[str], extra: list[str]) -> tuple[list[str], list[RunRef]]:
        """``kept`` without the runs whose two files do not have the signature they were read with, and
        those runs. Checked: ``extra`` (the unfinished runs, the ones not trusted yet), and a rolling
        slice of ``VERIFY`` of ``kept`` (all of them in smaller stores), so an edit in place that no
        folder time shows is still seen, within a few loads of a large store."""
        n = len(kept)
        if n <= VERIFY:
            want = {k: sigs.get(k) for k in {*extra, *kept}}
        else:
            start = int.from_bytes(os.urandom(4), "little") % n
            pos = [*range(start, min(n, start + VERIFY)), *range(max(0, start + VERIFY - n))]
            if isinstance(sigs, SigMap) and len(extra) <= 16 and sigs.aligned(kept):  # no dict of 100k keys
                want = {kept[j]: sigs.at(j) for j in pos}
                for k in extra:
                    want[k] = sigs.at(kept.index(k)) if k in want or k in kept else None
            else:
                want = {k: sigs.get(k) for k in {*extra, *(kept[j] for j in pos)}}
        base = self.experiments_dir + "/"
        stat = os.stat
        bad: set[str] = set()
        for k, expected in want.items():
            d = base + k
            try:
                st = stat(d + _RUN)
            except OSError:
                bad.add(k)
                continue
            try:
                mt = stat(d + _METRICS)
                sig: Any = ((st.st_ino, st.st_mtime_ns, st.st_size), (mt.st_ino, mt.st_mtime_ns, mt.st_size))
            except OSError:
                sig = ((st.st_ino, st.st_mtime_ns, st.st_size), None)
            if expected != sig:
                bad.add(k)
        if not bad:
            return kept, []
        out = [k for k in kept if k not in bad]
        todo = [RunRef(*k.split("/", 1), base + k) for k in bad.intersection(kept)]  # type: ignore[call-arg]
        return out, todo

    # long: the unchanged, the damaged-only, the patched and the cold (written behind) cases
    def refresh(
        self, progress: Callable[[int, int], None] | None = None, pats: list[str] | None = None,
        partial: bool = False,
    ) -> Table:
        """Bring the index table up to date with the store (only the experiments matching ``pats``, if
        given; the others' rows are kept as they are) and return it (shared: do not modify). With
        ``partial``, an unchanged index may come back as its meta part only (see ``_load_table``)."""
        old = self._load_table(partial) or _empty_table()
        packed_sigs(old)  # (built by a cold load of this process: as read back from disk)
        sigs = old["sigs"]
        self.changed, self.patched = False, None
        kept, todo, new_e, new_d = self.plan(old, pats)
        match = key_matcher(pats) if pats is not None else None
        others = [] if match is None else [k for k in sigs if not match(k)]
        cached = len(kept)
        old_e = self._load_esigs() if sigs else {}
        same_exps = all(old_e.get(e) == s for e, s in new_e.items()) and (pats is not None or len(new_e) == len(old_e))
        pending = {tuple(r) for r in old.get("pending") or ()}
        if not todo and cached + len(others) == len(sigs):
            self.mem = old  # every indexed run is still there, unchanged
            self.stats = {"scanned": cached, "read": 0, "cached": cached, "skipped": 0, "removed": 0}
            if not same_exps:
                self._save_esigs({**old_e, **new_e} if pats is not None else new_e)
            return old
        if old.get("partial"):  # a change: the whole table is needed to patch it
            full = self._load_table()
            if full is None or full.get("gen") != old.get("gen"):  # rewritten meanwhile (rare): again
                return self.refresh(progress, pats)
            old = full
        new, skipped = read_rows(todo, progress, self.workers, new_d if not old["keys"] else None)
        gone = len(sigs) - cached - len(others) - (sum(1 for r in todo if r[0] + "/" + r[1] in sigs) if sigs else 0)
        read = {r[0] + "/" + r[1] for r, _, _ in new} if len(new) < len(todo) else None  # None: every one read
        now_pending = [tuple(r) for r in todo if r[0] + "/" + r[1] not in read] if read is not None else []
        stats = {"scanned": cached + len(todo), "read": len(todo), "cached": cached, "skipped": skipped,
                 "removed": max(gone, 0)}
        if not new and not gone and set(now_pending) == pending and cached + len(others) == len(sigs):
            self.mem = old  # only the damaged or unfinished folders were read again, to no change
            self.stats = stats
            if not same_exps:
                self._save_esigs({**old_e, **new_e} if pats is not None else new_e)
            return old
        behind = self.behind if self.cache and not old["keys"] and len(new) >= _parallel.MIN_RUNS and _parallel.can_fork() else None
        table = nested.patch_table(old, set(kept).union(others), new, HEAD) if behind is None else plain_table(new, HEAD)
        old_d = old.get("dsigs") or {}
        if pats is not None:
            new_e = {**{e: s for e, s in old_e.items() if not name_matches(e, pats)}, **new_e}
            now_pending += [r for r in pending if not name_matches(r[0], pats)]
        if table["keys"] is old["keys"]:  # runs rewritten in place (Watcher._patched_flat)
            self.patched = (old, table, [r[0] + "/" + r[1] for r, _, _ in new])
        if table["keys"] is old["keys"] and isinstance(old_d, SigMap) and old_d.aligned(old["keys"]) \
                and isinstance(sigs, SigMap):  # the same runs in the same order: the changed folders' rows
            pos = sigs._index()
            table["dsigs"] = nested.replace_sigs(old_d, table["keys"], [(pos[k], v) for k, v in new_d.items() if k in pos])
        elif not old_d and behind is not None:  # a cold load: every run folder's signature is in new_d
            table["dsigs"] = new_d
        else:
            table["dsigs"] = (old_d.remap(table["keys"], new_d) if isinstance(old_d, SigMap)
                              else {k: new_d[k] if k in new_d else old_d.get(k) for k in table["keys"]})
        other_set = set(others) if old.get("unsure") and others else set()
        table["unsure"] = [r[0] + "/" + r[1] for r, _, sig in new if sig is None or sig[1] == (-1, -1, -1)] + [
            k for k in old.get("unsure") or () if k in other_set]
        table["pending"] = now_pending
        table["live"] = [table["keys"][i] for i in live_rows(table)]
        self.stats = stats
        if behind is None:
            self._save_table(table)
            self._save_esigs(new_e)
            return table
        self.mem, self.changed, self.frames, self._esigs = table, True, {False: None, True: None}, new_e
        behind.add(table.pop, "lean", None)  # the writer encodes the columns of the plain table
        behind.add(self._save_table, table)
        behind.add(self._save_esigs, new_e)
        behind.tables.append(id(table))
        return table

    def table_of(self, keys: list[str]) -> tuple[Table, list[int]]:
        """A table of the runs ``keys`` read from their files now, and the rows of ``keys`` in it, in
        order (a run that vanished or is damaged meanwhile is left out)."""
        base = self.experiments_dir + "/"
        refs = [RunRef(*k.split("/", 1), base + k) for k in keys]  # type: ignore[call-arg]
        new, _ = read_rows(refs, None, self.workers)
        table = nested.patch_table(_empty_table(), set(), new, HEAD)
        pos = {k: i for i, k in enumerate(table["keys"])}
        return table, [pos[k] for k in keys if k in pos]

    # ---- the frame cache -------------------------------------------------------------------------

    def _frame_key(self) -> list[str]:
        import pandas as pd

        return [str(FRAME_VERSION), self.root, pd.__version__, repr(local_tz())]

    def _load_frame(self, flat: bool = False) -> tuple[dict[str, Any], Any] | None:
        """``(header, frame payload bytes or DataFrame)`` of the frame cache, if it is usable."""
        if self.frames[flat] is not None:
            return self.frames[flat]
        if not self.cache:
            return None
        try:
            with open(self.flat_frame_path if flat else self.frame_path, "rb") as f:
                split = split_frame_file(f.read())
            if split is None:
                return None
            header, payload = split
            if not (isinstance(header, dict) and header.get("key") == self._frame_key()
                    and isinstance(header.get("view"), dict) and isinstance(header.get("live"), list)
                    and isinstance(header.get("n"), int) and isinstance(header.get("lazy"), list)):
                return None
            st = os.stat(self.index_path)  # derived from exactly this index file (deleted: both rebuilt)
            if header.get("index") != [st.st_ino, st.st_mtime_ns, st.st_size]:
                return None
            return header, payload
        except (OSError, EOFError, ValueError, TypeError):
            return None

    def save_frame(self, table: Table, df: pd.DataFrame, flat: bool = False) -> None:
        """Keep ``df``, the unfiltered load built from ``table``, as the frame cache (memory and disk)."""
        sigs = table["sigs"]
        if table.get("unsure") or table.get("pending") or "live" not in table:
            self.frames[flat] = None  # runs written too recently to be trusted, or damaged: no frame cache
            return
        cols, rkeys, dirs = table["cols"], table["rkeys"], table["dirs"]
        live = [(i, {k: cols[k][i] for k in JUDGE_KEYS if k in rkeys[i]}, dirs[i]) for i in live_rows(table)]
        if self.behind is not None and id(table) in self.behind.tables:  # written after the index, by its writer
            view_ = {"keys": table["keys"], "sigs": sigs, "live": table["live"]}
            self.frames[flat] = ({"key": self._frame_key(), "view": view_, "n": len(sigs), "live": live}, df)
            self.behind.add(lambda: self.save_frame(table, _frame.rebuilt(table, df, flat), flat))
            return
        view = {"keys": table["keys"], "sigs_p": pack(table["keys"], sigs, 6), "live": table["live"]}
        header: dict[str, Any] = {"key": self._frame_key(), "view": view, "n": len(sigs), "live": live}
        self.frames[flat] = (header, df)
        if not self.cache:
            return
        header["index"] = self._index_sig()
        if header["index"] is None:
            return
        refs: dict[str, tuple[list[Any], list[Any]]] = {}
        if isinstance(cols, nested.Cols) and table.get("file") == header["index"]:  # its body files hold the chunks
            header["files"] = cols.files
            refs = {k: (cols.locs[k], ps) for k, ps in cols.payloads.items() if None not in cols.locs[k]}
        path = self.flat_frame_path if flat else self.frame_path
        if self.behind is not None and len(sigs) >= _parallel.MIN_RUNS and _parallel.can_fork():
            # a whole load of many runs after a change: the index is written here, the frame cache (~0.1 s
            # of encoding at 10k runs, ~1 s at 100k flat) by the detached writer
            self.behind.add(_write_frame_file, path, header, df, refs)
            return
        _write_frame_file(path, header, df, refs)

    def write_behind(self, on: bool) -> None:
        """``True``: queue a cold load's cache writes (:mod:`~lumo_hydra.watcher.behind`); ``False``: start them."""
        self.behind = self._writer if on else None
        if not on:
            self._writer.flush()

    def wait_writes(self, timeout: float | None = None) -> bool:
        """Wait for the detached writer of this object's last cold load (at most ``timeout`` s); whether it ended."""
        return self._writer.wait(timeout)

    def _same_exps(self) -> bool:
        """Whether the experiment folders have the signatures the index was brought up to date with."""
        es = self._load_esigs()
        exps = self.experiments()
        return len(exps) == len(es) and all(s is not None and es.get(e) == s for e, _, s in exps)

    def _current(self, view: dict[str, Any]) -> bool:
        """Whether the store still holds exactly the runs of ``view`` (a frame cache header's index
        view), unchanged: the same experiment folder signatures, and the files of the unfinished runs
        and of a rolling slice with the signatures they were read with."""
        if not self._same_exps():
            return False
        if "sigs" not in view:
            view["sigs"] = SigMap(view["keys"], view["sigs_p"], 6)
        return not self.verify(view["sigs"], view["keys"], view["live"])[1]

    def cached_frame(
        self, progress: Callable[[int, int], None] | None, stale_after: float, flat: bool = False
    ) -> pd.DataFrame | Table | None:
        """The frame cache's DataFrame (of ``load(flatten=flat)``) with fresh statuses when no run changed;
        else the index table, brought up to date with the same scan (``None`` without a frame cache)."""
        fresh = self.frames[flat] is None and self.cache and not self._same_exps()
        if fresh:
            table = self.refresh(progress)  # a change, likely: the frame cache file is not read first
            if self.changed:
                return table
        fr = self._load_frame(flat)
        if fr is None:
            return table if fresh else None
        header, df = fr
        n = header["n"]
        if fresh:
            if header.get("index") != self._index_sig():
                self.frames[flat] = None
                return table
        elif not self._current(header["view"]):
            table = self.refresh(progress)  # a folder time too recent to trust, or a change
            if self.changed or (self.cache and header.get("index") != self._index_sig()):
                self.frames[flat] = None
                return table
        if isinstance(df, memoryview):  # not unpickled yet
            try:
                refs = any(x[3] is not None for x in header["lazy"])
                df = frame_from_bytes(header, df, self._bodies(header["files"]) if refs else None)
            except Exception:  # a damaged cache file: rebuild it
                self.frames[flat] = None
                return self.refresh(progress)
            self.frames[flat] = (header, df)
        self.stats = {"scanned": n, "read": 0, "cached": n, "skipped": 0, "removed": 0}
        return judged_again(df.copy(), header["live"], stale_after)  # the cached frame stays as it is
