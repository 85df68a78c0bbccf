"""The commands that remove things: ``rm`` (runs) and ``gc`` (snapshot refs and folders no run needs).

Paths come from :class:`~lumo_hydra.store.layout.StoreLayout`, records from the Watcher and the store
reader, refs from :mod:`lumo_hydra.record.gitsnap` (no git process is started here).
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from lumo_hydra.cli.common import confirm, watcher
from lumo_hydra.cli.render import console
from lumo_hydra.errors import CLIError, LumoValueError
from lumo_hydra.store.files import atomic_write_json, read_json
from lumo_hydra.store.layout import WATCHER_CACHE, StoreLayout, cache_dir, read_store_id
from lumo_hydra.store.reader import read_json_object_or_none

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from lumo_hydra.watcher import RunRef, Watcher

__all__ = ["cmd_rm", "cmd_gc"]


# -- the repositories of removed runs (a reader-side cache) -----------------------------------------
def _known_repos_file(root: str) -> str:
    import hashlib  # lazy: loading OpenSSL costs ~10 ms of every command's start-up

    return os.path.join(str(cache_dir(WATCHER_CACHE)), hashlib.sha256(root.encode()).hexdigest()[:16] + "-repos.json")


def _remember_repos(root: str, repos: Iterable[str]) -> None:
    """Repositories of removed runs, so that `gc` still finds their snapshot refs (reader-side cache)."""
    path = _known_repos_file(root)
    known = set(_known_repos(root)) | {r for r in repos if r}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_json(path, sorted(known))


def _known_repos(root: str) -> list[str]:
    try:
        data = read_json(_known_repos_file(root))
    except (OSError, ValueError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []


# -- paths inside the store ------------------------------------------------------------------------
def _inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path`` lies strictly inside ``root`` once symlinks and ``..`` are resolved (a symlink
    itself is judged by where it is, since removing it removes only the link)."""
    p = os.path.abspath(os.fspath(path))
    where = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
    if not os.path.islink(p):
        where = os.path.realpath(p)
    base = os.path.realpath(os.fspath(root))
    return where != base and where.startswith(base.rstrip(os.sep) + os.sep)


def _plain_name(value: Any) -> bool:
    """A single folder name a record may use in a store path (no separator, no ``..``, not hidden)."""
    return (isinstance(value, str) and bool(value) and "/" not in value and os.sep not in value
            and "\0" not in value and not value.startswith("."))


def _sweep_markers(layout: StoreLayout, rec: dict[str, Any]) -> list[str]:
    """The job markers of run ``rec`` in its sweep's ``jobs/`` folder (a crafted sweep id names none)."""
    sid, test = rec.get("sweep"), rec.get("test_name")
    if not sid or not _plain_name(sid) or not _plain_name(test):
        return []
    jobs = layout.sweep_jobs_dir(str(sid))
    if not _inside(jobs, layout.sweeps_dir):
        return []
    try:
        names = os.listdir(jobs)
    except OSError:
        return []
    return [str(jobs / n) for n in names if n.endswith("." + str(test)) and _inside(jobs / n, jobs)]


def _check_ref(ref: RunRef, layout: StoreLayout, given: str) -> None:
    """``CLIError`` unless the run ``given`` names is a run folder of this store."""
    if not (_plain_name(ref.exp_name) and _plain_name(ref.test_name)):
        raise CLIError(f"{given!r} is not a run of the store {str(layout.root)!r}; nothing removed")
    mine = layout.info_dir(ref.exp_name, ref.test_name)
    if (os.path.realpath(ref.info_dir) != os.path.realpath(mine) or not _inside(mine, layout.experiments_dir)
            or os.path.islink(mine)):
        raise CLIError(f"{given!r} ({ref.info_dir}) is not a run folder of the store {str(layout.root)!r}; "
                       "allowed: a run id, exp_name/test_name, or a run folder inside the store; nothing removed")


def _rm_targets(args: argparse.Namespace, w: Watcher) -> list[tuple[RunRef, dict[str, Any], list[str]]]:
    """Each run named on the command line (once), its record and the paths that remove it."""
    layout = StoreLayout(w.root)
    refs = []
    for r in args.runs:
        ref = w.resolve(r)
        _check_ref(ref, layout, r)
        if ref not in refs:
            refs.append(ref)
    targets = []
    for ref in refs:
        try:
            rec = w.record(ref.info_dir)
        except LumoValueError:
            rec = {"status": "unreadable", "test_name": ref.test_name}
        if rec.get("status") == "running" and not args.force:
            raise CLIError(f"run {ref.test_name!r} is still running; stop it first, or pass --force")
        bases = (layout.experiments_dir, layout.blob_root, layout.cache_root)  # each may be a link to a disk
        paths = [str(p) for p, base in zip(layout.run_folders(ref.exp_name, ref.test_name), bases)
                 if os.path.lexists(p) and _inside(p, base)]
        paths += _sweep_markers(layout, {**rec, "test_name": ref.test_name})
        targets.append((ref, rec, paths))
    return targets


def _remove(path: str, layout: StoreLayout) -> None:
    """Remove ``path`` (a folder, file or symlink) when it lies inside one of the store's folders
    (``experiments/``, ``blob/``, ``cache/``, ``sweeps/``, each resolved: it may link to another disk);
    a link is unlinked, never followed."""
    bases = (layout.experiments_dir, layout.blob_root, layout.cache_root, layout.sweeps_dir)
    if not any(_inside(path, b) for b in bases):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def cmd_rm(args: argparse.Namespace) -> int:
    """``lumo-hydra rm``: remove runs (info, blob and cache folders, sweep job markers) after a confirmation."""
    w = watcher(args)
    targets = _rm_targets(args, w)
    c = console()
    c.print(f"will remove {len(targets)} run{'s' if len(targets) != 1 else ''}:")
    for ref, rec, paths in targets:
        c.print(f"  {ref.exp_name}/{ref.test_name} ({rec.get('status')})", markup=False)
        for p in paths:
            c.print(f"    {p}", markup=False)
    if not confirm(args, f"remove {len(targets)} run(s)?"):
        c.print("nothing removed")
        return 1
    _remember_repos(w.root, [str((rec.get("git") or {}).get("repo") or "") for _, rec, _ in targets])
    for ref, _rec, paths in targets:
        for p in paths:
            _remove(p, StoreLayout(w.root))
        c.print(f"removed {ref.exp_name}/{ref.test_name}", markup=False)
    c.print("snapshot refs of removed runs are dropped by `lumo-hydra gc`", style="dim")
    return 0


# -- gc --------------------------------------------------------------------------------------------
#: a snapshot ref naming no run folder (a Hydra launch's) younger than this is kept: its run may be starting
GC_GRACE_SECONDS = 3600.0


class _Keep(NamedTuple):
    """What the existing runs and sweeps still need, and the repositories to look for refs in."""

    refs: set[str]
    commits: set[str]
    repos: set[str]


def _keep_of(git: Any, keep: _Keep) -> None:
    """Add a run's (or a sweep's) ``git`` record to ``keep``: its ref, its commit, its repository."""
    if not isinstance(git, dict):
        return
    if git.get("repo") and isinstance(git["repo"], str):
        keep.repos.add(git["repo"])
    if git.get("ref"):
        keep.refs.add(str(git["ref"]))
    if git.get("commit"):
        keep.commits.add(str(git["commit"]))


def _kept(df: pd.DataFrame, layout: StoreLayout) -> _Keep:
    """The refs and commits of the runs in ``df`` and of the sweeps that still have a job in ``df``."""
    keep = _Keep(set(), set(), set())
    for git in df["git"]:
        _keep_of(git, keep)
    live_sweeps = {str(s) for s in df["sweep"] if s}
    try:
        sweep_ids = os.listdir(layout.sweeps_dir)
    except OSError:
        sweep_ids = []
    for sid in sweep_ids:
        sw = read_json_object_or_none(layout.sweep_record(sid), "sweep record")
        if sw is None:  # being created (no record yet) or damaged (warned): its owner folder keeps its ref
            continue
        g = sw.get("git")
        if sid in live_sweeps:  # a sweep's snapshot is still needed while one of its jobs exists
            _keep_of(g, keep)
        elif isinstance(g, dict) and isinstance(g.get("repo"), str):
            keep.repos.add(g["repo"])
    return keep


def _owned_stale(repos: Iterable[str], store_id: str, layout: StoreLayout,
                 w: Watcher) -> tuple[list[tuple[str, str, str]], int, int]:
    """``(repo, ref, sha)`` of the snapshot refs proven to belong to this store that nothing of it needs;
    the number of repositories looked at, and of those skipped (this store never wrote there).

    Refs are listed first, then the runs are read again, so a run that started meanwhile keeps its ref.
    Kept: a ref or commit a run or sweep record names, a ref whose ``Lumo-Owner`` store folder exists
    (a run or sweep, maybe still starting), the last snapshot of the repository (the next run may reuse
    it) and a ref without owner younger than ``GC_GRACE_SECONDS``.
    """
    from lumo_hydra.record.gitrefs import store_refs

    listed: dict[str, tuple[str, dict[str, Any], list[dict[str, Any]]]] = {}
    skipped = 0
    for repo in sorted(repos):
        state, refs = store_refs(repo, store_id)
        if state is None:
            skipped += 1
            continue
        listed.setdefault(str(os.path.realpath(repo)), (repo, state, refs))
    keep = _kept(w.load(), layout)
    now = time.time()
    stale: list[tuple[str, str, str]] = []
    for repo, state, refs in listed.values():
        last: dict[str, Any] = state["last"] if isinstance(state.get("last"), dict) else {}
        for r in refs:
            owner = r.get("owner")
            if (r["ref"] in keep.refs or r["sha"] in keep.commits or r["ref"] == last.get("ref")
                    or (owner and _owner_exists(layout, owner)) or (not owner and now - r["time"] < GC_GRACE_SECONDS)):
                continue
            stale.append((repo, r["ref"], r["sha"]))
    return stale, len(listed), skipped


def _owner_exists(layout: StoreLayout, owner: str) -> bool:
    """Whether the store folder ``owner`` (``experiments/<exp>/<test>`` or ``sweeps/<id>``) exists;
    an owner pointing outside the store counts as existing (it is not trusted to free anything)."""
    parts = owner.split("/")
    if not all(_plain_name(x) for x in parts) or len(parts) not in (2, 3):
        return True
    path = layout.root.joinpath(*parts)
    if not _inside(path, layout.root):
        return True
    if parts[0] != layout.SWEEPS or len(parts) != 2:
        return path.exists()
    # a sweep keeps its snapshot while it is being launched or has a job left (rm removes job markers)
    record = layout.sweep_record(parts[1])
    try:
        young = time.time() - record.stat().st_mtime < GC_GRACE_SECONDS
    except OSError:
        return path.exists()  # no record yet: a sweep being launched
    try:
        jobs = bool(os.listdir(layout.sweep_jobs_dir(parts[1])))
    except OSError:
        jobs = False
    return young or jobs


def _orphans(layout: StoreLayout) -> list[str]:
    """The blob and cache folders of runs whose info folder is gone (real folders inside the store only)."""
    orphans: list[str] = []
    for base in (layout.blob_root, layout.cache_root):
        try:
            exps = os.listdir(base)
        except OSError:
            continue
        for exp in exps:
            try:
                tests = os.listdir(base / exp)
            except OSError:
                continue
            orphans += [str(base / exp / test) for test in tests
                        if not layout.info_dir(exp, test).exists() and _inside(base / exp / test, base)
                        and not os.path.islink(base / exp) and not os.path.islink(base / exp / test)]
    return orphans


def _delete_refs(stale: list[tuple[str, str, str]]) -> None:
    from lumo_hydra.record.gitsnap import delete_ref

    for repo, name, sha in stale:
        try:
            delete_ref(repo, name, old_sha=sha)  # only if it still points where it did when listed
        except (LumoValueError, OSError):
            pass


def cmd_gc(args: argparse.Namespace) -> int:
    """``lumo-hydra gc``: remove this store's snapshot refs and the orphan blob/cache folders no run needs."""
    w = watcher(args)
    c = console()
    layout = StoreLayout(w.root)
    keep = _kept(w.load(), layout)
    repos = keep.repos | set(_known_repos(w.root)) | {os.path.abspath(x) for x in args.repo or []}
    store_id = read_store_id(layout.root)
    stale, looked, foreign = _owned_stale(repos, store_id, layout, w) if store_id else ([], 0, len(repos))
    orphans = _orphans(layout)
    if foreign:
        c.print(f"{foreign} repositor{'ies' if foreign != 1 else 'y'} left alone: this store wrote no snapshot "
                "there (refs without this store's id are never removed)", style="dim")
    if not stale and not orphans:
        c.print(f"nothing to collect ({len(w.load())} runs, {looked} repositories checked)")
        return 0
    c.print(f"will remove {len(stale)} snapshot ref(s) and {len(orphans)} orphan folder(s):")
    for repo, name, _ in stale:
        c.print(f"  ref {name}  ({repo})", markup=False)
    for p in orphans:
        c.print(f"  folder {p}", markup=False)
    if args.dry_run:
        c.print("dry run: nothing removed")
        return 0
    if not confirm(args, "remove them?"):
        c.print("nothing removed")
        return 1
    _delete_refs(stale)
    for p in orphans:
        if any(_inside(p, b) for b in (layout.blob_root, layout.cache_root)) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
    c.print(f"removed {len(stale)} ref(s) and {len(orphans)} folder(s)")
    return 0
