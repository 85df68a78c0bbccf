"""Run ids as ``lumo-hydra show`` takes them (prefixes, ``exp/test``, sweep ids) for pack and push,
through the Watcher; and the public :func:`pack`/:func:`pack_runs` that use it.

Kept apart from :mod:`lumo_hydra.share.pack` so that ``share.backup`` (reached from
``Experiment.backup``) never imports the Watcher, which imports ``record``: no import cycle.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lumo_hydra.errors import RunNotFoundError
from lumo_hydra.share import pack as _pack
from lumo_hydra.store.layout import StoreLayout

__all__ = ["watcher_fallback", "pack", "pack_runs"]


def watcher_fallback(store_root: str | os.PathLike[str] | None) -> _pack.Fallback:
    """A resolver of run ids through the Watcher of the store: a run id (prefix, ``exp/test``, info
    folder), else a sweep id (its jobs)."""
    state: dict[str, Any] = {}

    def resolve(rid: str) -> list[tuple[str, str]]:
        if "w" not in state:
            from lumo_hydra.watcher import Watcher

            state["w"] = Watcher(root=str(StoreLayout(store_root).root))
        w = state["w"]
        try:
            ref = w.resolve(rid)
            return [(Path(ref[2]).parent.name, Path(ref[2]).name)]
        except RunNotFoundError as run_err:
            try:
                df = w.sweep(rid)
            except RunNotFoundError:
                raise run_err from None
            return list(zip(df["exp_name"], df["test_name"])) if len(df) else []

    return resolve


def pack_runs(store_root: str | os.PathLike[str] | None, run_ids: Iterable[str], out_path: str | os.PathLike[str],
              blobs: bool = False, **options: Any) -> _pack.PackResult:
    """:func:`lumo_hydra.share.pack.pack_runs` with run ids resolved as ``show`` resolves them, or sweep ids."""
    options.setdefault("fallback", watcher_fallback(store_root))
    return _pack.pack_runs(store_root, run_ids, out_path, blobs, **options)


def pack(store_root: str | os.PathLike[str] | None, run_ids: Iterable[str], out_path: str | os.PathLike[str],
         blobs: bool = False, **options: Any) -> Path:
    """Write the runs ``run_ids`` (run or sweep ids) of the store at ``store_root`` (default ``$LUMO_HOME``)
    into the ``.tar.gz`` ``out_path``; returns its absolute path. Options: see :func:`pack_runs`."""
    return pack_runs(store_root, run_ids, out_path, blobs, **options).path
