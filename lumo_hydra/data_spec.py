"""Compatibility name: ``_target_: lumo_hydra.data_spec.build`` in users' YAML keeps working.

The spec builder lives in :mod:`lumo_hydra.data.spec` (canonical ``_target_``:
``lumo_hydra.data.spec.build``).
"""
from lumo_hydra.data.spec import SPEC_KEYS, DatasetSpecError, build, build_from_spec, instantiate_node

__all__ = ["build", "build_from_spec", "instantiate_node", "DatasetSpecError", "SPEC_KEYS"]
