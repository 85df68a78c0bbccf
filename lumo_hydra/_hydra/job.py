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
import time
from collections.abc import Mapping
from typing import Any

from lumo_hydra._hydra.facts import hydra_facts, sweep_direction, task_params
from lumo_hydra._hydra.outdirs import hydra_output_dirs
from lumo_hydra._hydra.session import user_argv
from lumo_hydra.store.layout import StoreLayout

log = logging.getLogger("lumo_hydra")

# Hydra-level overrides that describe *how* a sweep ran, not *what* a job computes: left out of a job's
# re-runnable command (a rerun is one job, in a fresh output folder).
_NOT_RERUN_PREFIXES = (
    "hydra/launcher=", "hydra/sweeper=", "hydra.launcher.", "hydra.sweeper.", "hydra.sweep.",
    "hydra.run.dir=", "hydra.mode=", "hydra.job.num=", "hydra.job.id=",
    "++hydra.callbacks.lumo._target_=",
)


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
    """The launching process's work for one run or sweep. The git snapshot is taken in two steps, without
    a thread (:func:`~lumo_hydra.record.gitsnap.snapshot_steps`): the first runs here and starts git's scan,
    which then runs while Hydra starts the job (output folder, config files, logging); :meth:`finish` takes
    the rest (a thread's start and join cost a scheduler slice each on a busy machine: issue 18).

    :meth:`finish` completes the snapshot, writes the sweep record (once) and returns the JSON-able
    launch data that travels to every job. Holds git processes: never pickled (the callback calls
    :meth:`finish` before it is pickled).
    """

    def __init__(self, launch: dict[str, Any], sweep: dict[str, Any] | None, snapshot_dir: str | None) -> None:
        self.launch = launch
        self._sweep = sweep
        self._steps: Any = None
        self._done = False
        if snapshot_dir is not None:
            try:
                from lumo_hydra.record.gitsnap import snapshot_steps

                sid = launch.get("sweep_id")  # the store, owner and Hydra output folders (H11a)
                self._steps = snapshot_steps(snapshot_dir, store=launch["home"], owner=f"sweeps/{sid}" if sid else None,
                                             skip_dirs=launch.get("hydra_dirs") or ())
                next(self._steps)  # until git's scan runs
            except StopIteration as e:  # done already (e.g. no repository)
                self._steps, launch["snapshot"] = None, e.value
            except Exception as e:  # never lose the run over the snapshot: say what happened
                self._steps, launch["snapshot"] = None, _failed(e)

    def finish(self) -> dict[str, Any]:
        """Complete the snapshot; write ``sweeps/<id>/sweep.json`` once; return the launch data."""
        if not self._done:
            self._done = True
            if self._steps is not None:
                from lumo_hydra.record.gitsnap import finish_steps

                steps, self._steps = self._steps, None
                try:
                    self.launch["snapshot"] = finish_steps(steps)
                except Exception as e:
                    self.launch["snapshot"] = _failed(e)
            if self._sweep is not None:
                from lumo_hydra.store.files import atomic_write_json

                path = StoreLayout(self.launch["home"]).sweep_record(self.launch["sweep_id"])
                atomic_write_json(path, {**self._sweep, "git": self.launch["snapshot"]})
                from lumo_hydra._hydra.sweep import arm_sweep_end  # sweep-end.json when it ends (11.11)

                arm_sweep_end(self.launch["home"], self.launch["sweep_id"], self._sweep.get("exp_name"),
                              self._sweep.get("expected_jobs"))
        return self.launch


def _failed(e: BaseException) -> dict[str, Any]:
    return {"commit": None, "msg": f"snapshot failed: {type(e).__name__}: {e}"}


def prepare_launch(config: Any, *, multirun: bool, exp_name: str | None, home: str | None,
                   switches: Mapping[str, bool]) -> LaunchPrep:
    """Launching-process work, done once per run or sweep: the command, a store check, the sweep id,
    and the git snapshot (started in the background; :meth:`LaunchPrep.finish` collects it).

    Never raises for environment problems (no git, no repository): those end up as messages in the
    record. A store root that cannot be written raises ``StoreError`` (a run is never silently
    unrecorded).
    """
    from lumo_hydra.record.hooks import build_command

    argv = user_argv()
    cwd = os.getcwd()  # the original working directory: Hydra has not changed it yet
    launch: dict[str, Any] = {
        "argv": argv,
        "cwd": cwd,
        "command": build_command([_abs_script(argv[0], cwd), *argv[1:]] if argv else [], cwd),
        "home": str(StoreLayout(home).root),
        "snapshot": None,
        "sweep_id": None,
        "t": time.time(),
    }
    _check_writable(launch["home"])
    launch["hydra_dirs"] = hydra_output_dirs(config)  # left out of the snapshot
    sweep: dict[str, Any] | None = None
    if multirun:
        from lumo_hydra.store.ids import claim_dir
        from lumo_hydra.store.times import now_iso

        layout = StoreLayout(launch["home"])
        sweep_id, _ = claim_dir(layout.sweeps_dir)
        layout.sweep_jobs_dir(sweep_id).mkdir()
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
            "direction": sweep_direction(config),  # minimize/maximize of an optimizing sweeper (Optuna...)
            "pinfo": _launcher_pinfo(),  # a sweep whose launcher is gone without sweep-end.json: crashed
            "expected_jobs": _expected_jobs(config),
        }
        launch["launcher"] = sweep["pinfo"]  # a job in a worker of this process stops when it is gone (11.10)
        _mask_sweep(sweep)
        from lumo_hydra.record.abort import install  # signal handlers from the main thread: SIGTERM to the

        install()  # launcher writes sweep-end.json "killed" (LaunchPrep.finish may run in a pickling thread)
    return LaunchPrep(launch, sweep, cwd if switches.get("git", True) else None)


def _launcher_pinfo() -> dict[str, Any]:
    from lumo_hydra.store.procinfo import pinfo

    p = pinfo()
    return {"pid": p["pid"], "host": p["host"], "pstart": p["pstart"]}


def _expected_jobs(config: Any) -> int | None:
    from lumo_hydra._hydra.sweep import expected_jobs

    return expected_jobs(config)


def _mask_sweep(sweep: dict[str, Any]) -> None:
    """Secret values out of the sweep record: argv, command and overrides (``run.json['masked']``'s list
    is ``sweep.json['masked']`` here)."""
    from lumo_hydra.record.secrets import Masker

    m = Masker()
    sweep["argv"] = m.argv(sweep["argv"])
    sweep["overrides"] = {k: m.overrides(v) for k, v in sweep["overrides"].items()}
    sweep["command"] = m.command(sweep["command"]) if isinstance(sweep["command"], str) else sweep["command"]
    for key in ("argv", "overrides", "command", "dir"):
        sweep[key] = m.scrub(sweep[key])
    if m.names:
        sweep["masked"] = m.names


def _check_writable(home: str) -> None:
    """Fail before any job starts when the store cannot be written (a run is never silently unrecorded)."""
    from lumo_hydra.errors import StoreError

    folder = StoreLayout(home).experiments_dir
    try:
        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise StoreError(f"cannot write the store {str(folder)!r}: {e.strerror or e}; "
                         f"set LUMO_HOME or hydra.callbacks.lumo.home to a writable folder") from e


def mark_sweep_job(home: str | os.PathLike[str], sweep_id: str, job_num: Any, test_name: str) -> None:
    """Link a job to its sweep: an empty marker ``sweeps/<id>/jobs/<job_num>.<test_name>``, made by the job."""
    marker = StoreLayout(home).sweep_marker(sweep_id, job_num, test_name)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


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
    from lumo_hydra.record import hooks as H
    from lumo_hydra.record.experiment import SimpleExperiment
    from lumo_hydra.record.hooks import build_command

    if launch is None:  # e.g. a launcher that called on_job_start without on_run/multirun_start here
        launch = {"argv": user_argv(), "cwd": os.getcwd(), "snapshot": None, "sweep_id": None}
    if launch.get("launcher"):  # a sweep job: a worker whose launcher died takes no more jobs (11.10)
        from lumo_hydra.record.abort import stop_with_parent

        stop_with_parent(launch["launcher"])
    # the sweep folder is recorded for a sweep's job only: a run does not resolve its ${now:...} pattern
    facts = hydra_facts(config, sweep_dir=launch.get("sweep_dir") if launch.get("sweep_id") else "")
    name = exp_name or str(facts["job_name"] or "app")
    cwd = launch.get("cwd") or os.getcwd()
    argv = job_argv(launch, facts)
    # what the job runs, seen from the user's side (a launcher's worker has its own argv and __main__)
    execute = {"cwd": cwd, "exec_bin": sys.executable, "exec_file": argv[0] or None, "exec_argv": argv,
               "repo": None, "command": None}
    snap = launch.get("snapshot")
    # switched-off hooks are still passed, disabled, so the record says {"loaded": false, "msg": "disabled"}
    hooks = H.build_hooks(switches, {
        "git": {"result": snap} if snap else {"path": launch.get("cwd")},
        "last_cmd": {"command": build_command(argv, cwd)},
    })

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
    from lumo_hydra.record.secrets import mask_record

    extra: dict[str, Any] = {"execute": execute, "hydra": hydra_info, "params": resolved}
    mask_record(extra)  # secrets of argv, overrides and the config as ``***`` (also checked by start())
    exp.start(sweep=launch.get("sweep_id"), **extra)
    sweep_id = launch.get("sweep_id")
    if sweep_id:
        mark_sweep_job(exp.root, sweep_id, hydra_info["job_num"], str(exp.test_name))
    return exp


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
