"""The one reader of the store's files (docs/store.md): run records, metrics, history, heartbeat."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable


def read_metrics(info_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``metrics.json`` of a run folder, ``{}`` if missing or unreadable."""
    try:
        with open(Path(info_dir) / "metrics.json", "rb") as f:
            data = json.loads(f.read())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def read_history(info_dir: str | os.PathLike[str]) -> Iterable[dict[str, Any]]:
    """The lines of ``history.jsonl`` (a last line without newline is ignored, as the contract says)."""
    try:
        with open(Path(info_dir) / "history.jsonl", "rb") as f:
            data = f.read()
    except OSError:
        return []
    out = []
    for line in data.split(b"\n")[:-1]:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
