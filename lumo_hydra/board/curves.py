"""The data behind the board's metric curves: a metric's history of several runs, smoothed and thinned.

Server side only (numpy, no Panel): :func:`curves_data` reads each run's ``history.jsonl``, optionally
smooths it (an exponential moving average, debiased like TensorBoard's) and keeps at most
``max_points`` points per curve for display (the minimum and the maximum of each of ``max_points / 2``
buckets, so spikes stay visible). 20 runs x 10,000 points: 0.36 s of CPU (``bench_curves``,
docs/benchmarks.md).

Reading: one ``read`` per file; the lines of that metric are found by the ``"k": <name>`` the store's
writer puts first in each line (one regex over the file) and, when all are spelled as the writer writes
them, their numbers are parsed in one call (no dict per point: ~5x less CPU than ``read_history``'s line
by line parse); other lines of the metric are parsed as JSON objects in one ``json.loads``. A file this
fast path cannot take whole (a damaged line of that metric, an unusual spelling) goes through the
store's reader (:func:`lumo_hydra.store.reader.read_history`), whose warnings and skipping rules then
apply. Lines that do not name the metric are not parsed at all (a damaged one is not reported here).
Parsed arrays are cached per file: a redraw reads nothing, a growing file only its new lines.
"""
from __future__ import annotations

import json
import math
import os
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from lumo_hydra.errors import LumoValueError
from lumo_hydra.store.files import FLOAT_TAG, revive_floats
from lumo_hydra.store.layout import HISTORY_JSONL
from lumo_hydra.store.reader import read_history

__all__ = ["curves_data", "history_arrays", "ema", "downsample", "bench_curves", "X_AXES", "MAX_POINTS"]

#: what the x axis of a curve can be: the logged step, or the seconds since the run's first point
X_AXES = ("step", "time")
#: the points kept per curve for display
MAX_POINTS = 2000


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


class _Cached(NamedTuple):
    ino: int
    mtime_ns: int
    used: int  # bytes parsed (up to the last newline); -1: read by the store's reader, re-read on change
    arrays: Arrays


#: ``(history path, metric) -> what was parsed``: a redraw (smoothing, x axis, log y) reads nothing, and a
#: running run's growing file is parsed only from where the last read stopped (the writer only appends)
_CACHE: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
_CACHE_SIZE = 256
#: and at most this many points in all (3 floats each: 5,000,000 points are 120 MB)
_CACHE_POINTS = 5_000_000
_CACHE_LOCK = threading.Lock()
_EMPTY: Arrays = (np.zeros(0), np.zeros(0), np.zeros(0))


def history_arrays(info_dir: str, metric: str) -> Arrays:
    """``(step, value, time)`` of ``metric`` in the run folder ``info_dir`` as float arrays, in logged order.

    A point without a step gets its position; values that are not numbers become NaN. A missing file
    gives empty arrays. Results are cached per file signature (do not modify the arrays)."""
    path = os.path.join(info_dir, HISTORY_JSONL)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return _EMPTY
    except OSError:
        return _arrays(read_history(info_dir, metric, stacklevel=3))
    key = (path, metric)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit.ino == st.st_ino:
        if hit.used == st.st_size or (hit.used == -1 and hit.mtime_ns == st.st_mtime_ns):
            return hit.arrays
        if 0 <= hit.used < st.st_size:
            got = _read_points(path, metric, hit.used, len(hit.arrays[0]))
            if got is not None:
                new, used = got
                arrays = _concat(hit.arrays, new) if len(new[0]) else hit.arrays
                return _remember(key, _Cached(st.st_ino, st.st_mtime_ns, used, arrays))
    got = _read_points(path, metric, 0, 0)
    if got is None:  # the store's reader: its skipping rules and warnings
        arrays = _arrays(read_history(info_dir, metric, stacklevel=3))
        return _remember(key, _Cached(st.st_ino, st.st_mtime_ns, -1, arrays))
    return _remember(key, _Cached(st.st_ino, st.st_mtime_ns, got[1], got[0]))


def _remember(key: tuple[str, str], entry: _Cached) -> Arrays:
    with _CACHE_LOCK:
        _CACHE[key] = entry
        _CACHE.move_to_end(key)
        total = sum(len(e.arrays[0]) for e in _CACHE.values())
        while len(_CACHE) > 1 and (len(_CACHE) > _CACHE_SIZE or total > _CACHE_POINTS):
            total -= len(_CACHE.popitem(last=False)[1].arrays[0])
    return entry.arrays


def _concat(a: Arrays, b: Arrays) -> Arrays:
    return (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]), np.concatenate([a[2], b[2]]))


def _arrays(pts: list[dict[str, Any]], base: int = 0) -> Arrays:
    """The points as arrays; a point without a step gets its position (``base`` + its index)."""
    return _positions(_floats([p.get("s") for p in pts]), base), _floats([p.get("v") for p in pts]), \
        _floats([p.get("t") for p in pts])


def _positions(step: np.ndarray, base: int) -> np.ndarray:
    """``step`` with each missing step replaced by the point's position (``base`` + its index)."""
    nostep = np.isnan(step)
    if nostep.any():
        step[nostep] = base + np.flatnonzero(nostep)
    return step


def _floats(vals: list[Any]) -> np.ndarray:
    """``vals`` as a float array (``None`` and what is not a number: NaN)."""
    try:
        return np.array(vals, dtype=float)
    except (TypeError, ValueError):
        return np.array([_num(v) for v in vals], dtype=float)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _read_points(path: str, metric: str, offset: int, base: int) -> tuple[Arrays, int] | None:
    """The points of ``metric`` from byte ``offset`` of ``path`` (complete lines only; ``base``: the points
    before it) and the offset read up to, parsed in one call; ``None`` when the store's reader must read it."""
    try:
        with open(path, "rb") as f:
            if offset:
                f.seek(offset)
            data = f.read()
    except OSError:
        return None
    data = data[: data.rfind(b"\n") + 1]  # the part after the last newline is still being written
    used = offset + len(data)
    keys = {json.dumps(metric, ensure_ascii=a).encode("utf-8") for a in (False, True)}
    found = [sep + k for k in keys for sep in (b'"k": ', b'"k":') if sep + k in data]
    if not found:
        return (_EMPTY, used) if not any(k in data for k in keys) else None  # spelled otherwise: the reader
    rows = _writer_rows(data, found[0]) if len(found) == 1 else None
    if rows is not None:
        return (_positions(rows[:, 1].copy(), base), rows[:, 0].copy(), rows[:, 2].copy()), used
    joined = b"[" + b",".join(_lines_with(data, found)) + b"]"
    try:
        pts = json.loads(joined)
    except (ValueError, RecursionError):
        return None  # a damaged line: the reader skips it with its warning
    if f'"{FLOAT_TAG}"'.encode() in joined:
        pts = revive_floats(pts)
    if not all(type(p) is dict for p in pts):
        return None
    return _arrays([p for p in pts if p.get("k") == metric], base), used


_FLOATS = ((b'{"$float": "nan"}', b"NaN"), (b'{"$float": "-inf"}', b"-Infinity"), (b'{"$float": "inf"}', b"Infinity"))


def _writer_rows(data: bytes, needle: bytes) -> np.ndarray | None:
    """The ``(value, step, time)`` rows of the lines holding ``needle`` when every one is spelled exactly as
    the store's writer writes it (``{"k": <name>, "v": V, "s": S, "t": T}``), parsed as one list of numbers
    (no dict per point; JSON when a step is null); ``None`` for anything else (then each line is parsed as
    an object)."""
    if not needle.startswith(b'"k": '):
        return None
    bodies = re.findall(rb"(?m)^\{" + re.escape(needle + b', "v": ') + rb"([^\n]*)\}$", data)
    if not bodies or len(bodies) != data.count(needle):
        return None
    body = b",".join(bodies).replace(b', "s": ', b",").replace(b', "t": ', b",")
    if FLOAT_TAG.encode() in body:
        for tag, text in _FLOATS:
            body = body.replace(tag, text)
    n = len(bodies)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "could not be read to its end": checked below
            flat = np.fromstring(body, dtype=float, sep=",")  # numbers only: C's strtod, no JSON objects
    except ValueError:  # (newer numpy raises where older warned)
        flat = np.zeros(0)
    if flat.shape == (3 * n,):
        return flat.reshape(n, 3)
    try:  # a null step, an unusual number: JSON
        rows = np.array(json.loads(b"[" + body + b"]"), dtype=float)
    except (ValueError, TypeError, RecursionError):
        return None
    return rows.reshape(n, 3) if rows.shape == (3 * n,) else None


def _lines_with(data: bytes, needles: list[bytes]) -> list[bytes]:
    """The lines of ``data`` that hold one of ``needles``: a regex over the whole text when every
    occurrence starts its line (as the store's writer puts ``"k"`` first), else line by line."""
    if len(needles) == 1:
        nd = needles[0]
        lines = re.findall(rb"(?m)^\{" + re.escape(nd) + rb"[^\n]*", data)
        if len(lines) == data.count(nd):
            return lines
        return [ln for ln in data.split(b"\n") if nd in ln]
    return [ln for ln in data.split(b"\n") if any(nd in ln for nd in needles)]


def ema(values: np.ndarray, smooth: float) -> np.ndarray:
    """The exponential moving average of ``values`` with weight ``smooth`` in [0, 1) on the past
    (0: unchanged), debiased at the start (the first point is itself). Non-finite values are skipped
    (they stay NaN and do not disturb the average)."""
    smooth = float(smooth)
    if not 0.0 <= smooth < 1.0:
        raise LumoValueError(f"invalid value for 'smooth': {smooth!r}; allowed: a number in [0, 1)")
    out = np.array(values, dtype=float)
    if smooth == 0.0 or not len(out):
        return out
    import pandas as pd

    bad = ~np.isfinite(out)
    out[bad] = np.nan
    # adjust=True: the weighted mean of the points seen so far (TensorBoard's debiased EMA);
    # ignore_na=True: a missing point neither counts nor ages the others
    sm = pd.Series(out).ewm(alpha=1.0 - smooth, adjust=True, ignore_na=True).mean().to_numpy(copy=True)
    sm[bad] = np.nan
    return sm


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` of the points ``(x, y)`` for drawing, in order: the first and last point, and
    the minimum and maximum of each of ``max_points // 2`` equal buckets (spikes survive, unlike
    taking every k-th point). ``x``, ``y`` must be finite."""
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max(1, (max_points - 2) // 2)
    k = -(-n // buckets)  # points per bucket (the last bucket may be shorter)
    rows = -(-n // k)
    pad = rows * k - n
    lo = np.concatenate([y, np.full(pad, np.inf)]).reshape(rows, k)
    hi = np.concatenate([y, np.full(pad, -np.inf)]).reshape(rows, k)
    start = np.arange(rows) * k
    keep = np.unique(np.r_[0, n - 1, start + lo.argmin(axis=1), start + hi.argmax(axis=1)])
    return x[keep], y[keep]


def _curve(ref: Any, metric: str, x: str, smooth: float, max_points: int) -> dict[str, Any]:
    step, value, t = history_arrays(ref[2], metric)
    xs = step if x == "step" else t - (np.nanmin(t) if np.isfinite(t).any() else 0.0)
    ys = ema(value, smooth)
    ok = np.isfinite(xs) & np.isfinite(ys)
    dropped = int(len(ys) - int(ok.sum()))
    xs, ys = xs[ok], ys[ok]
    if x == "time" and len(xs) > 1 and np.any(np.diff(xs) < 0):
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
    dx, dy = downsample(xs, ys, max_points)
    finite = value[np.isfinite(value)]
    return {"run": ref[1], "exp": ref[0], "label": f"{ref[0]}/{ref[1]}", "x": dx, "y": dy,
            "points": int(len(step)), "shown": int(len(dx)), "dropped": dropped,
            "last": float(finite[-1]) if len(finite) else math.nan}


def curves_data(ctx: Any, run_ids: Sequence[str], metric: str, x: str = "step", smooth: float = 0.0,
                *, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """The curves of ``metric`` for the runs ``run_ids`` (any id ``Watcher.resolve`` takes).

    Returns ``{"metric", "x", "smooth", "curves": [...], "missing": [...], "seconds"}``; each curve is
    ``{"run", "exp", "label", "x", "y", "points", "shown", "dropped", "last"}`` with ``x``/``y`` numpy
    arrays of at most ``max_points`` finite points (``points``: as logged, ``dropped``: non-finite
    points left out, ``last``: the last finite raw value). ``x="time"`` is seconds since the run's first
    point. A run without that metric gives a curve with no points; an unknown run id is listed in
    ``missing`` with the reason."""
    if x not in X_AXES:
        raise LumoValueError(f"invalid value for 'x': {x!r}; allowed: {', '.join(X_AXES)}")
    if not isinstance(metric, str) or not metric:
        raise LumoValueError(f"invalid value for 'metric': {metric!r}; allowed: a metric name")
    if not isinstance(max_points, int) or max_points < 4:
        raise LumoValueError(f"invalid value for 'max_points': {max_points!r}; allowed: an integer >= 4")
    ema(np.zeros(0), smooth)  # checks smooth before any reading
    t0 = time.perf_counter()
    curves, missing = [], []
    for rid in dict.fromkeys(run_ids):
        try:
            ref = ctx.watcher.resolve(rid)
        except LumoValueError as e:
            missing.append({"run": rid, "reason": str(e)})
            continue
        curves.append(_curve(ref, metric, x, float(smooth), max_points))
    return {"metric": metric, "x": x, "smooth": float(smooth), "curves": curves, "missing": missing,
            "seconds": time.perf_counter() - t0}


def bench_curves(ctx: Any, run_ids: Sequence[str], metric: str, repeat: int = 3, **kw: Any) -> dict[str, float]:
    """Server-side time of :func:`curves_data` (best and median of ``repeat`` calls, seconds) and the
    points read and shown: a helper for benchmarks/bench_board.py and for measuring by hand."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = curves_data(ctx, run_ids, metric, **kw)
        times.append(time.perf_counter() - t0)
    assert out is not None
    times.sort()
    return {"best": times[0], "median": times[len(times) // 2], "runs": float(len(out["curves"])),
            "points": float(sum(c["points"] for c in out["curves"])),
            "shown": float(sum(c["shown"] for c in out["curves"]))}
