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
(``field.metadata['lumo_validator']``), so :func:`lumo_hydra.validation.validate_config` finds them
from a composed config with ``OmegaConf.get_type(node)``.

This module imports OmegaConf/Hydra lazily; it never imports torch or pandas.
"""
from __future__ import annotations

import copy as _copy
import dataclasses
import functools
import hashlib
import json
import math
import numbers
import os
import sys
import typing
from typing import Any, ClassVar, Iterator, Mapping, Sequence, TypeVar

from lumo_hydra.errors import LumoValueError, ParamsArgsError, ParamsFileError, ParamsValueError, UnknownKeyError

__all__ = [
    "Params",
    "Validator",
    "Choice",
    "Arange",
    "choice",
    "arange",
    "ParamsFileError",
    "ParamsArgsError",
    "VALIDATOR_KEY",
]

#: key of the dataclass field metadata that holds a field's :class:`Validator`
VALIDATOR_KEY = "lumo_validator"
#: key of the dataclass field metadata that holds a field's docstring
DOC_KEY = "lumo_doc"

_P = TypeVar("_P", bound="Params")


# --------------------------------------------------------------------------------------------------
# validators
# --------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Validator:
    """Base class of the validators. ``check`` returns the (possibly normalised) value or raises
    :class:`ParamsValueError`. Validators are small, immutable and picklable."""

    default: Any = None
    doc: str = ""

    def check(self, key: str, value: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def allowed(self) -> str:  # pragma: no cover - abstract
        """Human-readable description of what is allowed."""
        raise NotImplementedError

    def check_interval(self, key: str, start: Any, end: Any) -> None:
        """Check a continuous sweep ``interval(start, end)`` (used by sweep validation)."""
        raise ParamsValueError(key, f"interval({start}, {end})", self.allowed(), "an interval sweep needs a numeric range parameter")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))


class Choice(Validator):
    """One of a fixed set of values (lumo's ``params.choice``). The default is the first choice."""

    def __init__(self, *choices: Any, default: Any = dataclasses.MISSING, doc: str = "") -> None:
        if len(choices) == 1 and isinstance(choices[0], (list, tuple)):
            choices = tuple(choices[0])
        if not choices:
            raise LumoValueError("choice() needs at least one allowed value; got none")
        self.choices = tuple(choices)
        self.doc = doc
        self.default = self.choices[0] if default is dataclasses.MISSING else self.check("default", default)

    def _matches(self, value: Any) -> Any:
        for c in self.choices:
            # True == 1 in Python; a choice of ints must not accept a bool (and vice versa)
            if value == c and isinstance(value, bool) == isinstance(c, bool):
                return c
        return dataclasses.MISSING

    def check(self, key: str, value: Any) -> Any:
        found = self._matches(value)
        if found is dataclasses.MISSING:
            hint = ""
            if isinstance(value, str):
                import difflib

                close = difflib.get_close_matches(value, [c for c in self.choices if isinstance(c, str)], n=1)
                if close:
                    hint = f"did you mean {close[0]!r}?"
            raise ParamsValueError(key, value, self.allowed(), hint)
        return value if type(value) is type(found) else found

    def allowed(self) -> str:
        return f"one of {list(self.choices)!r}"

    def __repr__(self) -> str:
        return "choice(" + ", ".join(repr(c) for c in self.choices) + ")"


class Arange(Validator):
    """A number in the closed interval ``[left, right]`` (lumo's ``params.arange``); ``None`` = unbounded."""

    def __init__(self, default: Any = 0, left: float | None = None, right: float | None = None, doc: str = "") -> None:
        for name, bound in (("left", left), ("right", right)):
            if bound is not None and not _is_number(bound):
                raise ParamsValueError(f"arange.{name}", bound, "a number or None")
        if left is not None and math.isinf(left):
            left = None
        if right is not None and math.isinf(right):
            right = None
        if left is not None and right is not None and left > right:
            raise ParamsValueError("arange.left", left, f"a number <= right ({right!r})")
        self.left = left
        self.right = right
        self.doc = doc
        self.default = self.check("default", default)

    def check(self, key: str, value: Any) -> Any:
        if not _is_number(value) or (isinstance(value, float) and math.isnan(value)):
            raise ParamsValueError(key, value, f"a number in {self.allowed()}")
        if (self.left is not None and value < self.left) or (self.right is not None and value > self.right):
            raise ParamsValueError(key, value, self.allowed())
        return value

    def check_interval(self, key: str, start: Any, end: Any) -> None:
        for v in (start, end):
            self.check(key, v)

    def allowed(self) -> str:
        left = "-inf" if self.left is None else repr(self.left)
        right = "inf" if self.right is None else repr(self.right)
        return f"[{left}, {right}]"

    def __repr__(self) -> str:
        return f"arange({self.allowed()[1:-1]})"


def choice(*choices: Any, default: Any = dataclasses.MISSING, doc: str = "") -> Any:
    """A validator allowing exactly one of ``choices`` (the default is the first one unless ``default=``).

    Typed as ``Any`` so that ``dataset: str = choice('a', 'b')`` type-checks as ``str``.
    """
    return Choice(*choices, default=default, doc=doc)


def arange(default: Any = 0, left: float | None = None, right: float | None = None, doc: str = "") -> Any:
    """A validator allowing a number in ``[left, right]`` (inclusive; ``None`` means unbounded).

    Typed as ``Any`` so that ``alpha: float = arange(default=1, left=0, right=10)`` type-checks as ``float``.
    """
    return Arange(default=default, left=left, right=right, doc=doc)


# --------------------------------------------------------------------------------------------------
# type checks for annotated fields
# --------------------------------------------------------------------------------------------------

class _Sentinel:
    """A named singleton that survives copy, deepcopy and pickle (``is`` comparisons stay valid)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self) -> str:
        return self.name


_NOTYPE: Any = _Sentinel("_NOTYPE")
#: the value of a required parameter that has none yet (shown as ``???``, like OmegaConf)
REQUIRED: Any = _Sentinel("REQUIRED")
_ABSENT: Any = _Sentinel("_ABSENT")


def _check_type(key: str, value: Any, tp: Any) -> Any:
    """Check/normalise ``value`` against a simple annotation (int, float, str, bool, Optional[...])."""
    if tp is _NOTYPE or tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Union or (sys.version_info >= (3, 10) and origin is getattr(__import__("types"), "UnionType", None)):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return _check_type(key, value, others[0])
        return value
    if tp is float:
        if _is_number(value):
            return float(value)
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


def _type_name(tp: Any, value: Any = None) -> str:
    if tp is _NOTYPE or tp is Any:
        return type(value).__name__ if value is not None else "any"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


# --------------------------------------------------------------------------------------------------
# file and value parsing
# --------------------------------------------------------------------------------------------------


def _read_file(path: str | os.PathLike[str], fmt: str | None = None) -> dict[str, Any]:
    """Read a JSON (``fmt='json'`` or a ``.json`` name) or YAML file holding a mapping."""
    p = os.fspath(path)
    if fmt is None:
        fmt = "json" if p.lower().endswith(".json") else "yaml"
    try:
        with open(p, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ParamsFileError(f"parameter file not found: {p!r}") from None
    except OSError as e:
        raise ParamsFileError(f"cannot read parameter file {p!r}: {e.strerror or e}") from None
    if fmt == "json":
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as e:
            raise ParamsFileError(f"malformed JSON in {p!r} at line {e.lineno}, column {e.colno}: {e.msg}") from None
    else:
        import yaml  # type: ignore[import-untyped, unused-ignore]

        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ParamsFileError(f"malformed YAML in {p!r}{where}: {e.problem or e}") from None
        except yaml.YAMLError as e:
            raise ParamsFileError(f"malformed YAML in {p!r}: {e}") from None
        if data is None:
            data = {}
    if not isinstance(data, dict):
        raise ParamsFileError(f"parameter file {p!r} must contain a mapping at the top level; got {type(data).__name__}")
    return data


@functools.lru_cache(maxsize=1)
def _overrides_parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _unquote(value: Any) -> Any:
    from hydra.core.override_parser.types import QuotedString

    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {k: _unquote(v) for k, v in value.items()}
    return value


def parse_value(raw: str, *, lenient: bool = False, token: str | None = None) -> Any:
    """Parse ``raw`` like the value of a Hydra override (numbers, booleans, null, lists, dicts, quotes).

    ``lenient`` (used for ``--key value``) falls back to the raw string when the grammar rejects it.
    """
    from hydra.errors import HydraException

    token = token if token is not None else raw
    try:
        ov = _overrides_parser().parse_override("x=" + raw)
    except HydraException as e:
        if lenient:
            return raw
        raise ParamsArgsError(f"cannot parse the value in {token!r}: {str(e).strip().splitlines()[0]}") from None
    if ov.is_sweep_override():
        if lenient:
            return raw
        raise ParamsArgsError(
            f"{token!r} is a sweep; Params takes one value per key (write a list as [a,b], quote a string with commas)"
        )
    return _unquote(ov.value())


# --------------------------------------------------------------------------------------------------
# class fields
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Field:
    name: str
    default: Any  # REQUIRED when required
    validator: Validator | None
    doc: str


def _attribute_docs(cls: type) -> dict[str, str]:
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


# --------------------------------------------------------------------------------------------------
# Params
# --------------------------------------------------------------------------------------------------


class Params:
    """Parameters with validators. See the module docstring for the two ways to use it.

    Keys are attributes (``p.alpha``), items (``p['optim.lr']``), iterable (``for k in p``) and
    ``in``-testable. Every assignment is validated; a bad value raises :class:`ParamsValueError`.
    """

    __lumo_fields__: ClassVar[dict[str, _Field]] = {}
    __lumo_dataclass__: ClassVar[Any] = None

    # ---- class definition ------------------------------------------------------------------------

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, _Field] = {}
        for base in reversed(cls.__mro__[1:]):
            fields.update(getattr(base, "__lumo_fields__", {}) if issubclass(base, Params) else {})
        docs: dict[str, str] | None = None
        for name, annot in cls.__dict__.get("__annotations__", {}).items():
            if name.startswith("_") or "ClassVar" in str(annot):
                continue
            if name in _RESERVED:
                raise LumoValueError(
                    f"parameter name {name!r} in {cls.__name__} is a Params method name; reserved names: {sorted(_RESERVED)}"
                )
            default = cls.__dict__.get(name, REQUIRED)
            validator = default if isinstance(default, Validator) else None
            if validator is not None:
                default = validator.default
            if docs is None:
                docs = _attribute_docs(cls)
            doc = (validator.doc if validator is not None else "") or docs.get(name, "")
            fields[name] = _Field(name, default, validator, doc)
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
                            annot = _NOTYPE
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
        hints = type(self)._hints()
        for name, f in type(self).__lumo_fields__.items():
            tp = hints.get(name, _NOTYPE)
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
            tp = self._types.get(key, _NOTYPE)
            self._values[key] = _check_type(full, value, tp)
            return
        if key not in self._values and not define:
            raise self._unknown(key)
        current = self._values.get(key, _ABSENT)
        if isinstance(current, Params) and isinstance(value, Mapping):
            new = current.copy()
            new.from_dict(value, strict=True)
            value = new
        if isinstance(value, Params):
            object.__setattr__(value, "_path", full + ".")
            value._repath()
            self._values[key] = value
            return
        tp = self._types.get(key, _NOTYPE)
        if isinstance(tp, type) and issubclass(tp, Params) and value is not None:
            raise ParamsValueError(full, value, f"a {tp.__name__} or a mapping of its keys")
        if tp is not _NOTYPE:
            value = _check_type(full, value, tp)
        validator = self._validators.get(key)
        if validator is not None:
            value = validator.check(full, value)
        self._values[key] = value

    def _repath(self) -> None:
        for k, v in self._values.items():
            if isinstance(v, Params):
                object.__setattr__(v, "_path", self._path + k + ".")
                v._repath()

    def _unknown(self, key: str) -> UnknownKeyError:
        full = self._path + key
        keys = [self._path + k for k in _flat_keys(self)]
        import difflib

        close = difflib.get_close_matches(full, keys, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return UnknownKeyError(
            f"unknown parameter {full!r}{hint} (known: {', '.join(keys) or 'none'}; add a new key explicitly with +{full}=value)"
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

    def _resolve(self, dotted: str) -> tuple["Params", str]:
        node: Params = self
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node._values.get(part, _ABSENT)
            if not isinstance(child, Params):
                if child is _ABSENT:
                    raise node._unknown(part)
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
        return self[key] if key in self else default

    def __eq__(self, other: object) -> bool:
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
        """The values as JSON text; also written atomically to ``path`` when given."""
        from lumo_hydra.store.files import atomic_write_text, to_jsonable

        text = json.dumps(to_jsonable(self.to_dict()), indent=2, ensure_ascii=False) + "\n"
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
            current = self._values.get(k, _ABSENT)
            if isinstance(current, Params) and isinstance(v, Mapping):
                current.from_dict(v, strict=strict)
            elif k in self._values or not strict:
                self._assign(k, v, define=True)
            else:
                raise self._unknown(k)
        return self

    def from_json(self: _P, path: str | os.PathLike[str], strict: bool | None = None) -> _P:
        """Update from a JSON file (see :meth:`from_dict` for ``strict``). Returns ``self``."""
        return self.from_dict(_read_file(path, "json"), strict)

    def from_yaml(self: _P, path: str | os.PathLike[str], strict: bool | None = None) -> _P:
        """Update from a YAML file (see :meth:`from_dict` for ``strict``). Returns ``self``."""
        return self.from_dict(_read_file(path, "yaml"), strict)

    def from_file(self: _P, path: str | os.PathLike[str], strict: bool | None = None) -> _P:
        """Update from a ``.json`` or YAML file, chosen by the extension. Returns ``self``."""
        return self.from_dict(_read_file(path), strict)

    def from_args(self: _P, argv: Sequence[str] | None = None) -> _P:
        """Update from command-line arguments (default ``sys.argv[1:]``). Returns ``self``.

        Accepts ``--key=value``, ``--key value``, ``--flag`` (true), nested ``--a.b.c=1``, and Hydra-style
        ``key=value``, ``+key=value`` (add a new key), ``++key=value`` (set or add) and ``~key`` (delete).
        Values follow Hydra's override grammar. ``--config a.yaml`` / ``-c a.yaml,b.json`` merges files
        first; the command line wins. ``--help`` prints every parameter and exits 0.
        """
        args = list(sys.argv[1:] if argv is None else argv)
        files: list[str] = []
        ops: list[tuple[str, str, Any]] = []
        i = 0
        while i < len(args):
            tok = args[i]
            i += 1
            if tok in ("-h", "--help"):
                print(self.help_text())
                raise SystemExit(0)
            if tok in ("-c", "--config"):
                if i >= len(args):
                    raise ParamsArgsError(f"{tok} needs a file name (e.g. {tok} params.yaml)")
                files += [f for f in args[i].split(",") if f]
                i += 1
                continue
            if tok.startswith("--config=") or tok.startswith("-c="):
                files += [f for f in tok.split("=", 1)[1].split(",") if f]
                continue
            if tok.startswith("--"):
                body = tok[2:]
                if "=" in body:
                    key, raw = body.split("=", 1)
                elif i < len(args) and not args[i].startswith("--"):
                    key, raw = body, args[i]
                    i += 1
                else:
                    key, raw = body, "true"
                _check_key(key, tok)
                ops.append(("set", key, parse_value(raw, lenient=True, token=tok)))
            elif tok.startswith("~"):
                key = tok[1:].split("=", 1)[0]
                _check_key(key, tok)
                ops.append(("del", key, None))
            elif "=" in tok:
                key, raw = tok.split("=", 1)
                kind = "set"
                if key.startswith("++"):
                    kind, key = "force", key[2:]
                elif key.startswith("+"):
                    kind, key = "add", key[1:]
                _check_key(key, tok)
                ops.append((kind, key, parse_value(raw, token=tok)))
            else:
                raise ParamsArgsError(
                    f"unrecognised argument {tok!r}: expected --key=value, --key value, key=value, +key=value or ~key"
                )
        for f in files:
            self.from_file(f)
        for kind, key, value in ops:
            if kind == "del":
                del self[key]
                continue
            exists = key in self
            if kind == "set" and not exists:
                node, leaf = self._resolve(key)
                raise node._unknown(leaf)
            if kind == "add" and exists:
                raise UnknownKeyError(f"cannot add parameter {key!r}: it already exists (use {key}=value to change it)")
            if exists:
                node, leaf = self._resolve(key)
                node._assign(leaf, value, define=False)
            else:
                self[key] = value
        return self

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
        from hydra import compose, initialize, initialize_config_dir
        from hydra.core.config_store import ConfigStore
        from hydra.core.global_hydra import GlobalHydra
        from hydra.initialize import get_gh_backup, restore_gh_from_backup
        from omegaconf import OmegaConf

        from lumo_hydra.params.validation import validate_config

        schema_name = None
        if config_name is None:
            schema_name = f"_lumo_params_{id(self):x}"
            ConfigStore.instance().store(name=schema_name, node=_dataclass_of(self))
        backup = get_gh_backup()
        GlobalHydra.instance().clear()
        try:
            if config_path is not None:
                ctx: Any = initialize_config_dir(config_dir=os.path.abspath(os.fspath(config_path)), version_base="1.3")
            else:
                ctx = initialize(config_path=None, version_base="1.3")
            with ctx:
                cfg = compose(config_name=config_name or schema_name, overrides=list(overrides))
        finally:
            restore_gh_from_backup(backup)
            if schema_name is not None:
                _forget_stored(schema_name)
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

    store: ClassVar[_StoreDescriptor]  # set below: works on the class and on an instance

    @classmethod
    def dataclass(cls) -> type:
        """The dataclass generated from this class (field metadata holds the validators)."""
        return _dataclass_of(cls)

    # ---- help ------------------------------------------------------------------------------------

    def help_text(self) -> str:
        """Every parameter with its type, default, allowed values and docstring."""
        rows = []
        for key, node, leaf in _flat_items(self):
            v = node._values[leaf]
            val = node._validators.get(leaf)
            tp_ = node._types.get(leaf, _NOTYPE)
            if tp_ is _NOTYPE and val is not None:
                tp_ = _infer_type(v, val)
            tp = _type_name(tp_, None if v is REQUIRED else v)
            default = "??? (required)" if v is REQUIRED else repr(v)
            line = f"  --{key}  ({tp}, default: {default})"
            if val is not None:
                line += f"  allowed: {val.allowed()}"
            doc = node._docs.get(leaf, "")
            if doc:
                line += f"\n      {doc}"
            rows.append(line)
        head = f"usage: {os.path.basename(sys.argv[0]) or 'python'} [--key=value | key=value | +key=value | ~key] ... [-c FILE[,FILE]]"
        return "\n".join([head, "", "parameters:", *(rows or ["  (none)"])])


def _store(obj: Any, name: str, group: str | None = None, package: str | None = None) -> None:
    """Register these params (class or instance) as a dataclass in Hydra's ConfigStore.

    ``TrainParams.store(name='train')`` or ``params.store(name='train')``; the dataclass fields carry
    the validators, so a composed config is checked by :func:`lumo_hydra.validation.validate_config`.
    """
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=name, node=_dataclass_of(obj), group=group, package=package, provider="lumo_hydra")


class _StoreFunction(typing.Protocol):
    def __call__(self, name: str, group: str | None = None, package: str | None = None) -> None: ...


class _StoreDescriptor:
    """Makes ``store`` work on the class (``TrainParams.store(name=...)``) and on an instance."""

    def __init__(self) -> None:
        self.__doc__ = _store.__doc__

    def __get__(self, obj: Any, objtype: Any = None) -> _StoreFunction:
        target = obj if obj is not None else objtype
        return typing.cast(_StoreFunction, functools.partial(_store, target))


Params.store = _StoreDescriptor()  # type: ignore[misc, unused-ignore]

# names that cannot be parameters (they are methods)
_RESERVED = frozenset(n for n in vars(Params) if not n.startswith("_"))


def _check_key(key: str, tok: str) -> None:
    if not key or any(not part for part in key.split(".")):
        raise ParamsArgsError(f"bad parameter name in {tok!r}")


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


# --------------------------------------------------------------------------------------------------
# dataclass generation (the ConfigStore adapter)
# --------------------------------------------------------------------------------------------------

_SIMPLE = (int, float, str, bool)


def _infer_type(value: Any, validator: Validator | None) -> Any:
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


def _dataclass_of(obj: Any) -> type:
    """The dataclass for a Params class (cached on the class) or a Params instance (built on the fly)."""
    if isinstance(obj, type):
        cls = obj
        dc = cls.__dict__.get("__lumo_dataclass__")
        if dc is None:
            dc = _build_dataclass(cls(), cls.__name__, cls.__module__, f"{cls.__qualname__}.__lumo_dataclass__")
            type.__setattr__(cls, "__lumo_dataclass__", dc)
        return dc
    assert isinstance(obj, Params)
    if type(obj).__lumo_fields__ and obj.keys() == list(type(obj).__lumo_fields__) and obj == type(obj)():
        return _dataclass_of(type(obj))
    qual = f"_lumo_dynamic_{type(obj).__name__}_{obj.hash()[:12]}_{id(obj):x}"
    dc = _build_dataclass(obj, type(obj).__name__, __name__, qual)
    setattr(sys.modules[__name__], qual, dc)  # importable, so the stored config pickles in this process
    return dc


def _build_dataclass(p: Params, name: str, module: str, qualname: str) -> type:
    specs: list[tuple[str, Any, Any]] = []
    for key, value in p._values.items():
        validator = p._validators.get(key)
        tp = p._types.get(key, _NOTYPE)
        meta: dict[str, Any] = {}
        if validator is not None:
            meta[VALIDATOR_KEY] = validator
        if key in p._docs:
            meta[DOC_KEY] = p._docs[key]
        if isinstance(value, Params):
            sub = _dataclass_of(type(value)) if isinstance(tp, type) and tp is type(value) and value == type(value)() \
                else _dataclass_of(value)
            ftype: Any = sub
            fld = dataclasses.field(default_factory=functools.partial(_dc_instance, sub, value.to_dict()), metadata=meta)
        else:
            ftype = tp if tp is not _NOTYPE else _infer_type(value, validator)
            if value is REQUIRED:
                fld = dataclasses.field(default="???", metadata=meta)
            elif isinstance(value, (list, dict, set, tuple)):
                fld = dataclasses.field(default_factory=functools.partial(_copy.deepcopy, value), metadata=meta)
            else:
                fld = dataclasses.field(default=value, metadata=meta)
        specs.append((key, ftype, fld))
    dc = dataclasses.make_dataclass(name, specs)
    dc.__module__ = module
    dc.__qualname__ = qualname
    dc.__lumo_params__ = type(p)  # type: ignore[attr-defined]
    return dc


def _dc_instance(dc: type, values: dict[str, Any]) -> Any:
    kwargs = {}
    for f in dataclasses.fields(dc):  # type: ignore[arg-type, unused-ignore]
        if f.name in values:
            v = values[f.name]
            if isinstance(f.type, type) and dataclasses.is_dataclass(f.type) and isinstance(v, dict):
                v = _dc_instance(f.type, v)
            kwargs[f.name] = v
    return dc(**kwargs)


def _forget_stored(name: str) -> None:
    from hydra.core.config_store import ConfigStore

    repo = ConfigStore.instance().repo
    repo.pop(f"{name}.yaml", None)
