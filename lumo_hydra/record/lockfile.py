"""The dependency lock: every installed distribution, the Python version and the platform.

Distributions are found the way ``importlib.metadata`` finds them (``*.dist-info`` / ``*.egg-info``
entries on ``sys.path``, first one wins), but without importing ``importlib.metadata`` (about 20 ms)
or parsing every metadata file: the name and version come from the folder name, and the metadata
headers are read only when the folder name lacks them. Never ``pip freeze``, never ``pkg_resources``.
The result is cached per environment in ``lumo_hydra.store.layout.cache_dir(LOCK_CACHE)``, keyed on
``sys.prefix``, the executable and ``sys.path``, and invalidated by the modification times of the
``sys.path`` folders (installing or removing a package changes its site-packages folder).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from typing import Any

from lumo_hydra.errors import LockNotFoundError, LumoValueError
from lumo_hydra.store.layout import LOCK_CACHE, StoreLayout, cache_dir

__all__ = ["collect_lock", "write_lock", "read_lock", "lock_digest", "LockNotFoundError"]

_CACHE_VERSION = 1
# patterns as text, compiled (and cached by ``re``) at first use: a cached lock needs neither (issue 18)
_VERSION_OK = r"^[0-9A-Za-z.+!_]+$"
_DIGEST = r"^[0-9a-f]{16}$"
_memo: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
# (cwd, *sys.path) -> (the sys.path folders, the cache key's source, the cache key)
_keys: dict[tuple[Any, ...], tuple[list[str], str, str]] = {}
# the last lock write_lock saw, with its digest and canonical bytes
_last_written: tuple[dict[str, Any], str, bytes] | None = None


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _path_entries() -> list[str]:
    cwd = None
    out = []
    for p in sys.path:
        if not isinstance(p, str):
            continue
        if p == "":
            cwd = cwd or os.getcwd()
            p = cwd
        out.append(os.path.abspath(p))
    return out


def _mtimes(entries: list[str]) -> dict[str, int | None]:
    res: dict[str, int | None] = {}
    for p in entries:
        try:
            res[p] = os.stat(p).st_mtime_ns
        except OSError:
            res[p] = None
    return res


def _read_headers(path: str) -> tuple[str | None, str | None]:
    """Name and Version from a METADATA / PKG-INFO file (only the header block is read)."""
    name = version = None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                if line.startswith("Name:") and name is None:
                    name = line[5:].strip()
                elif line.startswith("Version:") and version is None:
                    version = line[8:].strip()
                if name and version:
                    break
    except OSError:
        pass
    return name, version


def _from_entry(folder: str, fname: str) -> tuple[str, str] | None:
    """(name, version) of one ``*.dist-info`` / ``*.egg-info`` entry, or None if it is not one."""
    if fname.endswith(".dist-info"):
        stem = fname[: -len(".dist-info")]
        name, _, version = stem.partition("-")
        if name and version and re.match(_VERSION_OK, version):
            return name, version
        meta = os.path.join(folder, fname, "METADATA")
    elif fname.endswith(".egg-info"):
        stem = fname[: -len(".egg-info")]
        parts = stem.split("-")
        if len(parts) >= 2 and parts[0] and re.match(_VERSION_OK, parts[1]) and not parts[1].startswith("py"):
            return parts[0], parts[1]
        full = os.path.join(folder, fname)
        meta = os.path.join(full, "PKG-INFO") if os.path.isdir(full) else full
    else:
        return None
    n, v = _read_headers(meta)
    if not n:
        return None
    return n, v or "unknown"


def _scan(entries: list[str]) -> dict[str, str]:
    packages: dict[str, str] = {}
    for folder in entries:
        if os.path.isdir(folder):
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue
            found = []
            for fname in names:
                if fname.endswith((".dist-info", ".egg-info")):
                    nv = _from_entry(folder, fname)
                    if nv:
                        found.append(nv)
        elif os.path.isfile(folder):  # a zip on sys.path: let importlib.metadata read it (rare)
            try:
                import importlib.metadata as md

                found = [(d.metadata["Name"], d.version) for d in md.distributions(path=[folder])
                         if d.metadata["Name"]]
            except Exception:
                continue
        else:
            continue
        for name, version in found:
            packages.setdefault(_normalize(name), version)
    return dict(sorted(packages.items()))


def _platform() -> str:
    """Like ``platform.platform()`` (system-release-machine-with-libc), without reading the executable."""
    u = os.uname() if hasattr(os, "uname") else None
    if u is None:  # pragma: no cover - Windows
        import platform

        return platform.platform()
    s = f"{u.sysname}-{u.release}-{u.machine}"
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")  # e.g. "glibc 2.36"
    except (ValueError, OSError, AttributeError):
        libc = None
    if libc:
        s += "-with-" + libc.replace(" ", "")
    return s


def _cuda() -> dict[str, Any]:
    """GPU facts from torch, which the caller has already imported (never imported here)."""
    torch = sys.modules["torch"]
    info: dict[str, Any] = {"torch": str(getattr(torch, "__version__", "?"))}
    try:
        info["cuda"] = getattr(torch.version, "cuda", None)
        cudnn = getattr(getattr(torch, "backends", None), "cudnn", None)
        info["cudnn"] = cudnn.version() if cudnn is not None and cudnn.is_available() else None
        info["available"] = bool(torch.cuda.is_available())
        info["device_count"] = int(torch.cuda.device_count()) if info["available"] else 0
        if info["available"] and torch.cuda.is_initialized():  # names only if CUDA is already up
            info["devices"] = [torch.cuda.get_device_name(i) for i in range(info["device_count"])]
    except Exception as e:  # a broken CUDA setup must not break the run
        info["error"] = f"{type(e).__name__}: {e}"
    return info


def collect_lock(*, use_cache: bool = True) -> dict[str, Any]:
    """The dependency lock of the running interpreter.

    ``{"python", "platform", "executable", "packages": {normalized name: version}}``, plus ``"cuda"``
    (torch/CUDA/cuDNN versions, GPU availability) only if ``torch`` is already imported.
    With ``use_cache`` the package list comes from the per-environment cache when no ``sys.path``
    folder changed since it was written.
    """
    path_now = (os.getcwd(), *sys.path)  # relative entries ("", "src") resolve against the cwd
    known = _keys.get(path_now)
    if known is None:
        entries = _path_entries()
        key_src = "\0".join([sys.prefix, sys.executable, sys.version, *entries])
        key = hashlib.sha256(key_src.encode("utf-8", "surrogateescape")).hexdigest()[:24]
        known = _keys[path_now] = (entries, key_src, key)
    entries, key_src, key = known
    mt = _mtimes(entries)
    base: dict[str, Any] | None = None
    cache_file = None
    if use_cache:
        memo = _memo.get(key)
        if memo is not None and memo[0] == mt:
            base = memo[1]
        else:
            cache_file = cache_dir(LOCK_CACHE) / f"{key}.json"
            try:
                with open(cache_file, "rb") as f:
                    data = json.loads(f.read())
                if data.get("v") == _CACHE_VERSION and data.get("mtimes") == mt and data.get("key") == key_src:
                    base = data["lock"]
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                base = None
    if base is None:
        base = {
            "python": ".".join(str(x) for x in sys.version_info[:3]),
            "platform": _platform(),
            "executable": sys.executable,
            "packages": _scan(entries),
        }
        if use_cache:
            try:
                from lumo_hydra.store.files import atomic_write_text

                cache_file = cache_file or cache_dir(LOCK_CACHE) / f"{key}.json"
                os.makedirs(cache_file.parent, exist_ok=True)
                atomic_write_text(cache_file, json.dumps({"v": _CACHE_VERSION, "key": key_src, "mtimes": mt,
                                                          "lock": base}))
            except OSError:
                pass  # a read-only cache only costs speed
    if use_cache:
        _memo[key] = (mt, base)
    lock = dict(base)
    lock["packages"] = dict(base["packages"])
    if "torch" in sys.modules:
        lock["cuda"] = _cuda()
    return lock


def _canonical(lock: dict[str, Any]) -> bytes:
    return json.dumps(lock, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def lock_digest(lock: dict[str, Any]) -> str:
    """The content address of a lock: the first 16 hex digits of the sha256 of its canonical JSON."""
    return hashlib.sha256(_canonical(lock)).hexdigest()[:16]


def _summary(digest: str, lock: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {"digest": digest, "file": StoreLayout.lock_relpath(digest), "python": lock.get("python"),
                         "platform": lock.get("platform"), "packages": len(lock.get("packages") or {})}
    if "cuda" in lock:
        s["cuda"] = lock["cuda"]
    return s


def write_lock(root: str | os.PathLike[str], lock: dict[str, Any]) -> dict[str, Any]:
    """Write ``<root>/locks/<digest>.json`` once (atomically; an existing file is kept) and return
    the summary ``{"digest", "file": "locks/<digest>.json", "python", "platform", "packages": count}``
    (plus ``"cuda"`` when the lock has it) that a run record stores."""
    if not isinstance(lock, dict) or not isinstance(lock.get("packages", {}), dict):
        raise LumoValueError(f"invalid lock {type(lock).__name__}: allowed is a dict as returned by collect_lock()")
    global _last_written
    last = _last_written
    if last is not None and last[0] == lock:  # the same lock again (every job of a sweep): no re-encoding
        _, digest, data = last
    else:
        data = _canonical(lock)
        digest = hashlib.sha256(data).hexdigest()[:16]
        _last_written = ({**lock, "packages": dict(lock.get("packages") or {})}, digest, data)
    layout = StoreLayout(root)
    path = layout.lock_file(digest)
    if not os.path.exists(path):
        from lumo_hydra.store.files import atomic_write_bytes

        os.makedirs(layout.locks_dir, exist_ok=True)
        atomic_write_bytes(path, data)  # concurrent writers write identical bytes: either rename wins
    return _summary(digest, lock)


def read_lock(root: str | os.PathLike[str], digest: str) -> dict[str, Any]:
    """The lock stored under ``digest`` (the summary's ``digest``, or its ``file``) in the store ``root``."""
    d = str(digest)
    if d.startswith(StoreLayout.LOCKS + "/"):
        d = d[len(StoreLayout.LOCKS) + 1:]
    if d.endswith(".json"):
        d = d[: -len(".json")]
    if not re.match(_DIGEST, d):
        raise LumoValueError(f"invalid lock digest {digest!r}: allowed are 16 lowercase hex digits")
    path = StoreLayout(root).lock_file(d)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise LockNotFoundError(f"no lock with digest {d!r} in {os.fspath(root)!r} (looked for {path})") from None
    try:
        lock = json.loads(raw)
    except ValueError as e:
        raise LumoValueError(f"corrupt lock file {path}: {e}") from None
    if not isinstance(lock, dict):
        raise LumoValueError(f"corrupt lock file {path}: not a JSON object")
    return lock
