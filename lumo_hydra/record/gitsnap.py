"""The git code snapshot (DESIGN.md section 5), and every other git call of lumo-hydra.

Nothing the user owns is touched: not HEAD, not the index (``.git/index`` keeps its exact bytes), not
branches, the stash or the working tree. The tree is built with a private index file kept warm in
``<git-dir>/lumo/`` (git-private), so a snapshot of a large repository with a few changed files costs
about one ``git status``. :func:`snapshot` runs git through ``subprocess`` (raw plumbing: it runs on
every recorded run, and GitPython costs ~70 ms to import), and every environment problem (no git, no
repository, no commits, a read-only repository) is reported in the returned ``msg`` instead of raised.

The snapshot readers (:func:`snapshot_files`, :func:`read_snapshot_file`) use GitPython, imported on
first use; refs, worktrees and :func:`diff` are raw calls. Every git process, raw or GitPython's, gets
the same safety options (``_GIT_OPTS``, ``_SAFE_ENV``): no user hooks, no file-system monitor, no pager,
no editor, no prompt, no optional locks; they and the process runner live in :mod:`lumo_hydra.record.gitrun`.
No other module runs git (tests/test_git_safety.py checks it).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import time
import uuid
from typing import Any

from lumo_hydra.errors import GitError, LumoValueError
from lumo_hydra.record.gitrun import (
    _DROP_ENV,  # noqa: F401  (re-exported: tests and callers read them from gitsnap)
    _GIT_OPTS,  # noqa: F401
    _SAFE_CONFIG,
    _SAFE_ENV,
    _cancel,
    _decode,
    _env,
    _err,
    _git_exe,
    _GitFailed,
    _run,
    _spawn,
    _wait,
)
from lumo_hydra.store.layout import REF_NAMESPACE, SNAPSHOT_REF_PREFIX

__all__ = ["snapshot", "find_repo", "diff", "worktree", "remove_worktree", "list_refs", "delete_ref",
           "snapshot_files", "read_snapshot_file", "GitError", "DEFAULT_REF_PREFIX"]

DEFAULT_REF_PREFIX = SNAPSHOT_REF_PREFIX  # the former name, kept for callers and tests
_NULL_SHA = "0" * 40
_EMPTY_TREES = {"4b825dc642cb6eb9a060e54bf8d69288fbee4904",  # sha1 and sha256 repositories
                "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"}
_BAD_REF = re.compile(r"(^[./])|(/\.)|(\.\.)|(@\{)|([\x00-\x20\x7f~^:?*\[\\])|(\.lock$)|(\.lock/)|(//)|([/.]$)|(^@$)")


_REV_PARSE = ["rev-parse", "--show-toplevel", "--absolute-git-dir", "--revs-only",
              "HEAD^{commit}", "HEAD^{tree}", "--symbolic-full-name", "HEAD"]


def _parse_rev_parse(git: str, path: str, p: subprocess.CompletedProcess[bytes]) -> tuple[dict[str, Any] | None, str]:
    """toplevel, git dir, HEAD, HEAD's tree and branch from one rev-parse; (None, why) if not a repo."""
    if p.returncode != 0:
        err = _err(p)
        if "not a git repository" in err:
            return None, f"not inside a git repository: {path}"
        return None, f"git rev-parse failed in {path}: {err}"
    lines = [_decode(x) for x in p.stdout.split(b"\n") if x]
    if len(lines) < 2:
        return None, f"not inside a git work tree: {path} (bare repository or .git folder)"
    info: dict[str, Any] = {"repo": lines[0], "gitdir": lines[1], "base": None, "base_tree": None, "branch": None}
    rest = lines[2:]
    if len(rest) >= 3:
        info["base"], info["base_tree"] = rest[0], rest[1]
        sym = rest[2]
        info["branch"] = sym[len("refs/heads/"):] if sym.startswith("refs/heads/") else None
    else:  # no commits yet: HEAD is unborn, but it still names a branch
        q = _run(git, ["symbolic-ref", "-q", "HEAD"], path, check=False)
        sym = _decode(q.stdout.strip())
        info["branch"] = sym[len("refs/heads/"):] if q.returncode == 0 and sym.startswith("refs/heads/") else None
    return info, ""


def _guess_repo(path: str) -> tuple[str, str] | None:
    """(toplevel, git dir) found the way git does in the plain case (a ``.git`` folder or file up the
    tree), so that the scan can start while ``rev-parse`` confirms it; None when unsure."""
    if any(k in os.environ for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES",
                                       "GIT_DISCOVERY_ACROSS_FILESYSTEM", "GIT_COMMON_DIR")):
        return None
    d = os.path.realpath(path)
    while True:
        dot = os.path.join(d, ".git")
        if os.path.isdir(dot):
            return d, dot
        if os.path.isfile(dot):
            try:
                with open(dot, encoding="utf-8") as f:
                    line = f.read().strip()
            except (OSError, UnicodeDecodeError):
                return None
            if not line.startswith("gitdir:"):
                return None
            g = line[len("gitdir:"):].strip()
            return d, os.path.normpath(os.path.join(d, g))
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def find_repo(path: str | os.PathLike[str] = ".") -> str | None:
    """The top folder of the git work tree containing ``path``, or ``None`` (no repository, no git)."""
    git = _git_exe()
    p = os.path.abspath(os.fspath(path))
    if git is None or not os.path.isdir(p):
        if git is not None and os.path.exists(p):
            p = os.path.dirname(p)
        else:
            return None
    q = _run(git, ["rev-parse", "--show-toplevel"], p, check=False)
    if q.returncode != 0:
        return None
    top = _decode(q.stdout.strip())
    return top or None


def _check_ref(ref_prefix: str, name: str) -> str:
    if not ref_prefix.startswith("refs/") or _BAD_REF.search(ref_prefix[5:]) or ref_prefix.endswith("/"):
        raise LumoValueError(f"invalid ref_prefix {ref_prefix!r}: it must start with 'refs/' and be a valid "
                             "git ref name (no spaces, '..', '~^:?*[\\', trailing '/' or '.lock')")
    if not name or _BAD_REF.search(name):
        raise LumoValueError(f"invalid snapshot name {name!r}: allowed are git ref names without spaces, "
                             "'..', '~^:?*[\\', leading '.' or '/', trailing '/', '.' or '.lock'")
    return f"{ref_prefix}/{name}"


def _unique_name() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:32] or "host"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _remove_stale(lumo_dir: str, age: float = 3600.0) -> None:
    """Private index files left by killed snapshots (older than ``age`` seconds) are removed."""
    now = time.time()
    try:
        with os.scandir(lumo_dir) as it:
            for e in it:
                # the creation time is in the name: copy2 gives the file the warm index's mtime
                parts = e.name.split(".")
                if (len(parts) >= 4 and parts[0] == "index" and parts[-1] == "tmp" and parts[1].isdigit()
                        and now - int(parts[1]) > age):
                    _unlink(e.path)
    except OSError:
        pass


def _prepare_index(gitdir: str, user_index: str) -> tuple[str, str | None]:
    """A private index file seeded from the warm index (or the user's index); returns (tmp, warm)."""
    import tempfile

    lumo_dir = os.path.join(gitdir, "lumo")
    warm: str | None = os.path.join(lumo_dir, "index")
    try:
        os.makedirs(lumo_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"index.{int(time.time())}.", suffix=".tmp", dir=lumo_dir)
        os.close(fd)
        _remove_stale(lumo_dir)
    except OSError:  # read-only git dir: no warm index, use a temp folder
        warm = None
        fd, tmp = tempfile.mkstemp(prefix="lumo-index.", suffix=".tmp")
        os.close(fd)
    # copy2 keeps the mtime: git's racy-entry detection compares entry times with the index file's time.
    for src in ([warm] if warm else []) + [user_index]:
        try:
            shutil.copy2(src, tmp)
            return tmp, warm
        except OSError:
            continue
    os.unlink(tmp)  # no index at all yet (fresh repository): git creates it
    return tmp, warm


def snapshot(path: str | os.PathLike[str] = ".", *, ref_prefix: str = DEFAULT_REF_PREFIX,
             name: str | None = None, max_file_size: int = 5 * 1024 * 1024,
             message: str | None = None) -> dict[str, Any]:
    """Commit the whole working tree of the repository containing ``path`` to a side ref.

    Never raises for environment problems. Returns a JSON-able dict
    ``{commit, base, branch, dirty, repo, ref, skipped: [{"path", "size"}], msg}``: ``commit`` is the
    snapshot commit (``None`` when none could be made; ``msg`` says why), ``base`` the HEAD commit
    (``None`` without commits), ``branch`` the current branch (``None`` when detached), ``dirty``
    whether the working tree (untracked, non-ignored files included) differs from HEAD, ``repo`` the
    top folder, ``ref`` the ref written (``<ref_prefix>/<name or a unique name>``), ``skipped`` the
    files left out because they are larger than ``max_file_size`` bytes (their HEAD version, if any,
    stays in the snapshot). Raises ``LumoValueError`` only for an invalid ``ref_prefix`` or ``name``.
    """
    ref = _check_ref(ref_prefix, name if name is not None else _unique_name())
    res: dict[str, Any] = {"commit": None, "base": None, "branch": None, "dirty": None, "repo": None,
                           "ref": None, "skipped": [], "msg": ""}
    git = _git_exe()
    p = os.path.abspath(os.fspath(path))
    if git is None or not os.path.exists(p):
        res["msg"] = f"path does not exist: {p}" if git else "no git executable found on PATH; code not recorded"
        return res
    if not os.path.isdir(p):
        p = os.path.dirname(p)
    guess = _guess_repo(p)
    tmp: str | None = None
    warm: str | None = None
    pending: dict[str, Any] = {}
    try:
        if guess is not None:  # start the slow scan while rev-parse confirms the repository
            tmp, warm, pending = _begin(git, *guess)
        info, why = _parse_rev_parse(git, p, _run(git, _REV_PARSE, p, check=False))
        if info is None:
            _cancel(pending)
            res["msg"] = why
            return res
        res.update(repo=info["repo"], base=info["base"], branch=info["branch"])
        if guess is None or not _same(guess, info):
            _cancel(pending)
            if tmp is not None:
                _unlink(tmp)
            tmp, warm, pending = _begin(git, info["repo"], info["gitdir"])
        assert tmp is not None
        commit, tree, skipped = _build(git, info, tmp, max_file_size, ref, message, pending)
        res.update(commit=commit, ref=ref, skipped=skipped,
                   dirty=bool(skipped) or (tree != info["base_tree"] if info["base_tree"]
                                           else tree not in _EMPTY_TREES))
        res["msg"] = "ok" if not skipped else f"ok; {len(skipped)} file(s) over {max_file_size} bytes left out"
        if warm is not None:
            os.replace(tmp, warm)  # keep it warm for the next snapshot (last writer wins: all are valid)
            tmp = None
    except (_GitFailed, OSError) as e:
        res["msg"] = f"snapshot failed: {e}"
    finally:
        _cancel(pending)  # reap anything still running after an error
        if tmp is not None:
            _unlink(tmp)
    return res


def _begin(git: str, repo: str, gitdir: str) -> tuple[str, str | None, dict[str, Any]]:
    """The private index (temp, warm) of a snapshot and its running scan."""
    user_index = os.environ.get("GIT_INDEX_FILE") or os.path.join(gitdir, "index")
    tmp, warm = _prepare_index(gitdir, user_index)
    return tmp, warm, _start_scan(git, repo, tmp)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _same(guess: tuple[str, str], info: dict[str, Any]) -> bool:
    r = os.path.realpath
    return bool(r(guess[0]) == r(info["repo"]) and r(guess[1]) == r(info["gitdir"]))


# `status` on the private index refreshes its stat data (and writes it back), so files whose stat data
# changed without their content (a checkout, a formatter, a copied repository) are hashed once, not on
# every snapshot as `ls-files -m` would do.
_SCAN = ["status", "--porcelain=v2", "-z", "--untracked-files=all", "--no-renames", "--ignore-submodules=dirty"]
_CFG = ["config", "-z", "--get-regexp", r"^user\.(name|email)$"]
# started with the scan, so that its start-up is not on the snapshot's path; it waits for its one
# command on stdin (`create <ref> <commit>`: fails if the ref exists) and takes no lock before it
_REF = ["update-ref", "-m", "lumo-hydra snapshot", "--stdin", "-z"]


def _start_scan(git: str, repo: str, tmp: str) -> dict[str, Any]:
    """Changed tracked files and untracked non-ignored files relative to the private index, and the
    user's identity, in two processes running side by side; and the ref update, waiting for its input."""
    env = _env(tmp)
    scan_env = dict(env)
    del scan_env["GIT_OPTIONAL_LOCKS"]  # let status write the refreshed private index
    return {"scan": _spawn(git, _SCAN, repo, scan_env), "cfg": _spawn(git, _CFG, repo, env),
            "ref": _spawn(git, _REF, repo, env, stdin=True)}


def _changed_paths(out: bytes) -> list[bytes]:
    """Paths whose working-tree state differs from the private index, from ``status --porcelain=v2 -z``."""
    paths = []
    for rec in out.split(b"\0"):
        if rec.startswith(b"1 "):
            f = rec.split(b" ", 8)
            if len(f) == 9 and f[1][1:2] != b".":
                paths.append(f[8])
        elif rec.startswith(b"u "):
            f = rec.split(b" ", 10)
            if len(f) == 11:
                paths.append(f[10])
        elif rec.startswith(b"? "):
            paths.append(rec[2:])
    return paths


def _identity_env(cfg_out: bytes) -> dict[str, str]:
    """A fallback author/committer (env vars) for what the user's git config lacks."""
    have = {k.split(b"\n", 1)[0].decode("utf-8", "replace") for k in cfg_out.split(b"\0") if k}
    fallback = {"name": "lumo-hydra", "email": "lumo-hydra@localhost"}
    keys = [(f"GIT_{who}_{what.upper()}", value) for what, value in fallback.items() if f"user.{what}" not in have
            for who in ("AUTHOR", "COMMITTER")]
    return {k: v for k, v in keys if not os.environ.get(k)}


def _build(git: str, info: dict[str, Any], tmp: str, max_size: int, ref: str,
           message: str | None, pending: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    repo = info["repo"]
    env = _env(tmp)
    found = _changed_paths(_wait(pending["scan"], _SCAN))
    p_cfg = pending["cfg"]
    cfg_out, _ = p_cfg.communicate()  # exit 1 when nothing is set
    ident = _identity_env(cfg_out if p_cfg.returncode == 0 else b"")

    seen: set[bytes] = set()
    update: list[bytes] = []
    skipped: list[dict[str, Any]] = []
    skipped_raw: list[bytes] = []
    for rel in found:
        if not rel or rel in seen:
            continue
        seen.add(rel)
        if rel.endswith(b"/"):  # an embedded repository: a gitlink if it has a commit, else skip it
            rel = rel.rstrip(b"/")
            sub = os.path.join(repo, _decode(rel))
            if _run(git, ["rev-parse", "-q", "--verify", "HEAD"], sub, check=False).returncode == 0:
                update.append(rel)
            continue
        try:
            st = os.lstat(os.path.join(os.fsencode(repo), rel))
        except FileNotFoundError:
            update.append(rel)  # deleted: update-index --remove drops it
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size > max_size:
            skipped.append({"path": _decode(rel), "size": st.st_size})
            skipped_raw.append(rel)
        else:
            update.append(rel)
    if update:
        _run(git, ["update-index", "-z", "--add", "--remove", "--replace", "--stdin"], repo, env,
             stdin=b"\0".join(update) + b"\0")
    if skipped_raw:
        _reset_to_head(git, repo, env, info["base"], skipped_raw)
    try:
        tree = _run(git, ["write-tree"], repo, env).stdout.decode().strip()
    except _GitFailed:
        # Unusual index states (unmerged entries, intent-to-add, ...): rebuild with `git add -A` from
        # the user's index, excluding the oversized files, then retry once.
        tree = _fallback_tree(git, info, env, tmp, skipped_raw)
    msg = message or f"lumo-hydra snapshot {ref}"
    args = ["commit-tree", "--no-gpg-sign", tree, "-m", msg]
    if info["base"]:
        args[3:3] = ["-p", info["base"]]
    commit = _run(git, args, repo, _env(tmp, ident)).stdout.decode().strip()
    _wait(pending["ref"], _REF, stdin=b"create " + ref.encode() + b"\0" + commit.encode() + b"\0")
    return commit, tree, skipped


def _reset_to_head(git: str, repo: str, env: dict[str, str], base: str | None, paths: list[bytes]) -> None:
    """Give oversized paths their HEAD version in the private index (or drop them if not in HEAD)."""
    in_head: dict[bytes, bytes] = {}
    if base:
        out = _run(git, ["ls-tree", "-z", "--full-tree", base, "--", *(":(literal)" + _decode(x) for x in paths)],
                   repo, env).stdout
        for rec in out.split(b"\0"):
            if rec:
                meta, _, pth = rec.partition(b"\t")
                in_head[pth] = meta
    lines = []
    for pth in paths:
        if pth in in_head:
            mode, _typ, sha = in_head[pth].split(b" ")
            lines.append(mode + b" " + sha + b"\t" + pth)
        else:
            lines.append(b"0 " + _NULL_SHA.encode() + b"\t" + pth)
    _run(git, ["update-index", "-z", "--index-info"], repo, env, stdin=b"\0".join(lines) + b"\0")


def _fallback_tree(git: str, info: dict[str, Any], env: dict[str, str], tmp: str, skipped: list[bytes]) -> str:
    repo = info["repo"]
    user_index = os.environ.get("GIT_INDEX_FILE") or os.path.join(info["gitdir"], "index")
    try:
        shutil.copy2(user_index, tmp)
    except OSError:
        _unlink(tmp)
    spec = b"".join(b":(exclude,literal)" + x + b"\0" for x in skipped)
    _run(git, ["add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"], repo, env,
         stdin=b":/\0" + spec)
    if skipped:
        _reset_to_head(git, repo, env, info["base"], skipped)
    return _run(git, ["write-tree"], repo, env).stdout.decode().strip()


def _ready(repo: str | os.PathLike[str], what: str) -> tuple[str, str]:
    """(git executable, repository folder) for a user-asked operation, or :class:`GitError`."""
    git, d = _git_exe(), os.fspath(repo)
    if git is None:
        raise GitError(f"no git executable found on PATH; cannot {what}")
    if not os.path.isdir(d):
        raise GitError(f"cannot {what}: the repository folder repo={d!r} does not exist")
    return git, d


def _check_rev(value: Any, what: str) -> str:
    """A commit or ref given by a caller; a leading '-' would be read by git as an option."""
    if not isinstance(value, str) or not value or value.startswith("-") or "\0" in value or "\n" in value:
        raise GitError(f"invalid {what}={value!r}: allowed is a commit sha or a ref name (not starting with '-')")
    return value


def diff(repo: str | os.PathLike[str], commit_a: str, commit_b: str) -> str:
    """The unified diff between two commits (e.g. two runs' snapshots) of ``repo``, as text.

    A raw ``git diff``, not GitPython: its ``Diff`` objects hold each file's hunks without the unified
    headers (``diff --git``, modes, ``---``/``+++``), and ``Repo.git.diff`` is this same process behind
    more layers. No external diff program or textconv filter runs.
    """
    git, d = _ready(repo, "diff")
    args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv", _check_rev(commit_a, "commit_a"),
            _check_rev(commit_b, "commit_b"), "--"]
    p = _run(git, args, d, check=False)
    if p.returncode != 0:
        raise GitError(f"cannot diff {commit_a!r} and {commit_b!r} in {d!r}: {_err(p)}; "
                       "allowed are commits (or refs) of that repository")
    return p.stdout.decode("utf-8", "replace")


def worktree(repo: str | os.PathLike[str], commit: str, dest: str | os.PathLike[str]) -> None:
    """Check out ``commit`` of ``repo`` into the new folder ``dest`` (``git worktree add --detach``).

    The user's own work tree, HEAD and branches are not touched, and none of the user's hooks runs (a
    failing ``post-checkout`` hook cannot fail it). Remove it with :func:`remove_worktree`.
    """
    git, r = _ready(repo, "check out")
    d = os.path.abspath(os.fspath(dest))
    if os.path.exists(d) and (not os.path.isdir(d) or os.listdir(d)):
        raise GitError(f"cannot check out into dest={d!r}: it exists and is not an empty folder; "
                       "allowed is a new or empty folder")
    p = _run(git, ["worktree", "add", "--detach", d, _check_rev(commit, "commit")], r, check=False)
    if p.returncode != 0:
        raise GitError(f"cannot check out commit={commit!r} of {r!r} into {d!r}: {_err(p)}")


def remove_worktree(repo: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Remove the worktree ``path`` of ``repo`` (``git worktree remove --force``, then ``prune``).

    A folder already gone is no error (its leftover entry is pruned if ``repo`` still exists); a folder
    that exists but cannot be removed raises :class:`GitError`.
    """
    d = os.path.abspath(os.fspath(path))
    if not os.path.lexists(d):
        git = _git_exe()
        if git is not None and os.path.isdir(os.fspath(repo)):
            _run(git, ["worktree", "prune"], os.fspath(repo), check=False)
        return
    git, r = _ready(repo, f"remove the worktree {d!r}")
    for args in (["worktree", "remove", "--force", d], ["worktree", "prune"]):
        p = _run(git, args, r, check=False)
        if p.returncode != 0:
            raise GitError(f"cannot remove the worktree path={d!r} of {r!r} (git worktree {args[1]}): "
                           f"{_err(p)}; delete the folder by hand, then run: git -C {r!r} worktree prune")


def list_refs(repo: str | os.PathLike[str], prefix: str = SNAPSHOT_REF_PREFIX) -> list[tuple[str, str]]:
    """``(sha, refname)`` of every ref under ``prefix`` (``REF_NAMESPACE`` for all of lumo-hydra's),
    sorted by name; ``[]`` when ``repo`` is not a repository or git is missing."""
    pre = prefix.rstrip("/") if isinstance(prefix, str) else ""
    if not pre.startswith("refs/") or _BAD_REF.search(pre[5:]):
        raise LumoValueError(f"invalid prefix {prefix!r}: allowed is a ref name starting with 'refs/'")
    git, d = _git_exe(), os.fspath(repo)
    if git is None or not os.path.isdir(d):
        return []
    p = _run(git, ["for-each-ref", "--format=%(objectname) %(refname)", pre], d, check=False)
    pairs = (ln.partition(" ") for ln in p.stdout.decode("utf-8", "replace").splitlines() if p.returncode == 0)
    return [(sha, name) for sha, _, name in pairs if name.startswith(pre + "/")]


def delete_ref(repo: str | os.PathLike[str], ref: str, old_sha: str | None = None) -> None:
    """Delete ``ref`` of ``repo`` (``git update-ref --no-deref -d``); with ``old_sha`` only while the ref
    still points there. Only refs under ``REF_NAMESPACE`` (``refs/lumo/``) are accepted. A ref already
    gone is no error without ``old_sha``; every failure raises :class:`GitError`."""
    if not isinstance(ref, str) or not ref.startswith(REF_NAMESPACE) or _BAD_REF.search(ref[5:]):
        raise GitError(f"invalid ref={ref!r}: allowed are refs under {REF_NAMESPACE!r} (lumo-hydra's own)")
    args = ["update-ref", "--no-deref", "-d", ref, *([] if old_sha is None else [_check_rev(old_sha, "old_sha")])]
    git, r = _ready(repo, f"delete the ref {ref!r}")
    p = _run(git, args, r, check=False)
    if p.returncode != 0:
        raise GitError(f"cannot delete ref={ref!r} in {r!r}: {_err(p)}")


def _open_repo(repo: str | os.PathLike[str], what: str) -> Any:
    """A GitPython ``Repo`` (imported here, on first use) whose git processes get the same ``_GIT_OPTS``
    and ``_SAFE_ENV`` as the raw calls. The readers only read objects through it (``git cat-file
    --batch``: no hook, monitor or filter runs). Use it in a ``with`` block: that ends those processes."""
    _git, d = _ready(repo, what)
    import git as gitpython  # lazy: ~70 ms to import, and snapshot() never needs it

    try:
        r = gitpython.Repo(d, search_parent_directories=True)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        raise GitError(f"cannot {what}: repo={d!r} is not inside a git repository") from None
    r.git.set_persistent_git_options(no_pager=True, c=[f"{k}={v}" for k, v in _SAFE_CONFIG])
    r.git.update_environment(**_SAFE_ENV)
    return r


def _tree(r: Any, repo: str | os.PathLike[str], commit: str, what: str) -> Any:
    from git.exc import BadName, BadObject

    _check_rev(commit, "commit")
    try:
        return r.commit(commit).tree
    except (BadName, BadObject, ValueError) as e:
        raise GitError(f"cannot {what}: no commit={commit!r} in {os.fspath(repo)!r} ({e})") from None


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
