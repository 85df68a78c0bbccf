"""Build a ``DatasetBuilder`` from a YAML DAG spec (through Hydra's ``instantiate`` or directly).

A spec (see ``docs/dataset.md`` and ``conf/lumo/dataset/*.yaml``)::

    _target_: lumo_hydra.data.spec.build
    _recursive_: false              # required: the spec builds its own nodes, each exactly once
    nodes:                          # named objects; each a `_target_` config, a literal, or a reference
      digits: {_target_: lumo_hydra.data.digits.load, split: train}
      norm: {_target_: lumo_hydra.data.digits.Normalize}
    inputs:                         # input name -> source (a reference, a `_target_` config, a literal
      xs: {source: "@digits.images", transform: "@norm"}   # list, or {source:, transform:})
      ys: "@digits.targets"         # "@node.key": the column `key` of a dict-like node (or an attribute)
    outputs:                        # output name -> {input:, transform:} | {idx: true} | input name
      xs1: {input: xs, transform: {_target_: lumo_hydra.data.digits.RandomAugment, strength: 0.3}}
      ys: {input: ys}
    global_transform: null          # a reference or a `_target_` config (dict in, dict out)
    mode: zip                       # zip | chain | item
    subset: null                    # a list of ints, {start:, stop:, step:}, a reference or a config
    repeat: null                    # applied after subset
    scale_to_size: null             # applied after repeat

A string ``"@name"`` anywhere (also deep inside a node's arguments) is the object built from node
``name``; ``"@@text"`` is the literal string ``"@text"``. Every node is built once, in topological
order, and shared by everything that references it; nodes nothing references are not built.

The engine is :mod:`lumo_hydra.data.spec_engine` (it builds whatever builder class it is given:
``MyBuilder.from_spec(...)`` returns a ``MyBuilder``); this module adds the plain ``DatasetBuilder``
entry points. ``lumo_hydra.data_spec`` is the older name of this module, kept for users' YAML.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lumo_hydra.data.builder import DatasetBuilder
from lumo_hydra.data.spec_engine import SPEC_KEYS, build_with, instantiate_node
from lumo_hydra.errors import DatasetSpecError

__all__ = ["build", "build_from_spec", "DatasetSpecError", "instantiate_node", "SPEC_KEYS"]


def build(**spec: Any) -> DatasetBuilder:
    """``_target_`` of a YAML dataset spec: returns the ready ``DatasetBuilder`` (keys: ``SPEC_KEYS``)."""
    return build_with(DatasetBuilder, spec)


def build_from_spec(spec: str | Path | Mapping | Any, **overrides: Any) -> DatasetBuilder:
    """Build from a spec given as a YAML file path, a dict or a DictConfig, merged with ``overrides``
    (nested dicts, e.g. ``nodes={'digits': {'split': 'test'}}``)."""
    return DatasetBuilder.from_spec(spec, **overrides)
