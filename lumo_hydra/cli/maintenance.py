"""The commands that remove things: ``rm`` (runs) and ``gc`` (snapshot refs and folders no run needs).

Paths come from :class:`~lumo_hydra.store.layout.StoreLayout`, records from the Watcher and the store
reader, refs from :mod:`lumo_hydra.record.gitsnap` (no git process is started here).
"""
from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from lumo_hydra.cli.common import confirm, watcher
from lumo_hydra.cli.render import console
from lumo_hydra.errors import CLIError, LumoValueError
from lumo_hydra.store.files import atomic_write_json, read_json
from lumo_hydra.store.layout import SNAPSHOT_REF_PREFIX, WATCHER_CACHE, StoreLayout, cache_dir
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


# -- rm --------------------------------------------------------------------------------------------
def _sweep_markers(layout: StoreLayout, rec: dict[str, Any]) -> list[str]:
    """The job markers of run ``rec`` in its sweep's ``jobs/`` folder."""
    sid = rec.get("sweep")
    if not sid:
        return []
    jobs = layout.sweep_jobs_dir(str(sid))
    try:
        return [str(jobs / n) for n in os.listdir(jobs) if n.endswith("." + str(rec.get("test_name")))]
    except OSError:
        return []


def _rm_targets(args: argparse.Namespace, w: Watcher) -> list[tuple[RunRef, dict[str, Any], list[str]]]:
    """Each run named on the command line (once), its record and the paths that remove it."""
    refs = []
    for r in args.runs:
        ref = w.resolve(r)
        if ref not in refs:
            refs.append(ref)
    layout = StoreLayout(w.root)
    targets = []
    for ref in refs:
        try:
            rec = w.record(ref.info_dir)
        except LumoValueError:
            rec = {"status": "unreadable", "test_name": ref.test_name}
        if rec.get("status") == "running" and not args.force:
            raise CLIError(f"run {ref.test_name!r} is still running; stop it first, or pass --force")
        paths = [str(p) for p in layout.run_folders(ref.exp_name, ref.test_name) if p.exists()]
        paths += _sweep_markers(layout, rec)
        targets.append((ref, rec, paths))
    return targets


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
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.unlink(p)
        c.print(f"removed {ref.exp_name}/{ref.test_name}", markup=False)
    c.print("snapshot refs of removed runs are dropped by `lumo-hydra gc`", style="dim")
    return 0


# -- gc --------------------------------------------------------------------------------------------
class _Keep(NamedTuple):
    """What the existing runs and sweeps still need, and the repositories to look for refs in."""

    refs: set[str]
    commits: set[str]
    repos: set[str]


def _keep_of(git: Any, keep: _Keep) -> None:
    """Add a run's (or a sweep's) ``git`` record to ``keep``: its ref, its commit, its repository."""
    if not isinstance(git, dict):
        return
    if git.get("repo"):
        keep.repos.add(git["repo"])
    if git.get("ref"):
        keep.refs.add(git["ref"])
    if git.get("commit"):
        keep.commits.add(git["commit"])


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
        if sw is None:  # a sweep folder being created (no record yet), or a damaged record (warned): it keeps nothing
            continue
        g = sw.get("git")
        if sid in live_sweeps:  # a sweep's snapshot is still needed while one of its jobs exists
            _keep_of(g, keep)
        elif isinstance(g, dict) and g.get("repo"):
            keep.repos.add(g["repo"])
    return keep


def _stale_refs(repos: Iterable[str], keep: _Keep) -> list[tuple[str, str, str]]:
    """``(repo, ref, sha)`` of the snapshot refs that no run or live sweep points to (or shares a commit with).

    Only refs under ``SNAPSHOT_REF_PREFIX`` (the namespace gitsnap writes snapshots in) are looked at;
    other refs under ``refs/lumo/`` are not gc's to remove.
    """
    from lumo_hydra.record.gitsnap import list_refs

    stale: list[tuple[str, str, str]] = []
    for repo in sorted(repos):
        if not os.path.isdir(repo):
            continue
        try:
            refs = list_refs(repo, prefix=SNAPSHOT_REF_PREFIX)
        except (LumoValueError, OSError):  # not (any more) a repository: nothing to collect there
            continue
        for sha, name in refs:
            if name not in keep.refs and sha not in keep.commits:
                stale.append((repo, name, sha))
    return stale


def _orphans(layout: StoreLayout) -> list[str]:
    """The blob and cache folders of runs whose info folder is gone."""
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
            orphans += [str(base / exp / test) for test in tests if not layout.info_dir(exp, test).exists()]
    return orphans


def _delete_refs(stale: list[tuple[str, str, str]]) -> None:
    from lumo_hydra.record.gitsnap import delete_ref

    for repo, name, sha in stale:
        try:
            delete_ref(repo, name, old_sha=sha)  # only if it still points where it did when listed
        except (LumoValueError, OSError):
            pass


def cmd_gc(args: argparse.Namespace) -> int:
    """``lumo-hydra gc``: remove the snapshot refs and the orphan blob/cache folders no run needs any more."""
    w = watcher(args)
    c = console()
    df = w.load()
    layout = StoreLayout(w.root)
    keep = _kept(df, layout)
    repos = keep.repos | set(_known_repos(w.root)) | {os.path.abspath(x) for x in args.repo or []}
    stale = _stale_refs(repos, keep)
    orphans = _orphans(layout)
    if not stale and not orphans:
        c.print(f"nothing to collect ({len(df)} runs, {len(repos)} repositories checked)")
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
        shutil.rmtree(p, ignore_errors=True)
    c.print(f"removed {len(stale)} ref(s) and {len(orphans)} folder(s)")
    return 0
