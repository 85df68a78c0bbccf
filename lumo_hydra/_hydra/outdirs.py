"""The folders Hydra writes for an app (run and sweep dirs), which the code snapshot leaves out.

Read in the launching process from the ``hydra.run.dir`` and ``hydra.sweep.dir`` patterns: the folder
each resolves to now, and its fixed part (the folders above the first component that changes from run
to run, such as ``${now:...}``), so that earlier runs' folders are left out too (``outputs/`` for the
default ``outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}``).
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["hydra_output_dirs", "fixed_part"]

# interpolations whose value is the same for every run of the app: they may be part of the fixed folder
# (patterns compiled only when a folder pattern needs resolving: most launches take _raw_fixed's way)
_STABLE = r"^\$\{(hydra[.:](runtime\.cwd|job\.name|job\.config_name)|oc\.env:[^}]*)\}$"
_INTERP = r"\$\{[^{}]*\}"


def fixed_part(pattern: str, resolved: str) -> str | None:
    """The part of ``resolved`` (``pattern`` resolved) above the first path component of ``pattern``
    that varies between runs; ``resolved`` itself when nothing varies; ``None`` when unsure."""
    import re

    parts = pattern.replace("\\", "/").split("/")
    for i, comp in enumerate(parts):
        if any(not re.match(_STABLE, m) for m in re.findall(_INTERP, comp)) or "${" in re.sub(_INTERP, "", comp):
            below = len(parts) - i
            res = resolved.replace("\\", "/").rstrip("/").split("/")
            if i == 0 or below >= len(res):
                return None
            return "/".join(res[: len(res) - below]) or None
    return resolved


def _raw_fixed(pattern: str) -> str | None:
    """The fixed part of ``pattern`` when it can be read without resolving anything: the components
    above the first varying one hold no interpolation, and the folder is not the launch folder or one
    holding it (then the resolved run folder itself is needed). ``None`` otherwise."""
    parts = pattern.replace("\\", "/").split("/")
    for i, comp in enumerate(parts):
        if "${" in comp:
            prefix = "/".join(parts[:i])
            break
    else:
        return None  # nothing varies: the caller takes the pattern itself
    if not prefix or "${" in prefix or any(c in (".", "..") for c in parts[:i] if c):
        return None
    cwd, folder = os.getcwd(), os.path.abspath(prefix)
    if cwd == folder or cwd.startswith(folder.rstrip(os.sep) + os.sep):
        return None
    return prefix


def hydra_output_dirs(config: Any) -> list[str]:
    """The run and sweep folders of this launch and their fixed parts (absolute or relative to the
    launch folder), for ``snapshot(skip_dirs=...)``. Never raises: an unresolvable pattern is left out.

    Resolving a pattern (OmegaConf's grammar, ``${now:...}``) costs milliseconds at every launch, so a
    pattern whose fixed part is plain text (Hydra's defaults ``outputs/${now:...}/...`` and
    ``multirun/...``) gives just that folder, which holds every run's folder."""
    from omegaconf import OmegaConf

    out: list[str] = []
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        try:
            parent, _, leaf = key.rpartition(".")
            raw = OmegaConf.to_container(OmegaConf.select(config, parent), resolve=False)
            pattern = raw.get(leaf) if isinstance(raw, dict) else None
            if isinstance(pattern, str) and pattern and "${" not in pattern:
                node: Any = pattern
            else:
                quick = _raw_fixed(pattern) if isinstance(pattern, str) else None
                if quick is not None:
                    if quick not in out:
                        out.append(quick)
                    continue
                node = OmegaConf.select(config, key, default=None, throw_on_missing=False)
        except Exception:
            continue
        if not isinstance(node, str) or not node:
            continue
        out.append(node)
        fixed = fixed_part(str(pattern), node) if isinstance(pattern, str) else None
        if fixed and fixed not in out:
            out.append(fixed)
    return [os.path.normpath(d) for d in out]
