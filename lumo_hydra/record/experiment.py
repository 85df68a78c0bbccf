"""The experiment record: ``Experiment``, ``SimpleExperiment`` and ``current_experiment()``.

Usable in a plain script (no Hydra)::

    exp = SimpleExperiment(exp_name='my_exp_a')
    exp.start()
    exp.dump_metric('Acc', 0.1, cmp='max')
    exp.end()

Importing this module is cheap: no torch, pandas, git or hydra.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lumo_hydra.errors import ExperimentStateError, LumoValueError, StoreError
from lumo_hydra.record import registry
from lumo_hydra.record.runrecord import OWNED_KEYS, RESERVED_KEYS, clean_tags, exception_record, start_record
from lumo_hydra.record.secrets import mask_record
from lumo_hydra.record.sharing import BackupMixin  # exp.backup(...) (docs/share.md)
from lumo_hydra.store.files import read_json, to_jsonable
from lumo_hydra.store.ids import claim_dir, validate_name
from lumo_hydra.store.layout import ENV_RERUN_OF, PARAMS_JSON, StoreLayout, lumo_home
from lumo_hydra.store.status import END_STATUSES, STATUSES
from lumo_hydra.store.times import now_iso
from lumo_hydra.store.writer import RunWriter

__all__ = ["Experiment", "SimpleExperiment", "current_experiment", "ExperimentStateError"]


def current_experiment() -> Experiment | None:
    """The running ``Experiment`` of this process (the most recently started, not yet ended), or ``None``."""
    exp: Experiment | None = registry.current()
    return exp


class Experiment(BackupMixin):
    """One run's record in the store: ``<root>/experiments/<exp_name>/<test_name>/`` (docs/store.md).

    ``hooks`` is a list of ``lumo_hydra.hooks.ExpHook`` objects run at ``start()`` and ``end()``; a
    hook's failure is recorded under ``hooks`` and never breaks the run. ``home`` overrides
    ``LUMO_HOME``. ``test_name`` claims exactly that run id instead of a fresh one.
    """

    def __init__(
        self,
        exp_name: str,
        *,
        home: str | os.PathLike[str] | None = None,
        hooks: Sequence[Any] | None = None,
        heartbeat_interval: float = 10.0,
        test_name: str | None = None,
    ) -> None:
        self._exp_name = validate_name(exp_name, "exp_name")
        if test_name is not None:
            validate_name(test_name, "test_name")
        try:
            heartbeat_interval = float(heartbeat_interval)
        except (TypeError, ValueError):
            heartbeat_interval = float("nan")
        if not heartbeat_interval >= 0:
            raise LumoValueError(f"invalid heartbeat_interval: {heartbeat_interval!r}; allowed: a number >= 0 (0 = off)")
        self._home = home
        self._hooks = list(hooks or [])
        self.heartbeat_interval = heartbeat_interval
        self._test_name = test_name
        self._record: dict[str, Any] | None = None
        self._writer: RunWriter | None = None
        self._info_dir: Path | None = None
        self._root: Path | None = None
        self._started = False
        self._ended = False
        self._readonly = False
        self._loaded_metrics: dict[str, Any] = {}
        self._pid = os.getpid()
        self._t0 = 0.0

    # ------------------------------------------------------------------------------------- names
    exp_name = property(lambda self: self._exp_name)

    @property
    def test_name(self) -> str | None:
        """The run id (``YYMMDD.NNN.RRt``), ``None`` before ``start()``."""
        return self._test_name

    hooks = property(lambda self: self._hooks)

    @property
    def root(self) -> Path:
        """The store root (``home``, else ``$LUMO_HOME``, else ``~/.lumo-hydra``)."""
        if self._root is None:
            self._root = lumo_home(self._home)
        return self._root

    def _need_started(self, what: str) -> None:
        if not self._started and not self._readonly:
            raise ExperimentStateError(f"Experiment({self._exp_name!r}).{what} needs a started run; call start() first")

    def _need_writable(self, what: str) -> None:
        if self._readonly:
            raise ExperimentStateError(f"Experiment {self._test_name!r} was loaded from disk and is read-only ({what})")
        self._need_started(what)
        if self._ended:
            raise ExperimentStateError(f"Experiment {self._test_name!r} has ended; {what} is not allowed any more")

    @property
    def info_dir(self) -> str:
        self._need_started("info_dir")
        return str(self._info_dir)

    @property
    def blob_dir(self) -> str:
        self._need_started("blob_dir")
        return str(self.record["paths"]["blob_dir"])

    @property
    def cache_dir(self) -> str:
        self._need_started("cache_dir")
        return str(self.record["paths"]["cache_dir"])

    @property
    def record(self) -> dict[str, Any]:
        """The live ``run.json`` content (do not modify directly; use the ``dump_*`` methods)."""
        if self._record is None:
            raise ExperimentStateError(f"Experiment({self._exp_name!r}) has no record yet; call start() first")
        return self._record

    @property
    def status(self) -> str | None:
        """``None`` before start, ``running``, then the end status (as written; readers infer ``crashed``)."""
        return None if self._record is None else self._record.get("status")

    @property
    def is_running(self) -> bool:
        return self._started and not self._ended

    # ------------------------------------------------------------------------------------- start
    def start(self, **extra: Any) -> Experiment:
        """Claim the run folder, write the start record, run the hooks' ``on_start``, start the heartbeat.

        ``extra`` puts more top-level keys into ``run.json`` before the first write (e.g. ``hydra=...``,
        ``sweep=...``, ``params=...``). Raises ``StoreError`` if the store cannot be written. Returns self.
        """
        if self._readonly:
            raise ExperimentStateError(f"Experiment {self._test_name!r} was loaded from disk and cannot start")
        if self._started:
            return self
        bad = sorted(set(extra) & RESERVED_KEYS)
        if bad:
            raise LumoValueError(f"invalid extra record keys for start(): {bad}; allowed: any key except {sorted(RESERVED_KEYS)}")
        self._t0 = time.time()
        layout = StoreLayout(self.root)
        test_name, info_dir = claim_dir(layout.exp_dir(self._exp_name), self._test_name)
        self._test_name = test_name
        self._info_dir = info_dir
        self._record = rec = start_record(layout, self._exp_name, test_name, info_dir, self._t0)
        for k, v in extra.items():
            rec[k] = to_jsonable(v)
        mask_record(rec)  # secrets in argv, overrides, params never reach the store (H11c)
        self._writer = w = RunWriter(info_dir, rec)
        # A slow hook (a git snapshot taken here) gets a start record written before it runs; when every hook
        # is quick (e.g. in a Hydra job, whose snapshot the launching process took), one write after them is enough.
        early = any(getattr(h, "enabled", True) and not getattr(h, "quick", False) for h in self._hooks)
        if early:
            self._first_write(w)
        self._started = True
        registry.add(self)
        for hook in self._hooks:
            self._call_hook(hook, "on_start")
        if os.environ.get("LUMO_RERUN_INFO"):  # == rerun.ENV_RERUN_INFO: imported only for a rerun
            from lumo_hydra.record.rerun import apply_rerun_info  # the original's repo/cwd (H12a)
            apply_rerun_info(rec)
        orig = None
        if os.environ.get(ENV_RERUN_OF):  # lumo's rerun = {from, repeat}; rerun_at on the original
            from lumo_hydra.record.rerun_link import link_rerun, mark_original
            orig = link_rerun(rec, layout)
        if early:
            w.write_record()
        else:
            try:
                self._first_write(w)
            except StoreError:
                self._started = False
                self._forget()
                raise
        if orig is not None:
            mark_original(orig, test_name)
        w.start_heartbeat(self.heartbeat_interval)
        return self

    def _first_write(self, w: RunWriter) -> None:
        try:
            w.write_record()
        except OSError as e:
            w.discard_empty()  # H11b (11.2): a start on a full disk leaves no empty claimed folder
            raise StoreError(f"cannot write the run record in {str(w.info_dir)!r}: {e.strerror or e}") from e
        w.armed = True  # the run exists: a later failed write (after slow hooks too) is recorded and retried

    def _forget(self) -> None:
        """This process no longer tracks the run (ended, or its start failed)."""
        registry.remove(self)

    def _call_hook(self, hook: Any, method: str) -> None:
        name = getattr(hook, "name", None) or type(hook).__name__
        hooks = self.record["hooks"]
        if not getattr(hook, "enabled", True):
            hooks[name] = {"loaded": False, "msg": "disabled"}
            return
        try:
            getattr(hook, method)(self)
            if method == "on_start" or name not in hooks:
                hooks[name] = {"loaded": True, "msg": getattr(hook, "msg", "") or ""}
        except Exception as e:  # a hook never breaks the run
            hooks[name] = {"loaded": False, "msg": f"{method} failed: {type(e).__name__}: {e}"}

    # --------------------------------------------------------------------------------------- end
    def end(
        self,
        end_code: int | None = 0,
        *,
        status: str | None = None,
        exception: BaseException | dict[str, Any] | None = None,
        return_value: Any = None,
        ended_by: str | None = None,
    ) -> None:
        """Finish the run: flush metrics, stop the heartbeat, write the end record, run the hooks' ``on_end``.

        ``status`` defaults to ``finished`` when ``end_code`` is 0 and ``failed`` otherwise. Calling it
        again, or before ``start()``, does nothing.
        """
        if not self._started or self._ended or self._readonly or os.getpid() != self._pid:
            return  # (a forked child never ends its parent's run)
        if status is None:
            status = "finished" if not end_code and exception is None else "failed"
        if status not in END_STATUSES:
            raise LumoValueError(f"invalid status: {status!r}; allowed: one of {[x for x in STATUSES if x in END_STATUSES]}")
        if end_code is None and status == "finished":
            end_code = 0
        self._ended = True
        w = self._writer
        assert w is not None
        rec = self.record
        w.stop_heartbeat()
        try:
            w.flush()
        except OSError as e:  # keep going: the end record matters more
            rec["hooks"].setdefault("_store", {"loaded": False, "msg": f"metrics flush failed: {e}"})
        rec["status"] = status
        prog = rec["progress"]
        prog["end"] = now_iso()
        prog["end_code"] = end_code
        if status == "finished":
            prog["ratio"] = 1.0
        if ended_by:
            prog["ended_by"] = ended_by
        else:
            prog.pop("ended_by", None)
        rec["exception"] = exception_record(exception)
        if return_value is not None:
            rv = to_jsonable(return_value)
            rec["return_value"] = rv
        if rec.get("params") is None and self._info_dir is not None:
            pj = self._info_dir / PARAMS_JSON
            if pj.is_file():
                try:
                    rec["params"] = read_json(pj)
                except (OSError, ValueError):
                    pass
        mask_record(rec)
        from lumo_hydra.record.hooks import end_hooks  # the Diary only once run.json holds the end (11.2)

        end_hooks(self, self._hooks, self._call_hook, w.write_record)
        self._forget()

    def _provisional_end(self, status: str, end_code: int, ended_by: str) -> None:
        """Write an end record now but keep the run open (a signal a Python handler may survive)."""
        if not self._started or self._ended or self._readonly or os.getpid() != self._pid:
            return
        w = self._writer
        assert w is not None
        w.flush()
        rec = self.record
        rec["status"] = status
        rec["progress"].update(end=now_iso(), end_code=end_code, ended_by=ended_by)
        w.write_record()

    @property
    def duration(self) -> float:
        """Seconds since start (until end once ended)."""
        if self._record is None:
            return 0.0
        from lumo_hydra.store.times import parse_time

        prog = self._record.get("progress") or {}
        start = parse_time(prog.get("start"))
        end = parse_time(prog.get("end")) if prog.get("end") else time.time()
        return max(0.0, (end or 0.0) - (start or 0.0))

    def __enter__(self) -> Experiment:
        return self.start()

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if et is None:
            self.end(0)
        elif issubclass(et, KeyboardInterrupt):
            self.end(-2, status="interrupted", exception=ev)
        elif issubclass(et, SystemExit):
            code = ev.code if ev is not None else None
            code = 0 if code is None else (code if isinstance(code, int) else 1)
            self.end(code, ended_by="sys.exit")
        else:
            self.end(1, status="failed", exception=ev)

    # ----------------------------------------------------------------------------------- records
    def _save(self) -> None:
        assert self._writer is not None
        self._writer.write_record()

    def update_record(self, **keys: Any) -> None:
        """Set top-level ``run.json`` keys (e.g. ``hydra``, ``sweep``, ``params``) and rewrite the record."""
        self._need_writable("update_record")
        bad = sorted(set(keys) & RESERVED_KEYS)
        if bad:
            raise LumoValueError(f"invalid record keys: {bad}; allowed: any key except {sorted(RESERVED_KEYS)}")
        for k, v in keys.items():
            self.record[k] = to_jsonable(v)
        mask_record(self.record)
        self._save()

    def dump_params(self, params: Any) -> None:
        """Record the run's parameters (a dict, OmegaConf config or ``Params``) as ``run.json['params']``."""
        to_dict = getattr(params, "to_dict", None)
        if callable(to_dict) and not isinstance(params, dict):
            params = to_dict()
        self.update_record(params=params)

    def dump_info(self, key: str, value: Any, append: bool = False) -> None:
        """``properties[key] = value`` as in lumo: ``params`` is ``run.json['params']``, other keys go to
        ``run.json['info']``; record-owned keys raise. ``append=True`` merges dicts, else appends to a list."""
        self._need_writable("dump_info")
        if not isinstance(key, str) or not key:
            raise LumoValueError(f"invalid info key: {key!r}; allowed: a non-empty string")
        if key in OWNED_KEYS:
            raise LumoValueError(f"invalid info key: {key!r}: the record owns it; allowed: any other key "
                                 f"(not one of {sorted(OWNED_KEYS)})")
        to_dict = getattr(value, "to_dict", None) if key == "params" else None
        value = to_dict() if callable(to_dict) and not isinstance(value, dict) else value
        info = self.record if key == "params" else self.record["info"]
        value = to_jsonable(value)
        if append and info.get(key) is not None:
            old = info[key]
            if isinstance(old, dict) and isinstance(value, dict):
                value = {**old, **value}
            elif isinstance(old, list):
                value = [*old, value]
            else:
                value = [old, value]
        info[key] = value
        self._save()

    def dump_string(self, key: str, value: str, append: bool = False) -> None:
        """Store a string under ``info[key]`` (``append=True`` concatenates)."""
        self._need_writable("dump_string")
        value = str(value)
        old = self.record["info"].get(key)
        if append and isinstance(old, str):
            value = old + value
        self.dump_info(key, value)

    def dump_note(self, note: str) -> None:
        """Set the run's note (free text)."""
        self._need_writable("dump_note")
        self.record["note"] = str(note)
        self._save()

    def add_tags(self, *tags: str) -> list[str]:
        """Add tags (kept in order, without duplicates); returns the tags."""
        self._need_writable("add_tags")
        cur = self.record["tags"]
        for t in clean_tags(tags):
            if t not in cur:
                cur.append(t)
        self._save()
        return list(cur)

    def remove_tags(self, *tags: str) -> list[str]:
        """Remove tags (unknown tags are ignored); returns the tags."""
        self._need_writable("remove_tags")
        drop = set(clean_tags(tags))
        self.record["tags"] = [t for t in self.record["tags"] if t not in drop]
        self._save()
        return list(self.record["tags"])

    def dump_tags(self, *tags: str) -> list[str]:
        """Set the tags to exactly ``tags`` (lumo's ``dump_tags``); returns them."""
        self._need_writable("dump_tags")
        self.record["tags"] = list(dict.fromkeys(clean_tags(tags)))
        self._save()
        return list(self.record["tags"])

    def dump_progress(self, ratio: float) -> None:
        """Record how far the run is (0 to 1) in ``progress.ratio``."""
        self._need_writable("dump_progress")
        try:
            r = float(ratio)
        except (TypeError, ValueError):
            r = float("nan")
        if not 0.0 <= r <= 1.0:
            raise LumoValueError(f"invalid progress ratio: {ratio!r}; allowed: a number in [0, 1]")
        self.record["progress"]["ratio"] = r
        self._save()

    # ----------------------------------------------------------------------------------- metrics
    def dump_metric(self, key: str, value: Any, cmp: str | None = None, step: Any = None, **attachments: Any) -> Any:
        """Record one metric point and return the best value so far.

        ``cmp``: ``'max'``, ``'min'`` or ``None`` (the metric's cmp from its first call; ``None`` for a
        new metric means best = last). ``step`` defaults to the point's index. ``attachments`` are kept
        with the best value. Buffered in memory: no file I/O per call.
        """
        w = self._writer
        if w is None or self._ended or self._readonly:
            self._need_writable("dump_metric")
        attachments.pop("flush", None)  # lumo's dump_metric(key, value, cmp, flush=True)
        if isinstance(step, bool):
            step = None
        assert w is not None
        return w.dump_metric(key, value, cmp, step, attachments)

    def dump_metrics(self, metrics: dict[str, Any], cmp: str | None = None, step: Any = None) -> dict[str, Any]:
        """``dump_metric`` for each item; returns ``{key: best}``."""
        return {k: self.dump_metric(k, v, cmp, step) for k, v in metrics.items()}

    def flush(self) -> None:
        """Write buffered metric points now (the heartbeat thread does it every few seconds anyway)."""
        if self._writer is not None and not self._readonly:
            self._writer.flush()

    @property
    def metric(self) -> Any:
        """lumo's ``Metric`` API over this run's metrics (``.value``, ``dump_metric``, ``dump_metrics``, ``flush``)."""
        from lumo_hydra.record.metric import Metric

        return Metric(exp=self)

    @property
    def metrics(self) -> dict[str, Any]:
        """``{key: {best, last, cmp, count, best_step, last_step, attachments, time}}``."""
        if self._readonly:
            return self._loaded_metrics
        if self._writer is None:
            return {}
        return self._writer.metrics_dict()

    # ------------------------------------------------------------------------------------- paths
    def _mk(self, base: str, parts: Iterable[str], is_dir: bool) -> str:
        given = [os.fspath(x) for x in parts]
        p = Path(base).joinpath(*given)
        rel = os.path.relpath(os.path.realpath(p), os.path.realpath(base))
        if os.path.isabs(os.path.join("", *given)) or rel == ".." or rel.startswith(".." + os.sep):
            raise LumoValueError(f"invalid path {os.path.join('', *given)!r}: it leaves the run's folder {base!r}; "
                                 f"allowed: a relative path inside it, without '..' reaching above it")
        if not self._readonly:
            (p if is_dir else p.parent).mkdir(parents=True, exist_ok=True)
        return str(p)

    def mk_ipath(self, *parts: str, is_dir: bool = False) -> str:
        """A path in the run's info folder (small records); creates the parent (or the folder)."""
        return self._mk(self.info_dir, parts, is_dir)

    def mk_bpath(self, *parts: str, is_dir: bool = False) -> str:
        """A path in the run's blob folder (large files, checkpoints); creates the parent (or the folder)."""
        return self._mk(self.blob_dir, parts, is_dir)

    def mk_cpath(self, *parts: str, is_dir: bool = False) -> str:
        """A path in the run's cache folder (disposable files); creates the parent (or the folder)."""
        return self._mk(self.cache_dir, parts, is_dir)

    # -------------------------------------------------------------------------------- properties
    @property
    def properties(self) -> dict[str, Any]:
        """Everything about the run: the record plus ``metrics``, ``lock`` with the full package map,
        and ``info`` entries also at top level (where they do not clash with record keys)."""
        if self._record is None:
            return {"exp_name": self._exp_name, "test_name": self._test_name, "status": None}
        import copy

        props = copy.deepcopy(self._record)
        for k, v in (props.get("info") or {}).items():
            props.setdefault(k, v)
        props["metrics"] = self.metrics
        if props.get("params") is None and self._info_dir is not None and (self._info_dir / PARAMS_JSON).is_file():
            try:  # the seed writes params.json with params.to_json(exp.mk_ipath('params.json'))
                props["params"] = read_json(self._info_dir / PARAMS_JSON)
            except (OSError, ValueError):
                pass
        lock = props.get("lock")
        if isinstance(lock, dict) and lock.get("file"):
            from lumo_hydra.record.lockfile import read_lock

            try:  # read_lock accepts only a digest: a record cannot point it outside the store's locks/
                lock = {**lock, **read_lock(self.root, str(lock["file"])), "n_packages": lock.get("packages")}
            except (OSError, ValueError):
                pass
            props["lock"] = lock
        return props

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def from_disk(cls, info_dir: str | os.PathLike[str], blob_dir: str | os.PathLike[str] | None = None,
                  cache_dir: str | os.PathLike[str] | None = None) -> Experiment:
        """Load a recorded run (read-only) from its info folder. Raises ``StoreError`` if there is no valid record.

        A run moved or restored elsewhere finds its blob and cache folders beside its new place in a store
        (``<root>/blob/<exp>/<test>``), or where ``blob_dir``/``cache_dir`` say.
        """
        from lumo_hydra.store.reader import read_metrics, read_record  # lazy: a recorded job never reads
        info_dir = Path(info_dir).absolute()
        try:
            rec = read_record(info_dir)
        except StoreError as e:
            raise StoreError(f"no valid run record in {str(info_dir)!r}: {e}") from None
        layout, dir_exp, dir_test = StoreLayout.of_info_dir(info_dir)
        exp_name = rec.get("exp_name")
        self = cls.__new__(cls)
        Experiment.__init__(self, exp_name if isinstance(exp_name, str) and exp_name else dir_exp, heartbeat_interval=0)
        self._test_name = rec.get("test_name") or dir_test
        self._readonly = True
        self._record = rec
        self._info_dir = info_dir
        rec.setdefault("info", {})
        from lumo_hydra.record.loading import place_paths

        place_paths(rec, layout, info_dir, self._exp_name, str(self._test_name), blob_dir, cache_dir)
        self._root = layout.root
        self._loaded_metrics = read_metrics(info_dir)
        return self

    @classmethod
    def from_cache(cls, row: Any) -> Experiment:
        """The ``Experiment`` of a Watcher row (a ``load()`` row, a dict or a record with ``info_dir``)."""
        from lumo_hydra.record.loading import row_info_dir

        return cls.from_disk(row_info_dir(row))

    def rerun(self, arg_list: Sequence[str] = ()) -> int:
        """Run the recorded command again, ``arg_list`` appended, in its cwd on the current code (the CLI's
        rerun uses the snapshot); the new run records ``rerun = {from, repeat}``, this one ``rerun_at``."""
        if self.is_running:
            raise ExperimentStateError(f"Experiment {self._test_name!r} is still running; rerun it after end()")
        self._need_started("rerun")
        from lumo_hydra.record.rerun_link import run_again

        return run_again(self.record, self.root, list(arg_list))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(exp_name={self._exp_name!r}, test_name={self._test_name!r}, status={self.status!r})"

    def __reduce__(self) -> Any:
        """Pickling gives a read-only copy of a started run (``from_disk``), or a fresh unstarted one.

        The live writer (thread, lock, buffers) stays in the process that started the run; a copy in
        another process (e.g. a spawned DataLoader worker) can read the record but not write to it.
        """
        if self._info_dir is not None and (self._started or self._readonly):
            return (Experiment.from_disk, (str(self._info_dir),))
        return (type(self)._unpickled, (self._exp_name, self._home, self._hooks, self.heartbeat_interval,
                                        self._test_name))

    @classmethod
    def _unpickled(cls, exp_name: str, home: Any, hooks: list[Any], interval: float, test_name: str | None) -> Any:
        exp = Experiment.__new__(cls)
        Experiment.__init__(exp, exp_name, home=home, hooks=hooks, heartbeat_interval=interval, test_name=test_name)
        return exp


class SimpleExperiment(Experiment):
    """An ``Experiment`` with every standard hook: GitCommit, LockFile, LastCmd, RecordAbort, Diary, FinalReport.

    Pass ``hooks=[...]`` to replace them (e.g. ``GitCommit(result=sweep_snapshot)`` in Hydra jobs).
    """

    def __init__(
        self,
        exp_name: str,
        *,
        home: str | os.PathLike[str] | None = None,
        hooks: Sequence[Any] | None = None,
        heartbeat_interval: float = 10.0,
        test_name: str | None = None,
    ) -> None:
        if hooks is None:
            from lumo_hydra.record.hooks import default_hooks

            hooks = default_hooks()
        super().__init__(exp_name, home=home, hooks=hooks, heartbeat_interval=heartbeat_interval, test_name=test_name)
