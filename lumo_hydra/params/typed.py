"""What the annotations of a class-based ``Params`` mean, and the dataclass they generate for Hydra.

* :func:`check_type` checks a value against a simple annotation (``int``, ``float``, ``str``, ``bool``,
  ``Optional[...]``); :func:`attribute_docs` reads the docstrings written under class attributes.
* :func:`dataclass_of` builds the dataclass of a ``Params`` class (cached on the class) or instance;
  each field's metadata holds its validator (``VALIDATOR_KEY``), which is how
  :func:`lumo_hydra.params.validation.validate_config` finds validators in a composed config.
* :class:`StoreDescriptor` is ``Params.store``: it registers that dataclass in Hydra's ConfigStore
  (through :mod:`lumo_hydra._hydra.compose`, imported only then).

This module does not import :mod:`lumo_hydra.params.params`: it recognises a ``Params`` by the
``__lumo_fields__`` every ``Params`` class carries (:func:`is_params`, like ``dataclasses.is_dataclass``).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from typing import Any

from lumo_hydra.errors import ParamsValueError
from lumo_hydra.params.validators import DOC_KEY, VALIDATOR_KEY, Arange, Choice, Validator, is_number

__all__ = ["NOTYPE", "REQUIRED", "ABSENT", "Field", "check_type", "type_name", "infer_type", "attribute_docs",
           "is_params", "dataclass_of", "StoreDescriptor"]


class _Sentinel:
    """A named singleton that survives copy, deepcopy and pickle (``is`` comparisons stay valid)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> str:
        return self.name  # pickled as the module global of that name


#: the type of a key without an annotation (any value goes)
NOTYPE: Any = _Sentinel("NOTYPE")
#: the value of a required parameter that has none yet (shown as ``???``, like OmegaConf)
REQUIRED: Any = _Sentinel("REQUIRED")
#: "no such key" (distinct from every value, None included)
ABSENT: Any = _Sentinel("ABSENT")


@dataclasses.dataclass
class Field:
    """A parameter declared on a ``Params`` class."""

    name: str
    default: Any  # REQUIRED when required
    validator: Validator | None
    doc: str


# ---- annotations ---------------------------------------------------------------------------------


def check_type(key: str, value: Any, tp: Any) -> Any:
    """Check/normalise ``value`` against a simple annotation (int, float, str, bool, Optional[...]).

    Other annotations accept any value. Raises :class:`ParamsValueError` naming the expected type.
    """
    if tp is NOTYPE or tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return check_type(key, value, others[0])
        return value
    if tp is float:
        if is_number(value):
            try:
                return float(value)
            except OverflowError:  # an int beyond 1.8e308
                raise ParamsValueError(key, value, "a float (this number is too large for one)") from None
        raise ParamsValueError(key, value, "a float")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ParamsValueError(key, value, "an int")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ParamsValueError(key, value, "a bool (true or false)")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and value is not None:
            return str(value).lower() if isinstance(value, bool) else str(value)
        raise ParamsValueError(key, value, "a string")
    return value


def type_name(tp: Any, value: Any = None) -> str:
    """The name shown for a parameter's type in ``--help`` (the value's type when there is no annotation)."""
    if tp is NOTYPE or tp is Any:
        return type(value).__name__ if value is not None else "any"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


_SIMPLE = (int, float, str, bool)


def infer_type(value: Any, validator: Validator | None) -> Any:
    """The field type of a key without an annotation, from its validator or its value (else ``Any``)."""
    if isinstance(validator, Arange):
        return float
    if isinstance(validator, Choice):
        kinds = {type(c) for c in validator.choices}
        if len(kinds) == 1 and next(iter(kinds)) in _SIMPLE:
            return next(iter(kinds))
        return Any
    if type(value) in _SIMPLE:
        return type(value)
    return Any


def attribute_docs(cls: type) -> dict[str, str]:
    """Docstrings written right after class attributes (``x: int = 1`` then ``'''doc'''``)."""
    import ast
    import inspect
    import textwrap

    try:
        src = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(src)
    except (OSError, TypeError, SyntaxError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for a, b in zip(body, body[1:]):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        ):
            docs[a.target.id] = inspect.cleandoc(b.value.value)
    return docs


# ---- the generated dataclass ---------------------------------------------------------------------


def is_params(obj: Any) -> bool:
    """True for a ``Params`` instance (every ``Params`` class carries ``__lumo_fields__``)."""
    return not isinstance(obj, type) and hasattr(type(obj), "__lumo_fields__")


def dataclass_of(obj: Any) -> type:
    """The dataclass for a Params class (cached on the class) or a Params instance (built on the fly)."""
    if isinstance(obj, type):
        cls = obj
        dc = cls.__dict__.get("__lumo_dataclass__")
        if dc is None:
            dc = _build_dataclass(cls(), cls.__name__, cls.__module__, f"{cls.__qualname__}.__lumo_dataclass__")
            type.__setattr__(cls, "__lumo_dataclass__", dc)
        return typing.cast(type, dc)
    assert is_params(obj)
    fields = type(obj).__lumo_fields__
    if fields and obj.keys() == list(fields) and obj == type(obj)():
        return dataclass_of(type(obj))
    qual = f"_lumo_dynamic_{type(obj).__name__}_{obj.hash()[:12]}_{id(obj):x}"
    dc = _build_dataclass(obj, type(obj).__name__, __name__, qual)
    globals()[qual] = dc  # importable, so the stored config pickles in this process
    return dc


def _build_dataclass(p: Any, name: str, module: str, qualname: str) -> type:
    specs: list[tuple[str, Any, Any]] = []
    for key, value in p._values.items():
        validator = p._validators.get(key)
        tp = p._types.get(key, NOTYPE)
        meta: dict[str, Any] = {}
        if validator is not None:
            meta[VALIDATOR_KEY] = validator
        if key in p._docs:
            meta[DOC_KEY] = p._docs[key]
        if is_params(value) and value._loose and not _has_validators(value):
            value = value.to_dict()  # a node made from a plain dict stays a dict for Hydra
        if is_params(value):
            sub = dataclass_of(type(value)) if isinstance(tp, type) and tp is type(value) and value == type(value)() \
                else dataclass_of(value)
            ftype: Any = sub
            factory = functools.partial(_dc_instance, sub, value.to_dict())
            fld = dataclasses.field(default_factory=factory, metadata=meta)
        else:
            ftype = tp if tp is not NOTYPE else infer_type(value, validator)
            if value is REQUIRED:
                fld = dataclasses.field(default="???", metadata=meta)
            elif isinstance(value, (list, dict, set, tuple)):
                fld = dataclasses.field(default_factory=functools.partial(copy.deepcopy, value), metadata=meta)
            else:
                fld = dataclasses.field(default=value, metadata=meta)
        specs.append((key, ftype, fld))
    dc = dataclasses.make_dataclass(name, specs)
    dc.__module__ = module
    dc.__qualname__ = qualname
    dc.__lumo_params__ = type(p)  # type: ignore[attr-defined]
    return dc


def _has_validators(p: Any) -> bool:
    return bool(p._validators) or any(_has_validators(v) for v in p._values.values() if is_params(v))


def _dc_instance(dc: type, values: dict[str, Any]) -> Any:
    kwargs = {}
    for f in dataclasses.fields(dc):  # type: ignore[arg-type, unused-ignore]
        if f.name in values:
            v = values[f.name]
            if isinstance(f.type, type) and dataclasses.is_dataclass(f.type) and isinstance(v, dict):
                v = _dc_instance(f.type, v)
            kwargs[f.name] = v
    return dc(**kwargs)


# ---- Hydra's ConfigStore -------------------------------------------------------------------------


def _store(obj: Any, name: str, group: str | None = None, package: str | None = None) -> None:
    """Register these params (class or instance) as a dataclass in Hydra's ConfigStore.

    ``TrainParams.store(name='train')`` or ``params.store(name='train')``; the dataclass fields carry
    the validators, so a composed config is checked by :func:`lumo_hydra.params.validation.validate_config`.
    """
    from lumo_hydra._hydra.compose import store_node

    store_node(name, dataclass_of(obj), group=group, package=package)


class StoreFunction(typing.Protocol):
    """The signature of ``Params.store``."""

    def __call__(self, name: str, group: str | None = None, package: str | None = None) -> None: ...


class StoreDescriptor:
    """Makes ``store`` work on the class (``TrainParams.store(name=...)``) and on an instance."""

    def __init__(self) -> None:
        self.__doc__ = _store.__doc__

    def __get__(self, obj: Any, objtype: Any = None) -> StoreFunction:
        target = obj if obj is not None else objtype
        return typing.cast(StoreFunction, functools.partial(_store, target))
