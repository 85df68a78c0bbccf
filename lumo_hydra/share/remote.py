"""``push`` and ``pull``: packs to and from any fsspec URL (docs/share.md, "Push and pull").

Layout at the destination: ``<prefix>/<exp>/<test>.tar.gz`` (one run, its records and code) and
``<prefix>/<exp>/<test>.tar.gz.sha256`` (``sha256sum`` format). Both are written under a temporary
name (``.tmp-...``) and moved into place, the archive first: a ``.sha256`` is only ever seen beside a
complete archive, and an interrupted transfer leaves no half-written file under a final name.

Idempotent: packs of one run are byte-for-byte reproducible (fixed times, ``git bundle`` with one
thread), so a run whose pack has the checksum already at the destination is skipped. A local ledger
(``$LUMO_CACHE_DIR/share/pushed.json``) remembers per destination and run the files' sizes and times,
the checksum pushed and when the run was last seen there: a second push of unchanged runs packs
nothing, and when every run was seen there within ``VERIFY_AFTER`` (an hour) it does not even look at
the destination (``verify=True`` / ``--verify`` always looks). ``pull`` skips runs already unpacked from
the same archive.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from lumo_hydra.errors import LumoValueError, StoreError
from lumo_hydra.share.pack import PUSH_LEVEL, _record, _run_members, _select_runs, _sha256_file, pack_runs
from lumo_hydra.share.select import watcher_fallback
from lumo_hydra.store.layout import StoreLayout, cache_dir
from lumo_hydra.store.moved import read_provenance

__all__ = ["push", "pull", "TransferResult", "open_url", "EXTRAS", "VERIFY_AFTER", "destination_key"]

#: the extra to install for each fsspec protocol that is not built in
EXTRAS = {"s3": "s3", "s3a": "s3", "sftp": "sftp", "ssh": "sftp"}
_SUFFIX = ".tar.gz"


class TransferResult:
    """What :func:`push` or :func:`pull` did, as ``exp/test`` lists, and the bytes moved; ``trusted``
    (push): the destination was not looked at (the ledger vouched for every run; ``verify=True`` looks)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.skipped: list[str] = []
        self.bytes = 0
        self.added: list[str] = []
        self.trusted = False

    def __repr__(self) -> str:
        return f"TransferResult({self.as_dict()!r})"

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "skipped": self.skipped, "bytes": self.bytes, "added": self.added,
                "trusted": self.trusted}


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


#: a push trusts its ledger for this long after it last saw a run at the destination (seconds)
VERIFY_AFTER = 3600.0
#: storage options that change how a filesystem caches, not which destination it is
_NOT_IDENTITY = ("skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths",
                 "default_block_size", "default_cache_type", "asynchronous", "loop")


def destination_key(url: str, storage_options: dict[str, Any] | None = None, blobs: bool = False,
                    code: bool = True) -> str:
    """The ledger's name for a destination: ``url``, what is packed, and a digest of what else decides
    where ``url`` leads (the storage options, ``FSSPEC_*``, ``AWS_ENDPOINT_URL*`` and ``AWS_PROFILE``;
    hashed: options may hold credentials)."""
    import hashlib

    opts = {k: v for k, v in (storage_options or {}).items() if k not in _NOT_IDENTITY}
    env = {k: v for k, v in os.environ.items() if k.startswith(("FSSPEC_", "AWS_ENDPOINT_URL")) or k == "AWS_PROFILE"}
    where = json.dumps([opts, env], sort_keys=True, default=repr) if opts or env else ""
    return (url + ("#blobs" if blobs else "") + ("" if code else "#nocode")
            + (f"#{hashlib.sha256(where.encode()).hexdigest()[:16]}" if where else ""))


class _PushCache:
    """The push ledger, ``$LUMO_CACHE_DIR/share/pushed.json``: per destination (:func:`destination_key`)
    and run, the signature (sizes and times of its files), checksum and size pushed, and ``seen``: when
    this machine last saw the run there (in a listing, or by sending it)."""

    def __init__(self, key: str) -> None:
        self.path = cache_dir("share") / "pushed.json"
        try:
            self.doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.doc = {}
        if not isinstance(self.doc, dict):
            self.doc = {}
        if not isinstance(self.doc.get(key), dict):
            self.doc[key] = {}
        self.runs: dict[str, Any] = self.doc[key]
        self.dirty = False

    def get(self, run: str) -> tuple[Any, Any, Any] | None:
        e = self.runs.get(run)
        return (e.get("sig"), e.get("sha256"), e.get("size")) if isinstance(e, dict) else None

    def trusted(self, run: str, sig: Any, now: float, verify_after: float) -> bool:
        """Whether ``run`` is unchanged since it was pushed and was seen at the destination less than
        ``verify_after`` seconds ago (then a push need not look)."""
        e = self.runs.get(run)
        seen = e.get("seen") if isinstance(e, dict) else None
        return (isinstance(e, dict) and isinstance(seen, (int, float)) and 0 <= now - seen < verify_after
                and e.get("sig") == sig and isinstance(e.get("sha256"), str))

    def put(self, run: str, sig: Any, sha: str, size: int, now: float) -> None:
        self.runs[run] = {"sig": sig, "sha256": sha, "size": size, "seen": now}
        self.dirty = True

    def saw(self, run: str, now: float) -> None:
        e = self.runs.get(run)
        if isinstance(e, dict) and e.get("seen") != now:
            e["seen"] = now
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return  # a trusted no-op push: nothing to write
        from lumo_hydra.store.files import atomic_write_json

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, self.doc)
        except OSError:
            pass  # only a cache: the next push looks at the destination again


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
         storage_options: dict[str, Any] | None = None, verify: bool = False,
         verify_after: float = VERIFY_AFTER) -> TransferResult:
    """Push the runs ``run_ids`` (run or sweep ids) of the store at ``store_root`` to ``url`` (any fsspec
    URL): ``<prefix>/<exp>/<test>.tar.gz`` with its ``.sha256``. A run already there unchanged is skipped.

    When the ledger says every run is unchanged since it was pushed to this destination and was seen
    there less than ``verify_after`` seconds ago, nothing is asked of the destination (the backend is not
    even imported; ``TransferResult.trusted``); ``verify=True`` always lists the destination, so a run
    deleted there is sent again."""
    import time

    layout = StoreLayout(store_root)
    if not isinstance(url, str) or "://" not in url:
        open_url(url)  # raises: not a URL
    runs = _select_runs(layout, run_ids, watcher_fallback(layout.root))
    res = TransferResult()
    cache = _PushCache(destination_key(url, storage_options, blobs, code))
    seen: dict[str, bool] = {}
    sigs = {f"{exp}/{test}": _signature(layout, exp, test, blobs, seen) for exp, test in runs}
    now = time.time()
    if not verify and all(cache.trusted(run, sig, now, verify_after) for run, sig in sigs.items()):
        res.skipped = list(sigs)
        res.trusted = True
        if progress is not None:
            progress(len(runs), len(runs))
        return res
    fs, prefix = open_url(url, storage_options)
    there = _sizes(fs, prefix, (e for e, _ in runs))
    packed: list[tuple[str, str, str, str]] = []
    with contextlib.ExitStack() as stack:
        tmp = ""  # made when a run is packed (a no-op push makes no folder)
        for i, (exp, test) in enumerate(runs):
            run, dest = f"{exp}/{test}", f"{prefix}/{exp}/{test}{_SUFFIX}"
            sig = sigs[run]
            known = cache.get(run)
            if known is not None and known[0] == sig and dest + ".sha256" in there and there.get(dest) == known[2]:
                res.skipped.append(run)  # unchanged since it was pushed, and still there: nothing packed
                cache.saw(run, now)
            else:
                tmp = tmp or stack.enter_context(tempfile.TemporaryDirectory(prefix="lumo-push-"))
                local = os.path.join(tmp, f"{exp}.{test}{_SUFFIX}")
                pack_runs(layout.root, [run], local, blobs, code=code, reproducible=True, level=PUSH_LEVEL)
                packed.append((run, local, dest, _sha256_file(local)))
            if progress is not None:
                progress(i + 1, len(runs))
        sums = _remote_sums(fs, [dest + ".sha256" for _, _, dest, _ in packed if dest in there and dest + ".sha256" in there])
        todo = [p for p in packed if sums.get(p[2] + ".sha256") != p[3]]
        res.skipped += [p[0] for p in packed if p not in todo]  # packed the same bytes as those there
        _send(fs, todo)
        res.sent = [p[0] for p in todo]
        res.bytes = sum(os.path.getsize(p[1]) for p in todo)
        for run, local, _, sha in packed:  # there now: sent, or found with the same checksum
            cache.put(run, sigs[run], sha, os.path.getsize(local), now)
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
