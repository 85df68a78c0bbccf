"""Datasets: the ``DatasetBuilder``, its YAML DAG specs and scikit-learn's bundled digits."""
from __future__ import annotations

from typing import Any

from lumo_hydra.data.builder import DataIndexError, DatasetBuilder, DataTypeError, DataValueError

__all__ = ["DatasetBuilder", "DataValueError", "DataTypeError", "DataIndexError"]


def __getattr__(name: str) -> Any:
    from lumo_hydra.data import builder

    return getattr(builder, name)
