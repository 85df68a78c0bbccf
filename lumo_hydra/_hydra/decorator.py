"""``@lumo_hydra.main``: ``hydra.main`` with lumo-hydra's callback always on.

The decorator adds the override ``++hydra.callbacks.lumo._target_=...LumoCallback`` to the arguments
Hydra parses (idempotent when the user also selected ``hydra/callbacks=lumo``), so every run and
sweep is validated before it starts; each job of a multirun (whose config a sweeper may have chosen)
validates its composed config again before the task runs. The user's command line is kept in :data:`ORIGINAL_ARGV`.
"""
from __future__ import annotations

import functools
import inspect
import sys
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from lumo_hydra._hydra import session
from lumo_hydra._hydra.session import ORIGINAL_ARGV
from lumo_hydra.errors import LumoValueError

__all__ = ["main", "ORIGINAL_ARGV", "CALLBACK_OVERRIDE"]


#: the override that makes the callback active (merges into ``hydra/callbacks=lumo`` if selected)
CALLBACK_OVERRIDE = "++hydra.callbacks.lumo._target_=lumo_hydra.hydra_callback.LumoCallback"

# arguments after which Hydra must not see an extra override
_NO_EXTRA = ("-sc", "--shell-completion", "--experimental-rerun")

_UNSET: Any = object()
_F = TypeVar("_F", bound=Callable[..., Any])


def main(
    config_path: str | None = _UNSET,
    config_name: str | None = None,
    version_base: str | None = _UNSET,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a task function like ``hydra.main``; the task may take ``cfg`` (a ``DictConfig``) or a
    parameter annotated with a :class:`~lumo_hydra.Params` subclass (it gets ``Cls.from_config(cfg)``)."""
    hydra_kwargs: dict[str, Any] = {"config_name": config_name}
    if config_path is not _UNSET:
        hydra_kwargs["config_path"] = config_path
    if version_base is not _UNSET:
        hydra_kwargs["version_base"] = version_base

    def decorator(task_function: Callable[..., Any]) -> Callable[..., Any]:
        import hydra

        call = _task_caller(task_function)

        @functools.wraps(task_function)  # Hydra unwraps __wrapped__ to find the user's file/module
        def job(cfg: Any) -> Any:
            from lumo_hydra.params.validation import validate_config

            # in RUN mode the callback checked these values in on_run_start, in this process: once is enough
            if not session.take_run_validated() and _validation_enabled():
                validate_config(cfg)
            return call(cfg)

        hydra_main = hydra.main(**hydra_kwargs)(job)

        @functools.wraps(task_function)
        def entry(cfg_passthrough: Any = None) -> Any:
            if cfg_passthrough is not None:
                return job(cfg_passthrough)
            ORIGINAL_ARGV[:] = list(sys.argv)
            saved = sys.argv
            sys.argv = with_callback_override(saved)
            try:
                return hydra_main()
            finally:
                sys.argv = saved

        return entry

    return decorator


def _validation_enabled() -> bool:
    """``hydra.callbacks.lumo.validate`` of the running job (true when it cannot be read)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        hydra_cfg: Any = HydraConfig.get()
        return bool(OmegaConf.select(hydra_cfg, "callbacks.lumo.validate", default=True))
    except Exception:
        return True


def with_callback_override(argv: list[str]) -> list[str]:
    """``argv`` with :data:`CALLBACK_OVERRIDE` added where Hydra's parser accepts it.

    argparse takes the positional overrides as one contiguous run (``app.py a=1 -m b=2`` is an error),
    so the override goes right after the user's overrides, or first when there are none (never after
    ``--info``, whose value is optional). Unchanged for shell completion, reruns and unparsable input.
    """
    rest = list(argv[1:])
    if any(a in _NO_EXTRA or a.startswith(tuple(x + "=" for x in _NO_EXTRA)) for a in rest):
        return list(argv)
    try:
        import contextlib
        import io

        from hydra._internal.utils import get_args_parser

        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            overrides = list(get_args_parser().parse_args(rest).overrides)
    except (SystemExit, Exception):  # let Hydra report the user's mistake itself
        return list(argv)
    pos = 0
    if overrides:
        n = len(overrides)
        for i in range(len(rest) - n + 1):
            if rest[i:i + n] == overrides:
                pos = i + n
                break
        else:
            return list(argv)
    return [argv[0], *rest[:pos], CALLBACK_OVERRIDE, *rest[pos:]]


# ---- how to call the task ----------------------------------------------------------------------
# One provider per parameter of the task function. Later versions add named providers
# (e.g. "exp": the current Experiment) to _NAMED_PROVIDERS.

_Provider = Callable[[Any], Any]


def _current_experiment(cfg: Any) -> Any:
    from lumo_hydra.record.experiment import current_experiment

    return current_experiment()


_NAMED_PROVIDERS: dict[str, _Provider] = {"exp": _current_experiment}


def _task_caller(task: Callable[..., Any]) -> Callable[[Any], Any]:
    """Build ``call(cfg)`` from the task's signature (checked once, at decoration time)."""
    from lumo_hydra.params.params import Params

    sig = inspect.signature(task)
    try:
        hints = typing.get_type_hints(task)
    except Exception:
        hints = {}
    providers: list[tuple[str, inspect.Parameter, _Provider]] = []
    cfg_given = False
    for name, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = hints.get(name)
        if isinstance(ann, type) and issubclass(ann, Params):
            providers.append((name, p, functools.partial(_from_config, ann)))
        elif name in _NAMED_PROVIDERS:
            providers.append((name, p, _NAMED_PROVIDERS[name]))
        elif not cfg_given and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            providers.append((name, p, _identity))
            cfg_given = True
        elif p.default is p.empty:
            raise LumoValueError(
                f"task function {getattr(task, '__qualname__', task)!r} has parameter {name!r} that lumo_hydra.main "
                f"cannot provide; allowed: one config parameter (cfg), a Params-annotated parameter"
                + (f", or {sorted(_NAMED_PROVIDERS)}" if _NAMED_PROVIDERS else "")
            )

    def call(cfg: Any) -> Any:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, p, provide in providers:
            if p.kind == p.POSITIONAL_ONLY:
                args.append(provide(cfg))
            else:
                kwargs[name] = provide(cfg)
        return task(*args, **kwargs)

    return call


def _identity(cfg: Any) -> Any:
    return cfg


def _from_config(cls: Any, cfg: Any) -> Any:
    return cls.from_config(cfg)
