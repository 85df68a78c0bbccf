"""A DataFrame column of nested values (``params``, ``metrics``, ``progress`` dicts) built on first use.

The frame cache keeps each nested column as its own marshal payload; a warm ``load()`` wraps the
payload in a :class:`NestedArray` (a pandas extension array) instead of building 100,000 runs' dicts
(most of a warm load's time). The first access that needs the values (``df['params'][0]``, ``.map``,
a mask, printing, ``tolist``) builds them all at once, as ``load()`` used to; ``len``, ``copy`` and the
frame cache's own writing do not. The dtype compares equal to ``object`` (``df[c].dtype == object``
stays true, as for the plain object column it stands for).
"""
from __future__ import annotations

import builtins
import marshal
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pandas.api.extensions import ExtensionArray, ExtensionDtype, take

__all__ = ["NestedArray", "NestedDtype", "lazy_payload"]


class NestedDtype(ExtensionDtype):
    """The dtype of a :class:`NestedArray`: Python objects, shown and compared as ``object``."""

    name = "object"
    type = object
    kind = "O"
    na_value = None

    @classmethod
    def construct_array_type(cls) -> builtins.type[NestedArray]:
        return NestedArray

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, NestedDtype) or other is object or other == "object" or other == "O":
            return True
        return isinstance(other, np.dtype) and other == np.dtype(object)

    def __hash__(self) -> int:
        return hash(np.dtype(object))


def _objects(vals: Sequence[Any]) -> np.ndarray:
    try:  # not np.array(vals): lists of equal length would become a 2-d array
        return np.fromiter(vals, dtype=object, count=len(vals))
    except (ValueError, TypeError):  # numpy < 1.23: no object dtype in fromiter
        out = np.empty(len(vals), dtype=object)
        for i, v in enumerate(vals):
            out[i] = v
        return out


# the missing values of a column, filled as ``load()`` shows them (``{}`` for the dict columns, ...)
FILLS: dict[str, Callable[[list[Any]], list[Any]]] = {
    "dict": lambda vals: [v or {} for v in vals],
    "list": lambda vals: [v or [] for v in vals],
    "str": lambda vals: [v or "" for v in vals],
}


class NestedArray(ExtensionArray):
    """Python objects (one per row) from a marshal payload of their list, or from several (the chunks
    of the index, their lists one after the other), unmarshalled on first use (or given as an object
    ndarray). ``fill`` (a key of ``FILLS``) fills the missing values when they are built; ``ref`` names
    the index column the payloads are the chunks of (the frame cache then refers to them)."""

    _dtype = NestedDtype()

    def __init__(self, payload: Any = None, n: int = 0, values: np.ndarray | None = None,
                 fill: str | None = None, ref: str | None = None) -> None:
        self._payload = payload
        self._n = n if values is None else len(values)
        self._vals = values
        self.fill = fill
        self.ref = ref

    # ---- the values, built once -------------------------------------------------------------------

    @property
    def values_(self) -> np.ndarray:
        """The values as an object ndarray (built from the payload on first use)."""
        if self._vals is None:
            if isinstance(self._payload, list):
                vals: Any = []
                for p in self._payload:
                    part = marshal.loads(p)
                    if type(part) is not list:
                        raise ValueError("damaged frame cache column")
                    vals.extend(part)
            else:
                vals = marshal.loads(self._payload)
            if type(vals) is not list or len(vals) != self._n:
                raise ValueError("damaged frame cache column")
            if self.fill is not None:
                vals = FILLS[self.fill](vals)
            self._vals = _objects(vals)
            self._payload = None
        return self._vals

    def payload(self) -> list[Any]:
        """The marshal payloads of the values (without building them when not built yet)."""
        if self._vals is None:
            return self._payload if isinstance(self._payload, list) else [self._payload]
        return [marshal.dumps(self._vals.tolist())]

    def unbuilt(self) -> bool:
        """Whether the values are still the payloads' (not built, so not changed)."""
        return self._vals is None

    # ---- the ExtensionArray interface ----------------------------------------------------------------

    @classmethod
    def _from_sequence(cls, scalars: Any, *, dtype: Any = None, copy: bool = False) -> NestedArray:
        if isinstance(scalars, NestedArray):
            return scalars.copy() if copy else scalars
        return cls(values=_objects(list(scalars)))

    @classmethod
    def _from_factorized(cls, values: Any, original: Any) -> NestedArray:
        return cls(values=_objects(list(values)))

    @property
    def dtype(self) -> NestedDtype:
        return self._dtype

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, tuple) and len(item) == 1:
            item = item[0]
        got = self.values_[item]
        if isinstance(item, (int, np.integer)):
            return got
        return NestedArray(values=np.asarray(got, dtype=object).reshape(-1))

    def __setitem__(self, key: Any, value: Any) -> None:
        vals = self.values_
        if isinstance(value, NestedArray):
            value = value.values_
        vals[key] = value

    def __iter__(self) -> Any:
        return iter(self.values_)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        vals = self.values_
        if dtype is not None and np.dtype(dtype) != np.dtype(object):
            return vals.astype(dtype)
        return vals.copy() if copy else vals

    @property
    def nbytes(self) -> int:
        return self._n * 8

    def isna(self) -> np.ndarray:
        import pandas as pd

        return np.asarray(pd.isna(self.values_), dtype=bool)

    def take(self, indices: Any, *, allow_fill: bool = False, fill_value: Any = None) -> NestedArray:
        return NestedArray(values=take(self.values_, indices, allow_fill=allow_fill, fill_value=fill_value))

    def copy(self) -> NestedArray:
        if self._vals is None:
            return NestedArray(self._payload, self._n, fill=self.fill, ref=self.ref)  # never modified: shared
        return NestedArray(values=self._vals.copy())

    @classmethod
    def _concat_same_type(cls, to_concat: Sequence[NestedArray]) -> NestedArray:
        parts = [x.values_ if isinstance(x, NestedArray) else _objects(list(x)) for x in to_concat]
        return cls(values=np.concatenate(parts) if parts else np.empty(0, object))

    def _values_for_factorize(self) -> tuple[np.ndarray, Any]:
        return self.values_, None

    def astype(self, dtype: Any, copy: bool = True) -> Any:
        if isinstance(dtype, NestedDtype):
            return self.copy() if copy else self
        return np.array(self.values_, dtype=dtype, copy=copy) if not isinstance(dtype, ExtensionDtype) \
            else dtype.construct_array_type()._from_sequence(self.values_, dtype=dtype)

    def map(self, mapper: Callable[[Any], Any] | Any, na_action: Any = None) -> Any:
        from pandas.core.algorithms import map_array

        return map_array(self.values_, mapper, na_action=na_action)

    def _cmp(self, other: Any, op: Callable[[Any, Any], Any]) -> np.ndarray:
        if isinstance(other, NestedArray):
            other = other.values_
        vals = self.values_
        if isinstance(other, (np.ndarray, list, ExtensionArray)):
            return np.array([bool(op(a, b)) for a, b in zip(vals, other)], dtype=bool)
        return np.array([bool(op(a, other)) for a in vals], dtype=bool)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return self._cmp(other, lambda a, b: a == b)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self._cmp(other, lambda a, b: a != b)

    __hash__ = None  # type: ignore[assignment]  # mutable, like an ndarray

    def _formatter(self, boxed: bool = False) -> Callable[[Any], str]:
        return repr if not boxed else str

    def __reduce__(self) -> Any:  # pickled as its values
        return (NestedArray, (None, 0, self.values_))

    def tolist(self) -> list[Any]:
        return self.values_.tolist()


def lazy_payload(values: Any) -> tuple[list[Any], str | None, str | None] | None:
    """``(marshal payloads, fill, index column or None)`` of a DataFrame column kept as a
    :class:`NestedArray`, without building its values, or ``None`` for any other column."""
    arr = getattr(values, "array", values)
    if not isinstance(arr, NestedArray):
        return None
    return arr.payload(), arr.fill, arr.ref if arr.unbuilt() else None
