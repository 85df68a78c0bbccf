"""Typed parameters: validators, ``Params``, the argv parser and config validation.

Modules: ``validators`` (choice, arange: a leaf), ``params`` (the ``Params`` class), ``typed`` (what
class annotations mean, the dataclass generated for Hydra's ConfigStore), ``argv`` (the command-line
parser), ``files`` (parameter files), ``validation`` (checking a composed config). Sweep validation,
which needs Hydra's parser, lives at the Hydra edge (``lumo_hydra._hydra.sweep``).

Names are imported lazily: a Hydra job of a plain YAML app imports ``lumo_hydra.params.validation``
without paying for ``Params`` itself, and ``from lumo_hydra.params import choice`` loads only the validators.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS = {
    "Params": "lumo_hydra.params.params",
    "choice": "lumo_hydra.params.validators",
    "arange": "lumo_hydra.params.validators",
    "Validator": "lumo_hydra.params.validators",
    "Choice": "lumo_hydra.params.validators",
    "Arange": "lumo_hydra.params.validators",
    "VALIDATOR_KEY": "lumo_hydra.params.validators",
    "parse_value": "lumo_hydra.params.argv",
    "ParamsArgsError": "lumo_hydra.errors",
    "ParamsFileError": "lumo_hydra.errors",
    "ParamsValueError": "lumo_hydra.errors",
}
# lumo's names, importable from here but kept out of ``__all__`` (``import *`` brings our own names only)
_EXPORTS.update({"BaseParams": "lumo_hydra.params.params", "BoundCheckError": "lumo_hydra.errors",
                 "ParamsFileNotFoundError": "lumo_hydra.errors"})

__all__ = [
    "VALIDATOR_KEY", "Arange", "Choice", "Params", "ParamsArgsError", "ParamsFileError", "ParamsValueError",
    "Validator", "arange", "choice", "parse_value",
]

if TYPE_CHECKING:  # pragma: no cover
    from lumo_hydra.errors import BoundCheckError as BoundCheckError
    from lumo_hydra.errors import ParamsArgsError as ParamsArgsError
    from lumo_hydra.errors import ParamsFileError as ParamsFileError
    from lumo_hydra.errors import ParamsFileNotFoundError as ParamsFileNotFoundError
    from lumo_hydra.errors import ParamsValueError as ParamsValueError
    from lumo_hydra.params.argv import parse_value as parse_value
    from lumo_hydra.params.params import BaseParams as BaseParams
    from lumo_hydra.params.params import Params as Params
    from lumo_hydra.params.validators import VALIDATOR_KEY as VALIDATOR_KEY
    from lumo_hydra.params.validators import Arange as Arange
    from lumo_hydra.params.validators import Choice as Choice
    from lumo_hydra.params.validators import Validator as Validator
    from lumo_hydra.params.validators import arange as arange
    from lumo_hydra.params.validators import choice as choice

_SUBMODULES = ("argv", "files", "nested", "params", "typed", "validation", "validators")


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lumo_hydra.params' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_EXPORTS, *_SUBMODULES})
