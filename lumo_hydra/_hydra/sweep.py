"""Sweep validation: a multirun's sweep overrides and swept config groups, checked before any job starts.

:func:`validate_sweep` checks every value of every sweep override (``a=1,5,20``, ``choice(...)``,
``range(...)``, the bounds of ``interval(a, b)``) against the validator of its key;
:func:`validate_group_sweeps` composes each option of each swept config group (``-m optim=sgd,adam``)
and checks the result with :func:`lumo_hydra.params.validation.validate_config`. The ``hydra/callbacks=lumo``
callback runs both in the launching process. Hydra's override parser is imported only when an override
may touch a validated key.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from lumo_hydra._hydra.overrides import overrides_parser, unquote
from lumo_hydra.errors import ParamsValueError
from lumo_hydra.params import validation  # used as validation.x: a patched validate_config sees every call

__all__ = ["validate_sweep", "validate_group_sweeps", "expected_jobs", "arm_sweep_end", "sweep_ended"]

#: the module whose absence proves a process holds no validator (plain YAML apps never import it)
VALIDATORS_MODULE = "lumo_hydra.params.validators"

_MAX_EXPAND = 100_000


def _sweep_values(ov: Any) -> tuple[list[Any], tuple[Any, Any] | None]:
    """The values an override stands for, and ``(start, end)`` for an interval sweep."""
    from hydra.core.override_parser.types import IntervalSweep, RangeSweep, ValueType

    vt = ov.value_type
    if vt == ValueType.INTERVAL_SWEEP:
        iv = ov.value()
        assert isinstance(iv, IntervalSweep)
        return [], (iv.start, iv.end)
    if vt == ValueType.GLOB_CHOICE_SWEEP:
        return [], None
    if vt == ValueType.RANGE_SWEEP:
        rs = ov.value()
        assert isinstance(rs, RangeSweep)
        values: list[Any] = []
        for v in rs.range():
            values.append(v)
            if len(values) >= _MAX_EXPAND:  # huge ranges: the extremes are what matter for bounds
                values.append(rs.stop)
                break
        return values, None
    if vt in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
        return [unquote(v) for v in ov.sweep_iterator()], None
    return [unquote(ov.value())], None


def _split_override(override: str) -> tuple[str, str, str]:
    """``(key, "=", value)`` of an override's raw text, without Hydra's parser: prefixes (``+``, ``~``)
    and a package (``@pkg``) dropped from the key; ``sep`` is empty when there is no ``=``."""
    key, sep, value = str(override).lstrip("+~").partition("=")
    return key.partition("@")[0].strip(), sep, value


def _may_have_validator(cfg: Any, override: str) -> bool:
    """Cheap pre-check on the raw override text: False only when its key surely has no validator."""
    key, sep, _ = _split_override(override)
    if not key or not sep and not str(override).startswith("~"):
        return True  # unusual form: let the real parser decide
    if key == "hydra" or key.startswith("hydra."):
        return False
    try:
        return validation.validator_for_key(cfg, key) is not None
    except Exception:
        return True


def validate_sweep(cfg: Any, overrides: Sequence[str] | None = None) -> None:
    """Check every value of every sweep override against the validator of its key.

    ``overrides`` defaults to ``cfg.hydra.overrides.task`` (what the user typed). Sweeps
    (``a=1,5,20``, ``choice(...)``, ``range(...)``) are expanded; ``interval(a, b)`` has its bounds
    checked. Config-group selections, deletions and keys without a validator are skipped. Raises
    like :func:`validate_config`, before any job starts.
    """
    from omegaconf import OmegaConf

    if overrides is None:
        overrides = list(OmegaConf.select(cfg, "hydra.overrides.task", default=None) or [])
    if not overrides:
        return
    if not any(_may_have_validator(cfg, o) for o in overrides):
        return  # the common case: no override touches a validated key; skip building Hydra's parser
    parsed = overrides_parser().parse_overrides(list(overrides))
    errors: list[ParamsValueError] = []
    seen: set[tuple[str, str]] = set()
    for ov in parsed:
        if ov.is_delete() or ov.package is not None:
            continue
        key = ov.key_or_group
        if key == "hydra" or key.startswith("hydra."):
            continue
        validator = validation.validator_for_key(cfg, key)
        if validator is None:
            continue
        values, interval = _sweep_values(ov)
        try:
            if interval is not None:
                validator.check_interval(key, *interval)
        except ParamsValueError as e:
            errors.append(e)
        for value in values:
            try:
                validator.check(key, value)
            except ParamsValueError as e:
                mark = (key, repr(value))
                if mark not in seen:
                    seen.add(mark)
                    errors.append(e)
    validation.raise_errors(errors)


def validate_group_sweeps(cfg: Any, compose: Any, overrides: Sequence[str] | None = None) -> None:
    """Check the options of every config-group sweep (``-m optim=sgd,adam``) before any job starts.

    A group option can bring values that break a validator (its YAML sets ``lr: 20`` where the schema
    allows ``[0, 1]``), which :func:`validate_sweep` cannot see from the override text. For each option
    of each swept group, ``compose(overrides)`` composes the job config with just that selection (the
    other keys keep their base values, which are checked separately) and :func:`validate_config` checks
    it. Errors name the selection that causes them. Validators come only from
    ``lumo_hydra.params.validators``, so when it was never imported nothing is composed (plain YAML apps
    pay nothing).
    """
    from omegaconf import OmegaConf

    if VALIDATORS_MODULE not in sys.modules:
        return
    if overrides is None:
        overrides = list(OmegaConf.select(cfg, "hydra.overrides.task", default=None) or [])
    choices = OmegaConf.select(cfg, "hydra.runtime.choices", default=None)
    groups = set(choices.keys()) if choices is not None else set()

    def group_sweep(o: str) -> bool:  # text pre-check: parse only what may be a group sweep
        key, sep, value = _split_override(o)
        return bool(sep) and key in groups and ("," in value or "(" in value)

    candidates = [o for o in overrides if group_sweep(o)]
    if not candidates:
        return
    from hydra.core.override_parser.types import ValueType

    errors: list[ParamsValueError] = []
    for ov in overrides_parser().parse_overrides(candidates):
        if ov.is_delete() or not ov.is_sweep_override() or ov.value_type == ValueType.GLOB_CHOICE_SWEEP:
            continue
        for option in ov.sweep_string_iterator():
            selection = f"{ov.get_key_element()}={option}"
            try:
                job_cfg = compose([selection])
            except Exception:  # a missing option and the like: Hydra reports those itself
                continue
            try:
                validation.validate_config(job_cfg)
            except ParamsValueError as e:
                for err in getattr(e, "errors", [e]):
                    errors.append(ParamsValueError(err.key, err.value, err.allowed, f"with {selection}"))
    validation.raise_errors(errors)


def expected_jobs(cfg: Any, overrides: Sequence[str] | None = None) -> int | None:
    """How many jobs Hydra's basic sweeper will launch (the product of the sweep lengths), or ``None``
    when it cannot be told in advance (another sweeper, ``interval``/glob sweeps, ``hydra.sweeper.params``)."""
    from hydra.core.override_parser.types import ValueType
    from omegaconf import OmegaConf

    target = str(OmegaConf.select(cfg, "hydra.sweeper._target_", default="") or "")
    if not target.endswith("BasicSweeper") or OmegaConf.select(cfg, "hydra.sweeper.params", default=None):
        return None
    if overrides is None:
        overrides = list(OmegaConf.select(cfg, "hydra.overrides.task", default=None) or [])
    n = 1
    try:
        for ov in overrides_parser().parse_overrides(list(overrides)):
            if not ov.is_sweep_override():
                continue
            if ov.value_type in (ValueType.INTERVAL_SWEEP, ValueType.GLOB_CHOICE_SWEEP):
                return None
            n *= sum(1 for _ in ov.sweep_string_iterator())
    except Exception:  # an override Hydra itself will report: no guess
        return None
    return n


class _SweepEnd:
    """The launching process's pending end record: written by :func:`sweep_ended` (Hydra's
    ``on_multirun_end``), at SIGTERM (``killed``, from ``record/abort.py``'s handler), or at exit
    (``interrupted`` after a ``KeyboardInterrupt``, else ``failed``)."""

    def __init__(self, home: str, sweep_id: str, exp_name: str | None, expected: int | None) -> None:
        self.home, self.sweep_id, self.exp_name, self.expected = home, sweep_id, exp_name, expected
        self.done = False
        self.pid = os.getpid()

    def write(self, status: str) -> None:
        if self.done or os.getpid() != self.pid:
            return
        self.done = True
        from lumo_hydra.store.sweepend import write_sweep_end

        try:
            write_sweep_end(self.home, self.sweep_id, status, exp_name=self.exp_name, expected=self.expected)
        except OSError as e:  # never fail the user's sweep over its end record
            print(f"lumo-hydra: cannot write the end record of sweep {self.sweep_id}: {e}", file=sys.stderr)

    def wait_jobs(self) -> None:
        """At Ctrl-C: wait (bounded) for this sweep's jobs in other processes to write their own end."""
        if self.done or os.getpid() != self.pid:
            return
        from lumo_hydra.store.sweepend import wait_jobs_ended

        wait_jobs_ended(self.home, self.sweep_id, self.exp_name)

    def at_exit(self) -> None:
        last = getattr(sys, "last_type", None)  # set for an uncaught exception before atexit runs
        self.write("interrupted" if isinstance(last, type) and issubclass(last, KeyboardInterrupt) else "failed")


_pending: _SweepEnd | None = None


def arm_sweep_end(home: str, sweep_id: str, exp_name: str | None, expected: int | None) -> None:
    """Launching process, once ``sweep.json`` is written: make sure ``sweep-end.json`` gets written."""
    global _pending
    import atexit

    _pending = pending = _SweepEnd(home, sweep_id, exp_name, expected)
    atexit.register(pending.at_exit)
    from lumo_hydra.record.abort import on_interrupted, on_killed

    on_killed(lambda: pending.write("killed"))  # SIGTERM to the launcher: "killed", not judged crashed
    on_interrupted(pending.wait_jobs)  # Ctrl-C: a pool kills its workers at once; let them record theirs first


def sweep_ended() -> None:
    """Hydra's ``on_multirun_end`` in the launching process: the sweep ran to its end."""
    if _pending is not None:
        _pending.write("finished")
