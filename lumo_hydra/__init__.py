"""lumo-hydra: lumo's experiment management for Hydra/OmegaConf apps.

Public names are imported lazily, so ``import lumo_hydra`` stays cheap (no torch, no pandas, no git)
until a name is used.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lumo_hydra._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "Params": "lumo_hydra.params",
    "BaseParams": "lumo_hydra.params", "BoundCheckError": "lumo_hydra.errors",  # lumo names (H15a)
    "choice": "lumo_hydra.params",
    "arange": "lumo_hydra.params",
    "ParamsValueError": "lumo_hydra.errors",
    "LumoValueError": "lumo_hydra.errors",
    "Experiment": "lumo_hydra.record.experiment",
    "SimpleExperiment": "lumo_hydra.record.experiment",
    "current_experiment": "lumo_hydra.record.experiment",
    "Metric": "lumo_hydra.record.metric",
    "Watcher": "lumo_hydra.watcher",
    "C": "lumo_hydra.watcher",
    "DatasetBuilder": "lumo_hydra.data",
    "main": "lumo_hydra._hydra.decorator",
}

__all__ = [
    "__version__", "Params", "choice", "arange", "ParamsValueError", "LumoValueError", "Experiment",
    "SimpleExperiment", "current_experiment", "Metric", "Watcher", "C", "DatasetBuilder", "main",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from lumo_hydra._hydra.decorator import main as main
    from lumo_hydra.data.builder import DatasetBuilder as DatasetBuilder
    from lumo_hydra.errors import LumoValueError as LumoValueError
    from lumo_hydra.errors import ParamsValueError as ParamsValueError
    from lumo_hydra.params.params import Params as Params
    from lumo_hydra.params.params import arange as arange
    from lumo_hydra.params.params import choice as choice
    from lumo_hydra.record.experiment import Experiment as Experiment
    from lumo_hydra.record.experiment import SimpleExperiment as SimpleExperiment
    from lumo_hydra.record.experiment import current_experiment as current_experiment
    from lumo_hydra.record.metric import Metric as Metric
    from lumo_hydra.watcher.watcher import C as C
    from lumo_hydra.watcher.watcher import Watcher as Watcher


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lumo_hydra' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
