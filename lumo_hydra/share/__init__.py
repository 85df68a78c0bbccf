"""Carrying runs out of a store (docs/share.md): ``pack``/``unpack``, ``push``/``pull`` (share.remote),
backups (share.backup)."""
from __future__ import annotations

from lumo_hydra.share.select import pack, pack_runs
from lumo_hydra.share.unpack import MAX_EXPANDED_BYTES, UnpackResult, unpack

__all__ = ["pack", "pack_runs", "unpack", "UnpackResult", "MAX_EXPANDED_BYTES"]
