"""``hydra/callbacks=lumo``: the Hydra callback of lumo-hydra: validation, then recording of every job.

Built once in the launching process from ``hydra.callbacks.lumo``; a pickled copy travels to every
job, so it keeps only plain data. A callback cannot fail a run by raising an ``Exception`` (Hydra
turns it into a warning), so a bad parameter value stops everything with ``SystemExit(message)``:
the message goes to stderr and the exit status is 1, before any job starts.
"""
from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback

from lumo_hydra._hydra import session
from lumo_hydra.errors import LumoValueError, ParamsValueError, StoreError
from lumo_hydra.record.hooks import HOOK_SWITCHES

__all__ = ["LumoCallback"]


class LumoCallback(Callback):  # Hydra's documented base class (its hooks, and any a later Hydra adds)
    """Validates parameters before a run or a sweep starts, then records every job in the store.

    Parameters (``hydra.callbacks.lumo.*``): ``exp_name`` (default: the Hydra job name), ``home``
    (the store root; default ``$LUMO_HOME``), ``validate`` (check parameter values, default true),
    ``record`` (record jobs, default true), one switch per hook (``git``, ``lock``, ``last_cmd``,
    ``record_abort``, ``diary``, ``final_report``; all default true) and ``heartbeat_interval``
    (seconds, default 10). The shipped option file lists only ``_target_`` (every key of the node costs
    each job's composition), so options are added on the command line with ``+``:
    ``+hydra.callbacks.lumo.git=false``. An unknown option is a ``ValueError`` naming it.

    The launching process takes the git snapshot and the command once (``on_run_start`` /
    ``on_multirun_start``) and keeps them as plain data on ``self``; every job gets a pickled copy, so
    jobs do no git work. Hydra skips ``on_job_end`` on Ctrl-C, kills and ``sys.exit``: the
    experiment's ``RecordAbort`` hook records those.
    """

    def __init__(self, exp_name: str | None = None, home: str | None = None, validate: bool = True,
                 record: bool = True, heartbeat_interval: float = 10.0, **switches: Any) -> None:
        unknown = sorted(set(switches) - set(HOOK_SWITCHES))
        if unknown:
            import difflib

            allowed = ["exp_name", "home", "validate", "record", "heartbeat_interval", *HOOK_SWITCHES]
            key = unknown[0]
            close = difflib.get_close_matches(key, allowed, n=1)
            raise LumoValueError(
                f"unknown option hydra.callbacks.lumo.{key}={switches[key]!r}"
                + (f"; did you mean {close[0]!r}?" if close else "") + f" allowed: {allowed}")
        _check_options(exp_name, home, heartbeat_interval, {"validate": validate, "record": record, **switches})
        self.exp_name = exp_name
        self.home = str(home) if home else None
        self.validate = bool(validate)
        self.record = bool(record)
        #: one switch per row of lumo_hydra.record.hooks.HOOKS (all on by default)
        self.switches = {name: bool(switches.get(name, True)) for name in HOOK_SWITCHES}
        self.heartbeat_interval = float(heartbeat_interval)
        self._launch: dict[str, Any] | None = None  # plain JSON-able data: travels to jobs
        self._prep: Any = None  # LaunchPrep (holds the snapshot's git processes): launching process only
        self._exp: Any = None  # the job's Experiment, only inside a job process; never pickled

    def __getstate__(self) -> dict[str, Any]:
        self._launch_data()  # a launcher pickles us for its jobs: the snapshot must be there first
        state = dict(self.__dict__)
        state["_exp"] = None
        state["_prep"] = None
        return state

    def _launch_data(self) -> dict[str, Any] | None:
        if self._prep is not None:
            self._launch, self._prep = self._prep.finish(), None
        return self._launch

    # ---- Hydra hooks -----------------------------------------------------------------------------

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        if self.validate:
            self._validate_run(config)
        if self.record:
            self._prepare(config, multirun=False)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if self.validate:
            self._validate_multirun(config)
        if self.record:
            self._prepare(config, multirun=True)

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        if not self.record:
            return
        from lumo_hydra._hydra.job import start_job

        try:
            self._exp = start_job(config, self._launch_data(), exp_name=self.exp_name, home=self.home,
                                  switches=self.switches, heartbeat_interval=self.heartbeat_interval)
        except StoreError as e:  # never run a job unrecorded
            raise SystemExit(_message(e)) from None

    def on_run_end(self, config: Any, **kwargs: Any) -> None:
        self._launch_data()

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        self._launch_data()  # the sweep record is written even if no job started
        from lumo_hydra._hydra.sweep import sweep_ended

        sweep_ended()  # sweeps/<id>/sweep-end.json (11.11)

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        exp, self._exp = self._exp, None
        if exp is not None:
            from lumo_hydra._hydra.job import end_job

            end_job(exp, job_return)

    # ---- recording -------------------------------------------------------------------------------

    def _prepare(self, config: Any, *, multirun: bool) -> None:
        """Launching process: snapshot, command, sweep record, once. A store that cannot be written
        stops everything here, before any job starts."""
        from lumo_hydra._hydra.job import prepare_launch

        try:
            self._prep = prepare_launch(config, multirun=multirun, exp_name=self.exp_name, home=self.home,
                                        switches=self.switches)
            self._launch = None
        except StoreError as e:
            raise SystemExit(_message(e)) from None

    # ---- validation ------------------------------------------------------------------------------

    def _validate_run(self, config: Any) -> None:
        """RUN mode, launching process (= the job): check the composed config."""
        from lumo_hydra.params.validation import validate_config

        try:
            validate_config(config)
        except ParamsValueError as e:
            raise SystemExit(_message(e)) from None
        session.mark_run_validated()

    def _validate_multirun(self, config: Any) -> None:
        """MULTIRUN, launching process, before the sweeper exists: check the base config, every value
        of every sweep override, and every option of every swept config group, so a bad sweep stops
        before any job (or job folder) exists."""
        from lumo_hydra._hydra.sweep import validate_group_sweeps, validate_sweep
        from lumo_hydra.params.validation import validate_config

        def group_sweeps(cfg: Any) -> None:
            from hydra.core.global_hydra import GlobalHydra

            try:
                gh = GlobalHydra.instance()
                if gh.is_initialized():
                    loader = gh.config_loader()
                    validate_group_sweeps(cfg, lambda ovs: loader.load_sweep_config(cfg, ovs))
            except ParamsValueError:
                raise
            except Exception as e:  # an extra check: never the reason a sweep cannot start
                import logging

                logging.getLogger("lumo_hydra").debug("config-group sweep check skipped: %s", e)

        errors: list[ParamsValueError] = []
        for check in (validate_config, validate_sweep, group_sweeps):
            try:
                check(config)
            except ParamsValueError as e:
                errors.extend(getattr(e, "errors", [e]))
        if errors:
            from lumo_hydra.errors import ParamsValidationError

            raise SystemExit(_message(errors[0] if len(errors) == 1 else ParamsValidationError(errors))) from None

    def __repr__(self) -> str:
        return (f"LumoCallback(exp_name={self.exp_name!r}, home={self.home!r}, validate={self.validate!r}, "
                f"record={self.record!r})")


def _check_options(exp_name: Any, home: Any, heartbeat_interval: Any, switches: dict[str, Any]) -> None:
    """Every option's value, checked when Hydra builds the callback in the launching process: a bad
    one stops the run or sweep there, before any job starts, like an unknown option."""
    def bad(key: str, value: Any, allowed: str) -> LumoValueError:
        return LumoValueError(f"invalid option hydra.callbacks.lumo.{key}={value!r}; allowed: {allowed}")

    if exp_name is not None:
        from lumo_hydra.store.ids import validate_name

        if not isinstance(exp_name, str):
            raise bad("exp_name", exp_name, "a name (letters, digits, '.', '_', '-')")
        try:
            validate_name(exp_name, "exp_name")
        except ValueError as e:
            raise LumoValueError(f"invalid option hydra.callbacks.lumo.exp_name={exp_name!r}: {e}") from None
    if home is not None and not isinstance(home, str):
        raise bad("home", home, "a folder path")
    if isinstance(heartbeat_interval, bool) or not isinstance(heartbeat_interval, (int, float)) \
            or not heartbeat_interval > 0:
        raise bad("heartbeat_interval", heartbeat_interval, "seconds > 0")
    for key, value in switches.items():
        if not isinstance(value, bool):
            raise bad(key, value, "true or false")


def _message(e: BaseException) -> str:
    return f"lumo-hydra: {e}"
