"""Hydra's facts about a job, read from the config nodes: overrides, output folder, job number, launcher...

Values are read raw from the OmegaConf nodes where they are plain (Hydra fills them in for a job), which
costs a fraction of ``OmegaConf.select``; the job's own config is turned into plain data key by key.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("lumo_hydra")

__all__ = ["hydra_facts", "task_params", "sweeper_direction", "sweep_direction"]

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



def sweeper_direction(cfg: Any) -> str | None:
    """``'minimize'``/``'maximize'`` of a sweeper config (``hydra.sweeper`` as plain data), or ``None`` when
    it does not optimize (the basic sweeper): Optuna's ``direction`` (the first of several objectives),
    Nevergrad's ``optim.maximize``, Ax's ``ax_config.experiment.minimize``."""
    if not isinstance(cfg, dict):
        return None
    d = cfg.get("direction")
    if isinstance(d, (list, tuple)) and d:
        d = d[0]
    if isinstance(d, str) and d.lower() in ("minimize", "maximize"):
        return d.lower()
    optim = cfg.get("optim")
    if isinstance(optim, dict) and isinstance(optim.get("maximize"), bool):
        return "maximize" if optim["maximize"] else "minimize"
    ax = cfg.get("ax_config")
    exp = ax.get("experiment") if isinstance(ax, dict) else None
    if isinstance(exp, dict) and isinstance(exp.get("minimize"), bool):
        return "minimize" if exp["minimize"] else "maximize"
    return None


def sweep_direction(config: Any) -> str | None:
    """The direction of the job config's sweeper (:func:`sweeper_direction` of ``hydra.sweeper``)."""
    from omegaconf import OmegaConf

    try:
        node = OmegaConf.select(config, "hydra.sweeper", default=None, throw_on_missing=False)
        return sweeper_direction(OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else None)
    except Exception:  # an unresolvable sweeper config: nothing recorded
        return None


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
            raw = getattr(node, "_value", None)
            out[str(k)] = OmegaConf.to_container(node, resolve=False) if container else (raw() if callable(raw) else node)
    return out
