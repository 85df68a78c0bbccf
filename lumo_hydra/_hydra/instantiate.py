"""Every call lumo_hydra makes to ``hydra.utils.instantiate`` (used by the dataset specs).

Two functions: :func:`instantiate` (one whole ``_target_`` config, Hydra's full semantics) and
:func:`target_callable` (a target as Hydra's own ``_partial_: true`` object, cached, so that calling it
runs every check ``instantiate`` runs without rebuilding an OmegaConf config per call).

Hydra 1.3.8 has no target whitelist. Hydra 1.4 wants framework calls to ``instantiate`` wrapped in a
whitelist scope: :func:`_policy_scope` is the one place to add it. A spec's targets are the user's
own, so lumo_hydra cannot name them; until 1.4 ships, the scope is empty and the caller's own policy
(Hydra's blocklist, ``HYDRA_INSTANTIATE_ALLOWLIST_OVERRIDE``, or an application-level whitelist scope
around the app) is what applies.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate as _hydra_instantiate

__all__ = ["instantiate", "target_callable"]

_ALLOWLIST_ENV = "HYDRA_INSTANTIATE_ALLOWLIST_OVERRIDE"
_CALLABLES: dict = {}  # (target name, allowlist override) -> Hydra's partial of the target
_CACHE_LIMIT = 1024


def _policy_scope() -> contextlib.AbstractContextManager[Any]:
    """The target-policy scope around our ``instantiate`` calls (Hydra 1.4's whitelist goes here)."""
    return contextlib.nullcontext()


def instantiate(config: Mapping) -> Any:
    """``hydra.utils.instantiate(config)``: one ``_target_`` config with Hydra's full semantics."""
    with _policy_scope():
        return _hydra_instantiate(config)


def target_callable(target: Any) -> Any:
    """``target`` (a dotted name or a callable) as Hydra's ``_partial_: true`` object.

    Calling the result goes through Hydra (target policy: blocklist, invocation checks) exactly as
    ``instantiate`` would. Cached per target name and allowlist override; callables are not cached.
    """
    if not isinstance(target, str):
        with _policy_scope():
            return _hydra_instantiate({"_target_": target, "_partial_": True})
    key = (target, os.environ.get(_ALLOWLIST_ENV))
    fn = _CALLABLES.get(key)
    if fn is None:
        with _policy_scope():
            fn = _hydra_instantiate({"_target_": target, "_partial_": True})
        if len(_CALLABLES) > _CACHE_LIMIT:
            _CALLABLES.clear()
        _CALLABLES[key] = fn
    return fn
