"""The Watcher: every recorded run in a ``pandas.DataFrame``, with its true status, in an instant.

It reads the store exactly as ``docs/store.md`` describes it (``run.json`` and ``metrics.json`` per
run; ``heartbeat`` for runs without an end record), through :mod:`lumo_hydra.store.reader`, and keeps
an incremental, columnar index beside the reader (``cache_dir(WATCHER_CACHE)``): a run is re-read only
when one of its two files changed (inode, mtime, size). Beside it, the frame cache holds the DataFrame
of the last unfiltered load, returned as is (statuses of unfinished runs judged again) while no run
changed. Both can be deleted at any time; they are rebuilt on the next load (see ``docs/watcher.md``
and :mod:`lumo_hydra.watcher.index`).

``C`` is the condition helper (:mod:`lumo_hydra.watcher.query`): ``df[C['params.lr'] >= 0.1]`` or
``w.load(where=C['status'] == 'finished')``.
"""
from __future__ import annotations

import difflib
import gc
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from lumo_hydra.errors import LumoValueError, RunNotFoundError, StoreError
from lumo_hydra.store import status as _status
from lumo_hydra.store.layout import ENV_HOME, RUN_JSON, StoreLayout
from lumo_hydra.store.reader import read_heartbeat, read_history, read_json_object_or_none, read_metrics, read_record
from lumo_hydra.watcher.frame import build_columns, build_frame, patched_flat
from lumo_hydra.watcher.index import RunIndex, Table
from lumo_hydra.watcher.query import C, Condition, as_list, check_filters, parse_when, select_rows
from lumo_hydra.watcher.rows import RunRef, iter_runs, judge_all
from lumo_hydra.watcher.token import change_token

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Watcher", "C", "Condition", "RunRef", "parse_when"]


class _GcPaused:
    """Hundreds of thousands of small containers are built: the cyclic collector would triple the time.

    A class, not ``contextlib.contextmanager``: leaving allocates nothing (no ``StopIteration``), so the
    collection due after re-enabling runs at the caller's next allocation, as with a plain ``finally``.
    """

    __slots__ = ("was",)

    def __enter__(self) -> None:
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, et: object, ev: object, tb: object) -> None:
        if self.was:
            gc.enable()


class Watcher:
    """Loads every run of a store into a DataFrame.

    ``root`` is the store root (default ``$LUMO_HOME`` or ``~/.lumo-hydra``); ``stale_after`` the
    seconds after which a run without an end record and without a fresh heartbeat is ``crashed``;
    ``cache=False`` disables the on-disk index and frame cache (the object still keeps them in memory);
    ``workers`` the threads that read changed runs (``None``: serially, switching to 8 threads when
    the first reads are slow, as on NFS; ``1`` always reads in the calling thread).

    After each load, ``stats`` says how many runs were scanned, read, taken from the index, skipped.
    ``layout`` is the :class:`~lumo_hydra.store.layout.StoreLayout` of the root.
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
        self.layout = StoreLayout(root)
        self.root = str(self.layout.root)
        self.stale_after = stale_after
        self._index = RunIndex(self.layout, bool(cache), workers)

    def __repr__(self) -> str:
        return f"Watcher(root={self.root!r}, stale_after={self.stale_after!r})"

    @property
    def cache(self) -> bool:
        """Whether the index and the frame cache are kept on disk (always in memory)."""
        return self._index.cache

    @cache.setter
    def cache(self, value: bool) -> None:
        self._index.cache = bool(value)

    @property
    def workers(self) -> int | None:
        """The threads that read changed runs (``None``: chosen by the first reads)."""
        return self._index.workers

    @workers.setter
    def workers(self, value: int | None) -> None:
        self._index.workers = value

    @property
    def stats(self) -> dict[str, int]:
        """What the last load did: ``scanned, read, cached, skipped, removed`` runs."""
        return self._index.stats

    @stats.setter
    def stats(self, value: dict[str, int]) -> None:
        self._index.stats = value

    # ---- paths -----------------------------------------------------------------------------------

    @property
    def experiments_dir(self) -> str:
        """The folder of every run folder (``<root>/experiments``)."""
        return self._index.experiments_dir

    @property
    def index_path(self) -> str:
        """The index file of this root (local to the reader, safe to delete)."""
        return self._index.index_path

    @property
    def frame_path(self) -> str:
        """The frame cache file of this root (local to the reader, safe to delete)."""
        return self._index.frame_path

    def clear_cache(self) -> None:
        """Forget the index (memory and disk); the next load reads every run again."""
        self._index.clear()

    def change_token(self) -> str:
        """An opaque text that changes whenever anything ``load()`` shows may have changed: a run added or
        removed, a ``run.json``/``metrics.json`` rewritten (progress, metrics, a note or tag edit), a run
        without an end record going quiet for ``stale_after`` s. Equal tokens: nothing changed. No file is
        read: one ``stat`` per experiment folder (plus one per run this object last saw unfinished), no
        inotify, so it is safe and cheap on NFS (see :mod:`lumo_hydra.watcher.token`). For a few seconds
        after a change it differs at every call (file system times are coarse)."""
        return change_token(self._index.experiments_dir, self.stale_after, self._index.live_dirs())

    def iter_runs(self, exp: str | Sequence[str] | None = None) -> Iterator[RunRef]:
        """Every run folder in the store (optionally of the experiments matching ``exp``), unsorted."""
        return iter_runs(self._index.experiments_dir, as_list(exp))

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
        cols, rkeys, dirs = _lists(table["cols"]), table["rkeys"], table["dirs"]
        idx = range(len(dirs)) if sel is None else sel
        return [({k: cols[k][i] for k in rkeys[i]}, dirs[i], status_[i],
                 None if dur[i] != dur[i] else float(dur[i])) for i in idx]

    def _rows_of(
        self, exp: Any, status: Any, since: Any, until: Any, sweep: Any, tag: Any,
        progress: Callable[[int, int], None] | None, table: Table | None = None, partial: bool = False,
    ) -> tuple[Table, list[int] | None, list[Any], Any]:
        """The index table (brought up to date unless given; with ``partial`` maybe its meta part only),
        the rows passing the filters (``None``: all), and the status and duration of every row judged now."""
        statuses = check_filters(status, since, until)  # a bad value fails before any reading
        self._check_root()
        with _GcPaused():
            if table is None:
                table = self._index.refresh(progress, pats=as_list(exp), partial=partial)
            status_, dur = judge_all(table, self.stale_after)
            sel = select_rows(table, status_, exp=exp, statuses=statuses, since=since, until=until,
                              sweep=sweep, tag=tag)
        return table, sel, status_, dur

    def _check_root(self) -> None:
        """A store root that exists but is not a folder is a :class:`StoreError` naming it (not a raw
        ``NotADirectoryError`` from deep inside the reader)."""
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise StoreError(f"the store root {self.root!r} must be a folder (it is a file); point ${ENV_HOME} "
                             "(or --root / root=) at a folder, or move that file away")

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
        where: Condition | Callable[[pd.DataFrame], Any] | str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> pd.DataFrame:
        """One row per run, oldest first.

        Nested columns (lumo's): ``exp_name, test_name, status, host, start, end, duration, sweep,
        params, metrics, git, progress, execute, exception, note, tags, lock, hooks, info_dir``, then
        ``pinfo, paths, hydra, info, return_value, rerun_of, version, metrics_last`` and any other
        record key. ``metrics`` is ``{name: best value}``, ``metrics_last`` ``{name: last value}``.
        ``flatten=True`` gives scalar dotted columns instead: ``params.<path>``, ``metrics.<name>``
        (best), ``metrics.<name>.last``, ``git.commit``, ``lock.digest``, ...

        Filters: ``exp`` (names or glob patterns), ``status``, ``since``/``until`` (start time: a
        datetime, ISO string, Unix time or an age like ``'2h'``), ``sweep`` (id or prefix), ``tag`` (all
        given tags), ``where`` (a ``C`` condition, any ``df -> bool mask`` callable, or a ``--where``
        expression string such as ``'params.lr >= 0.01 and metrics.acc > 0.9'``, see docs/cli.md).
        ``start``/``end`` are local-time timestamps, ``duration`` seconds (so far, for runs without end).
        Nested values are shared with the Watcher's index: copy them before modifying them in place.
        """
        if isinstance(where, str):  # the CLI's --where language (docs/cli.md)
            from lumo_hydra.watcher.where import parse_where

            where = parse_where(where)
        self._check_root()
        whole = exp is None and status is None and since is None and until is None \
            and sweep is None and tag is None
        cached: Any = None  # the frame cache's DataFrame, or the index table brought up to date
        with _GcPaused():  # one pause for every step (a collection between two would walk every row read)
            self._index.write_behind(whole)  # a cold load's cache writes: by a detached process, after the frame
            try:
                if whole:
                    cached = self._index.cached_frame(progress, self.stale_after, bool(flatten))
                if cached is None or isinstance(cached, dict):
                    table, sel, status_, dur = self._rows_of(exp, status, since, until, sweep, tag, progress, cached)
                    patched = self._patched_flat(table, status_, dur) if flatten and whole else None
                    df = patched if patched is not None else build_frame(table, sel, status_, dur, flatten)
                    if whole:
                        if flatten:
                            self._index.flat_of = (table, df)
                        self._index.save_frame(table, df, bool(flatten))
                        df = df.copy()
            finally:
                self._index.write_behind(False)
        if cached is not None and not isinstance(cached, dict):  # the frame cache's DataFrame
            fr = self._index.frames[True]
            if flatten and fr is not None:  # the base of a patch: the frame of the index file
                self._index.flat_of = (fr[0].get("index"), fr[1])
            return cached if where is None else cached[where(cached)].reset_index(drop=True)
        if where is not None:
            mask = where(df)
            df = df[mask].reset_index(drop=True)
        return df

    def _patched_flat(self, table: Table, status_: list[Any], dur: Any) -> pd.DataFrame | None:
        """The whole flat frame of ``table`` from this object's last one (built, or read from the frame cache
        file of the index file), when ``table`` is that index with some runs rewritten in place (a board's
        table after a run progressed); else ``None``."""
        idx = self._index
        p, base, idx.flat_of = idx.patched, idx.flat_of, None
        if p is None or base is None or p[1] is not table or not (base[0] is p[0] or (
                type(base[0]) is list and base[0] == p[0].get("file"))):  # built from it, or from its file
            return None
        pos = table["sigs"]._index() if hasattr(table["sigs"], "_index") else {k: i for i, k in enumerate(table["keys"])}
        return patched_flat(base[1], p[0], table, [pos[k] for k in p[2]], status_, dur)

    def select(  # long: the filters of load(), then sort and limit pushed into the index
        self,
        *,
        exp: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        since: Any = None,
        until: Any = None,
        sweep: str | Sequence[str] | None = None,
        tag: str | Sequence[str] | None = None,
        match: Callable[[Mapping[str, Any]], bool] | None = None,
        sort: str | Callable[[Mapping[str, Any]], Any] | None = "start",
        desc: bool = True,
        limit: int | None = None,
        flatten: bool | None = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> pd.DataFrame:
        """The DataFrame of ``load()`` for only the runs kept: filtered, sorted and cut to ``limit`` in the
        index first (``lumo-hydra list``'s fast path), so its cost grows with ``limit``, not the store.

        ``match`` (a row predicate) and a callable ``sort`` (a key) get each candidate's record as a
        mapping with the reader's keys and ``status``, ``duration``, ``info_dir`` (a dict per candidate:
        give the other filters first). A ``sort`` name is a column of ``load()`` or a dotted path into
        one (``params.opt.lr``, ``metrics.acc``, ``metrics.acc.last``); missing values go last, numbers
        before text. ``sort=None`` keeps ``load()``'s order (oldest first; ``desc`` reverses it).
        """
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise LumoValueError(f"invalid value for 'limit': {limit!r}; allowed: an integer >= 0 or None")
        partial = (match is None and limit is not None and 0 < limit <= _READ_MAX
                   and (sort is None or sort in ("start", "end", "status", "duration", "info_dir")))
        table, sel, status_, dur = self._rows_of(exp, status, since, until, sweep, tag, progress, partial=partial)
        idx = list(range(len(table["dirs"]))) if sel is None else list(sel)
        cols, rkeys, dirs = table["cols"], table["rkeys"], table["dirs"]
        if match is not None or callable(sort):
            cols = _lists(cols)  # a dict per candidate: every column as a list first

        def row(i: int) -> dict[str, Any]:
            r = {k: cols[k][i] for k in rkeys[i]}
            r.update(status=status_[i], duration=float(dur[i]), info_dir=dirs[i])
            return r

        with _GcPaused():
            if match is not None:
                idx = [i for i in idx if match(row(i))]
            if sort in ("start", "end", "duration"):
                idx = _numeric_order(idx, table, sort, dur, desc)
            elif sort is not None:
                key = _sort_key(sort, table, status_, dur, row)
                vals = [key(i) for i in idx]
                some = [i for i, v in zip(idx, vals) if v is not None]
                none = [i for i, v in zip(idx, vals) if v is None]
                keyed = dict(zip(idx, vals))
                some.sort(key=lambda i: keyed[i], reverse=desc)  # stable, then reversed for desc
                idx = some + (none[::-1] if desc else none)
            elif desc:
                idx.reverse()
            matched = len(idx)
            if limit:
                idx = idx[:limit]
            if table.get("partial"):  # the index's meta part: the records of the rows kept are read
                table, idx = self._index.table_of([table["keys"][i] for i in idx])
                status_, dur = judge_all(table, self.stale_after)
            if flatten is None:  # select_columns: plain lists, no frame
                data, order = build_columns(table, idx, status_, dur)
                return data, order, matched  # type: ignore[return-value]
            df = build_frame(table, idx, status_, dur, flatten)
            df.attrs["matched"] = matched  # the runs that passed the filters, before the limit
            return df

    def select_columns(self, **kw: Any) -> tuple[dict[str, list[Any]], list[str], int]:
        """What :meth:`select` (``flatten=True``) gives, as ``({column: values}, columns in order,
        runs matched before the limit)`` of plain lists, without pandas (``lumo-hydra list``'s
        default view): times are aware local datetimes (``None``: missing), unknown durations NaN."""
        return self.select(**kw, flatten=None)  # type: ignore[arg-type,return-value]

    # ---- one run ---------------------------------------------------------------------------------

    def resolve(self, run: str) -> RunRef:
        """The run named by ``run``: a test_name, ``exp_name/test_name``, an info folder path, or an
        unambiguous prefix of a test_name. Raises ``RunNotFoundError`` with the closest ids."""
        if not isinstance(run, str) or not run.strip():
            raise RunNotFoundError(f"invalid run id {run!r}; allowed: a test_name, exp_name/test_name or a prefix")
        run = run.strip()
        if os.path.isfile(os.path.join(run, RUN_JSON)):
            d = os.path.abspath(run)
            return RunRef(os.path.basename(os.path.dirname(d)), os.path.basename(d), d)
        exp_part, _, name = run.rpartition("/")
        ref = self._exact(exp_part, name)
        if ref is not None:
            return ref
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
        hint = f"; did you mean {', '.join(close)}?" if close else ("" if names else " (the store has no runs)")
        raise RunNotFoundError(f"no run {run!r} in {self.root}{hint}")

    def _exact(self, exp_part: str, name: str) -> RunRef | None:
        """The one run folder named exactly ``name`` (in experiment ``exp_part`` if given), found with one
        ``stat`` per experiment (the folders are the id index: no listing of the runs); ``None`` if
        there is none, several, or ``exp_part`` is a pattern (then ``resolve`` scans)."""
        if not name or name[0] == "." or "/" in name or any(c in exp_part for c in "*?["):
            return None
        exps_dir = self._index.experiments_dir
        if exp_part:
            exps = [exp_part]
        else:
            try:
                exps = [e.name for e in os.scandir(exps_dir) if e.name[0] != "." and e.is_dir(follow_symlinks=False)]
            except OSError:
                return None
        found = [e for e in exps if os.path.isdir(os.path.join(exps_dir, e, name))]
        if len(found) != 1:
            return None
        return RunRef(found[0], name, os.path.join(exps_dir, found[0], name))

    def record(self, run: str) -> dict[str, Any]:
        """The ``run.json`` of ``run`` (any form ``resolve`` accepts), with ``status`` judged now.

        Raises ``StoreError`` (a ``LumoValueError``) naming the file if it is missing or damaged."""
        ref = self.resolve(run)
        rec = read_record(ref[2])
        hb = read_heartbeat(ref[2]) if rec.get("status") not in _status.END_STATUSES else None
        judged = _status.judge_status(rec, hb, now=time.time(), stale_after=self.stale_after)
        if judged == _status.CRASHED:  # it may have ended since it was read: read it again first
            rec = read_record(ref[2])
            hb = read_heartbeat(ref[2]) if rec.get("status") not in _status.END_STATUSES else None
            judged = _status.judge_status(rec, hb, now=time.time(), stale_after=self.stale_after)
        rec["recorded_status"] = rec.get("status")
        rec["status"] = judged
        rec.setdefault("exp_name", ref[0])
        rec.setdefault("test_name", ref[1])
        rec["metrics"] = read_metrics(ref[2], stacklevel=3)
        rec["info_dir"] = ref[2]
        return rec

    def retrieve(self, test_name: str) -> Any:
        """The ``Experiment`` of run ``test_name`` (``Experiment.from_disk``)."""
        ref = self.resolve(test_name)
        from lumo_hydra.record.experiment import Experiment

        return Experiment.from_disk(ref[2])

    def history(self, test_name: str, metric: str | None = None) -> pd.DataFrame:
        """The steps of ``metric`` (all metrics if ``None``) of run ``test_name``:
        columns ``metric, step, value, time`` (``time`` a Unix float), in the order they were logged."""
        import pandas as pd

        ref = self.resolve(test_name)
        points = read_history(ref[2], metric, stacklevel=3)  # (not inside the comprehension: its own frame on 3.11)
        rows = [(d["k"], d.get("s"), d.get("v"), d.get("t")) for d in points]
        if metric is not None and not rows:
            known = sorted(self.record(ref[2]).get("metrics", {}))
            if metric not in known:
                close = difflib.get_close_matches(metric, known, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else f"; recorded metrics: {known}"
                raise LumoValueError(f"run {ref[1]!r} has no metric {metric!r}{hint}")
        return pd.DataFrame(rows, columns=["metric", "step", "value", "time"])

    def panel(self, df: pd.DataFrame | None = None, **filters: Any) -> Any:
        """The board (docs/board.md) as a Panel object that displays inline in a notebook, offline: the
        runs of ``df`` (nested or flat), or of ``load(**filters)``; all runs, live, when neither is given.
        Needs ``pip install 'lumo-hydra[board]'``."""
        from lumo_hydra.board.notebook import panel_of

        return panel_of(self, df, filters)

    # ---- sweeps ----------------------------------------------------------------------------------

    def sweep(self, sweep_id: str, flatten: bool = False) -> pd.DataFrame:
        """The jobs of sweep ``sweep_id`` (or an unambiguous prefix), ordered by job number.
        ``df.attrs['sweep']`` holds ``sweeps/<id>/sweep.json`` when it exists, ``df.attrs['sweep_end']``
        ``sweep-end.json`` (or ``None``) and ``df.attrs['sweep_status']`` the judged status
        (``finished``/``failed``/``interrupted``, ``running``, or ``crashed`` when the launcher is gone)."""
        sid = self.resolve_sweep(sweep_id)
        df = self.load(flatten=flatten, sweep=sid)
        df = df[df["sweep"] == sid]
        if len(df):
            if flatten:
                nums = list(df.get("hydra.job_num", [None] * len(df)))
            else:
                hydras = df["hydra"] if "hydra" in df else [None] * len(df)
                nums = [(_job_num(h) if isinstance(h, dict) else None) for h in hydras]
            order = sorted(range(len(df)), key=lambda i: (nums[i] is None, nums[i] if nums[i] is not None else 0, i))
            df = df.iloc[order]
        df = df.reset_index(drop=True)
        rec = read_json_object_or_none(self.layout.sweep_record(sid), "sweep record", stacklevel=3)
        if rec is not None:
            df.attrs["sweep"] = rec
        from lumo_hydra.store.sweepend import read_sweep_end, sweep_status  # issue 11.11

        end = df.attrs["sweep_end"] = read_sweep_end(self.layout.root, sid)
        df.attrs["sweep_status"] = sweep_status(rec, end)
        return df

    def resolve_sweep(self, sweep_id: str) -> str:
        """The full id of the sweep named by ``sweep_id`` (exact or unambiguous prefix)."""
        ids: set[str] = set()
        try:
            ids.update(e.name for e in os.scandir(self.layout.sweeps_dir) if e.is_dir())
        except OSError:
            pass
        if sweep_id in ids:
            return sweep_id
        with _GcPaused():
            sws = self._index.refresh().get("cols", {}).get("sweep") or ()
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


# a select() of at most this many rows (sorted by time or status) reads the index's meta part only, then
# the records of the rows kept from their files; more rows: the whole index
_READ_MAX = 2000


def _numeric_order(idx: list[int], table: Table, sort: str, dur: Any, desc: bool) -> list[int]:
    """``idx`` ordered by start, end or duration (missing last) as the generic sort orders them, without
    numpy: a stable sort of the values (``reverse`` for ``desc`` keeps ties in order), then the missing
    ones (reversed for ``desc``). (A heap for a ``limit`` was slower: the index is about in start order,
    the worst case of ``heapq.nlargest``.)"""
    if sort == "duration":
        vals: list[Any] = [dur[i] for i in idx]
    else:
        col = table["cols"].get("_" + sort)
        vals = [col[i] for i in idx] if col else [None] * len(idx)
    some = [(v, i) for v, i in zip(vals, idx) if v is not None and v == v]
    none = [i for v, i in zip(vals, idx) if v is None or v != v]
    some.sort(key=itemgetter(0), reverse=desc)
    return [i for _, i in some] + (none[::-1] if desc else none)


def _sort_key(
    sort: str | Callable[[Mapping[str, Any]], Any], table: Table, status: list[Any], dur: Any,
    row: Callable[[int], dict[str, Any]],
) -> Callable[[int], Any]:
    """Row index -> a sortable key (``None``: missing): ``(0, number)`` or ``(1, text)``."""

    def rank(v: Any) -> Any:
        if v is None or (isinstance(v, float) and v != v):
            return None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return (0, v, "")
        return (1, 0, str(v))

    if callable(sort):
        return lambda i: rank(sort(row(i)))
    cols = table["cols"]
    if sort in ("start", "end"):
        col = cols.get("_" + sort) or [None] * len(table["dirs"])
        return lambda i: rank(col[i])
    if sort == "status":
        return lambda i: rank(status[i])
    if sort == "duration":
        return lambda i: rank(float(dur[i]))
    if sort == "info_dir":
        return lambda i: rank(table["dirs"][i])
    head, _, rest = sort.partition(".")
    if head == "metrics" and rest.endswith(".last") and rest[:-5]:
        head, rest = "metrics_last", rest[:-5]
    col = (cols.full(head) if hasattr(cols, "full") and head in cols else cols.get(head)) or [None] * len(table["dirs"])
    if head in ("metrics", "metrics_last"):
        return lambda i: rank(col[i].get(rest) if type(col[i]) is dict else None)
    parts = rest.split(".") if rest else []

    def get(i: int) -> Any:
        v = col[i]
        for p in parts:
            if type(v) is not dict:
                return None
            v = v.get(p)
        return rank(v)

    return get


def _lists(cols: Any) -> Any:
    """The index's columns as plain lists (its chunked columns decoded, once each), for a pass over rows."""
    full = getattr(cols, "full", None)
    return {k: full(k) for k in cols} if full is not None else cols


def _job_num(hydra: Mapping[str, Any]) -> int | None:
    n = hydra.get("job_num")
    try:
        return int(n) if n is not None else None
    except (TypeError, ValueError):
        return None

