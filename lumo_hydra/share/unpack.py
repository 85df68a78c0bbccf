"""``unpack``: a pack written by :func:`lumo_hydra.share.pack.pack` into a store (docs/share.md).

Everything is checked before anything is written: the manifest, every member's name and type (regular
files only, store-relative, no ``..``, listed in the manifest), the total expanded size (from the member
sizes, before reading any data) and every member's sha256. Then each run is compared with the store: a
run already there with the same content is skipped, a different run with the same id is an error naming
it. Only then are the code bundles fetched into a repository (only ``refs/lumo/snapshots/`` refs), the
members written into a temporary folder inside the store and each run folder renamed into place, with
``unpacked.json`` beside its ``run.json`` saying where it came from and where its code is now.

A pack made only of plain ustar regular files that expands to at most 256 MiB is read in memory in one
pass (:mod:`lumo_hydra.share.tarfast`); any other archive is streamed with ``tarfile`` and extracted with
its ``data`` filter.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lumo_hydra._version import __version__
from lumo_hydra.errors import ArchiveError, LumoValueError
from lumo_hydra.share.bundle import CODE_DIR, check_code_entry, fetch_bundle
from lumo_hydra.share.pack import FORMAT_VERSION, MANIFEST, SPLIT_RUNS
from lumo_hydra.share.redact import hostname
from lumo_hydra.share.tarfast import gunzip_bounded, read_members
from lumo_hydra.store.layout import StoreLayout
from lumo_hydra.store.moved import UNPACKED_JSON

__all__ = ["unpack", "UnpackResult", "MAX_EXPANDED_BYTES", "UNPACKED_JSON"]

#: refuse a pack whose members add up to more than this (4 GiB; ``unpack(max_bytes=...)``)
MAX_EXPANDED_BYTES = 4 << 30
#: at most this many members
MAX_MEMBERS = 200_000
_MAX_MANIFEST = 64 << 20
_IN_MEMORY = 256 << 20
_TOPS = ("experiments", "locks", "sweeps", "blob", "cache", CODE_DIR)
_RUN_TOPS = ("experiments", "blob", "cache")  # per-run folders: <top>/<exp>/<test>/...


class UnpackResult:
    """What :func:`unpack` did: ``added`` and ``skipped`` runs as ``exp/test``; ``code``: per bundle the
    repository its refs went to and the refs fetched."""

    def __init__(self, added: list[str] | None = None, skipped: list[str] | None = None,
                 code: list[dict[str, Any]] | None = None) -> None:
        self.added = added if added is not None else []
        self.skipped = skipped if skipped is not None else []
        self.code = code if code is not None else []

    def __repr__(self) -> str:
        return f"UnpackResult({self.as_dict()!r})"

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "skipped": self.skipped, "code": self.code}


class _Member:
    """One member: its name and size; ``data``: its bytes on the in-memory path; ``shared``: an
    ``unpacked.json``, the same text for many runs, hard-linked (one inode)."""

    __slots__ = ("name", "size", "data", "shared")

    def __init__(self, name: str, size: int, data: memoryview | None = None, shared: bool = False) -> None:
        self.name, self.size, self.data, self.shared = name, size, data, shared


def _check_name(archive: str, name: str) -> None:
    parts = name.split("/")
    if name.startswith("/") or "\\" in name:
        raise ArchiveError(archive, name, "an absolute path")
    if ".." in parts or "." in parts or "" in parts:
        raise ArchiveError(archive, name, "a path with '..', '.' or an empty part")
    if parts[0] not in _TOPS or len(parts) < 2:
        raise ArchiveError(archive, name, f"not under one of the store folders {', '.join(_TOPS)}")


def _parse_manifest(archive: str, raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise ArchiveError(archive, MANIFEST, f"not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION or not isinstance(doc.get("members"), dict):
        raise ArchiveError(archive, MANIFEST, f"not a pack of format {FORMAT_VERSION} "
                           f"(format {doc.get('format') if isinstance(doc, dict) else None!r})")
    for entry in doc.get("code") or []:
        check_code_entry(archive, entry, doc["members"])
    return doc


def _check_first(archive: str, name: str, isreg: bool, size: int) -> None:
    if name != MANIFEST or not isreg:
        raise ArchiveError(archive, name, f"the first member must be the file {MANIFEST} (not a lumo-hydra pack?)")
    if size > _MAX_MANIFEST:
        raise ArchiveError(archive, MANIFEST, f"{size} bytes, over the limit of {_MAX_MANIFEST}")


class _Checker:
    """The checks of every member after the manifest, from its header alone (no data read)."""

    def __init__(self, archive: str, listed: dict[str, Any], max_bytes: int) -> None:
        self.archive, self.listed, self.max_bytes = archive, listed, max_bytes
        self.seen: set[str] = set()
        self.total = 0

    def check(self, name: str, isreg: bool, size: int) -> None:
        archive = self.archive
        if not isreg:
            raise ArchiveError(archive, name, "not a regular file (links, devices and folders are refused)")
        _check_name(archive, name)
        entry = self.listed.get(name)
        if not isinstance(entry, dict) or name in self.seen:
            raise ArchiveError(archive, name, "not listed in the manifest" if name not in self.seen else "twice in the archive")
        if entry.get("size") != size:
            raise ArchiveError(archive, name, f"{size} bytes, the manifest says {entry.get('size')!r}")
        self.total += size
        if self.total > self.max_bytes or len(self.seen) >= MAX_MEMBERS:
            raise ArchiveError(archive, name, f"the members expand past the limit of {self.max_bytes} bytes "
                               f"or {MAX_MEMBERS} files (an archive bomb?)")
        self.seen.add(name)

    def done(self) -> None:
        missing = sorted(set(self.listed) - self.seen)
        if missing:
            raise ArchiveError(self.archive, missing[0], "listed in the manifest but missing from the archive (truncated?)")


def _read_in_memory(archive: str, raw: bytes, max_bytes: int) -> tuple[dict[str, Any], list[_Member]] | None:
    """The manifest and members of a pack of plain ustar files, checked, with their data; ``None``
    when the archive is anything else (then :func:`_read_streaming` reads it)."""
    data = gunzip_bounded(raw, min(_IN_MEMORY, max_bytes + (8 << 20)))
    entries = read_members(data) if data is not None else None
    if data is None or not entries:
        return None
    view = memoryview(data)
    name, off, size = entries[0]
    _check_first(archive, name, True, size)
    doc = _parse_manifest(archive, bytes(view[off:off + size]))
    checker = _Checker(archive, doc["members"], max_bytes)
    members = []
    for name, off, size in entries[1:]:
        checker.check(name, True, size)
        members.append(_Member(name, size, view[off:off + size]))
    checker.done()
    for m in members:
        if hashlib.sha256(m.data).hexdigest() != doc["members"][m.name].get("sha256"):  # type: ignore[arg-type]
            raise ArchiveError(archive, m.name, "its sha256 does not match the manifest (damaged or edited)")
    return doc, members


def _read_streaming(archive: str, src: Path, max_bytes: int) -> tuple[dict[str, Any], list[_Member]]:
    """The manifest and members of any archive, checked from the headers first, then every sha256
    (``tarfile``, read twice: headers, then data)."""
    import tarfile  # here: a pack lumo-hydra wrote is read without it (tarfast)

    try:
        return _read_with_tarfile(tarfile, archive, src, max_bytes)
    except tarfile.TarError as e:
        raise ArchiveError(archive, "?", f"not a readable .tar.gz ({type(e).__name__}: {e})") from None


def _read_with_tarfile(tarfile: Any, archive: str, src: Path, max_bytes: int) -> tuple[dict[str, Any], list[_Member]]:
    """:func:`_read_streaming`'s work, with the ``tarfile`` module it imported."""
    with tarfile.open(src, mode="r:gz") as tar:
        first = tar.next()
        if first is None:
            raise ArchiveError(archive, MANIFEST, "the archive is empty")
        _check_first(archive, first.name, first.isreg(), first.size)
        f = tar.extractfile(first)
        doc = _parse_manifest(archive, f.read() if f else b"")
        checker = _Checker(archive, doc["members"], max_bytes)
        infos = []
        while (m := tar.next()) is not None:
            checker.check(m.name, m.isreg(), m.size)
            infos.append(m)
        checker.done()
    with tarfile.open(src, mode="r|gz") as tar:  # one more pass, in order: the data
        for m in tar:
            if m.name == MANIFEST:
                continue
            h = hashlib.sha256()
            fh = tar.extractfile(m)
            if fh is not None:
                for chunk in iter(lambda: fh.read(1 << 20), b""):  # noqa: B023 (used within the iteration)
                    h.update(chunk)
            if h.hexdigest() != doc["members"][m.name].get("sha256"):
                raise ArchiveError(archive, m.name, "its sha256 does not match the manifest (damaged or edited)")
    return doc, [_Member(m.name, m.size) for m in infos]


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
          members: list[_Member]) -> tuple[list[str], list[str], list[str], list[_Member]]:
    """The runs to add and to skip, the run folders (``experiments/<exp>/<test>``, ``blob/...``) to move
    in and the members to extract. A folder already in the store is skipped when its files are the
    pack's, else it is an error naming the run."""
    listed: dict[str, Any] = doc["members"]
    groups: dict[str, list[str]] = {}
    for m in members:
        parts = m.name.split("/", 3)
        if parts[0] in _RUN_TOPS and len(parts) >= 4:
            groups.setdefault("/".join(parts[:3]), []).append(m.name)
    add, skip, dirs = [], [], []
    root = str(layout.root)
    for folder, names in groups.items():
        run = folder.split("/", 1)[1]
        if not os.path.lexists(f"{root}/{folder}"):
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
    dirset = set(dirs)
    for m in members:
        parts = m.name.split("/", 3)
        if parts[0] in _RUN_TOPS:
            if "/".join(parts[:3]) in dirset:
                todo.append(m)
        elif parts[0] != CODE_DIR and not os.path.lexists(f"{root}/{m.name}"):  # locks, sweeps: written once
            todo.append(m)
    _check_no_escape(archive, root, todo, dirset)
    return add, skip, dirs, todo


def _check_no_escape(archive: str, root: str, todo: list[_Member], dirset: set[str]) -> None:
    """A symlinked folder of the store must not carry a member out of it: the deepest folder that exists
    on each member's way (a run folder moved in is new: its parent is the one to check) must resolve
    inside the store."""
    real_root = os.path.realpath(root)
    seen: set[str] = set()
    for m in todo:
        parts = m.name.split("/")
        folder = "/".join(parts[:3])
        parent = "/".join(parts[:2]) if folder in dirset else "/".join(parts[:-1])
        if parent in seen:
            continue
        seen.add(parent)
        here = parent
        while here and not os.path.lexists(f"{root}/{here}"):
            here = here.rpartition("/")[0]
        real = os.path.realpath(f"{root}/{here}" if here else root)
        if os.path.commonpath([real_root, real]) != real_root:
            raise ArchiveError(archive, m.name, f"would be written outside the store {root} through a symlink in the store")


def _origin(path: Path, raw: bytes | None, doc: dict[str, Any], origin: str | None) -> dict[str, Any]:
    return {"archive": origin or str(path), "archive_sha256": hashlib.sha256(raw).hexdigest() if raw is not None else _file_sha(path),
            "origin_store": doc.get("origin_store"), "origin_root": doc.get("origin_root"),
            "origin_host": doc.get("host"), "packed": doc.get("created"), "packed_by": doc.get("lumo_hydra"),
            "redacted": bool(doc.get("redacted")), "unpacked": time.time(), "unpacked_host": hostname(),
            "unpacked_by": __version__}


def _write_members(tmp: Path, members: list[_Member]) -> None:
    """Write the verified in-memory ``members`` under ``tmp`` (a fresh folder: no links in it), each file
    created exclusively, relative to its folder's descriptor (no path walk per file). The ``shared``
    members with the same text (the runs' ``unpacked.json``, written once and never edited) are hard
    links of the first one written: a link costs the file system a quarter of a new file; where links
    are not possible (another file system kind, the link limit) a copy is written."""
    base = str(tmp)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    cur, dfd = None, -1
    made: set[str] = set()
    first: dict[bytes, str] = {}  # a shared text -> the file that holds it
    try:
        for m in members:
            parent, _, leaf = m.name.rpartition("/")
            if parent != cur:
                if dfd >= 0:
                    os.close(dfd)
                    dfd = -1
                if parent not in made:
                    if parent.rpartition("/")[0] in made:  # the usual case: a run folder beside the last one
                        os.mkdir(f"{base}/{parent}")
                        made.add(parent)
                    else:
                        os.makedirs(f"{base}/{parent}", exist_ok=True)
                        part = parent
                        while part:
                            made.add(part)
                            part = part.rpartition("/")[0]
                dfd = os.open(f"{base}/{parent}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                cur = parent
            data = m.data
            assert data is not None
            if m.shared:
                key = bytes(data)
                src = first.get(key)
                if src is not None:
                    try:
                        os.link(src, leaf, dst_dir_fd=dfd, follow_symlinks=False)
                        continue
                    except OSError:
                        pass
                first[key] = f"{base}/{m.name}"
            fd = os.open(leaf, flags, 0o644, dir_fd=dfd)
            try:
                while data:
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
    finally:
        if dfd >= 0:
            os.close(dfd)


def _extract(src: Path, tmp: Path, todo: list[_Member], in_memory: bool, archive: str, doc: dict[str, Any],
             processes: int | None = 1) -> None:
    if in_memory:
        mine, theirs = _split(todo, processes)
        if not theirs:
            _write_members(tmp, todo)
            return
        from lumo_hydra.share.split import Child

        child = Child(lambda: _write_members(tmp, theirs), "unpack: the second process")  # the data is shared, not copied
        try:
            _write_members(tmp, mine)
            child.result()
        finally:
            child.close()
        return
    import tarfile

    names = {m.name for m in todo}
    with tarfile.open(src, mode="r:gz") as tar:
        tar.extractall(tmp, members=[m for m in tar.getmembers() if m.name in names], filter="data")
    for m in todo:  # the file read now is the file verified above
        if _file_sha(tmp / m.name) != doc["members"][m.name]["sha256"]:
            raise ArchiveError(archive, m.name, "changed while it was unpacked")


def _split(todo: list[_Member], processes: int | None) -> tuple[list[_Member], list[_Member]]:
    """The members this process writes and those a forked child writes: the run folders of the second
    half go to the child (each folder whole: one process makes it), every other member stays here."""
    folders = list(dict.fromkeys("/".join(m.name.split("/", 3)[:3]) for m in todo if m.name.startswith(_RUN_TOPS)))
    if processes == 1 or len(folders) < 2 or (processes is None and len(folders) < SPLIT_RUNS):
        return todo, []
    from lumo_hydra.share.split import can_fork

    if not can_fork(idle=processes is None):
        return todo, []
    theirs_dirs = set(folders[len(folders) // 2:])
    mine: list[_Member] = []
    theirs: list[_Member] = []
    for m in todo:
        (theirs if "/".join(m.name.split("/", 3)[:3]) in theirs_dirs else mine).append(m)
    return mine, theirs


def _provenance(dirs: list[str], origin: dict[str, Any], code_of: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    """``{run info folder: the text of its unpacked.json}`` (one text per code repository)."""
    texts: dict[str, bytes] = {}
    out = {}
    for folder in dirs:
        if folder.startswith("experiments/"):
            run = folder.split("/", 1)[1]
            key = json.dumps(code_of.get(run), sort_keys=True)
            if key not in texts:
                info = {**origin, "code": code_of[run]} if run in code_of else origin
                texts[key] = (json.dumps(info, sort_keys=True, separators=(",", ": ")) + "\n").encode()
            out[folder] = texts[key]
    return out


def _with_provenance(todo: list[_Member], prov: dict[str, bytes]) -> list[_Member]:
    """``todo`` with each new run folder's ``unpacked.json`` right after its last member (so it is written
    in the same pass over that folder)."""
    out: list[_Member] = []
    for i, m in enumerate(todo):
        folder = "/".join(m.name.split("/", 3)[:3])
        if not (folder in prov and m.name == f"{folder}/{UNPACKED_JSON}"):
            out.append(m)  # (an older hop's provenance, which packs leave out, is replaced by this unpack's)
        nxt = todo[i + 1].name if i + 1 < len(todo) else ""
        if folder in prov and not nxt.startswith(folder + "/"):
            data = prov[folder]
            out.append(_Member(f"{folder}/{UNPACKED_JSON}", len(data), memoryview(data), shared=True))
    return out


def _install(tmp: Path, layout: StoreLayout, todo: list[_Member], dirs: list[str], prov: dict[str, bytes] | None) -> None:
    """Move the extracted run folders, then the other files, from ``tmp`` into the store (``prov``: the
    ``unpacked.json`` texts still to write; ``None`` when they were written with the members)."""
    root, base = str(layout.root), str(tmp)
    fds: dict[str, tuple[int, int]] = {}  # parent folder -> (staging fd, store fd)
    try:
        for folder in dirs:
            if prov is not None and folder in prov:
                fd = os.open(f"{base}/{folder}/{UNPACKED_JSON}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
                try:
                    os.write(fd, prov[folder])
                finally:
                    os.close(fd)
            parent, _, leaf = folder.rpartition("/")
            if parent not in fds:
                os.makedirs(f"{root}/{parent}", exist_ok=True)
                fds[parent] = (os.open(f"{base}/{parent}", os.O_RDONLY | os.O_DIRECTORY),
                               os.open(f"{root}/{parent}", os.O_RDONLY | os.O_DIRECTORY))
            src_fd, dst_fd = fds[parent]
            os.rename(leaf, leaf, src_dir_fd=src_fd, dst_dir_fd=dst_fd)  # a folder made meanwhile: OSError
    finally:
        for a, b in fds.values():
            os.close(a)
            os.close(b)
    for m in todo:
        if m.name.split("/", 1)[0] in _RUN_TOPS:
            continue
        dst = f"{root}/{m.name}"
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.lexists(dst):
            os.replace(f"{base}/{m.name}", dst)


def _target_repo(entry: dict[str, Any], layout: StoreLayout, repo: str | os.PathLike[str] | None) -> Path:
    """Where a bundle's refs go: ``repo`` if given; else the repository the runs were recorded in when it
    exists here; else the store's own ``<root>/code`` repository."""
    if repo is not None:
        return Path(repo).absolute()
    origin = entry.get("repo")
    if isinstance(origin, str) and os.path.isabs(origin) and os.path.isdir(os.path.join(origin, ".git")):
        return Path(origin)
    return layout.root / CODE_DIR


def _fetch_code(src: Path, tmp: Path, doc: dict[str, Any], members: list[_Member], in_memory: bool,
                layout: StoreLayout, repo: str | os.PathLike[str] | None, wanted: set[str],
                result: UnpackResult) -> dict[str, dict[str, Any]]:
    """Fetch the bundles of the runs in ``wanted`` (added or skipped); ``{run: {repo, origin_repo}}``."""
    entries = [e for e in doc.get("code") or [] if wanted.intersection(e["runs"])]
    if not entries:
        return {}
    by_name = {m.name: m for m in members}
    todo = [by_name[e["member"]] for e in entries]
    _extract(src, tmp, todo, in_memory, str(src), doc)
    code_of: dict[str, dict[str, Any]] = {}
    for e in entries:
        target = _target_repo(e, layout, repo)
        fetched = fetch_bundle(tmp / e["member"], target, e["refs"])
        result.code.append({"repo": str(target), "origin_repo": e.get("repo"), "refs": len(e["refs"]),
                            "fetched": len(fetched)})
        for run in e["runs"]:
            code_of[run] = {"repo": str(target), "origin_repo": e.get("repo")}
    return code_of


def unpack(path: str | os.PathLike[str], store_root: str | os.PathLike[str] | None = None,
           max_bytes: int = MAX_EXPANDED_BYTES, *, repo: str | os.PathLike[str] | None = None,
           code: bool = True, progress: Callable[[int, int], None] | None = None,
           origin: str | None = None, processes: int | None = 1) -> UnpackResult:
    """Unpack the pack ``path`` into the store at ``store_root`` (default ``$LUMO_HOME``); the code
    snapshots go to ``repo`` (default: the runs' own repository when it exists here, else
    ``<store>/code``), or nowhere with ``code=False``. ``origin``: where the archive came from, for
    ``unpacked.json`` (default its path; ``pull`` gives the URL). ``processes``: 1 (default) writes every
    file in this process; 2 writes the second half of the run folders in a forked process where a fork can
    run; ``None`` (``lumo-hydra unpack``): 2 for :data:`SPLIT_RUNS` run folders or more when a core looks idle.

    Raises :class:`~lumo_hydra.errors.ArchiveError` (a ``ValueError``) naming the member and the problem,
    with nothing written, for a damaged or hostile archive or a run that conflicts with the store's.
    """
    if processes not in (None, 1, 2):
        raise LumoValueError(f"processes={processes!r} is not allowed; allowed: None (choose), 1 or 2")
    src = Path(path).absolute()
    archive = str(src)
    layout = StoreLayout(store_root)
    raw: bytes | None = None
    try:
        if src.stat().st_size <= _IN_MEMORY:
            raw = src.read_bytes()
        got = _read_in_memory(archive, raw, max_bytes) if raw is not None else None
        in_memory = got is not None
        doc, members = got if got is not None else _read_streaming(archive, src, max_bytes)
    except (EOFError, OSError, ValueError) as e:  # (tarfile's own errors: _read_streaming)
        if isinstance(e, ArchiveError):
            raise
        raise ArchiveError(archive, "?", f"not a readable .tar.gz ({type(e).__name__}: {e})") from None
    add, skip, dirs, todo = _plan(archive, layout, doc, members)
    result = UnpackResult(added=add, skipped=skip)
    if not todo and not (code and add + skip and doc.get("code")):
        return result
    layout.root.mkdir(parents=True, exist_ok=True)
    tmp = layout.root / f".lumo-unpack-{os.urandom(8).hex()}"
    tmp.mkdir(0o700)  # as tempfile.mkdtemp makes it (a random name, created exclusively)
    try:
        code_of = _fetch_code(src, tmp, doc, members, in_memory, layout, repo, set(add + skip), result) if code else {}
        prov = _provenance(dirs, _origin(src, raw, doc, origin), code_of)
        _extract(src, tmp, _with_provenance(todo, prov) if in_memory else todo, in_memory, archive, doc, processes)
        if progress is not None:
            progress(len(add) // 2, len(add))
        _install(tmp, layout, todo, dirs, None if in_memory else prov)
        if progress is not None:
            progress(len(add), len(add))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result
