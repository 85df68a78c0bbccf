"""``pack``: runs of a store into one ``.tar.gz`` (docs/share.md).

Per run: its info folder ``experiments/<exp>/<id>/``, the dependency lock its record names, its sweep
record, job marker and end record, optionally its blob folder; per repository the runs' code snapshots
as one ``git bundle`` (``code/<n>.bundle``); plus ``manifest.json`` (the first member) with the sha256
and size of every other member. Member names are paths relative to the store root. The archive is
written beside ``out_path`` under a temporary name and renamed into place.
"""
from __future__ import annotations

import gc
import hashlib
import itertools
import json
import operator
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lumo_hydra._version import __version__
from lumo_hydra.errors import LumoValueError, RunNotFoundError, StoreError
from lumo_hydra.share.redact import Redactor, hostname
from lumo_hydra.share.tarfast import Part, TarGzWriter, deflate_part
from lumo_hydra.store.files import atomic_open
from lumo_hydra.store.layout import RUN_JSON, StoreLayout, read_store_id
from lumo_hydra.store.moved import UNPACKED_JSON, rebase_record

__all__ = ["pack_runs", "PackResult", "Fallback", "FORMAT_VERSION", "MANIFEST", "LEVEL", "PUSH_LEVEL", "SPLIT_RUNS"]

#: the manifest's ``format`` (``unpack`` refuses other versions)
FORMAT_VERSION = 1
#: the name of the manifest member
MANIFEST = "manifest.json"
_PLAIN = re.compile(r"^[A-Za-z0-9_.+-]+$")
_LOCK = re.compile(r"^locks/[0-9a-f]{8,64}\.json$")
#: the gzip level of ``pack`` (zlib's fastest family, 1-3: a third of level 6's CPU on records for a
#: pack about a fifth larger; docs/share.md, "Speed"); any gzip reader reads any level
LEVEL = 3
#: the level of the one-run packs ``push`` sends: its idempotence compares their checksums with the ones
#: already at the destination, so it keeps the level earlier pushes used (6, gzip's default)
PUSH_LEVEL = 6
_IN_MEMORY = 1 << 20  # files up to this size are read once (hashed and packed from memory)
_SWEEP_END = "sweep-end.json"


class PackResult:
    """What :func:`pack` wrote: the archive ``path``, the ``runs`` (``exp/test``), the code bundles and
    what was left out (``skipped``: ``{member or run: why}``). (A plain class: ``dataclasses`` costs the
    command line 13 ms to import.)"""

    def __init__(self, path: Path, runs: list[str] | None = None, bundles: list[dict[str, Any]] | None = None,
                 skipped: dict[str, str] | None = None, size: int = 0) -> None:
        self.path, self.runs, self.size = path, runs if runs is not None else [], size
        self.bundles = bundles if bundles is not None else []
        self.skipped = skipped if skipped is not None else {}

    def __repr__(self) -> str:
        return f"PackResult({self.as_dict()!r})"

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "runs": self.runs, "bundles": self.bundles, "skipped": self.skipped,
                "size": self.size}


def _name(e: os.DirEntry[str]) -> str:
    return e.name


_BY_NAME = operator.attrgetter("name")


def _files_under(root: str, rel: str) -> list[str]:
    """The regular files under ``root/rel`` (symlinks are never followed nor packed), relative to ``root``."""
    out: list[str] = []
    try:
        with os.scandir(f"{root}/{rel}") as it:
            entries = list(it)
    except OSError:
        return out
    entries.sort(key=_name)
    for e in entries:
        if e.is_symlink():
            continue
        if e.is_dir():
            out += _files_under(root, f"{rel}/{e.name}")
        elif e.is_file():
            out.append(f"{rel}/{e.name}")
    return out


#: resolves a run id the folders do not name directly (a prefix, a sweep id) to ``(exp, test)`` runs
Fallback = Callable[[str], list[tuple[str, str]]]


class _Resolver:
    """Run ids to ``(exp, test)``: ``exp/test`` and plain test names by looking at the folders (one
    listing of the experiments); anything else (prefixes, sweep ids) through ``fallback`` (the
    Watcher's resolution, :mod:`lumo_hydra.share.select`; this module never imports the Watcher)."""

    def __init__(self, layout: StoreLayout, fallback: Fallback | None) -> None:
        self.layout, self.fallback = layout, fallback
        self._runs: dict[str, set[str]] | None = None

    def _listed(self) -> dict[str, set[str]]:
        """``{exp: {test, ...}}`` of the run folders (one listing per experiment, no stat per run)."""
        if self._runs is None:
            self._runs = {}
            try:
                exps = [e.name for e in os.scandir(self.layout.experiments_dir)
                        if e.name[0] != "." and e.is_dir(follow_symlinks=False)]
            except OSError:
                exps = []
            for exp in sorted(exps):
                try:
                    self._runs[exp] = {e.name for e in os.scandir(self.layout.exp_dir(exp))
                                       if e.name[0] != "." and e.is_dir(follow_symlinks=False)}
                except OSError:
                    pass
        return self._runs

    def _direct(self, rid: str) -> tuple[str, str] | None:
        exp, _, test = rid.rpartition("/")
        if not _PLAIN.match(test) or test.startswith(".") or (exp and not _PLAIN.match(exp)):
            return None
        if exp:
            return (exp, test) if (self.layout.info_dir(exp, test) / RUN_JSON).is_file() else None
        found = [e for e, tests in self._listed().items() if test in tests]
        return (found[0], test) if len(found) == 1 else None  # its run.json is read (or missed) next

    def __call__(self, rid: str) -> list[tuple[str, str]]:
        """The ``(exp, test)`` runs named by ``rid``."""
        rid = str(rid).strip()
        direct = self._direct(rid)
        if direct is not None:
            return [direct]
        if self.fallback is None:
            raise RunNotFoundError(f"no run {rid!r} in {self.layout.root} (give exp/test_name or a full test_name)")
        return self.fallback(rid)


_LOCK_FIELD = re.compile(rb'"lock":\{"digest":"[0-9a-f]{8,64}","file":"(locks/[0-9a-f]{8,64}\.json)"')
_SWEEP_FIELD = re.compile(rb'"sweep":(null|"[A-Za-z0-9_.+-]+")')


def _facts(data: bytes) -> dict[str, Any] | None:
    """The lock file and sweep id of a compact ``run.json`` found without parsing it (parsing is most of
    the cost of packing a record), or ``None`` when the text is not plainly the writer's (then it is parsed)."""
    i, j = data.find(b'"lock":'), data.find(b'"sweep":')
    if i < 0 or j < 0 or data.find(b'"lock":', i + 1) >= 0 or data.find(b'"sweep":', j + 1) >= 0:
        return None
    lock, sweep = _LOCK_FIELD.match(data, i), _SWEEP_FIELD.match(data, j)
    if lock is None or sweep is None:
        return None
    sid = sweep.group(1)
    return {"lock": {"file": lock.group(1).decode()}, "sweep": None if sid == b"null" else sid[1:-1].decode()}


def _record(layout: StoreLayout, exp: str, test: str, full: bool) -> tuple[dict[str, Any], bytes, int]:
    """The record of one run (only its lock and sweep unless ``full``), the bytes of its ``run.json`` and
    their modification time (packed as read here: the file is opened once)."""
    try:
        fd = os.open(f"{layout.root}/{layout.EXPERIMENTS}/{exp}/{test}/{RUN_JSON}", os.O_RDONLY)
        try:
            mtime = int(os.fstat(fd).st_mtime)
            data = _read_fd(fd, 1 << 16)
        finally:
            os.close(fd)
        rec = (None if full else _facts(data)) or json.loads(data)
    except (OSError, ValueError) as e:
        raise StoreError(f"run {exp}/{test}: its {RUN_JSON} cannot be read ({e}); it cannot be packed") from None
    return (rec if isinstance(rec, dict) else {}), data, mtime


def _is_file(path: str, known: dict[str, bool]) -> bool:
    if path not in known:
        known[path] = os.path.isfile(path) and not os.path.islink(path)
    return known[path]


def _run_members(layout: StoreLayout, exp: str, test: str, rec: dict[str, Any], blobs: bool,
                 cache: bool = False, known: dict[str, bool] | None = None) -> list[str]:
    """The store-relative files that carry one run (``known``: files already looked at, shared by runs)."""
    members = [n for n in _files_under(str(layout.root), f"{layout.EXPERIMENTS}/{exp}/{test}")
               if n.rpartition("/")[2] != UNPACKED_JSON or n.count("/") != 3]  # a new one is written at unpack
    return members + _shared_members(layout, exp, test, rec, blobs, cache, {} if known is None else known)


def _entries(items: Iterable[tuple[str, tuple[str, int]]]) -> str:
    """The text of ``json.dumps({name: {"sha256": .., "size": ..}}, separators=(",", ":"))`` of the
    ``(name, (sha256, size))`` items without its braces, written directly (the manifest's one large part:
    a pack of 1,000 runs lists 5,000 members)."""
    enc = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
    return ",".join([f'{enc(n)}:{{"sha256":"{h}","size":{int(size)}}}' for n, (h, size) in items])


def _manifest(layout: StoreLayout, runs: list[tuple[str, str]], files: dict[str, tuple[str, int]],
              extra: dict[str, Any], created: float, parts: list[Part] | None = None,
              listed: int = 0) -> list[bytes | Part]:
    """The manifest's text: its members in name order; with ``parts`` (the entries of ``listed`` of ``files``
    and of the child's members, each compressed where it was read), those first, then the rest of ``files``,
    in archive order (``json`` readers see the same object)."""
    token = f"members-{os.urandom(8).hex()}"
    doc = {
        "format": FORMAT_VERSION,
        "lumo_hydra": __version__,
        "origin_store": read_store_id(layout.root),
        "origin_root": str(layout.root),
        "host": hostname(),
        "created": created,
        "runs": [{"exp_name": e, "test_name": t} for e, t in runs],
        "members": token,
        **extra,
    }
    before, after = json.dumps(doc, sort_keys=True, separators=(",", ":")).split(f'"{token}"')  # no indent: C encoder
    if not parts:
        return [f"{before}{{{_entries((n, files[n]) for n in sorted(files))}}}{after}".encode()]
    rest = _entries(itertools.islice(files.items(), listed, None))
    pieces: list[bytes | Part] = [f"{before}{{".encode()]
    for p in parts:
        if p[2]:
            pieces += [b",", p] if len(pieces) > 1 else [p]
    return [*pieces, f"{',' if rest and len(pieces) > 1 else ''}{rest}}}{after}".encode()]


def _read(path: str, name: str, redactor: Redactor | None, hold: bool = False) -> tuple[bytes | None, int, int]:
    """``(data or None when too large to hold, size, mtime)`` of one file, redacted when asked (``hold``:
    held in memory whatever its size)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if st.st_size > _IN_MEMORY and not hold and (redactor is None or name.startswith("blob/")):
            return None, st.st_size, int(st.st_mtime)
        data = _read_fd(fd, st.st_size)
    finally:
        os.close(fd)
    if redactor is not None and not name.startswith("blob/"):
        data = redactor.bytes(data)
    return data, len(data), int(st.st_mtime)


def _read_fd(fd: int, size: int) -> bytes:
    """The content of the regular file ``fd`` of ``size`` bytes: one read, more only if it grew meanwhile."""
    first = os.read(fd, size + 1)
    if len(first) <= size:
        return first  # a short read of a regular file is its end
    return _read_rest(fd, first)


def _read_rest(fd: int, first: bytes) -> bytes:
    """``first`` and the rest of the file ``fd`` (it grew after its size was taken)."""
    chunks = [first]
    while chunks[-1]:
        chunks.append(os.read(fd, 1 << 20))
    return b"".join(chunks)


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _select_runs(layout: StoreLayout, run_ids: Iterable[str], fallback: Fallback | None = None) -> list[tuple[str, str]]:
    resolve = _Resolver(layout, fallback)
    runs = list(dict.fromkeys(r for rid in run_ids for r in resolve(rid)))
    if not runs:
        raise StoreError("nothing to pack: give at least one run id or sweep id")
    return runs


def _parse_size(max_blob_size: int | str | None) -> int | None:
    if max_blob_size is None or isinstance(max_blob_size, int):
        return max_blob_size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", str(max_blob_size), re.I)
    if not m:
        raise LumoValueError(f"max_blob_size={max_blob_size!r} is not a size; allowed: a number of bytes "
                             "with an optional unit (500K, 20MB, 1.5GiB)")
    unit = (m.group(2) or "").lower().rstrip("b").rstrip("i")
    return int(float(m.group(1)) * 1024 ** " kmgt".index(unit or " "))


_DIR = os.O_RDONLY | os.O_DIRECTORY
_FILE = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)


def _parse_record(exp: str, test: str, data: bytes | None, full: bool) -> dict[str, Any]:
    """The record of one run from its ``run.json`` as read (only its lock and sweep unless ``full``)."""
    try:
        if data is None:
            raise OSError("missing, or over 1 MiB")
        rec = (None if full else _facts(data)) or json.loads(data)
    except (OSError, ValueError) as e:
        raise StoreError(f"run {exp}/{test}: its {RUN_JSON} cannot be read ({e}); it cannot be packed") from None
    return rec if isinstance(rec, dict) else {}


def _shared_members(layout: StoreLayout, exp: str, test: str, rec: dict[str, Any], blobs: bool,
                    cache: bool, known: dict[str, bool]) -> list[str]:
    """The store-relative files of one run outside its info folder: its lock, sweep records, job marker,
    blobs and cache files (``known``: files already looked at, shared by runs)."""
    root = str(layout.root)
    members: list[str] = []
    lock = rec.get("lock")
    lock_file = str(lock.get("file") or "") if isinstance(lock, dict) else ""
    if _LOCK.match(lock_file) and _is_file(f"{root}/{lock_file}", known):
        members.append(lock_file)
    sweep = rec.get("sweep")
    if isinstance(sweep, str) and _PLAIN.match(sweep) and sweep not in (".", ".."):
        sdir = f"{layout.SWEEPS}/{sweep}"
        for name in ("sweep.json", _SWEEP_END):
            if _is_file(f"{root}/{sdir}/{name}", known):
                members.append(f"{sdir}/{name}")
        jobs = layout.sweep_jobs_dir(sweep)
        if jobs.is_dir():
            members += [f"{sdir}/{layout.JOBS}/{n}" for n in sorted(os.listdir(jobs))
                        if n.endswith("." + test) and (jobs / n).is_file() and not (jobs / n).is_symlink()]
    if blobs:
        members += _files_under(root, f"{layout.BLOB}/{exp}/{test}")
    if cache:
        members += _files_under(root, f"{layout.CACHE}/{exp}/{test}")
    return members


class _Writer:
    """The members as they are found: hashed, handed to the compressor, listed for the manifest."""

    def __init__(self, tar: TarGzWriter, root: str, redactor: Redactor | None, limit: int | None,
                 res: PackResult) -> None:
        self.tar, self.root, self.redactor, self.limit, self.res = tar, root, redactor, limit, res
        self.files: dict[str, tuple[str, int]] = {}
        self.newest = 0
        self.parts: list[Part] = []  # manifest entries compressed ahead (two processes), of ...
        self.listed = 0  # ... the first ``listed`` of ``files``

    def list_ahead(self, level: int) -> Part:
        """The manifest entries of ``files`` so far, compressed now (while the other process still works)."""
        self.listed = len(self.files)
        return deflate_part(_entries(self.files.items()).encode(), level)

    # long: the loop over every file of every run, kept in one place (no per-file calls beyond the system's)
    def info(self, root: str, rel: str) -> bytes | None:
        """Add the regular files of a run's info folder ``root/rel`` (not its ``unpacked.json``, never
        symlinks) in name order, sub-folders' files in place; each is opened relative to the folder's
        descriptor (one path walk per run, not per file: a pack of 1,000 runs opens 5,000 files), read once,
        hashed and handed to the compressor. Returns the bytes of its ``run.json`` as read (before any
        redaction), ``None`` when there is none."""
        files, add, redact = self.files, self.tar.add, self.redactor
        sha256, read, fstat, op, close = hashlib.sha256, os.read, os.fstat, os.open, os.close
        rec: bytes | None = None
        newest = self.newest
        dfd = op(f"{root}/{rel}", _DIR)
        try:
            with os.scandir(dfd) as it:
                entries = sorted(it, key=_BY_NAME)
            for e in entries:
                name = e.name
                if not e.is_file(follow_symlinks=False):
                    if e.is_dir(follow_symlinks=False):
                        self.other(_files_under(root, f"{rel}/{name}"), hold=redact is not None)
                    continue
                if name == UNPACKED_JSON:  # a new one is written at unpack
                    continue
                try:
                    fd = op(name, _FILE, dir_fd=dfd)
                except FileNotFoundError:  # gone since the listing (a writer's temporary file renamed): not packed
                    continue
                try:
                    st = fstat(fd)
                    size = st.st_size
                    if size > _IN_MEMORY and redact is None:
                        data = None
                    else:
                        data = read(fd, size + 1)  # one read: a short read of a regular file is its end
                        if len(data) > size:
                            data = _read_rest(fd, data)
                finally:
                    close(fd)
                mtime: int = st[8]  # type: ignore[assignment]  # whole seconds: int(st_mtime), an int at run time
                if mtime > newest:
                    newest = mtime
                n = f"{rel}/{name}"
                if data is None:
                    self._stream(n, size, mtime)
                    continue
                if name == RUN_JSON:
                    rec = data
                if redact is not None:
                    data = redact.bytes(data)
                files[n] = (sha256(data).hexdigest(), len(data))
                add(n, data, mtime)
        finally:
            close(dfd)
            self.newest = max(self.newest, newest)
        return rec

    def other(self, names: list[str], hold: bool = False) -> None:
        """Files outside the info folder (locks and sweep files packed once; blobs over the limit left out;
        ``hold``: read into memory whatever their size)."""
        limit, res = self.limit, self.res
        for n in names:
            if n in self.files or n in res.skipped:
                continue
            data, size, mtime = _read(f"{self.root}/{n}", n, self.redactor, hold)
            if limit is not None and size > limit and n.startswith(("blob/", "cache/")):
                res.skipped[n] = f"{size} bytes, over --max-blob-size {limit}"
                continue
            if mtime > self.newest:
                self.newest = mtime
            if data is None:
                self._stream(n, size, mtime)
            else:
                self.files[n] = (hashlib.sha256(data).hexdigest(), size)
                self.tar.add(n, data, mtime)

    def _stream(self, n: str, size: int, mtime: int) -> None:
        h = hashlib.sha256()
        self.tar.add_file(n, f"{self.root}/{n}", size, mtime, h)
        self.files[n] = (h.hexdigest(), size)


# long: one pass that reads, hashes and writes every member, then the code bundles and the manifest
def pack_runs(store_root: str | os.PathLike[str] | None, run_ids: Iterable[str], out_path: str | os.PathLike[str],
         blobs: bool = False, *, code: bool = True, max_blob_size: int | str | None = None, redact: bool = False,
         progress: Callable[[int, int], None] | None = None, reproducible: bool = False,
         cache: bool = False, fallback: Fallback | None = None, level: int = LEVEL,
         processes: int | None = 1) -> PackResult:
    """Write the runs ``run_ids`` (run ids as ``lumo-hydra show`` takes them, or sweep ids) of the store at
    ``store_root`` (default ``$LUMO_HOME``) into the ``.tar.gz`` ``out_path``.

    ``blobs``: also their blob folders, leaving out files over ``max_blob_size`` (bytes, or ``"20MB"``),
    ``cache``: also their cache folders;
    ``code``: their code snapshots as git bundles; ``redact``: ``$HOME``, this host's name and the user
    name masked in the text records. ``progress(done, total)`` is called per run. ``reproducible``: the
    same files give the same bytes (the manifest's ``created`` is the newest member's time; ``push``).
    ``fallback`` resolves ids that are not ``exp/test`` or a full test name (see :mod:`lumo_hydra.share.select`).
    ``level``: the gzip level (1-9; default :data:`LEVEL`). ``processes``: 1 (default) reads every run
    in this process; 2 reads the second half of the runs in a forked process where a fork can run, for
    records only (not ``blobs``, ``cache`` nor ``reproducible``; :mod:`lumo_hydra.share.split`);
    ``None`` (``lumo-hydra pack``): 2 for :data:`SPLIT_RUNS` runs or more when a core looks idle.
    """
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 9:
        raise LumoValueError(f"level={level!r} is not a gzip level; allowed: an integer from 1 (fastest) to 9 (smallest)")
    if processes not in (None, 1, 2):
        raise LumoValueError(f"processes={processes!r} is not allowed; allowed: None (choose), 1 or 2")
    layout = StoreLayout(store_root)
    limit = _parse_size(max_blob_size)
    runs = _select_runs(layout, run_ids, fallback)
    root = str(layout.root)
    redactor = Redactor.here() if redact else None
    res = PackResult(Path(out_path).absolute(), runs=[f"{e}/{t}" for e, t in runs])
    known: dict[str, bool] = {}
    out = res.path
    out.parent.mkdir(parents=True, exist_ok=True)
    half = _split_at(len(runs), processes, blobs or cache or reproducible)
    child = None
    if half < len(runs):  # forked before any file or thread of this pack exists
        from lumo_hydra.share.split import Child

        child = Child(lambda: _part(layout, runs[half:], redactor, limit, code, level, str(out.parent)),
                      "pack: the second packing process (processes=1 packs in this process alone)")
    # one pass, run by run: each file is read once, hashed and handed to the compressor thread (like
    # tar | gzip); the manifest, which holds the checksums, is written last as the archive's first member
    # (TarGzWriter.head). The members are in the order of the runs, each shared lock or sweep file once
    # (those of the child's runs after its part).
    gc_on = gc.isenabled()
    gc.disable()  # thousands of small objects, no cycle among them: collections would only walk them
    try:
        with atomic_open(out) as raw, TarGzWriter(raw, level, spool_dir=str(out.parent)) as tar:
            w = _Writer(tar, root, redactor, limit, res)
            recs = _read_runs(w, layout, runs[:half], code, blobs, cache, known, progress, len(runs))
            if child is not None:
                w.parts.append(w.list_ahead(level))
                part = child.result()
                tar.splice(part["data"], part["crc"], part["len"])
                w.parts.append(tuple(part["listed"]))  # type: ignore[arg-type]  # marshal: a tuple back
                res.skipped.update(part["skipped"])
                w.newest = max(w.newest, part["newest"])
                recs += part["recs"]
                for names in part["shared"]:
                    w.other(names)
                if progress is not None:
                    progress(len(runs), len(runs))
            _finish(tar, w, layout, runs, recs, code, redact, reproducible, res)
    finally:
        if gc_on:
            gc.enable()
        if child is not None:
            child.close()
    # a file that changed between hashing and packing is caught by unpack's checksums
    res.size = out.stat().st_size
    return res


#: ``pack_runs`` reads the second half of this many runs or more in a second process (when it can fork)
SPLIT_RUNS = 200


def _split_at(n: int, processes: int | None, serial: bool) -> int:
    """How many of ``n`` runs this process reads (the rest: a forked child)."""
    if processes == 1 or n < 2 or serial or (processes is None and n < SPLIT_RUNS):
        return n
    from lumo_hydra.share.split import can_fork

    # a little more than half here: the child's part then travels through the pipe (~2 ms for 1,000 runs)
    return n // 2 + n // 50 if can_fork(idle=processes is None) else n


def _read_runs(w: _Writer, layout: StoreLayout, runs: list[tuple[str, str]], code: bool, blobs: bool, cache: bool,
               known: dict[str, bool], progress: Callable[[int, int], None] | None = None, total: int = 0,
               shared: list[list[str]] | None = None) -> list[dict[str, Any]]:
    """Pack the runs' info folders and their files elsewhere (locks, sweep records...; only listed in
    ``shared`` when given) with ``w``; returns their records."""
    recs: list[dict[str, Any]] = []
    root = str(layout.root)
    for i, (exp, test) in enumerate(runs):
        try:
            raw_rec = w.info(root, f"{layout.EXPERIMENTS}/{exp}/{test}")
        except (FileNotFoundError, NotADirectoryError) as e:
            raise StoreError(f"run {exp}/{test}: its info folder cannot be read ({e}); it cannot be packed") from None
        rec = _parse_record(exp, test, raw_rec, code)
        recs.append(rec)
        names = _shared_members(layout, exp, test, rec, blobs, cache, known)
        if shared is not None:
            shared.append(names)
        else:
            w.other(names)
        if progress is not None:
            progress(i + 1, total)
    return recs


def _part(layout: StoreLayout, runs: list[tuple[str, str]], redactor: Redactor | None, limit: int | None, code: bool,
          level: int, spool_dir: str) -> dict[str, Any]:
    """In the forked child: the runs' info folders as one compressed part, what the parent needs of them."""
    res = PackResult(Path(spool_dir))
    tar = TarGzWriter(None, level, spool_dir=spool_dir)
    w = _Writer(tar, str(layout.root), redactor, limit, res)
    shared: list[list[str]] = []
    try:
        recs = _read_runs(w, layout, runs, code, False, False, {}, shared=shared)
    except BaseException:
        tar.close(ok=False)
        raise
    data, crc, n = tar.part()
    # the records serve the code bundles only; the shared files (one lock for most runs) once each
    return {"data": data, "crc": crc, "len": n, "listed": w.list_ahead(level), "skipped": res.skipped,
            "newest": w.newest, "recs": recs if code else [{} for _ in recs],
            "shared": [list(dict.fromkeys(name for names in shared for name in names))]}


def _finish(tar: TarGzWriter, w: _Writer, layout: StoreLayout, runs: list[tuple[str, str]], recs: list[dict[str, Any]],
            code: bool, redact: bool, reproducible: bool, res: PackResult) -> None:
    """The code bundles and the manifest (the archive's first member)."""
    files = w.files
    # git runs in the repository the snapshot is in now (re-based for an unpacked run); the manifest
    # names the repository recorded in run.json, which is what unpack maps from
    here = [rebase_record(layout.info_dir(e, t), json.loads(json.dumps(r))) for r, (e, t) in zip(recs, runs)] \
        if code else []
    if code:
        from lumo_hydra.share.bundle import bundle_refs  # git's helpers: only when code is packed

        bundles, why = bundle_refs(recs, runs, res.path.parent, reproducible, here)
    else:
        bundles, why = [], {}
    res.skipped.update(why)
    now = w.newest if reproducible else int(time.time())
    try:
        for b in bundles:
            files[b["member"]] = (b.pop("sha256"), b["size"])
            tar.add_file(b["member"], b["path"], b["size"], now)
    finally:
        for b in bundles:
            os.unlink(b["path"])
    res.bundles = [{k: v for k, v in b.items() if k != "path"} for b in bundles]
    extra = {"code": res.bundles, "skipped": res.skipped, "redacted": bool(redact)}
    tar.head(MANIFEST, _manifest(layout, runs, files, extra, float(now) if reproducible else time.time(), w.parts,
                                 w.listed), now)
