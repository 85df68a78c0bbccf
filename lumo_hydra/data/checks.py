"""The ``DatasetBuilder``'s argument checks and index normalisation (plain functions, no state).

Every error is a :mod:`lumo_hydra.errors` data error naming the argument and what is allowed.
"""
from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

from lumo_hydra.errors import DataIndexError, DataTypeError, DataValueError

__all__ = [
    "describe", "check_callable", "check_name", "source_length", "is_dataframe", "as_int", "non_negative_int",
    "as_index_list",
]


def describe(obj: Any) -> str:
    """A short name of a transform for ``repr``: a function's or class's name, else its repr."""
    if obj is None:
        return "None"
    name = getattr(obj, "__qualname__", None)
    if isinstance(name, str):  # functions and classes: their name; instances: their repr
        return name
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def check_callable(what: str, fn: Any) -> None:
    """Raise ``DataTypeError`` unless ``fn`` is callable or None."""
    if fn is not None and not callable(fn):
        raise DataTypeError(f"{what} must be callable or None, got {type(fn).__name__}: {fn!r:.80}")


def check_name(what: str, name: Any) -> None:
    """Raise ``DataValueError`` unless ``name`` is a non-empty string."""
    if not isinstance(name, str) or not name:
        raise DataValueError(f"{what} must be a non-empty string, got {name!r}")


def source_length(source: Any) -> int | None:
    """``len(source)``, or None for a source without a length."""
    try:
        return len(source)
    except (TypeError, NotImplementedError):
        return None


def is_dataframe(source: Any) -> bool:
    """Whether ``source`` is a pandas/polars frame (``[]`` selects columns there, not rows)."""
    # detect without importing pandas
    return type(source).__name__ == "DataFrame" and hasattr(source, "columns") and hasattr(source, "keys")


def as_int(index: Any) -> int:
    """An item index as an int (numpy/torch integer scalars accepted; bools and slices refused)."""
    if type(index) is int:
        return index
    if isinstance(index, bool):
        raise DataTypeError(f"DatasetBuilder indices must be integers, got {index!r}")
    try:
        return operator.index(index)
    except TypeError:
        raise DataTypeError(
            f"DatasetBuilder indices must be integers, got {type(index).__name__}: {index!r:.60}"
            + ("; use ds.subset(...) to select several items" if isinstance(index, (slice, list, tuple)) else "")
        ) from None


def non_negative_int(what: str, value: Any) -> int:
    """``value`` as an int >= 0, else a data error naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = operator.index(value)
        except TypeError:
            raise DataTypeError(f"{what} must be an int >= 0, got {type(value).__name__}: {value!r}") from None
    if value < 0:
        raise DataValueError(f"{what} must be an int >= 0, got {value}")
    return int(value)


def as_index_list(indices: Any, n: int) -> list[int]:
    """Normalise subset indices (ints, negatives, numpy/torch arrays, boolean masks) against length ``n``."""
    if isinstance(indices, (str, bytes, Mapping)):
        raise DataTypeError(f"subset() indices must be a sequence of ints or a boolean mask, got {indices!r:.60}")
    if hasattr(indices, "tolist") and not isinstance(indices, (list, tuple, range)):
        indices = indices.tolist()  # numpy arrays and torch tensors
    try:
        items = list(indices)
    except TypeError:
        raise DataTypeError(
            f"subset() indices must be a sequence of ints or a boolean mask, got {type(indices).__name__}"
        ) from None
    if items and all(isinstance(x, bool) for x in items):
        if len(items) != n:
            raise DataValueError(f"subset() boolean mask has length {len(items)}, the builder has {n} items")
        return [i for i, keep in enumerate(items) if keep]
    out = []
    for x in items:
        i = as_int(x)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise DataIndexError(f"subset() index {i} out of range for a DatasetBuilder of length {n}")
        out.append(j)
    return out
