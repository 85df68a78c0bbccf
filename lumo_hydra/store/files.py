"""Small file helpers shared by the store, the hooks and the watcher: atomic writes, tolerant reads."""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write that replaces ``path`` when the ``with`` block ends without an error, so a
    reader sees the old file or the new one, never half of it (on an error the temporary is removed).

    The temporary file is in the same folder (a random name, created exclusively: concurrent writers, even
    on other hosts of a shared file system, never share one) and renamed over ``path``. The parent folder
    must exist. The file gets the usual ``0o666 & ~umask`` permissions.
    """
    path = os.fspath(path)
    d, base = os.path.split(path)
    tmp = os.path.join(d, f".tmp-{base}.{os.urandom(6).hex()}~")
    fd = os.open(tmp, _TMP_FLAGS, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def mark_changed(info_dir: str | os.PathLike[str]) -> None:
    """Mark the experiment folder of run folder ``info_dir`` as changed (its modification time set to now),
    after a write of ``run.json``, ``metrics.json`` or ``heartbeat``: ``Watcher.change_token()`` and the
    frame cache stat only the experiment folders. Never raises (a folder that cannot be marked costs
    only the speed of the readers' next check, see ``lumo_hydra.watcher.token``). The writer's copy of
    ``lumo_hydra.store.reader.mark_changed``: a recorded job does not import the reader (issue 18)."""
    try:
        os.utime(os.path.dirname(os.path.abspath(info_dir)))
    except OSError:
        pass


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """``atomic_write_bytes`` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Best-effort conversion to JSON-able data (numpy/torch scalars, paths, sets, tuples, OmegaConf)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    mod = type(obj).__module__
    if mod.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return to_jsonable(OmegaConf.to_container(obj, resolve=True))
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return to_jsonable(item())
        except Exception:
            pass
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        try:
            return to_jsonable(tolist())
        except Exception:
            pass
    return repr(obj)


FLOAT_TAG = "$float"
"""Key of the object standing for a non-finite float in the store's JSON: ``{"$float": "nan"}``,
``{"$float": "inf"}`` or ``{"$float": "-inf"}`` (docs/store.md); strict JSON readers accept it."""
_NONFINITE = {"nan": {FLOAT_TAG: "nan"}, "inf": {FLOAT_TAG: "inf"}, "-inf": {FLOAT_TAG: "-inf"}}
_FLOATS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}


def _finite(obj: Any) -> Any:
    """``obj`` (already JSON-able) with every non-finite float replaced by its ``{"$float": ...}`` object."""
    if isinstance(obj, float):
        return obj if obj - obj == 0.0 else _NONFINITE[repr(float(obj))]
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def revive_floats(obj: Any) -> Any:
    """The inverse of the encoding of :func:`dumps`: ``{"$float": "nan"}`` etc. become ``float`` again.

    Other objects, and old files holding bare ``NaN``/``Infinity`` tokens (parsed by ``json.loads``
    directly), pass unchanged.
    """
    if isinstance(obj, dict):
        if len(obj) == 1 and FLOAT_TAG in obj:
            f = _FLOATS.get(obj[FLOAT_TAG]) if isinstance(obj[FLOAT_TAG], str) else None
            if f is not None:
                return f
        return {k: revive_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [revive_floats(v) for v in obj]
    return obj


def loads(data: bytes | str) -> Any:
    """Parse store JSON: standard JSON with ``{"$float": ...}`` objects, or an old file with bare ``NaN``."""
    obj = json.loads(data)
    tag = b'"$float"' if isinstance(data, bytes) else '"$float"'
    return revive_floats(obj) if tag in data else obj  # type: ignore[operator]


def dumps(obj: Any) -> str:
    """Compact, standard JSON of ``obj``; values JSON does not know are converted with ``to_jsonable``.

    Non-finite floats are written as ``{"$float": "nan"}``, ``{"$float": "inf"}`` or
    ``{"$float": "-inf"}`` (never the bare ``NaN``/``Infinity`` tokens strict readers reject); the
    store's reader maps them back. Compact, not indented: smaller files parse faster for the Watcher,
    and ``json.dumps`` uses its C encoder only without indentation. The C encoder walks the data itself
    and calls back only for the values it does not know; data it cannot encode at all (e.g. tuple keys,
    a non-finite float) goes through ``to_jsonable`` first.
    """
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=to_jsonable, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(_finite(to_jsonable(obj)), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as compact JSON (see :func:`dumps`). ``lumo-hydra show`` is the readable view."""
    atomic_write_bytes(path, dumps(obj).encode("utf-8"))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`dumps` or an older one (raises ``OSError`` or ``json.JSONDecodeError``)."""
    with open(path, "rb") as f:
        return loads(f.read())


def mkdir_p(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p
