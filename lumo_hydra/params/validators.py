"""The validators of a parameter: :class:`Choice` (``choice(...)``) and :class:`Arange` (``arange(...)``).

A leaf module: it imports only the standard library and :mod:`lumo_hydra.errors`, so config validation
(:mod:`lumo_hydra.params.validation`) and the Hydra edge can use validators without loading ``Params``.
A validator travels to Hydra as metadata of a generated dataclass field (``field.metadata[VALIDATOR_KEY]``).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

from lumo_hydra.errors import LumoValueError, ParamsValueError

__all__ = ["Validator", "Choice", "Arange", "choice", "arange", "VALIDATOR_KEY", "DOC_KEY", "is_number"]

#: key of the dataclass field metadata that holds a field's :class:`Validator`
VALIDATOR_KEY = "lumo_validator"
#: key of the dataclass field metadata that holds a field's docstring
DOC_KEY = "lumo_doc"


def is_number(value: Any) -> bool:
    """True for a real number that is not a bool."""
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
        raise ParamsValueError(key, f"interval({start}, {end})", self.allowed(),
                               "an interval sweep needs a numeric range parameter")

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
            if bound is not None and not is_number(bound):
                raise ParamsValueError(f"arange.{name}", bound, "a number or None")
        if isinstance(left, float) and math.isinf(left):  # a huge int is compared exactly, never converted
            left = None
        if isinstance(right, float) and math.isinf(right):
            right = None
        if left is not None and right is not None and left > right:
            raise ParamsValueError("arange.left", left, f"a number <= right ({right!r})")
        self.left = left
        self.right = right
        self.doc = doc
        self.default = self.check("default", default)

    def check(self, key: str, value: Any) -> Any:
        if not is_number(value) or (isinstance(value, float) and math.isnan(value)):
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
