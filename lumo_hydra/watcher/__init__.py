"""Reading the store into pandas: the ``Watcher`` facade, its index and frame cache, the query language."""
from __future__ import annotations

from lumo_hydra.watcher.watcher import C, Condition, RunRef, Watcher, parse_when

__all__ = ["Watcher", "C", "Condition", "RunRef", "parse_when"]
