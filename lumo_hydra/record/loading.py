"""Helpers of ``Experiment.from_disk``/``from_cache``: where a moved run's folders are, a row's info folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lumo_hydra.errors import LumoValueError
from lumo_hydra.store.layout import StoreLayout

__all__ = ["place_paths", "row_info_dir"]


def place_paths(rec: dict[str, Any], layout: StoreLayout, info_dir: Path, exp_name: str, test_name: str,
                blob_dir: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str] | None) -> None:
    """Set ``rec['paths']`` for a run read from ``info_dir``: the given folders, else (when the run was
    moved, or the record names none) the folders beside ``info_dir`` in its store."""
    old = rec.get("paths")
    paths: dict[str, Any] = old if isinstance(old, dict) else {}
    rec["paths"] = paths
    was = paths.get("info_dir")
    moved = not was or os.path.realpath(str(was)) != os.path.realpath(info_dir)
    for key, given, here in (("blob_dir", blob_dir, layout.blob_dir(exp_name, test_name)),
                             ("cache_dir", cache_dir, layout.cache_dir(exp_name, test_name))):
        if given is not None:
            paths[key] = str(Path(given).absolute())
        elif moved or not paths.get(key):
            paths[key] = str(here)
    paths["info_dir"] = str(info_dir)


def row_info_dir(row: Any) -> str:
    """The info folder named by a Watcher row (a pandas row, a dict, a record, a ``RunRef``)."""
    get = getattr(row, "get", None)
    info_dir = get("info_dir") if callable(get) else getattr(row, "info_dir", None)
    if not info_dir and callable(get):
        paths = get("paths")
        info_dir = paths.get("info_dir") if isinstance(paths, dict) else get("paths.info_dir")
    if not isinstance(info_dir, (str, os.PathLike)) or not info_dir:
        raise LumoValueError(f"invalid row for from_cache: {type(row).__name__} without 'info_dir'; "
                             f"allowed: a row of Watcher().load() or a run record")
    return os.fspath(info_dir)
