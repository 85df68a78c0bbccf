"""An unsized ``DatasetBuilder`` as a torch ``IterableDataset`` (torch is imported on first use only).

``DatasetBuilder.DataLoader`` uses :func:`iterable_dataset` for a builder without a length: worker
``w`` of ``n`` gets items ``w, w+n, ...``. The class subclasses a torch class, so it is created on first
use and published as this module's ``_BuilderIterable`` (so pickle finds it, also in spawned workers).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["iterable_dataset"]


def _make_iterable_cls() -> Any:
    from torch.utils.data import IterableDataset, get_worker_info

    class _BuilderIterable(IterableDataset):
        """An unsized builder as a torch ``IterableDataset``, items split between DataLoader workers."""

        def __init__(self, builder: Any) -> None:
            self.builder = builder

        def __iter__(self) -> Iterator[Any]:
            info = get_worker_info()
            it = iter(self.builder)
            if info is None or info.num_workers <= 1:
                return it
            import itertools

            return itertools.islice(it, info.id, None, info.num_workers)

    _BuilderIterable.__module__ = __name__
    _BuilderIterable.__qualname__ = "_BuilderIterable"
    globals()["_BuilderIterable"] = _BuilderIterable  # so pickle finds it (also in spawned workers)
    return _BuilderIterable


def __getattr__(name: str) -> Any:
    if name == "_BuilderIterable":  # created on first use, because it subclasses a torch class
        return _make_iterable_cls()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def iterable_dataset(builder: Any) -> Any:
    """``builder`` (a ``DatasetBuilder``) wrapped in the torch ``IterableDataset`` described above."""
    cls = globals().get("_BuilderIterable") or _make_iterable_cls()
    return cls(builder)
