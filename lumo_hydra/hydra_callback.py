"""``hydra/callbacks=lumo``: the Hydra callback of lumo-hydra (for now: validation only).

Built once in the launching process from ``hydra.callbacks.lumo``; a pickled copy travels to every
job, so it keeps only plain data. A callback cannot fail a run by raising an ``Exception`` (Hydra
turns it into a warning), so a bad parameter value stops everything with ``SystemExit(message)``:
the message goes to stderr and the exit status is 1, before any job starts.
"""
from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback

__all__ = ["LumoCallback"]


class LumoCallback(Callback):
    """Validates parameters before a run or a sweep starts (recording hooks come later).

    Parameters (``hydra.callbacks.lumo.*``): ``exp_name`` (default: the Hydra job name), ``home``
    (the store root; default ``$LUMO_HOME``), ``validate`` (check parameter values, default true).
    Unknown options (e.g. hook switches of later versions) are kept in ``self.options`` and ignored.
    """

    def __init__(self, exp_name: str | None = None, home: str | None = None, validate: bool = True, **kwargs: Any) -> None:
        self.exp_name = exp_name
        self.home = home
        self.validate = bool(validate)
        self.options: dict[str, Any] = dict(kwargs)

    # ---- Hydra hooks -----------------------------------------------------------------------------

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        if self.validate:
            self._validate_run(config)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if self.validate:
            self._validate_multirun(config)

    # ---- validation ------------------------------------------------------------------------------

    def _validate_run(self, config: Any) -> None:
        """RUN mode, launching process (= the job): check the composed config."""
        from .errors import ParamsValueError
        from .validation import validate_config

        try:
            validate_config(config)
        except ParamsValueError as e:
            raise SystemExit(_message(e)) from None

    def _validate_multirun(self, config: Any) -> None:
        """MULTIRUN, launching process, before the sweeper exists: check the base config and every
        value of every sweep override, so a bad sweep stops before any job (or job folder) exists."""
        from .errors import ParamsValueError
        from .validation import validate_config, validate_sweep

        errors: list[ParamsValueError] = []
        for check in (validate_config, validate_sweep):
            try:
                check(config)
            except ParamsValueError as e:
                errors.extend(getattr(e, "errors", [e]))
        if errors:
            from .validation import ParamsValidationError

            raise SystemExit(_message(errors[0] if len(errors) == 1 else ParamsValidationError(errors))) from None

    def __repr__(self) -> str:
        return f"LumoCallback(exp_name={self.exp_name!r}, home={self.home!r}, validate={self.validate!r})"


def _message(e: BaseException) -> str:
    return f"lumo-hydra: {e}"
