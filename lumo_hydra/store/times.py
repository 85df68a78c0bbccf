"""Times as the store writes and reads them: ISO-8601 local time with offset."""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any


def now_iso(t: float | None = None) -> str:
    """Local time with offset, ISO-8601, milliseconds (``2026-11-28T10:00:00.123+08:00``)."""
    dt = datetime.fromtimestamp(time.time() if t is None else t).astimezone()
    return dt.isoformat(timespec="milliseconds")


def parse_time(value: Any) -> float | None:
    """A Unix time from an ISO-8601 string (with or without offset) or a number; ``None`` if unknown."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None
