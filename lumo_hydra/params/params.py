"""Typed parameters with validators, lumo style, that also live in Hydra's ConfigStore.

Two ways to use :class:`Params`:

* imperative, exactly as in lumo::

      params = Params()
      params.dataset = params.choice('cifar10', 'cifar100')
      params.alpha = params.arange(default=1, left=0, right=10)
      params.from_args()

* class-based and typed (mypy sees ``float``, ``str``...)::

      class TrainParams(Params):
          dataset: str = choice('cifar10', 'cifar100')
          alpha: float = arange(default=1, left=0, right=10)

      TrainParams.store(name='train')      # a dataclass in Hydra's ConfigStore

Every assignment (from code, the command line, a file or a Hydra config) goes through the key's
validator. Validators travel to Hydra as metadata on the generated dataclass fields
(``field.metadata['lumo_validator']``), so :func:`lumo_hydra.params.validation.validate_config` finds
them from a composed config with ``OmegaConf.get_type(node)``.

The parts live beside this module: the validators in :mod:`~lumo_hydra.params.validators`, the
command-line parser in :mod:`~lumo_hydra.params.argv`, parameter files in
:mod:`~lumo_hydra.params.files`, annotations and the generated dataclass in :mod:`~lumo_hydra.params.typed`.
This module imports OmegaConf (and, through ``lumo_hydra._hydra``, Hydra) only inside the methods that
need them; it never imports torch or pandas.
"""
from __future__ import annotations

import copy as _copy
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from lumo_hydra.errors import LumoValueError, ParamsArgsError, ParamsFileError, ParamsValueError, UnknownKeyError
from lumo_hydra.params.argv import ArgvOp, parse_argv, parse_value
from lumo_hydra.params.files import read_file
from lumo_hydra.params.nested import MAX_DEPTH, HybridMethod, depth_of, nestable
from lumo_hydra.params.typed import (
    ABSENT,
    NOTYPE,
    REQUIRED,
    Field,
    StoreDescriptor,
    attribute_docs,
    check_type,
    dataclass_of,
    infer_type,
    type_name,
)
from lumo_hydra.params.validators import VALIDATOR_KEY, Arange, Choice, Validator, arange, choice

# Validator, Choice, Arange, choice, arange, VALIDATOR_KEY, parse_value, REQUIRED and the errors are
# re-exported: they were defined here before the split, and lumo_hydra.params.params is a documented path.
__all__ = [
    "Params",
    "BaseParams",
    "Validator",
    "Choice",
    "Arange",
    "choice",
    "arange",
    "ParamsFileError",
    "ParamsArgsError",
    "ParamsValueError",
    "VALIDATOR_KEY",
    "REQUIRED",
    "parse_value",
]

_P = TypeVar("_P", bound="Params")


def _revived(data: dict[str, Any]) -> dict[str, Any]:
    """A parameter file's mapping with ``{"$float": "nan"}`` objects (``to_json``'s NaN) as floats again."""
    from lumo_hydra.store.files import revive_floats

    return revive_floats(data)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------------
# Params
# --------------------------------------------------------------------------------------------------


class Params:
    """Parameters with validators. See the module docstring for the two ways to use it.

    Keys are attributes (``p.alpha``), items (``p['optim.lr']``), iterable (``for k in p``) and
    ``in``-testable. Every assignment is validated; a bad value raises :class:`ParamsValueError`.
    """

    __lumo_fields__: ClassVar[dict[str, Field]] = {}
    __lumo_dataclass__: ClassVar[Any] = None

    # ---- class definition ------------------------------------------------------------------------

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, Field] = {}
        for base in reversed(cls.__mro__[1:]):
            fields.update(getattr(base, "__lumo_fields__", {}) if issubclass(base, Params) else {})
        docs: dict[str, str] | None = None
        for name, annot in cls.__dict__.get("__annotations__", {}).items():
            if name.startswith("_") or "ClassVar" in str(annot):
                continue
            if name in _RESERVED:
                raise LumoValueError(
                    f"parameter name {name!r} in {cls.__name__} is a Params method name; "
                    f"reserved names: {sorted(_RESERVED)}"
                )
            default = cls.__dict__.get(name, REQUIRED)
            validator = default if isinstance(default, Validator) else None
            if validator is not None:
                default = validator.default
            if docs is None:
                docs = attribute_docs(cls)
            doc = (validator.doc if validator is not None else "") or docs.get(name, "")
            fields[name] = Field(name, default, validator, doc)
            if name in cls.__dict__:
                delattr(cls, name)  # the value lives on instances; __getattr__ serves it
        cls.__lumo_fields__ = fields
        cls.__lumo_dataclass__ = None

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        """Resolved annotations of the parameter fields (unresolvable ones are left untyped)."""
        cached = cls.__dict__.get("_lumo_hints")
        if cached is None:
            cached = {}
            for klass in reversed(cls.__mro__):
                if not (isinstance(klass, type) and issubclass(klass, Params)) or klass is Params:
                    continue
                mod = sys.modules.get(klass.__module__)
                globalns = dict(vars(mod)) if mod else {}
                localns = dict(vars(klass))
                localns.setdefault(klass.__name__, klass)
                for name, annot in klass.__dict__.get("__annotations__", {}).items():
                    if name not in cls.__lumo_fields__:
                        continue
                    if isinstance(annot, str):
                        try:
                            annot = eval(annot, globalns, localns)  # noqa: S307 - a class annotation
                        except Exception:
                            annot = NOTYPE
                    cached[name] = annot
            type.__setattr__(cls, "_lumo_hints", cached)
        return cached

    # ---- instances -------------------------------------------------------------------------------

    def __init__(self, **values: Any) -> None:
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_validators", {})
        object.__setattr__(self, "_types", {})
        object.__setattr__(self, "_docs", {})
        object.__setattr__(self, "_path", "")
        object.__setattr__(self, "_loose", False)  # True for a node made from a plain dict
        hints = type(self)._hints()
        for name, f in type(self).__lumo_fields__.items():
            tp = hints.get(name, NOTYPE)
            default = f.default
            if default is REQUIRED and isinstance(tp, type) and issubclass(tp, Params):
                default = tp()
            if isinstance(default, Params):
                default = default.copy()
            elif default is not REQUIRED:
                default = _copy.deepcopy(default)
            self._types[name] = tp
            if f.doc:
                self._docs[name] = f.doc
            if f.validator is not None:
                self._validators[name] = f.validator
            if default is REQUIRED:
                self._values[name] = REQUIRED
            else:
                self._assign(name, default)
        for k, v in values.items():
            self[k] = v

    # internal: set one top-level key, validating
    def _assign(self, key: str, value: Any, *, define: bool = True) -> None:
        full = self._path + key
        if isinstance(value, Validator):
            if not define:
                raise ParamsValueError(full, value, "a value (validators are declared in code)")
            self._validators[key] = value
            if value.doc:
                self._docs[key] = value.doc
            value = value.default
            tp = self._types.get(key, NOTYPE)
            self._values[key] = check_type(full, value, tp)
            return
        if key not in self._values and not define:
            raise self._unknown(key)
        current = self._values.get(key, ABSENT)
        tp = self._types.get(key, NOTYPE)
        if isinstance(value, Mapping) and not isinstance(value, Params):
            if isinstance(current, Params) and not current._loose:  # a declared sub-Params: merge, strictly
                new = current.copy()
                new.from_dict(value, strict=True)
                value = new
            elif tp is NOTYPE and key not in self._validators and nestable(value, _RESERVED):
                value = self._node(key, value)
        if isinstance(value, Params):
            object.__setattr__(value, "_path", full + ".")
            value._repath()
            self._values[key] = value
            return
        if isinstance(tp, type) and issubclass(tp, Params) and value is not None:
            raise ParamsValueError(full, value, f"a {tp.__name__} or a mapping of its keys")
        if tp is not NOTYPE:
            value = check_type(full, value, tp)
        validator = self._validators.get(key)
        if validator is not None:
            value = validator.check(full, value)
        self._values[key] = value

    def _node(self, key: str, value: Mapping[str, Any]) -> Params:
        """A nested, open ``Params`` made from a plain mapping (lumo's nested dicts)."""
        if depth_of(value) > MAX_DEPTH:
            raise ParamsValueError(self._path + key, value, f"a value nested at most {MAX_DEPTH} levels deep")
        node = Params()
        object.__setattr__(node, "_loose", True)
        object.__setattr__(node, "_path", self._path + key + ".")
        return node.from_dict(value, strict=False)

    def _repath(self) -> None:
        for k, v in self._values.items():
            if isinstance(v, Params):
                object.__setattr__(v, "_path", self._path + k + ".")
                v._repath()

    def _unknown(self, key: str, rest: str = "") -> UnknownKeyError:
        """The error for an unknown ``key`` (``rest``: the dotted remainder, for the ``+key=value`` hint)."""
        full = self._path + key
        keys = [self._path + k for k in _flat_keys(self)]
        import difflib

        close = difflib.get_close_matches(full, keys, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return UnknownKeyError(
            f"unknown parameter {full!r}{hint} (known: {', '.join(keys) or 'none'}; "
            f"add a new key explicitly with +{full}{rest}=value)"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name in _RESERVED:
            raise LumoValueError(f"cannot set parameter {name!r}: it is a Params method name")
        self._assign(name, value, define=True)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")
        if values is None or name.startswith("__"):
            raise AttributeError(name)
        if name in values:
            v = values[name]
            if v is REQUIRED:
                raise AttributeError(f"parameter {self._path + name!r} has no value yet (it is required)")
            return v
        raise AttributeError(str(self._unknown(name)))

    def __delattr__(self, name: str) -> None:
        if name not in self._values:
            raise self._unknown(name)
        del self._values[name]
        self._validators.pop(name, None)
        self._types.pop(name, None)
        self._docs.pop(name, None)

    # ---- mapping-like access ---------------------------------------------------------------------

    def _resolve(self, dotted: str, create: bool = False) -> tuple[Params, str]:
        """The node holding a dotted key and the last part; ``create`` adds missing parents as open nodes."""
        node: Params = self
        parts = dotted.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node._values.get(part, ABSENT)
            if child is ABSENT and create:
                node[part] = {}
                child = node._values[part]
            if not isinstance(child, Params):
                if child is ABSENT:
                    raise node._unknown(part, "." + ".".join(parts[i + 1:]))
                raise UnknownKeyError(f"parameter {node._path + part!r} is not a nested Params; cannot set {dotted!r}")
            node = child
        return node, parts[-1]

    def __getitem__(self, key: str) -> Any:
        node, leaf = self._resolve(key)
        if leaf not in node._values:
            raise node._unknown(leaf)
        return getattr(node, leaf)

    def __setitem__(self, key: str, value: Any) -> None:
        node, leaf = self._resolve(key)
        if leaf in _RESERVED:
            raise LumoValueError(f"cannot set parameter {key!r}: {leaf!r} is a Params method name")
        node._assign(leaf, value, define=True)

    def __delitem__(self, key: str) -> None:
        node, leaf = self._resolve(key)
        delattr(node, leaf)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            node, leaf = self._resolve(key)
        except UnknownKeyError:
            return False
        return leaf in node._values

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        """Top-level keys, in definition order."""
        return list(self._values)

    def items(self) -> list[tuple[str, Any]]:
        """Top-level ``(key, value)`` pairs (nested Params stay Params)."""
        return list(self._values.items())

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]`` (dotted keys allowed), or ``default`` when the key does not exist."""
        return self[key] if key in self else default  # noqa: SIM401 - this is get()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping) and not isinstance(other, Params):  # like a DictConfig: equal to its dict
            return self.to_dict() == dict(other)
        if not isinstance(other, Params):
            return NotImplemented
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable; use .hash() for a stable digest

    def __repr__(self) -> str:
        parts = []
        for k, v in self._values.items():
            s = "???" if v is REQUIRED else repr(v)
            val = self._validators.get(k)
            parts.append(f"{k}={s}" + (f" <{val!r}>" if val is not None else ""))
        return f"{type(self).__name__}({', '.join(parts)})"

    # ---- validators as methods (lumo's imperative style) ------------------------------------------

    def choice(self, *choices: Any, default: Any = dataclasses.MISSING, doc: str = "") -> Any:
        """``params.x = params.choice('a', 'b')``: see :func:`choice`."""
        return Choice(*choices, default=default, doc=doc)

    def arange(self, default: Any = 0, left: float | None = None, right: float | None = None, doc: str = "") -> Any:
        """``params.x = params.arange(default=1, left=0, right=10)``: see :func:`arange`."""
        return Arange(default=default, left=left, right=right, doc=doc)

    # ---- conversion ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A plain nested ``dict`` of the values (required keys without a value are ``'???'``)."""
        out: dict[str, Any] = {}
        for k, v in self._values.items():
            if isinstance(v, Params):
                out[k] = v.to_dict()
            elif v is REQUIRED:
                out[k] = "???"
            else:
                out[k] = _copy.deepcopy(v)
        return out

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Standard JSON text of the values (NaN as ``{"$float": "nan"}``, read back by ``from_json``); written to ``path`` if given."""
        from lumo_hydra.store.files import atomic_write_text, dumps

        text = json.dumps(json.loads(dumps(self.to_dict())), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        if path is not None:
            atomic_write_text(path, text)
        return text

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """The values as YAML text; also written atomically to ``path`` when given."""
        import yaml  # type: ignore[import-untyped, unused-ignore]

        from lumo_hydra.store.files import atomic_write_text, to_jsonable

        text: str = yaml.safe_dump(to_jsonable(self.to_dict()), sort_keys=False, allow_unicode=True)
        if path is not None:
            atomic_write_text(path, text)
        return text

    def hash(self) -> str:
        """A digest of the values: equal parameters give the same hash in every process, whatever the key order."""
        from lumo_hydra.store.files import to_jsonable

        text = json.dumps(to_jsonable(self.to_dict()), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()

    def copy(self: _P) -> _P:
        """A deep copy that keeps the validators."""
        return _copy.deepcopy(self)

    # ---- loading ---------------------------------------------------------------------------------

    def from_dict(self: _P, d: Mapping[str, Any], strict: bool | None = None) -> _P:
        """Update from a (nested) mapping, validating every value. Returns ``self``.

        ``strict`` (default: ``True`` when these params already declare any key) makes unknown keys an
        error with a "did you mean" suggestion; otherwise unknown keys are added.
        """
        if not isinstance(d, Mapping):
            raise ParamsValueError(self._path.rstrip(".") or "<params>", d, "a mapping of parameter names to values")
        if strict is None:
            strict = len(self._values) > 0
        for k, v in d.items():
            k = str(k)
            if k in _RESERVED:
                raise LumoValueError(f"cannot set parameter {self._path + k!r}: it is a Params method name")
            current = self._values.get(k, ABSENT)
            if isinstance(current, Params) and isinstance(v, Mapping):
                current.from_dict(v, strict=strict)
            elif k in self._values or not strict:
                self._assign(k, v, define=True)
            else:
                raise self._unknown(k)
        return self

    @classmethod
    def init_from_kwargs(cls: type[_P], **kwargs: Any) -> _P:
        """lumo's constructor from keyword arguments: ``cls().from_dict(kwargs)``."""
        return cls().from_dict(kwargs)

    def _from_kwargs(self: _P, **kwargs: Any) -> _P:
        """Update from keyword arguments (``self.from_dict(kwargs)``); on the class, a new instance."""
        return self.from_dict(kwargs)

    from_kwargs = HybridMethod(_from_kwargs)

    def from_json(self: _P, path: str | os.PathLike[str], strict: bool | None = None) -> _P:
        """Update from a JSON file (see :meth:`from_dict` for ``strict``). Returns ``self``."""
        return self.from_dict(_revived(read_file(path, "json")), strict)

    def from_yaml(self: _P, path: str | os.PathLike[str], strict: bool | None = None) -> _P:
        """Update from a YAML file (see :meth:`from_dict` for ``strict``). Returns ``self``."""
        return self.from_dict(_revived(read_file(path, "yaml")), strict)

    def from_file(self: _P, path: str | os.PathLike[str], strict: bool | None = None) -> _P:
        """Update from a ``.json`` or YAML file, chosen by the extension. Returns ``self``."""
        return self.from_dict(_revived(read_file(path)), strict)

    def from_args(self: _P, argv: Sequence[str] | None = None) -> _P:
        """Update from command-line arguments (default ``sys.argv[1:]``). Returns ``self``.

        Accepts ``--key=value``, ``--key value``, ``--flag`` (true), nested ``--a.b.c=1``, and Hydra-style
        ``key=value``, ``+key=value`` (add a new key), ``++key=value`` (set or add) and ``~key`` (delete).
        Values follow Hydra's override grammar. ``--config a.yaml`` / ``-c a.yaml,b.json`` (or lumo's
        ``--c``) merges files first, left to right; the command line wins. On a Params that declares no
        key, every key is new and allowed. ``--help`` prints every parameter and exits 0.
        """
        parsed = parse_argv(list(sys.argv[1:] if argv is None else argv), short_config="c" not in self._values)
        if parsed.help:
            print(self.help_text())
            raise SystemExit(0)
        open_ = not self._values  # a bare Params declares nothing: every key is new and allowed
        for f in parsed.files:  # left to right, each checked against the keys declared before the first
            try:
                self.from_file(f, strict=not open_)
            except UnknownKeyError as e:
                raise UnknownKeyError(f"{e} (in the parameter file {f!r})") from None
        for op in parsed.ops:
            self._apply(op, open_)
        return self

    def _apply(self, op: ArgvOp, open_: bool = False) -> None:
        """Apply one command-line operation (``set`` needs an existing key unless ``open_``, ``add`` a new one)."""
        if op.kind == "del":
            del self[op.key]
            return
        exists = op.key in self
        if not exists and (op.kind != "set" or open_):
            node, leaf = self._resolve(op.key, create=True)
            node._assign(leaf, op.value, define=True)
            return
        if op.kind == "set" and not exists:
            node, leaf = self._resolve(op.key)
            raise node._unknown(leaf)
        if op.kind == "add" and exists:
            raise UnknownKeyError(
                f"cannot add parameter {op.key!r}: it already exists (use {op.key}=value to change it)")
        if exists:
            node, leaf = self._resolve(op.key)
            node._assign(leaf, op.value, define=False)
        else:
            self[op.key] = op.value

    def from_hydra(
        self: _P,
        config_path: str | os.PathLike[str] | None = None,
        config_name: str | None = None,
        overrides: Sequence[str] = (),
    ) -> _P:
        """Update from a config composed by Hydra's compose API (works in notebooks). Returns ``self``.

        ``config_path`` is a folder (relative to the current folder, or absolute); with no
        ``config_name`` these params' own schema is composed, so ``overrides`` use Hydra's grammar and
        type checks. Every value is checked by these params' validators. Neither the working folder
        nor ``sys.argv`` changes, and an already initialised Hydra is restored afterwards.
        """
        from omegaconf import OmegaConf

        from lumo_hydra._hydra.compose import compose_isolated
        from lumo_hydra.params.validation import validate_config

        schema = dataclass_of(self) if config_name is None else None
        cfg = compose_isolated(config_path, config_name, overrides, schema=schema)
        validate_config(cfg)
        data = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(data, dict)
        return self.from_dict({str(k): v for k, v in data.items()}, strict=None if config_name else True)


    @classmethod
    def from_config(cls: type[_P], cfg: Any) -> _P:
        """A new, typed, validating instance from a (composed) config: DictConfig, dataclass or mapping."""
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig) or dataclasses.is_dataclass(cfg):
            data = OmegaConf.to_container(OmegaConf.structured(cfg) if not isinstance(cfg, DictConfig) else cfg,
                                          resolve=True, throw_on_missing=True)
        else:
            data = cfg
        assert isinstance(data, Mapping)
        clean = {str(k): v for k, v in data.items() if k != "hydra"}
        return cls().from_dict(clean, strict=True if cls.__lumo_fields__ else None)

    # ---- Hydra ConfigStore -----------------------------------------------------------------------

    #: ``TrainParams.store(name=...)`` or ``params.store(name=...)``: register the dataclass in the ConfigStore
    store: ClassVar[StoreDescriptor] = StoreDescriptor()

    @classmethod
    def dataclass(cls) -> type:
        """The dataclass generated from this class (field metadata holds the validators)."""
        return dataclass_of(cls)

    # ---- help ------------------------------------------------------------------------------------

    def help_text(self) -> str:
        """Every parameter with its type, default, allowed values and docstring."""
        rows = []
        for key, node, leaf in _flat_items(self):
            v = node._values[leaf]
            val = node._validators.get(leaf)
            tp_ = node._types.get(leaf, NOTYPE)
            if tp_ is NOTYPE and val is not None:
                tp_ = infer_type(v, val)
            tp = type_name(tp_, None if v is REQUIRED else v)
            default = "??? (required)" if v is REQUIRED else repr(v)
            line = f"  --{key}  ({tp}, default: {default})"
            if val is not None:
                line += f"  allowed: {val.allowed()}"
            doc = node._docs.get(leaf, "")
            if doc:
                line += f"\n      {doc}"
            rows.append(line)
        prog = os.path.basename(sys.argv[0]) or "python"
        head = f"usage: {prog} [--key=value | key=value | +key=value | ~key] ... [-c FILE[,FILE]]"
        return "\n".join([head, "", "parameters:", *(rows or ["  (none)"])])


# names that cannot be parameters (they are methods)
_RESERVED = frozenset(n for n in vars(Params) if not n.startswith("_"))

#: lumo's name for the base class (``class MyParams(BaseParams)``): the same class
BaseParams = Params


def _flat_keys(p: Params) -> list[str]:
    return [k for k, _, _ in _flat_items(p)]


def _flat_items(p: Params, prefix: str = "") -> list[tuple[str, Params, str]]:
    out: list[tuple[str, Params, str]] = []
    for k, v in p._values.items():
        if isinstance(v, Params):
            out.extend(_flat_items(v, prefix + k + "."))
        else:
            out.append((prefix + k, p, k))
    return out
