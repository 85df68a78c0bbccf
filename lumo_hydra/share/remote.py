"""``push`` and ``pull``: packs to and from any fsspec URL (docs/share.md, "Push and pull").

Layout at the destination: ``<prefix>/<exp>/<test>.tar.gz`` (one run, its records and code) and
``<prefix>/<exp>/<test>.tar.gz.sha256`` (``sha256sum`` format). Both are written under a temporary
name (``.tmp-...``) and moved into place, the archive first: a ``.sha256`` is only ever seen beside a
complete archive, and an interrupted transfer leaves no half-written file under a final name.

Idempotent: packs of one run are byte-for-byte reproducible (fixed times, ``git bundle`` with one
thread), so a run whose pack has the checksum already at the destination is skipped; a local cache
(``$LUMO_CACHE_DIR/share/pushed.json``) remembers the files' sizes and times per destination, so a
second push of unchanged runs packs nothing. ``pull`` skips runs already unpacked from the same archive.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lumo_hydra.errors import LumoValueError, StoreError
from lumo_hydra.share.pack import _record, _run_members, _select_runs, _sha256_file, pack_runs
from lumo_hydra.share.select import watcher_fallback
from lumo_hydra.store.layout import StoreLayout, cache_dir
from lumo_hydra.store.moved import read_provenance

__all__ = ["push", "pull", "TransferResult", "open_url", "EXTRAS"]

#: the extra to install for each fsspec protocol that is not built in
EXTRAS = {"s3": "s3", "s3a": "s3", "sftp": "sftp", "ssh": "sftp"}
_SUFFIX = ".tar.gz"


@dataclass
class TransferResult:
    """What :func:`push` or :func:`pull` did, as ``exp/test`` lists, and the bytes moved."""

    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes: int = 0
    added: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "skipped": self.skipped, "bytes": self.bytes, "added": self.added}


def open_url(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """``(filesystem, prefix)`` of an fsspec URL (``storage_options`` go to the filesystem, e.g. an S3
    ``endpoint_url``); a missing backend is a ``LumoValueError`` naming the extra to install."""
    if not isinstance(url, str) or "://" not in url:
        raise LumoValueError(f"url={url!r} is not a URL; allowed: file:///path, s3://bucket/prefix, "
                             "sftp://host/path, memory://name (any fsspec URL)")
    proto = url.split("://", 1)[0].lower()
    extra = EXTRAS.get(proto, "s3")
    try:
        import fsspec.core
    except ImportError:
        raise LumoValueError(f"push/pull need fsspec: pip install 'lumo-hydra[{extra}]'") from None
    try:
        fs, prefix = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as e:
        raise LumoValueError(f"the {proto}:// backend is not installed ({e}); pip install 'lumo-hydra[{EXTRAS.get(proto, proto)}]'"
                             if proto in EXTRAS else f"the {proto}:// backend is not installed: {e}") from None
    except ValueError as e:
        raise LumoValueError(f"url={url!r}: {e}") from None
    return fs, str(prefix).rstrip("/")


def _put_atomic(fs: Any, local: str | None, data: bytes | None, dest: str) -> None:
    """``local`` (a file) or ``data`` to ``dest`` through a temporary name beside it, then moved into place."""
    head, _, name = dest.rpartition("/")
    tmp = f"{head}/.tmp-{name}.{uuid.uuid4().hex[:12]}"
    try:
        if local is not None:
            fs.put_file(local, tmp)
        else:
            fs.pipe_file(tmp, data)
        fs.mv(tmp, dest)
    except BaseException:
        try:
            if fs.exists(tmp):
                fs.rm_file(tmp)
        except Exception:  # noqa: BLE001 (the first error is the one to report)
            pass
        raise


def _remote_sums(fs: Any, paths: list[str]) -> dict[str, str]:
    """The checksums in the ``.sha256`` files among ``paths`` (missing ones left out), fetched in one call."""
    if not paths:
        return {}
    try:
        got = fs.cat(paths, on_error="omit")
    except FileNotFoundError:
        got = {}
    out = {}
    for p, data in (got or {}).items():
        text = data.decode("ascii", "replace").split()
        if text and len(text[0]) == 64:
            out[p.rstrip("/")] = text[0]
    found = {}
    for p in paths:
        for k in (p, fs._strip_protocol(p).rstrip("/")):
            if k in out:
                found[p] = out[k]
    return found


def _signature(layout: StoreLayout, exp: str, test: str, blobs: bool,
               known: dict[str, bool] | None = None) -> list[list[Any]]:
    """The sizes and modification times of the files a run's pack holds (its identity for the cache;
    ``known``: the lock and sweep files already looked at, shared by the runs of one push)."""
    try:
        rec = _record(layout, exp, test, full=False)[0]
    except StoreError:
        return []
    sig = []
    root = str(layout.root)
    for n in _run_members(layout, exp, test, rec, blobs, known=known):
        try:
            st = os.stat(f"{root}/{n}")
        except OSError:
            continue
        sig.append([n, st.st_size, st.st_mtime_ns])
    return sig


class _PushCache:
    """``$LUMO_CACHE_DIR/share/pushed.json``: per destination and run, the signature, checksum and size pushed."""

    def __init__(self, url: str) -> None:
        self.path = cache_dir("share") / "pushed.json"
        self.url = url
        try:
            self.doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.doc = {}
        if not isinstance(self.doc, dict):
            self.doc = {}
        self.runs: dict[str, Any] = self.doc.setdefault(url, {})
        self.dirty = False

    def get(self, run: str) -> tuple[Any, Any, Any] | None:
        e = self.runs.get(run)
        return (e.get("sig"), e.get("sha256"), e.get("size")) if isinstance(e, dict) else None

    def put(self, run: str, sig: Any, sha: str, size: int) -> None:
        self.runs[run] = {"sig": sig, "sha256": sha, "size": size}
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return  # a no-op push: nothing to write
        from lumo_hydra.store.files import atomic_write_json

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, self.doc)
        except OSError:
            pass  # only a cache: the next push packs again


#: filesystems whose ``put`` is atomic (an object appears whole or not at all): no temporary name needed
_ATOMIC_PUT = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl")


def _atomic_put(fs: Any) -> bool:
    protos = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return any(p in _ATOMIC_PUT for p in protos)


def _sizes(fs: Any, prefix: str, exps: Iterable[str]) -> dict[str, int]:
    """``{path: size}`` of the files under ``<prefix>/<exp>/`` (one listing per experiment)."""
    out: dict[str, int] = {}
    for exp in dict.fromkeys(exps):
        try:
            found = fs.find(f"{prefix}/{exp}", detail=True)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for p, info in found.items():
            out[fs._strip_protocol(p).rstrip("/")] = int(info.get("size") or 0)
    return out


def _send(fs: Any, items: list[tuple[str, str, str, str]]) -> None:
    """Upload ``(run, local, dest, sha)`` archives, then their ``.sha256`` files: a ``.sha256`` is only
    ever seen beside a complete archive. Object stores: batched (concurrent in s3fs), their puts are
    atomic; other filesystems: each through a temporary name and a rename."""
    if not items:
        return
    sums = {dest + ".sha256": f"{sha}  {dest.rsplit('/', 1)[1]}\n".encode() for _, _, dest, sha in items}
    if _atomic_put(fs):
        fs.put([loc for _, loc, _, _ in items], [dest for _, _, dest, _ in items])
        fs.pipe(sums)
        return
    for _, local, dest, _ in items:
        fs.makedirs(dest.rpartition("/")[0], exist_ok=True)
        _put_atomic(fs, local, None, dest)
    for path, data in sums.items():
        _put_atomic(fs, None, data, path)


def push(store_root: str | os.PathLike[str] | None, run_ids: Iterable[str], url: str, *, blobs: bool = False,
         code: bool = True, progress: Callable[[int, int], None] | None = None,
         storage_options: dict[str, Any] | None = None) -> TransferResult:
    """Push the runs ``run_ids`` (run or sweep ids) of the store at ``store_root`` to ``url`` (any fsspec
    URL): ``<prefix>/<exp>/<test>.tar.gz`` with its ``.sha256``. A run already there unchanged is skipped."""
    fs, prefix = open_url(url, storage_options)
    layout = StoreLayout(store_root)
    runs = _select_runs(layout, run_ids, watcher_fallback(layout.root))
    res = TransferResult()
    there = _sizes(fs, prefix, (e for e, _ in runs))
    cache = _PushCache(url + ("#blobs" if blobs else "") + ("" if code else "#nocode"))
    packed: list[tuple[str, str, str, str]] = []
    seen: dict[str, bool] = {}
    with contextlib.ExitStack() as stack:
        tmp = ""  # made when a run is packed (a no-op push makes no folder)
        for i, (exp, test) in enumerate(runs):
            run, dest = f"{exp}/{test}", f"{prefix}/{exp}/{test}{_SUFFIX}"
            sig = _signature(layout, exp, test, blobs, seen)
            known = cache.get(run)
            if known is not None and known[0] == sig and dest + ".sha256" in there and there.get(dest) == known[2]:
                res.skipped.append(run)  # unchanged since it was pushed, and still there: nothing packed
            else:
                tmp = tmp or stack.enter_context(tempfile.TemporaryDirectory(prefix="lumo-push-"))
                local = os.path.join(tmp, f"{exp}.{test}{_SUFFIX}")
                pack_runs(layout.root, [run], local, blobs, code=code, reproducible=True)
                packed.append((run, local, dest, _sha256_file(local)))
                cache.put(run, sig, packed[-1][3], os.path.getsize(local))
            if progress is not None:
                progress(i + 1, len(runs))
        sums = _remote_sums(fs, [dest + ".sha256" for _, _, dest, _ in packed if dest + ".sha256" in there])
        todo = [p for p in packed if sums.get(p[2] + ".sha256") != p[3]]
        res.skipped += [p[0] for p in packed if p not in todo]  # packed the same bytes as those there
        _send(fs, todo)
        res.sent = [p[0] for p in todo]
        res.bytes = sum(os.path.getsize(p[1]) for p in todo)
    cache.save()
    return res


def _listing(fs: Any, prefix: str) -> dict[str, str]:
    """``{exp/test: archive path}`` of the packs under ``prefix`` (temporary names left out)."""
    try:
        found = fs.glob(f"{prefix}/*/*{_SUFFIX}")
    except FileNotFoundError:
        found = []
    out = {}
    for p in found:
        p = str(p)
        exp, name = p.rsplit("/", 2)[-2:]
        if name.startswith(".") or exp.startswith("."):
            continue
        out[f"{exp}/{name[:-len(_SUFFIX)]}"] = p
    return out


def _wanted(available: dict[str, str], run_ids: Iterable[str] | None) -> list[str]:
    if run_ids is None:
        return sorted(available)
    out = []
    for rid in run_ids:
        rid = str(rid).strip()
        hits = [r for r in available if r == rid or r.split("/", 1)[1] == rid] or \
               [r for r in available if r.split("/", 1)[1].startswith(rid)]
        if len(hits) != 1:
            raise StoreError(f"run {rid!r}: {'not at the destination' if not hits else 'ambiguous: ' + ', '.join(hits[:5])}")
        out.append(hits[0])
    return list(dict.fromkeys(out))


def pull(url: str, store_root: str | os.PathLike[str] | None = None, run_ids: Iterable[str] | None = None, *,
         repo: str | os.PathLike[str] | None = None, code: bool = True,
         progress: Callable[[int, int], None] | None = None,
         storage_options: dict[str, Any] | None = None) -> TransferResult:
    """Pull the packs at ``url`` (all, or the runs ``run_ids``) into the store at ``store_root``: each is
    checked against its ``.sha256`` and unpacked (:func:`~lumo_hydra.share.unpack.unpack`)."""
    from lumo_hydra.errors import ArchiveError
    from lumo_hydra.share.unpack import unpack

    fs, prefix = open_url(url, storage_options)
    layout = StoreLayout(store_root)
    available = _listing(fs, prefix)
    todo = _wanted(available, run_ids)
    sums = _remote_sums(fs, [available[r] + ".sha256" for r in todo])
    res = TransferResult()
    fetch: list[tuple[str, str, str]] = []
    for run in todo:
        want = sums.get(available[run] + ".sha256")
        if want is None:
            raise ArchiveError(available[run], run, "has no .sha256 beside it (an interrupted push?); push it again")
        prov = read_provenance(layout.root / "experiments" / run)
        if prov is not None and prov.get("archive_sha256") == want:
            res.skipped.append(run)  # unpacked from this very archive before: nothing downloaded
        else:
            fetch.append((run, available[run], want))
    with tempfile.TemporaryDirectory(prefix="lumo-pull-") as tmp:
        locals_ = [os.path.join(tmp, run.replace("/", ".") + _SUFFIX) for run, _, _ in fetch]
        if fetch:
            fs.get([src for _, src, _ in fetch], locals_)  # one call: concurrent for object stores
        for i, ((run, src, want), local) in enumerate(zip(fetch, locals_)):
            if _sha256_file(local) != want:
                raise ArchiveError(src, run, "its sha256 does not match its .sha256 (damaged in transfer?)")
            got = unpack(local, layout.root, repo=repo, code=code, origin=fs.unstrip_protocol(src))
            res.added += got.added
            (res.skipped if not got.added else res.sent).append(run)
            res.bytes += os.path.getsize(local)
            if progress is not None:
                progress(i + 1, len(fetch))
    return res
