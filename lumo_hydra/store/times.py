"""Times as the store writes and reads them: ISO-8601 local time with offset."""
from __future__ import annotations

import math
import time
from typing import Any


def now_iso(t: float | None = None) -> str:
    """Local time with offset, ISO-8601, milliseconds (``2026-11-28T10:00:00.123+08:00``).

    The same text as ``datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")``
    (microseconds rounded half to even, then cut to milliseconds), without importing ``datetime``."""
    t = time.time() if t is None else float(t)
    frac, whole = math.modf(t)
    us = round(frac * 1e6)
    if us >= 1000000:
        whole, us = whole + 1, us - 1000000
    elif us < 0:
        whole, us = whole - 1, us + 1000000
    lt = time.localtime(whole)
    off = lt.tm_gmtoff or 0
    sign = "-" if off < 0 else "+"
    h, rem = divmod(abs(off), 3600)
    m, s = divmod(rem, 60)
    zone = f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + f".{us // 1000:03d}{zone}"


def parse_time(value: Any) -> float | None:
    """A Unix time from an ISO-8601 string (with or without offset) or a number; ``None`` if unknown."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        from datetime import datetime  # lazy: writers only format times (issue 14)

        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None
