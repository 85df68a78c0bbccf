"""Compatibility name for ``from lumo_hydra.hooks import GitCommit, ...`` (docs/experiment.md).

The hooks live in :mod:`lumo_hydra.record.hooks`.
"""
from lumo_hydra.record.hooks import *  # noqa: F401,F403
from lumo_hydra.record.hooks import __all__  # noqa: F401
