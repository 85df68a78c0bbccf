"""The commands about a run's code and environment: ``diff``, ``rerun``, ``checkout``.

Every git operation goes through :mod:`lumo_hydra.record.gitsnap` (no user hooks, fsmonitor, pager or
editor). Only ``rerun`` starts a process of its own: the user's recorded command.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lumo_hydra.cli.common import watcher
from lumo_hydra.cli.render import console, dump_json, print_run_diff
from lumo_hydra.errors import CLIError, LumoValueError
from lumo_hydra.record.rundiff import diff_records
from lumo_hydra.store.layout import ENV_HOME, ENV_RERUN_OF

if TYPE_CHECKING:  # pragma: no cover
    from lumo_hydra.watcher import Watcher

__all__ = ["cmd_diff", "cmd_rerun", "cmd_checkout", "rerun_argv"]


def _git_of(rec: dict[str, Any], what: str, w: Watcher | None = None) -> tuple[str, str]:
    """The repository and snapshot commit of run ``rec``; ``CLIError`` saying why there is none to ``what``."""
    git = rec.get("git") or {}
    commit, repo = git.get("commit"), git.get("repo") or (rec.get("execute") or {}).get("repo")
    seen = set()
    while repo and not os.path.isdir(repo) and w is not None and rec.get("rerun_of") and rec["rerun_of"] not in seen:
        # a rerun ran in a temporary worktree, now removed: its snapshot lives in the original's repository
        seen.add(rec["rerun_of"])
        try:
            rec = w.record(rec["rerun_of"])
        except LumoValueError:
            break
        repo = (rec.get("git") or {}).get("repo") or repo
    if not commit or not repo:
        msg = git.get("msg") or "no snapshot was recorded"
        raise CLIError(f"run {rec.get('test_name')!r} has no code snapshot to {what}: {msg}")
    if not os.path.isdir(repo):
        raise CLIError(f"the repository {repo!r} of run {rec.get('test_name')!r} does not exist any more")
    from lumo_hydra.record.gitrefs import snapshot_problem  # a crafted record names no other repository

    why = snapshot_problem(repo, (rec.get("git") or {}).get("ref"), str(commit))
    if why:
        raise CLIError(f"cannot {what} run {rec.get('test_name')!r}: {why}")
    return repo, commit


# -- diff ------------------------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace) -> int:
    """``lumo-hydra diff``: the params, best metrics, packages and code that differ between two runs."""
    w = watcher(args)
    a, b = w.record(args.run_a), w.record(args.run_b)
    data, code_msg = diff_records(w.root, a, b)
    if args.json:
        dump_json(data, sys.stdout)
    else:
        print_run_diff(console(), a, b, data, code_msg)
    return 0


# -- rerun / checkout ------------------------------------------------------------------------------
def _within(path: str, root: str) -> str | None:
    try:
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    except ValueError:
        return None
    return None if rel == ".." or rel.startswith(".." + os.sep) else rel


def rerun_argv(rec: dict[str, Any], worktree: str, overrides: Sequence[str] = ()) -> tuple[list[str], str]:
    """The command (argv) and working folder that rerun run ``rec`` in ``worktree`` (its snapshot)."""
    ex = rec.get("execute") or {}
    git = rec.get("git") or {}
    repo = git.get("repo") or ex.get("repo")
    cwd = ex.get("cwd") or repo
    argv = list(ex.get("exec_argv") or [])
    exe = ex.get("exec_bin") or sys.executable
    if not argv:
        cmd = ex.get("command")
        if not cmd:
            raise CLIError(f"run {rec.get('test_name')!r} recorded no command to rerun")
        parts = shlex.split(cmd.split("&&", 1)[-1]) if "&&" in cmd else shlex.split(cmd)
        exe, argv = parts[0], parts[1:]
    rel_cwd = _within(cwd, repo) if (cwd and repo) else None
    new_cwd = os.path.join(worktree, rel_cwd) if rel_cwd is not None else worktree

    def remap(a: str) -> str:
        if repo and os.path.isabs(a):
            rel = _within(a, repo)
            if rel is not None:
                return os.path.join(worktree, rel)
        return a

    if argv and argv[0] != "-m":
        first = argv[0] if os.path.isabs(argv[0]) or not cwd else os.path.join(cwd, argv[0])
        argv[0] = remap(first) if _within(first, repo or "/") is not None and repo else argv[0]
    argv = [argv[0]] + [remap(a) for a in argv[1:]] if argv else argv
    return [exe, *argv, *overrides], new_cwd


def _remove_worktree(repo: str, path: str) -> None:
    """Remove the temporary worktree ``path`` of ``repo`` (and git's record of it), whatever state it is in."""
    from lumo_hydra.record.gitsnap import remove_worktree

    try:
        remove_worktree(repo, path)
    except (LumoValueError, OSError):
        shutil.rmtree(path, ignore_errors=True)
        try:
            remove_worktree(repo, path)  # the folder is gone: this prunes git's record of it
        except (LumoValueError, OSError):
            pass


def hydra_run_dir(rec: dict[str, Any]) -> list[str]:
    """For a Hydra run: the override that puts the rerun's output folder where the original run's would
    have gone (its recorded ``hydra.run.dir`` pattern, under its recorded cwd)."""
    if not isinstance(rec.get("hydra"), dict):
        return []
    cwd = (rec.get("execute") or {}).get("cwd")
    pattern = "outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}"  # Hydra's default
    hy = os.path.join(str(rec.get("info_dir") or ""), "hydra", "hydra.yaml")
    try:
        import yaml

        with open(hy, encoding="utf-8") as f:
            pattern = str(((yaml.safe_load(f) or {}).get("hydra") or {}).get("run", {}).get("dir") or pattern)
    except (OSError, ValueError, AttributeError, ImportError):
        pass
    if cwd and not os.path.isabs(pattern):
        pattern = os.path.join(cwd, pattern)
    return ["hydra.run.dir='" + pattern.replace("'", "\\'") + "'"]


def cmd_rerun(args: argparse.Namespace) -> int:
    """``lumo-hydra rerun``: run a run's command again on its code snapshot, in a temporary worktree;
    Hydra's outputs go where the original run's went. ``--dry-run`` prints the command on stdout."""
    w = watcher(args)
    rec = w.record(args.run)
    repo, commit = _git_of(rec, "rerun", w)
    err = console(stderr=True)
    extra = [*hydra_run_dir(rec), *args.overrides]
    name = f"{rec.get('exp_name')}/{rec.get('test_name')}"
    if args.dry_run:  # the recorded command (paths that exist), run on the snapshot in a temporary worktree
        argv, cwd = rerun_argv(rec, repo, extra)
        err.print(f"rerun of {name} would run on snapshot {commit[:12]} in a temporary worktree of {repo}:",
                  markup=False)
        print(f"cd {shlex.quote(os.path.normpath(cwd))} && " + " ".join(shlex.quote(a) for a in argv))
        return 0
    from lumo_hydra.record.gitsnap import worktree
    from lumo_hydra.record.rerun import ENV_RERUN_INFO

    tmp = tempfile.mkdtemp(prefix="lumo-rerun-")
    dest = os.path.join(tmp, "code")
    try:
        worktree(repo, commit, dest)
        argv, cwd = rerun_argv(rec, dest, extra)
        env = dict(os.environ)
        env[ENV_RERUN_OF] = str(rec.get("test_name"))
        env[ENV_RERUN_INFO] = json.dumps({"of": rec.get("test_name"), "repo": repo, "snapshot": commit,
                                          "cwd": (rec.get("execute") or {}).get("cwd") or repo, "worktree": dest})
        env[ENV_HOME] = w.root  # the new run goes to the store the original run is in
        err.print(f"rerun of {name} on snapshot {commit[:12]} in a temporary worktree", markup=False)
        err.print("  " + " ".join(shlex.quote(a) for a in argv), markup=False)
        from lumo_hydra.record.secrets import restore_argv  # values masked as *** in the record (H11c)

        argv = restore_argv(argv, run=str(rec.get("test_name")))
        if not os.path.isdir(cwd):
            os.makedirs(cwd, exist_ok=True)
        proc = subprocess.run(argv, cwd=cwd, env=env)  # the user's own command, not git
        if proc.returncode != 0:
            err.print(f"the rerun exited with code {proc.returncode}")
            return 1
        return 0
    finally:
        _remove_worktree(repo, dest)
        shutil.rmtree(tmp, ignore_errors=True)


def cmd_checkout(args: argparse.Namespace) -> int:
    """``lumo-hydra checkout``: a git worktree of a run's code snapshot in a new (or empty) folder."""
    w = watcher(args)
    rec = w.record(args.run)
    repo, commit = _git_of(rec, "check out", w)
    dest = os.path.abspath(args.dir)
    if os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        raise CLIError(f"cannot check out into {dest!r}: it exists and is not an empty folder")
    if os.path.isdir(dest):
        os.rmdir(dest)
    from lumo_hydra.record.gitsnap import worktree

    worktree(repo, commit, dest)
    console().print(f"checked out the code of {rec.get('test_name')} (snapshot {commit[:12]}) into {dest}\n"
                    f"remove it with: git -C {shlex.quote(repo)} worktree remove {shlex.quote(dest)}", markup=False)
    return 0
