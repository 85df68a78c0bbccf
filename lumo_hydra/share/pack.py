"""``pack``: runs of a store into one ``.tar.gz`` (docs/share.md).

Per run: its info folder ``experiments/<exp>/<id>/``, the dependency lock its record names, its sweep
record and job marker, optionally its blob folder; plus ``manifest.json`` (the first member) with the
sha256 and size of every other member. Member names are paths relative to the store root. The archive is
written beside ``out_path`` under a temporary name and renamed into place.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import tarfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lumo_hydra._version import __version__
from lumo_hydra.errors import StoreError
from lumo_hydra.store.files import atomic_open
from lumo_hydra.store.layout import RUN_JSON, StoreLayout, read_store_id

__all__ = ["pack", "FORMAT_VERSION", "MANIFEST"]

#: the manifest's ``format`` (``unpack`` refuses other versions)
FORMAT_VERSION = 1
#: the name of the manifest member
MANIFEST = "manifest.json"
_PLAIN = re.compile(r"^[A-Za-z0-9_.+-]+$")
_LOCK = re.compile(r"^locks/[0-9a-f]{8,64}\.json$")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files_under(root: Path, folder: Path) -> Iterator[str]:
    """The regular files under ``folder`` (symlinks are not followed, never packed), relative to ``root``."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) and not os.path.islink(p):
                yield Path(p).relative_to(root).as_posix()


def _run_members(layout: StoreLayout, exp: str, test: str, blobs: bool) -> list[str]:
    """The store-relative files that carry one run."""
    root = layout.root
    info = layout.info_dir(exp, test)
    members = list(_files_under(root, info))
    try:
        rec = json.loads((info / RUN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StoreError(f"run {exp}/{test}: its {RUN_JSON} cannot be read ({e}); it cannot be packed") from None
    rec = rec if isinstance(rec, dict) else {}
    lock = rec.get("lock")
    lock = lock if isinstance(lock, dict) else {}
    lock_file = str(lock.get("file") or "")
    if _LOCK.match(lock_file) and (root / lock_file).is_file():
        members.append(lock_file)
    sweep = rec.get("sweep")
    if isinstance(sweep, str) and _PLAIN.match(sweep) and sweep not in (".", ".."):
        record = layout.sweep_record(sweep)
        if record.is_file():
            members.append(record.relative_to(root).as_posix())
        jobs = layout.sweep_jobs_dir(sweep)
        if jobs.is_dir():
            members += [(jobs / n).relative_to(root).as_posix() for n in sorted(os.listdir(jobs))
                        if n.endswith("." + test) and (jobs / n).is_file() and not (jobs / n).is_symlink()]
    if blobs and layout.blob_dir(exp, test).is_dir():
        members += _files_under(root, layout.blob_dir(exp, test))
    return members


def _manifest(layout: StoreLayout, runs: list[tuple[str, str]], files: dict[str, dict[str, Any]]) -> bytes:
    doc = {
        "format": FORMAT_VERSION,
        "lumo_hydra": __version__,
        "origin_store": read_store_id(layout.root),
        "host": socket.gethostname(),
        "created": time.time(),
        "runs": [{"exp_name": e, "test_name": t} for e, t in runs],
        "members": files,
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def pack(store_root: str | os.PathLike[str] | None, run_ids: Iterable[str], out_path: str | os.PathLike[str],
         blobs: bool = False) -> Path:
    """Write the runs ``run_ids`` (ids as ``lumo-hydra show`` takes them) of the store at ``store_root``
    (default ``$LUMO_HOME``) into the ``.tar.gz`` ``out_path``; returns its absolute path."""
    from lumo_hydra.watcher import Watcher

    layout = StoreLayout(store_root)
    w = Watcher(root=str(layout.root))
    runs: list[tuple[str, str]] = []
    for rid in run_ids:
        ref = w.resolve(rid)
        exp, test = Path(ref[2]).parent.name, Path(ref[2]).name
        if (exp, test) not in runs:
            runs.append((exp, test))
    if not runs:
        raise StoreError("nothing to pack: give at least one run id")
    names = list(dict.fromkeys(n for exp, test in runs for n in _run_members(layout, exp, test, blobs)))
    files = {n: {"sha256": _sha256(layout.root / n), "size": (layout.root / n).stat().st_size} for n in names}
    out = Path(out_path).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out) as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
        _add_bytes(tar, MANIFEST, _manifest(layout, runs, files))
        for n in names:
            info = tar.gettarinfo(str(layout.root / n), arcname=n)
            info.uid = info.gid = 0
            info.mtime = int(info.mtime)  # a float mtime costs a pax header per member
            info.uname = info.gname = ""
            with open(layout.root / n, "rb") as f:
                tar.addfile(info, f)
        # a file that changed between hashing and packing is caught by unpack's checksums
    return out
