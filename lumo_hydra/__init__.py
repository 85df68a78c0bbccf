"""lumo-hydra: lumo's experiment management for Hydra/OmegaConf apps.

Public names are imported lazily, so ``import lumo_hydra`` stays cheap (no torch, no pandas, no git)
until a name is used.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "Params": "lumo_hydra.params",
    "choice": "lumo_hydra.params",
    "arange": "lumo_hydra.params",
    "ParamsValueError": "lumo_hydra.errors",
    "LumoValueError": "lumo_hydra.errors",
    "Experiment": "lumo_hydra.experiment",
    "SimpleExperiment": "lumo_hydra.experiment",
    "current_experiment": "lumo_hydra.experiment",
    "Watcher": "lumo_hydra.watcher",
    "C": "lumo_hydra.watcher",
    "DatasetBuilder": "lumo_hydra.data",
    "main": "lumo_hydra.main",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .errors import LumoValueError, ParamsValueError
    from .params import Params, arange, choice
    from .experiment import Experiment, SimpleExperiment, current_experiment
    from .watcher import C, Watcher
    from .data import DatasetBuilder
    from .main import main


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lumo_hydra' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
