"""Helpers for nested parameters: how deep a value is, which mappings become nested ``Params``.

A leaf module (standard library only). ``MAX_DEPTH`` bounds the nesting of a parameter value or
file, so a hostile 100,000-deep file is a ``ValueError`` naming it rather than a ``RecursionError``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["MAX_DEPTH", "depth_of", "nestable", "HybridMethod"]

#: the deepest nesting (mappings and lists) a parameter value or a parameter file may have
MAX_DEPTH = 100


def depth_of(value: Any, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of dicts/lists/tuples in ``value`` (iterative; stops counting past ``limit``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, Mapping):
            children: Any = v.values()
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        d += 1
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((c, d) for c in children)
    return deepest


def nestable(m: Mapping[Any, Any], reserved: frozenset[str]) -> bool:
    """True when every key of ``m`` can be a parameter name (a str, no dot, no ``_`` start, no method name)."""
    return all(isinstance(k, str) and k and "." not in k and not k.startswith("_") and k not in reserved for k in m)


class HybridMethod:
    """A method that works on an instance and on the class (then on a fresh instance): lumo's ``from_kwargs``."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, objtype: Any = None) -> Callable[..., Any]:
        target = obj if obj is not None else objtype()
        return self.func.__get__(target, type(target))
