"""Small file helpers shared by the store, the hooks and the watcher: atomic writes, tolerant reads."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half of it.

    A temporary file in the same folder is written, flushed, and renamed over ``path``.
    The parent folder must exist.
    """
    path = os.fspath(path)
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="~", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as compact JSON (non-JSON values are converted with ``to_jsonable``).

    Compact, not indented: smaller files parse faster for the Watcher, and ``json.dumps`` uses its C
    encoder only without indentation. ``lumo-hydra show`` is the readable view.
    """
    atomic_write_text(path, json.dumps(to_jsonable(obj), ensure_ascii=False, separators=(",", ":")))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file (raises ``OSError`` or ``json.JSONDecodeError``)."""
    with open(path, "rb") as f:
        return json.loads(f.read())


def mkdir_p(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p
