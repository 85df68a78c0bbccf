"""``unpack``: a pack written by :func:`lumo_hydra.share.pack.pack` into a store (docs/share.md).

Everything is checked before anything is written: the manifest, every member's name and type (regular
files only, store-relative, no ``..``, listed in the manifest), the total expanded size (from the member
sizes, before reading any data) and every member's sha256 (one streaming pass). Then each run is
compared with the store: a run already there with the same content is skipped, a different run with the
same id is an error naming it. Only then are the members extracted (tarfile's ``data`` filter) into a
temporary folder inside the store and each run folder renamed into place, with ``unpacked.json`` beside
its ``run.json`` saying where it came from.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lumo_hydra._version import __version__
from lumo_hydra.errors import ArchiveError
from lumo_hydra.share.pack import FORMAT_VERSION, MANIFEST
from lumo_hydra.store.layout import StoreLayout

__all__ = ["unpack", "UnpackResult", "MAX_EXPANDED_BYTES", "UNPACKED_JSON"]

#: refuse a pack whose members add up to more than this (4 GiB; ``unpack(max_bytes=...)``)
MAX_EXPANDED_BYTES = 4 << 30
#: at most this many members
MAX_MEMBERS = 200_000
#: the file written beside an unpacked run's ``run.json`` (run.json itself is never edited)
UNPACKED_JSON = "unpacked.json"
_MAX_MANIFEST = 64 << 20
_TOPS = ("experiments", "locks", "sweeps", "blob")


@dataclass
class UnpackResult:
    """What :func:`unpack` did: ``added`` and ``skipped`` runs as ``exp/test``."""

    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _check_name(archive: str, name: str) -> None:
    p = PurePosixPath(name)
    if name.startswith("/") or "\\" in name or p.is_absolute():
        raise ArchiveError(archive, name, "an absolute path")
    if any(part in ("..", ".", "") for part in name.split("/")):
        raise ArchiveError(archive, name, "a path with '..', '.' or an empty part")
    if p.parts[0] not in _TOPS or len(p.parts) < 2:
        raise ArchiveError(archive, name, f"not under one of the store folders {', '.join(_TOPS)}")


def _read_manifest(archive: str, tar: tarfile.TarFile, first: tarfile.TarInfo) -> dict[str, Any]:
    if first.name != MANIFEST or not first.isreg():
        raise ArchiveError(archive, first.name, f"the first member must be the file {MANIFEST} (not a lumo-hydra pack?)")
    if first.size > _MAX_MANIFEST:
        raise ArchiveError(archive, MANIFEST, f"{first.size} bytes, over the limit of {_MAX_MANIFEST}")
    f = tar.extractfile(first)
    try:
        doc = json.loads(f.read() if f else b"")
    except ValueError as e:
        raise ArchiveError(archive, MANIFEST, f"not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION or not isinstance(doc.get("members"), dict):
        raise ArchiveError(archive, MANIFEST, f"not a pack of format {FORMAT_VERSION} "
                           f"(format {doc.get('format') if isinstance(doc, dict) else None!r})")
    return doc


def _scan(archive: str, tar: tarfile.TarFile, max_bytes: int) -> tuple[dict[str, Any], list[tarfile.TarInfo]]:
    """The manifest and the members, every name, type and size checked; no data of a member is read."""
    first = tar.next()
    if first is None:
        raise ArchiveError(archive, MANIFEST, "the archive is empty")
    doc = _read_manifest(archive, tar, first)
    listed: dict[str, Any] = doc["members"]
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    total = 0
    while (m := tar.next()) is not None:
        if not m.isreg():
            raise ArchiveError(archive, m.name, "not a regular file (links, devices and folders are refused)")
        _check_name(archive, m.name)
        entry = listed.get(m.name)
        if not isinstance(entry, dict) or m.name in seen:
            raise ArchiveError(archive, m.name, "not listed in the manifest" if m.name not in seen else "twice in the archive")
        if entry.get("size") != m.size:
            raise ArchiveError(archive, m.name, f"{m.size} bytes, the manifest says {entry.get('size')!r}")
        total += m.size
        if total > max_bytes or len(members) >= MAX_MEMBERS:
            raise ArchiveError(archive, m.name, f"the members expand past the limit of {max_bytes} bytes "
                               f"or {MAX_MEMBERS} files (an archive bomb?)")
        seen.add(m.name)
        members.append(m)
    missing = sorted(set(listed) - seen)
    if missing:
        raise ArchiveError(archive, missing[0], "listed in the manifest but missing from the archive (truncated?)")
    return doc, members


def _verify(archive: str, tar: tarfile.TarFile, members: list[tarfile.TarInfo], listed: dict[str, Any]) -> None:
    """Every member's sha256 against the manifest (the archive is read once, in order)."""
    for m in members:
        f = tar.extractfile(m)
        h = hashlib.sha256()
        if f is not None:
            for chunk in iter(lambda: f.read(1 << 20), b""):  # noqa: B023 (used within the iteration)
                h.update(chunk)
        if h.hexdigest() != listed[m.name].get("sha256"):
            raise ArchiveError(archive, m.name, "its sha256 does not match the manifest (damaged or edited)")


def _file_sha(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def _plan(archive: str, layout: StoreLayout, doc: dict[str, Any],
          members: list[tarfile.TarInfo]) -> tuple[list[str], list[str], list[str], list[tarfile.TarInfo]]:
    """The runs to add and to skip, the run folders (``experiments/<exp>/<test>``, ``blob/...``) to move
    in and the members to extract. A folder already in the store is skipped when its files are the
    pack's, else it is an error naming the run."""
    listed: dict[str, Any] = doc["members"]
    groups: dict[str, list[str]] = {}
    for m in members:
        parts = m.name.split("/")
        if parts[0] in ("experiments", "blob") and len(parts) >= 4:
            groups.setdefault("/".join(parts[:3]), []).append(m.name)
    add, skip, dirs = [], [], []
    for folder, names in groups.items():
        run = folder.split("/", 1)[1]
        if not os.path.lexists(layout.root / folder):
            dirs.append(folder)
            if folder.startswith("experiments/"):
                add.append(run)
        elif all(_file_sha(layout.root / n) == listed[n]["sha256"] for n in names):
            if folder.startswith("experiments/"):
                skip.append(run)
        else:
            raise ArchiveError(archive, folder, f"a different run {run} is already in the store {layout.root} "
                               f"({folder} differs); remove it (lumo-hydra rm) or unpack into another --root")
    todo = []
    for m in members:
        parts = m.name.split("/")
        if parts[0] in ("experiments", "blob"):
            if "/".join(parts[:3]) in dirs:
                todo.append(m)
        elif not os.path.lexists(layout.root / m.name):  # locks and sweep records: written once
            todo.append(m)
    real_root = os.path.realpath(layout.root)
    for m in todo:  # a symlinked folder of the store must not carry a member out of it
        parent = os.path.realpath(layout.root / PurePosixPath(m.name).parent)
        if os.path.commonpath([real_root, parent]) != real_root:
            raise ArchiveError(archive, m.name, f"would be written outside the store {layout.root} "
                               "through a symlink in the store")
    return add, skip, dirs, todo


def _origin(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    return {"archive": str(path), "archive_sha256": _file_sha(path), "origin_store": doc.get("origin_store"),
            "origin_host": doc.get("host"), "packed": doc.get("created"), "packed_by": doc.get("lumo_hydra"),
            "unpacked": time.time(), "unpacked_host": socket.gethostname(), "unpacked_by": __version__}


def _install(tmp: Path, layout: StoreLayout, todo: list[tarfile.TarInfo], dirs: list[str], origin: dict[str, Any]) -> None:
    """Move the extracted run folders, then the other files, from ``tmp`` into the store."""
    for folder in dirs:
        if folder.startswith("experiments/"):
            (tmp / folder / UNPACKED_JSON).write_text(json.dumps(origin, indent=1) + "\n", encoding="utf-8")
        (layout.root / folder).parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp / folder, layout.root / folder)  # a folder made meanwhile (not empty): OSError
    for m in todo:
        if m.name.split("/")[0] in ("experiments", "blob"):
            continue
        dst = layout.root / m.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(dst):
            os.replace(tmp / m.name, dst)


def unpack(path: str | os.PathLike[str], store_root: str | os.PathLike[str] | None = None,
           max_bytes: int = MAX_EXPANDED_BYTES) -> UnpackResult:
    """Unpack the pack ``path`` into the store at ``store_root`` (default ``$LUMO_HOME``).

    Raises :class:`~lumo_hydra.errors.ArchiveError` (a ``ValueError``) naming the member and the problem,
    with nothing written, for a damaged or hostile archive or a run that conflicts with the store's.
    """
    src = Path(path).absolute()
    archive = str(src)
    layout = StoreLayout(store_root)
    try:
        with tarfile.open(src, mode="r:gz") as tar:
            doc, members = _scan(archive, tar, max_bytes)
            _verify(archive, tar, members, doc["members"])
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        if isinstance(e, ArchiveError):
            raise
        raise ArchiveError(archive, "?", f"not a readable .tar.gz ({type(e).__name__}: {e})") from None
    add, skip, dirs, todo = _plan(archive, layout, doc, members)
    result = UnpackResult(added=add, skipped=skip)
    if not todo:
        return result
    layout.root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".lumo-unpack-", dir=layout.root))
    try:
        with tarfile.open(src, mode="r:gz") as tar:
            names = {m.name for m in todo}
            tar.extractall(tmp, members=[m for m in tar.getmembers() if m.name in names], filter="data")
        for m in todo:  # the file read now is the file verified above
            if _file_sha(tmp / m.name) != doc["members"][m.name]["sha256"]:
                raise ArchiveError(archive, m.name, "changed while it was unpacked")
        _install(tmp, layout, todo, dirs, _origin(src, doc))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result
