"""The one runner of git processes (raw ``subprocess``) of lumo-hydra, with the safety options.

Every git process lumo-hydra starts, raw or GitPython's, gets the same options (``_GIT_OPTS``,
``_SAFE_ENV``): no user hooks, no file-system monitor, no pager, no editor, no prompt, no optional locks.
Only this module starts processes (:func:`_run`, :func:`_spawn`); :mod:`lumo_hydra.record.gitsnap` holds
the git operations (tests/test_git_safety.py checks both).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from lumo_hydra.errors import GitError

# Config of every git process we start, raw or GitPython's (git hands -c options on to the git processes
# it starts itself, e.g. worktree add's checkout): no user hooks (update-ref runs reference-transaction,
# worktree add post-checkout, update-index post-index-change); no file-system monitor program (empty is
# "off" for every git: a bool since 2.36, a hook path before); no split index files beside the user's.
# Other settings naming programs are not reached: core.pager/editor (GIT_PAGER/GIT_EDITOR below win),
# diff.external/textconv (--no-ext-diff --no-textconv), gpg.program (--no-gpg-sign), credential and ssh
# helpers (no network); core.untrackedCache runs nothing. Clean/smudge filters (.gitattributes, git-lfs)
# do run: they define a file's content, as for `git add` and `git checkout`.
_SAFE_CONFIG = (("core.hooksPath", os.devnull), ("core.fsmonitor", ""), ("core.splitIndex", "false"))
_GIT_OPTS = ("--no-pager", *(a for k, v in _SAFE_CONFIG for a in ("-c", f"{k}={v}")))
# environment for every git process: no pager, no editor (":" is git's no-op editor), no prompt for
# credentials, no optional locks (a `git status` would otherwise refresh the user's index)
_SAFE_ENV = {"GIT_PAGER": "cat", "PAGER": "cat", "GIT_EDITOR": ":", "GIT_SEQUENCE_EDITOR": ":",
             "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
# dropped from the caller's environment: another index file, an external diff, a test-only monitor
_DROP_ENV = ("GIT_INDEX_FILE", "GIT_EXTERNAL_DIFF", "GIT_TEST_FSMONITOR")

_WHICH: dict[str, str | None] = {}


def _git_exe() -> str | None:
    """The git found on ``PATH`` (remembered for the same ``PATH`` while it stays an executable file)."""
    path = os.environ.get("PATH", os.defpath)
    exe = _WHICH.get(path)
    if exe is None or not os.access(exe, os.X_OK):
        exe = _WHICH[path] = shutil.which("git")
    return exe


def _env(index_file: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment with the safety variables (``_SAFE_ENV``), for one git process."""
    env = dict(os.environ)
    for k in _DROP_ENV:
        env.pop(k, None)
    if index_file is not None:
        env["GIT_INDEX_FILE"] = index_file
    env.update(_SAFE_ENV)
    if extra:
        env.update(extra)
    return env


def _run(git: str, args: list[str], cwd: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
         check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Every raw git call goes through here or :func:`_spawn`: ``git <_GIT_OPTS> <args>``."""
    p = subprocess.run([git, *_GIT_OPTS, *args], cwd=cwd, env=_env() if env is None else env, input=stdin,
                       capture_output=True)
    if check and p.returncode != 0:
        raise _GitFailed(args, p)
    return p


def _spawn(git: str, args: list[str], cwd: str, env: dict[str, str], stdin: bool = False) -> subprocess.Popen[bytes]:
    """A git process running alongside; ``stdin=True`` gives it a pipe to write its input to later."""
    return subprocess.Popen([git, *_GIT_OPTS, *args], cwd=cwd, env=env,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait(p: subprocess.Popen[bytes], args: list[str], stdin: bytes | None = None) -> bytes:
    """The output of a spawned process (given ``stdin`` if it has a pipe), or :class:`_GitFailed`."""
    out, err = p.communicate(stdin)
    if p.returncode != 0:
        raise _GitFailed(args, subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return out


class _GitFailed(Exception):
    def __init__(self, args: list[str], p: subprocess.CompletedProcess[bytes]) -> None:
        super().__init__(f"git {' '.join(args[:2])} failed (exit {p.returncode}): {_err(p)}")


def _err(p: subprocess.CompletedProcess[bytes]) -> str:
    return (p.stderr or b"").decode("utf-8", "replace").strip() or f"git exited with {p.returncode}"


def _decode(b: bytes) -> str:
    return os.fsdecode(b)


def identity_env(cfg_out: bytes) -> dict[str, str]:
    """A fallback author/committer (env vars) for what the user's git config lacks."""
    have = {k.split(b"\n", 1)[0].decode("utf-8", "replace") for k in cfg_out.split(b"\0") if k}
    fallback = {"name": "lumo-hydra", "email": "lumo-hydra@localhost"}
    keys = [(f"GIT_{who}_{what.upper()}", value) for what, value in fallback.items() if f"user.{what}" not in have
            for who in ("AUTHOR", "COMMITTER")]
    return {k: v for k, v in keys if not os.environ.get(k)}


def identity_from(p_cfg: Any) -> dict[str, str]:
    """:func:`identity_env` of the output of a finished-or-running ``git config --get-regexp`` process."""
    cfg_out, _ = p_cfg.communicate()  # exit 1 when nothing is set
    return identity_env(cfg_out if p_cfg.returncode == 0 else b"")


def _cancel(pending: dict[str, Any]) -> None:
    for proc in pending.values():
        if proc.returncode is not None:
            continue
        try:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        except (OSError, ValueError):
            pass


def _gitpython_repo(d: str, what: str) -> Any:
    """A GitPython ``Repo`` of folder ``d`` (imported here, on first use) whose git processes get the same
    ``_GIT_OPTS`` and ``_SAFE_ENV`` as the raw calls. The readers only read objects through it (``git
    cat-file --batch``: no hook, monitor or filter runs). Use it in a ``with`` block: that ends those
    processes."""
    import git as gitpython  # lazy: ~70 ms to import, and snapshot() never needs it

    try:
        r = gitpython.Repo(d, search_parent_directories=True)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        raise GitError(f"cannot {what}: repo={d!r} is not inside a git repository") from None
    r.git.set_persistent_git_options(no_pager=True, c=[f"{k}={v}" for k, v in _SAFE_CONFIG])
    r.git.update_environment(**_SAFE_ENV)
    return r


def _commit_tree_of(r: Any, repo: str, commit: str, what: str) -> Any:
    """The tree object of ``commit`` in GitPython ``Repo`` ``r``, or :class:`GitError` naming it."""
    from git.exc import BadName, BadObject

    try:
        return r.commit(commit).tree
    except (BadName, BadObject, ValueError) as e:
        raise GitError(f"cannot {what}: no commit={commit!r} in {repo!r} ({e})") from None


def _ready(repo: str | os.PathLike[str], what: str) -> tuple[str, str]:
    """(git executable, repository folder) for a user-asked operation, or :class:`GitError`."""
    git, d = _git_exe(), os.fspath(repo)
    if git is None:
        raise GitError(f"no git executable found on PATH; cannot {what}")
    if not os.path.isdir(d):
        raise GitError(f"cannot {what}: the repository folder repo={d!r} does not exist")
    return git, d


def _open_repo(repo: str | os.PathLike[str], what: str) -> Any:
    """A GitPython ``Repo`` with the safety options (:func:`_gitpython_repo`)."""
    _git, d = _ready(repo, what)
    return _gitpython_repo(d, what)


def _tree(r: Any, repo: str | os.PathLike[str], commit: str, what: str) -> Any:
    from lumo_hydra.record.snapplan import _check_rev

    return _commit_tree_of(r, os.fspath(repo), _check_rev(commit, "commit"), what)


# -- the snapshot readers (re-exported by gitsnap; GitPython, imported on first use) ----------------
def snapshot_files(repo: str | os.PathLike[str], commit: str) -> list[str]:
    """The paths (``/``-separated, sorted) of the files of snapshot ``commit`` of ``repo``: regular files
    and symlinks; submodules are left out."""
    with _open_repo(repo, "list the files of a snapshot") as r:
        tree = _tree(r, repo, commit, "list the files of a snapshot")
        return sorted(str(b.path) for b in tree.traverse() if b.type == "blob")


def read_snapshot_file(repo: str | os.PathLike[str], commit: str, path: str) -> bytes:
    """The bytes of file ``path`` (``/``-separated, relative to the repository's top) in snapshot
    ``commit`` of ``repo``; a symlink gives its target. :class:`GitError` names commit and path if missing."""
    rel = str(path).replace(os.sep, "/").strip("/")
    with _open_repo(repo, "read a file of a snapshot") as r:
        tree = _tree(r, repo, commit, f"read {path!r} of a snapshot")
        try:
            obj = tree / rel if rel else tree
        except KeyError:
            obj = None
        if obj is None or obj.type != "blob":
            raise GitError(f"no file path={path!r} in snapshot commit={commit!r} of {os.fspath(repo)!r}"
                           + ("" if obj is None else f" (it is a {obj.type})"))
        return bytes(obj.data_stream.read())
