"""Compatibility name: ``_target_: lumo_hydra.data_digits.*`` in users' YAML keeps working.

The digits helpers live in :mod:`lumo_hydra.data.digits` (canonical ``_target_`` s:
``lumo_hydra.data.digits.*``).
"""
from lumo_hydra.data.digits import AddChannel, AddChannelTo, Compose, Normalize, RandomAugment, load

__all__ = ["load", "Normalize", "RandomAugment", "AddChannel", "AddChannelTo", "Compose"]
