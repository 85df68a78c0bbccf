"""Experiment recording for Hydra jobs: the work behind ``hydra/callbacks=lumo``.

The callback (``lumo_hydra.hydra_callback.LumoCallback``) stays thin and calls these functions:

- in the launching process, :func:`prepare_launch` takes the git snapshot once (per run or per sweep),
  captures the user's command line and, for a multirun, claims a sweep id and writes the sweep record;
  the result is a small JSON-able dict kept on the callback, which travels (pickled) to every job;
- in the job process, :func:`start_job` starts a :class:`~lumo_hydra.experiment.SimpleExperiment` whose
  hooks reuse that launch data (no git work per job), and :func:`end_job` ends it from Hydra's
  ``JobReturn``. Aborts (Ctrl-C, SIGTERM, ``sys.exit``, SIGKILL) are recorded by the experiment's own
  ``RecordAbort`` hook, since Hydra skips ``on_job_end`` in those cases.
"""
from __future__ import annotations

import logging
import numbers
import os
import sys
import threading
import time
from typing import Any, Mapping

from lumo_hydra._hydra.argv import user_argv

log = logging.getLogger("lumo_hydra")

#: Names of the hooks that ``hydra.callbacks.lumo.<switch>`` can turn off.
HOOK_SWITCHES = ("git", "lock", "last_cmd", "record_abort", "diary", "final_report")

# Hydra-level overrides that describe *how* a sweep ran, not *what* a job computes: left out of a job's
# re-runnable command (a rerun is one job, in a fresh output folder).
_NOT_RERUN_PREFIXES = (
    "hydra/launcher=", "hydra/sweeper=", "hydra.launcher.", "hydra.sweeper.", "hydra.sweep.",
    "hydra.run.dir=", "hydra.mode=", "hydra.job.num=", "hydra.job.id=",
    "++hydra.callbacks.lumo._target_=",
)


_RESOLVE = object()  # _raw's answer for a value that needs OmegaConf to resolve it


def _raw(node: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` under an OmegaConf node, read without resolving anything on the way (no
    ``OmegaConf.select``, whose per-key validation and interpolation parsing cost ~0.1 ms each).
    Returns ``_RESOLVE`` for an interpolation, ``None`` for a missing key or ``???``."""
    for key in path:
        content = getattr(node, "_content", None)  # a DictConfig's children, by key
        if not isinstance(content, dict):  # not a DictConfig, or one that is None, ??? or ${...} itself
            return _RESOLVE if getattr(node, "_is_interpolation", lambda: False)() else None
        node = content.get(key)
        if node is None:
            return None
    try:
        if node._is_missing():
            return None
        if node._is_interpolation():
            return _RESOLVE
        content = getattr(node, "_content", None)
        if isinstance(content, list):  # a ListConfig: its items' raw values
            return [_RESOLVE if c._is_interpolation() else c._value() for c in content]
        return node._value()
    except Exception:
        return _RESOLVE


def hydra_facts(config: Any, *, sweep_dir: str | None = None) -> dict[str, Any]:
    """The job facts lumo-hydra records, read from the ``hydra`` node. Missing values are ``None``.

    Values are read raw (they are plain in a job's config: Hydra fills them in); an interpolation
    falls back to ``OmegaConf.select``. ``sweep_dir``: the sweep folder when the caller already knows it
    (it is usually an interpolation such as ``${now:...}``, resolved once in the launching process).
    """
    from omegaconf import OmegaConf

    def get(*path: str) -> Any:
        v = _raw(config, ("hydra", *path))
        if v is _RESOLVE or (isinstance(v, list) and any(x is _RESOLVE for x in v)):
            try:
                v = OmegaConf.select(config, ".".join(("hydra", *path)), default=None, throw_on_missing=False)
                v = OmegaConf.to_container(v, resolve=False) if OmegaConf.is_config(v) else v
            except Exception:
                return None
        return v

    mode = get("mode")
    return {
        "task": [str(o) for o in (get("overrides", "task") or [])],
        "hydra": [str(o) for o in (get("overrides", "hydra") or [])],
        "output_dir": get("runtime", "output_dir"),
        "job_name": get("job", "name"),
        "job_num": get("job", "num"),
        "job_id": get("job", "id"),
        "sweep_dir": sweep_dir if sweep_dir is not None else get("sweep", "dir"),
        "launcher": get("launcher", "_target_"),
        "sweeper": get("sweeper", "_target_"),
        "mode": str(mode) if mode is not None else None,
    }


def job_argv(launch: Mapping[str, Any], facts: Mapping[str, Any]) -> list[str]:
    """The argv that re-runs one job alone: the user's script (absolute) with this job's overrides
    (``facts`` from :func:`hydra_facts`), no ``-m`` and no launcher or sweep options."""
    argv = launch.get("argv") or user_argv()
    hydra_ov = [o for o in facts["hydra"] if not o.startswith(_NOT_RERUN_PREFIXES)]
    return [_abs_script(argv[0] if argv else "", launch.get("cwd")), *hydra_ov, *facts["task"]]


def _abs_script(script: str, cwd: str | None) -> str:
    if script and cwd and not os.path.isabs(script) and os.path.exists(os.path.join(cwd, script)):
        return os.path.normpath(os.path.join(cwd, script))
    return script


class LaunchPrep:
    """The launching process's work for one run or sweep, with the git snapshot running in a background
    thread so that it overlaps Hydra's own start-up (composing the first job's config).

    :meth:`finish` waits for the snapshot, writes the sweep record (once) and returns the JSON-able
    launch data that travels to every job. Holds a thread: never pickled (the callback calls
    :meth:`finish` before it is pickled).
    """

    def __init__(self, launch: dict[str, Any], sweep: dict[str, Any] | None, snapshot_dir: str | None) -> None:
        self.launch = launch
        self._sweep = sweep
        self._snapshot: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self._done = False
        if snapshot_dir is not None:
            self._thread = threading.Thread(target=self._take_snapshot, args=(snapshot_dir,),
                                            name="lumo-hydra-snapshot", daemon=True)
            self._thread.start()

    def _take_snapshot(self, path: str) -> None:
        try:
            from lumo_hydra.record.gitsnap import snapshot

            self._snapshot = snapshot(path)
        except BaseException as e:  # never lose the run over the snapshot: say what happened
            self._snapshot = {"commit": None, "msg": f"snapshot failed: {type(e).__name__}: {e}"}

    def finish(self) -> dict[str, Any]:
        """Wait for the snapshot; write ``sweeps/<id>/sweep.json`` once; return the launch data."""
        if not self._done:
            self._done = True
            if self._thread is not None:
                self._thread.join()
                self._thread = None
                self.launch["snapshot"] = self._snapshot
            if self._sweep is not None:
                from lumo_hydra.store.files import atomic_write_json

                folder = os.path.join(self.launch["home"], "sweeps", self.launch["sweep_id"])
                atomic_write_json(os.path.join(folder, "sweep.json"), {**self._sweep, "git": self.launch["snapshot"]})
        return self.launch


def prepare_launch(config: Any, *, multirun: bool, exp_name: str | None, home: str | None,
                   switches: Mapping[str, bool]) -> LaunchPrep:
    """Launching-process work, done once per run or sweep: the command, a store check, the sweep id,
    and the git snapshot (started in the background; :meth:`LaunchPrep.finish` collects it).

    Never raises for environment problems (no git, no repository): those end up as messages in the
    record. A store root that cannot be written raises ``StoreError`` (a run is never silently
    unrecorded).
    """
    from lumo_hydra.record.hooks import build_command
    from lumo_hydra.store.layout import lumo_home

    argv = user_argv()
    cwd = os.getcwd()  # the original working directory: Hydra has not changed it yet
    launch: dict[str, Any] = {
        "argv": argv,
        "cwd": cwd,
        "command": build_command([_abs_script(argv[0], cwd), *argv[1:]] if argv else [], cwd),
        "home": str(lumo_home(home)),
        "snapshot": None,
        "sweep_id": None,
        "t": time.time(),
    }
    _check_writable(launch["home"])
    sweep: dict[str, Any] | None = None
    if multirun:
        from lumo_hydra.store.ids import claim_dir
        from lumo_hydra.store.times import now_iso

        sweep_id, folder = claim_dir(os.path.join(launch["home"], "sweeps"))
        (folder / "jobs").mkdir()
        launch["sweep_id"] = sweep_id
        facts = hydra_facts(config)
        launch["sweep_dir"] = facts["sweep_dir"]
        sweep = {
            "sweep_id": sweep_id,
            "exp_name": exp_name or str(facts["job_name"] or "app"),
            "dir": str(facts["sweep_dir"] or ""),
            "command": launch["command"],
            "argv": argv,
            "overrides": {"task": facts["task"], "hydra": facts["hydra"]},
            "git": None,
            "start": now_iso(launch["t"]),
            "launcher": facts["launcher"],
            "sweeper": facts["sweeper"],
        }
    return LaunchPrep(launch, sweep, cwd if switches.get("git", True) else None)


def _check_writable(home: str) -> None:
    """Fail before any job starts when the store cannot be written (a run is never silently unrecorded)."""
    from lumo_hydra.errors import StoreError

    folder = os.path.join(home, "experiments")
    try:
        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise StoreError(f"cannot write the store {folder!r}: {e.strerror or e}; "
                         f"set LUMO_HOME or hydra.callbacks.lumo.home to a writable folder") from e


def mark_sweep_job(home: str | os.PathLike[str], sweep_id: str, job_num: Any, test_name: str) -> None:
    """Link a job to its sweep: an empty marker ``sweeps/<id>/jobs/<job_num>.<test_name>``, made by the job."""
    from pathlib import Path

    folder = Path(home) / "sweeps" / sweep_id / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job_num}.{test_name}").touch()


def _json_or_none(value: Any) -> Any:
    import json

    try:
        json.dumps(value, allow_nan=True)
        return value
    except (TypeError, ValueError):
        return None


def _numeric_metrics(value: Any) -> dict[str, float]:
    """A number, or a dict of numbers, as metrics (bools are not metrics). Metrics of the same name that
    the task logged itself are left as they are."""
    def num(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    if num(value):
        return {"return_value": float(value)}
    if isinstance(value, Mapping) and value and all(num(v) for v in value.values()):
        return {str(k): float(v) for k, v in value.items()}
    return {}


def start_job(config: Any, launch: Mapping[str, Any] | None, *, exp_name: str | None,
              home: str | None, switches: Mapping[str, bool], heartbeat_interval: float) -> Any:
    """Start the experiment of one Hydra job (in the job process) and return it."""
    from lumo_hydra.record.experiment import SimpleExperiment
    from lumo_hydra.record import hooks as H
    from lumo_hydra.record.hooks import build_command

    if launch is None:  # e.g. a launcher that called on_job_start without on_run/multirun_start here
        launch = {"argv": user_argv(), "cwd": os.getcwd(), "snapshot": None, "sweep_id": None}
    facts = hydra_facts(config, sweep_dir=launch.get("sweep_dir"))
    name = exp_name or str(facts["job_name"] or "app")
    cwd = launch.get("cwd") or os.getcwd()
    argv = job_argv(launch, facts)
    # what the job runs, seen from the user's side (a launcher's worker has its own argv and __main__)
    execute = {"cwd": cwd, "exec_bin": sys.executable, "exec_file": argv[0] or None, "exec_argv": argv,
               "repo": None, "command": None}
    on = {k: bool(switches.get(k, True)) for k in HOOK_SWITCHES}
    snap = launch.get("snapshot")
    # switched-off hooks are still passed, disabled, so the record says {"loaded": false, "msg": "disabled"}
    hooks: list[Any] = [
        H.GitCommit(result=snap, enabled=on["git"]) if snap else H.GitCommit(path=launch.get("cwd"), enabled=on["git"]),
        H.LockFile(enabled=on["lock"]),
        H.LastCmd(command=build_command(argv, cwd), enabled=on["last_cmd"]),
        H.RecordAbort(enabled=on["record_abort"]),
        H.Diary(enabled=on["diary"]),
        H.FinalReport(enabled=on["final_report"]),
    ]

    resolved = task_params(config)
    hydra_info = {  # the resolved config itself is recorded once, as ``params``
        "overrides": facts["task"],
        "hydra_overrides": facts["hydra"],
        "output_dir": facts["output_dir"],
        "job_name": facts["job_name"],
        "job_num": facts["job_num"],
        "job_id": facts["job_id"],
        "sweep_dir": facts["sweep_dir"] if launch.get("sweep_id") else None,
        "launcher": facts["launcher"],
        "sweeper": facts["sweeper"],
        "mode": facts["mode"],
    }
    exp = SimpleExperiment(name, home=home or launch.get("home"), hooks=hooks,
                           heartbeat_interval=heartbeat_interval)
    exp.start(execute=execute, hydra=hydra_info, sweep=launch.get("sweep_id"), params=resolved)
    sweep_id = launch.get("sweep_id")
    if sweep_id:
        mark_sweep_job(exp.root, sweep_id, hydra_info["job_num"], str(exp.test_name))
    return exp


def task_params(config: Any) -> dict[str, Any]:
    """The job's config without the ``hydra`` node, as plain data, resolved key by key in place (the
    config itself is not copied): a top-level key whose interpolations do not resolve at job start (e.g.
    a resolver only the task registers) is recorded unresolved, the others resolved."""
    from omegaconf import OmegaConf

    out: dict[str, Any] = {}
    keys = getattr(config, "keys", None)
    for k in (keys() if keys is not None else ()):
        if k == "hydra":
            continue
        node = config._get_node(k) if hasattr(config, "_get_node") else config[k]
        container = OmegaConf.is_config(node)
        try:
            out[str(k)] = OmegaConf.to_container(node, resolve=True) if container else config[k]
        except Exception as e:
            log.debug("config key %r not resolvable at job start: %s", k, e)
            out[str(k)] = OmegaConf.to_container(node, resolve=False) if container else getattr(node, "_value", lambda: node)()
    return out


def end_job(exp: Any, job_return: Any) -> None:
    """End the experiment of one job from Hydra's ``JobReturn`` (status, exception, return value)."""
    from hydra.core.utils import JobStatus

    status = getattr(job_return, "status", None)
    value = getattr(job_return, "_return_value", None)
    if status == JobStatus.FAILED and isinstance(value, BaseException):
        exp.end(1, status="failed", exception=value)
        return
    logged = exp.metrics  # metrics the task logged itself keep their history and cmp
    for key, v in _numeric_metrics(value).items():
        if key not in logged:
            exp.dump_metric(key, v, cmp=None)
    exp.end(0, return_value=_json_or_none(value))
