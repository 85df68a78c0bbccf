"""Carrying runs out of a store: ``pack`` and ``unpack`` (docs/share.md)."""
from __future__ import annotations

from lumo_hydra.share.pack import pack
from lumo_hydra.share.unpack import MAX_EXPANDED_BYTES, UnpackResult, unpack

__all__ = ["pack", "unpack", "UnpackResult", "MAX_EXPANDED_BYTES"]
