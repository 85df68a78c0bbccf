"""Exceptions for user mistakes. All subclass ``ValueError`` and name the key, the value and what is allowed."""
from __future__ import annotations

from typing import Any


class LumoValueError(ValueError):
    """Base class of every lumo-hydra error caused by a bad value or bad input."""


class ParamsValueError(LumoValueError):
    """A parameter got a value its validator does not allow.

    ``key`` is the dotted parameter path, ``value`` the rejected value, ``allowed`` a human-readable
    description of what is allowed (e.g. ``one of ['cifar10', 'cifar100']`` or ``[0, 10]``).
    """

    def __init__(self, key: str, value: Any, allowed: str, hint: str = "") -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        msg = f"invalid value for parameter '{key}': {value!r}; allowed: {allowed}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)

    def __reduce__(self):  # keep it picklable across processes
        return (type(self), (self.key, self.value, self.allowed))


class UnknownKeyError(LumoValueError, KeyError):
    """A key that does not exist was set (with a 'did you mean' suggestion)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class StoreError(LumoValueError):
    """The store cannot be used (e.g. the root cannot be written)."""


class RunNotFoundError(LumoValueError, LookupError):
    """A run id that is not in the store (the message lists the closest ids)."""
