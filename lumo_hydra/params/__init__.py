"""Typed parameters: validators, ``Params``, the argv parser and config validation.

Names are imported lazily: a Hydra job of a plain YAML app imports ``lumo_hydra.params.validation``
without paying for ``Params`` itself.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS = {
    "Params": "lumo_hydra.params.params",
    "choice": "lumo_hydra.params.params",
    "arange": "lumo_hydra.params.params",
    "Validator": "lumo_hydra.params.params",
    "Choice": "lumo_hydra.params.params",
    "Arange": "lumo_hydra.params.params",
    "VALIDATOR_KEY": "lumo_hydra.params.params",
    "parse_value": "lumo_hydra.params.params",
    "ParamsArgsError": "lumo_hydra.errors",
    "ParamsFileError": "lumo_hydra.errors",
    "ParamsValueError": "lumo_hydra.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from lumo_hydra.errors import ParamsArgsError as ParamsArgsError
    from lumo_hydra.errors import ParamsFileError as ParamsFileError
    from lumo_hydra.errors import ParamsValueError as ParamsValueError
    from lumo_hydra.params.params import VALIDATOR_KEY as VALIDATOR_KEY
    from lumo_hydra.params.params import Arange as Arange
    from lumo_hydra.params.params import Choice as Choice
    from lumo_hydra.params.params import Params as Params
    from lumo_hydra.params.params import Validator as Validator
    from lumo_hydra.params.params import arange as arange
    from lumo_hydra.params.params import choice as choice
    from lumo_hydra.params.params import parse_value as parse_value


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lumo_hydra.params' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "params", "validation"])
