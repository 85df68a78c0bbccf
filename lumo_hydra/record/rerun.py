"""What a rerun's record says about the run it repeats: ``LUMO_RERUN_INFO`` (set by ``lumo-hydra rerun``).

The rerun runs in a temporary worktree of the original run's snapshot that is deleted afterwards, so
the new record names the original repository and working folder (``execute.repo``, ``execute.cwd``)
and keeps the worktree and the snapshot under ``rerun``.
"""
from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["ENV_RERUN_INFO", "apply_rerun_info"]

ENV_RERUN_INFO = "LUMO_RERUN_INFO"


def apply_rerun_info(rec: dict[str, Any]) -> None:
    """Put ``$LUMO_RERUN_INFO`` (``{of, repo, cwd, snapshot, worktree}``) into the start record ``rec``."""
    raw = os.environ.get(ENV_RERUN_INFO)
    if not raw:
        return
    try:
        info = json.loads(raw)
    except ValueError:
        return
    if not isinstance(info, dict):
        return
    rec["rerun"] = {k: info.get(k) for k in ("of", "repo", "cwd", "snapshot", "worktree")}
    ex = rec.get("execute")
    if isinstance(ex, dict):
        if info.get("cwd"):
            ex["cwd"] = info["cwd"]
        if info.get("repo"):
            ex["repo"] = info["repo"]
