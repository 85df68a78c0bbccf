"""Sweep validation: a multirun's sweep overrides and swept config groups, checked before any job starts.

:func:`validate_sweep` checks every value of every sweep override (``a=1,5,20``, ``choice(...)``,
``range(...)``, the bounds of ``interval(a, b)``) against the validator of its key;
:func:`validate_group_sweeps` composes each option of each swept config group (``-m optim=sgd,adam``)
and checks the result with :func:`lumo_hydra.params.validation.validate_config`. The ``hydra/callbacks=lumo``
callback runs both in the launching process. Hydra's override parser is imported only when an override
may touch a validated key.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from lumo_hydra._hydra.overrides import overrides_parser, unquote
from lumo_hydra.errors import ParamsValueError
from lumo_hydra.params import validation  # used as validation.x: a patched validate_config sees every call

__all__ = ["validate_sweep", "validate_group_sweeps"]

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
