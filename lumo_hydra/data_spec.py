"""Compatibility name: ``_target_: lumo_hydra.data_spec.build`` in users' YAML keeps working.

The spec builder lives in :mod:`lumo_hydra.data.spec`.
"""
from lumo_hydra.data.spec import DatasetSpecError, build, build_from_spec, instantiate_node

__all__ = ["build", "build_from_spec", "instantiate_node", "DatasetSpecError"]
