"""Runs that moved: a ``run.json`` read from another place than the one it was written in.

A run's record holds absolute paths (``paths.*``, ``execute.cwd``, ``git.repo``, ...) of the machine and
store it was recorded in. When the run now lives in another store (unpacked from a pack, or a store
folder copied or moved), readers must not trust them: :func:`rebase_record` maps every path under the
old store root onto the store the run lives in now, and, when ``unpacked.json`` (written by ``unpack``
beside ``run.json``; run.json keeps its single writer) says where the run's code snapshot went, every
path under the old repository onto that repository. ``rec["moved"]`` then says what was mapped.
"""
from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["UNPACKED_JSON", "rebase_record", "rebase_if_moved", "read_provenance"]

#: written by ``lumo-hydra unpack`` beside an unpacked run's ``run.json``: where it came from
UNPACKED_JSON = "unpacked.json"


def read_provenance(info_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``unpacked.json`` of a run folder, or ``None`` when the run was not unpacked (or the file is damaged)."""
    try:
        with open(os.path.join(info_dir, UNPACKED_JSON), "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _swap(value: Any, old: str, new: str) -> Any:
    """``value`` with a leading ``old`` path replaced by ``new`` (strings, lists and dicts, recursively)."""
    if isinstance(value, str):
        if value == old:
            return new
        if value.startswith(old + "/"):
            return new + value[len(old):]
        if value.startswith("cd ") and (" " + old) in value:  # a recorded shell command: `cd <old> && ...`
            return value.replace(" " + old + "/", " " + new + "/").replace(" " + old + " ", " " + new + " ")
        return value
    if isinstance(value, list):
        return [_swap(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _swap(v, old, new) for k, v in value.items()}
    return value


def rebase_record(info_dir: str | os.PathLike[str], rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` (the ``run.json`` of the run folder ``info_dir``) with its paths re-based on where the run
    lives now; the same dict, unchanged, when it did not move. ``rec["moved"]`` records the mapping."""
    here = os.path.abspath(os.fspath(info_dir))
    paths = rec.get("paths")
    was = paths.get("info_dir") if isinstance(paths, dict) else None
    prov = read_provenance(here)
    if (not isinstance(was, str) or was == here) and prov is None:
        return rec
    moved: dict[str, Any] = {}
    root_now = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    if isinstance(was, str) and was != here:
        root_was = os.path.dirname(os.path.dirname(os.path.dirname(was.rstrip("/"))))
        if root_was and root_was != "/":
            moved["root"] = [root_was, root_now]
    code = prov.get("code") if prov else None
    if (isinstance(code, dict) and isinstance(code.get("origin_repo"), str) and isinstance(code.get("repo"), str)
            and code["origin_repo"] != code["repo"]):
        moved["repo"] = [code["origin_repo"], code["repo"]]
    if not moved:
        return rec
    for key in ("paths", "execute", "git", "hooks", "hydra", "rerun", "rerun_of_info"):
        val = rec.get(key)
        if val is None:
            continue
        for old, new in moved.values():
            val = _swap(val, old, new)
        rec[key] = val
    rec["moved"] = moved
    return rec


def rebase_if_moved(info_dir: str, rec: dict[str, Any], seen: dict[tuple[str, str], bool]) -> dict[str, Any]:
    """:func:`rebase_record` for a reader of many runs (the Watcher), cheap for the runs that did not move:
    only a run whose recorded ``paths.info_dir`` names another store root than the one ``info_dir``
    (absolute) is in is looked at further (its ``unpacked.json`` read); ``seen`` memoizes whether two
    roots differ (symlinks resolved once per pair of roots, not per run)."""
    paths = rec.get("paths")
    was = paths.get("info_dir") if type(paths) is dict else None
    if type(was) is not str or was == info_dir:
        return rec
    key = (was.rstrip("/").rsplit("/", 3)[0], info_dir.rsplit("/", 3)[0])
    moved = seen.get(key)
    if moved is None:
        moved = seen[key] = os.path.realpath(key[0]) != os.path.realpath(key[1])
    return rebase_record(info_dir, rec) if moved else rec
