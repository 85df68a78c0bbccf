"""The open runs of this process: one registry, in start order.

``Experiment.start()`` adds a run and ``end()`` (or a failed start) removes it. ``current_experiment()``
is its newest entry; the abort handlers (:mod:`lumo_hydra.record.abort`) end the entries that their
``RecordAbort`` hook asked them to watch. Entries of another process (a forked child inherits the list)
are never reported.
"""
from __future__ import annotations

import os
import threading
from typing import Any

_lock = threading.RLock()
_runs: list[Any] = []  # (experiment) started, not yet ended, in start order
_watched: dict[int, Any] = {}  # id(experiment) -> experiment, for those the abort handlers end


def add(exp: Any) -> None:
    """A run was started in this process."""
    with _lock:
        if exp not in _runs:
            _runs.append(exp)


def remove(exp: Any) -> None:
    """A run ended (or its start failed): it is no longer open and no longer watched."""
    with _lock:
        try:
            _runs.remove(exp)
        except ValueError:
            pass
        _watched.pop(id(exp), None)


def watch(exp: Any, on: bool = True) -> None:
    """Mark an open run as one the abort handlers end (``on=False`` unmarks it)."""
    with _lock:
        if on:
            _watched[id(exp)] = exp
        else:
            _watched.pop(id(exp), None)


def open_runs(*, watched: bool = False) -> list[Any]:
    """The open runs of this process in start order (only the watched ones with ``watched=True``)."""
    pid = os.getpid()
    with _lock:
        return [e for e in _runs if getattr(e, "_pid", pid) == pid and (not watched or id(e) in _watched)]


def current() -> Any:
    """The most recently started open run of this process, or ``None``."""
    runs = open_runs()
    return runs[-1] if runs else None
