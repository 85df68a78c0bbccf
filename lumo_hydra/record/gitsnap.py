"""The git code snapshot (DESIGN.md section 5), and every other git call of lumo-hydra.

Nothing the user owns is touched: not HEAD, not the index (``.git/index`` keeps its exact bytes), not branches,
the stash or the working tree. The tree is built with a private index file kept warm in ``<git-dir>/lumo/``
(git-private), so a snapshot of a large repository with a few changed files costs about one ``git status``;
in a plain repository (:func:`~lumo_hydra.record.snapplan.plain_repo`, :func:`~lumo_hydra.record.gitwrite.py_settings`)
the commit object and its ref are then written from Python with the identity git gave the previous snapshot
(a warm snapshot: ``status``, ``update-index``, ``write-tree``; ``status`` alone when nothing changed),
anything unusual falls back to ``commit-tree`` and ``update-ref``. :func:`snapshot` runs git through
``subprocess`` (raw plumbing: it runs on every recorded run, and GitPython costs ~70 ms to import), and every
environment problem (no git, no repository, no commits, a read-only repository) is reported in ``msg``.

The snapshot readers (:func:`snapshot_files`, :func:`read_snapshot_file`) use GitPython, imported on
first use; refs, worktrees and :func:`diff` are raw calls. Every git process, raw or GitPython's, gets
the same safety options (``_GIT_OPTS``, ``_SAFE_ENV``): no user hooks, no file-system monitor, no pager,
no editor, no prompt, no optional locks; they and the process runner live in :mod:`lumo_hydra.record.gitrun`.
No other module runs git (tests/test_git_safety.py checks it).
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Generator
from typing import Any

from lumo_hydra.errors import GitError, LumoValueError
from lumo_hydra.record import gitwrite as gw
from lumo_hydra.record import snapplan as plan
from lumo_hydra.record.gitrun import (
    _DROP_ENV,  # noqa: F401  (re-exported: tests and callers read them from gitsnap)
    _GIT_OPTS,  # noqa: F401
    _SAFE_ENV,  # noqa: F401
    _cancel,
    _decode,
    _env,
    _err,
    _git_exe,
    _GitFailed,
    _ready,
    _run,
    _spawn,
    _wait,
    read_snapshot_file,
    snapshot_files,
)
from lumo_hydra.record.gitrun import identity_from as _ident
from lumo_hydra.record.snapplan import _check_rev, bad_ref
from lumo_hydra.record.snapplan import changed_paths as _changed_paths
from lumo_hydra.record.snapplan import guess_repo as _guess_repo
from lumo_hydra.record.snapplan import prepare_index as _prepare_index
from lumo_hydra.record.snapplan import unlink as _unlink
from lumo_hydra.store.layout import REF_NAMESPACE, SNAPSHOT_REF_PREFIX

__all__ = ["snapshot", "snapshot_steps", "finish_steps", "find_repo", "diff", "worktree", "remove_worktree", "list_refs", "delete_ref",
           "snapshot_files", "read_snapshot_file", "GitError", "DEFAULT_REF_PREFIX"]

DEFAULT_REF_PREFIX = SNAPSHOT_REF_PREFIX  # the former name, kept for callers and tests
_NULL_SHA = "0" * 40
_EMPTY_TREES = {"4b825dc642cb6eb9a060e54bf8d69288fbee4904", "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"}

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


def snapshot(path: str | os.PathLike[str] = ".", *, ref_prefix: str = DEFAULT_REF_PREFIX,
             name: str | None = None, max_file_size: int = 5 * 1024 * 1024,
             message: str | None = None, store: str | os.PathLike[str] | None = None,
             owner: str | None = None, skip_dirs: Any = (), secret_files: Any = None) -> dict[str, Any]:
    """Commit the whole working tree of the repository containing ``path`` to a side ref.

    Never raises for environment problems. Returns a JSON-able dict
    ``{commit, base, branch, dirty, repo, ref, skipped: [...], msg}``: ``commit`` is the
    snapshot commit (``None`` when none could be made; ``msg`` says why), ``base`` the HEAD commit
    (``None`` without commits), ``branch`` the current branch (``None`` when detached), ``dirty``
    whether the recorded tree differs from HEAD's (or a file was left out for its size), ``repo`` the
    top folder, ``ref`` the ref written (``<ref_prefix>/<name or a unique name>``), ``skipped`` what was
    left out: ``{"path", "size"}`` for files larger than ``max_file_size`` bytes (their HEAD version, if
    any, stays), ``{"path", "reason"}`` for untracked files that look like secrets (``secret_files``
    patterns, default :func:`~lumo_hydra.record.snapplan.secret_patterns`) and Hydra's output folders
    (``skip_dirs``, and ``outputs/``/``multirun/`` holding ``.hydra/``).

    ``store`` (a store root): the ref is ``<ref_prefix>/<store id>/<name>``, the commit message names the
    store id and ``owner`` (the store folder, relative to its root, whose run uses the snapshot), the
    result gets ``store_id`` and ``reused``, and when the tree and base equal the previous snapshot this
    store made of the repository, that snapshot is reused (``reused: true``, one ref for many runs).
    Raises ``LumoValueError`` only for an invalid ``ref_prefix`` or ``name``.
    """
    return finish_steps(snapshot_steps(path, ref_prefix=ref_prefix, name=name, max_file_size=max_file_size,
                                       message=message, store=store, owner=owner, skip_dirs=skip_dirs,
                                       secret_files=secret_files))


def finish_steps(steps: Generator[None, None, dict[str, Any]]) -> dict[str, Any]:
    """The result of a :func:`snapshot_steps` run to its end."""
    try:
        while True:
            next(steps)
    except StopIteration as e:
        return e.value  # type: ignore[no-any-return]


def snapshot_steps(path: str | os.PathLike[str] = ".", *, ref_prefix: str = DEFAULT_REF_PREFIX,
                   name: str | None = None, max_file_size: int = 5 * 1024 * 1024,
                   message: str | None = None, store: str | os.PathLike[str] | None = None, owner: str | None = None,
                   skip_dirs: Any = (), secret_files: Any = None) -> Generator[None, None, dict[str, Any]]:
    """:func:`snapshot` in two steps, no thread: the first ``next()`` returns once git's scan runs (the
    caller works meanwhile); :func:`finish_steps` then gives the result."""
    ref, sinfo = plan.store_ref(ref_prefix, name, store, owner)
    res: dict[str, Any] = {"commit": None, "base": None, "branch": None, "dirty": None, "repo": None,
                           "ref": None, "skipped": [], "msg": ""}
    if store is not None:
        res.update(store_id=sinfo.get("store_id"), reused=False)
    git = _git_exe()
    p = os.path.abspath(os.fspath(path))
    if git is None or not os.path.exists(p):
        res["msg"] = f"path does not exist: {p}" if git else "no git executable found on PATH; code not recorded"
        return res
    if not os.path.isdir(p):
        p = os.path.dirname(p)
    opts = {"cwd": p, "skip_dirs": skip_dirs, "secrets": plan.secret_patterns(secret_files)}
    guess = _guess_repo(p)
    tmp: str | None = None
    warm: str | None = None
    pending: dict[str, Any] = {}
    try:
        if guess is not None:  # start the slow scan while rev-parse (if needed) confirms the repository
            tmp, warm, pending = _begin(git, *guess, opts, path=p)
            yield
        info = _scan_info(git, guess, pending) if guess is not None and opts["plain"] else None
        why = ""
        if info is None:
            info, why = _parse_rev_parse(git, p, _run(git, _REV_PARSE, p, check=False))
        if info is None:
            _cancel(pending)
            res["msg"] = why
            return res
        res.update(repo=info["repo"], base=info["base"], branch=info["branch"])
        if guess is None or not pending or ("scan_out" not in info and not plan.same_repo(guess, info)):
            _cancel(pending)
            if tmp is not None:
                _unlink(tmp)
            tmp, warm, pending = _begin(git, info["repo"], info["gitdir"], opts, path=None)
        assert tmp is not None
        info["store"], info["opts"] = sinfo, opts
        commit, tree, skipped, ref = _build(git, info, tmp, max_file_size, ref, message, pending)
        big = [s for s in skipped if "size" in s]
        res.update(commit=commit, ref=ref, skipped=skipped,
                   dirty=bool(big) or (tree != info["base_tree"] if info["base_tree"]
                                       else tree not in _EMPTY_TREES))
        if store is not None:
            res["reused"] = bool(info.get("reused"))
        res["msg"] = "ok" if not big else f"ok; {len(big)} file(s) over {max_file_size} bytes left out"
        if sinfo.get("why"):
            res["msg"] += "; " + sinfo["why"]
        if warm is not None and [plan.file_id(tmp), bool(opts.get("clean_after")), tree] != opts["seed"]:
            plan.keep_warm(tmp, warm, opts["key"], bool(opts.get("clean_after")), tree)
            tmp = None  # (else the finally removes it: the warm index and its mark already say all this)
    except (_GitFailed, OSError) as e:
        res["msg"] = f"snapshot failed: {e}"
    finally:
        _cancel(pending)  # reap anything still running after an error
        if tmp is not None:
            _unlink(tmp)
    return res


def _scan_info(git: str, guess: tuple[str, str], pending: dict[str, Any]) -> dict[str, Any] | None:
    """What rev-parse would say, from the scan's branch headers (the plain case, :func:`plan.plain_repo`):
    HEAD, its tree (:func:`plan.head_tree`, else one rev-parse) and branch; ``None`` (the processes
    ended) when the scan failed, so that rev-parse gives the reason and the snapshot starts again."""
    try:
        out = _wait(pending["scan"], _SCAN)
    except _GitFailed:
        out = b""
    base, branch, ok = plan.branch_header(out)
    tree = plan.head_tree(guess[1], base) if base else None
    if ok and base and tree is None:
        q = _run(git, ["rev-parse", "-q", "--verify", base + "^{tree}"], guess[0], check=False)
        tree = _decode(q.stdout.strip()) if q.returncode == 0 else None
        if tree:
            plan.remember_head_tree(guess[1], base, tree)
    if not ok or (base and not tree):
        _cancel(pending)
        pending.clear()
        return None
    return {"repo": guess[0], "gitdir": guess[1], "base": base, "base_tree": tree, "branch": branch, "scan_out": out}


def _begin(git: str, repo: str, gitdir: str, opts: dict[str, Any],
           path: str | None) -> tuple[str, str | None, dict[str, Any]]:
    """The private index (temp, warm) of a snapshot and its running scan; while it runs: whether git
    started in ``path`` finds this repository (``opts["plain"]``, :func:`plan.plain_repo`; ``path=None``:
    not asked), and then whether the commit and its ref may be written from Python (``opts["py"]``: the
    settings, the identity git gave the last snapshot; ``opts["learn"]``: the settings to learn it for),
    else the ref update is started to wait for its input."""
    user_index = os.environ.get("GIT_INDEX_FILE") or os.path.join(gitdir, "index")
    memory = os.path.join(plan.common_dir(gitdir), "lumo", "hydra-dirs.json")
    dirs = plan.output_dirs(repo, opts["cwd"], opts["skip_dirs"], memory)
    key = plan.clean_key(opts["secrets"], dirs)
    tmp, warm, clean, opts["seed_tree"] = _prepare_index(gitdir, user_index, key)
    opts["seed"] = [plan.file_id(tmp), clean, opts["seed_tree"]]  # the warm index as copied, and its mark
    env = _env(tmp)
    pending = _start_scan(git, repo, env, dirs, opts["secrets"], not clean)
    opts["plain"] = plain = path is not None and plan.plain_repo(path, repo, gitdir)
    sets = gw.py_settings(git, gitdir) if plain and warm is not None else None
    ident = gw.cached_ident(gitdir, sets["key"]) if sets else None
    opts.update(py=(sets, *ident) if sets and ident else None, learn=sets if sets and not ident else None)
    ident_mark = os.path.join(gitdir, "lumo", _IDENT_MARK)
    if not opts["py"]:
        pending["ref"] = _spawn(git, _REF, repo, env, stdin=True)
        if os.path.exists(ident_mark):
            pending["cfg"] = _spawn(git, _CFG, repo, env)
    opts.update(dirs=dirs, user_index=user_index, key=key, ident_mark=ident_mark, env=env)
    return tmp, warm, pending


# `status` on the private index refreshes its stat data (and writes it back), so files whose stat data
# changed without their content (a checkout, a formatter, a copied repository) are hashed once, not on
# every snapshot as `ls-files -m` would do.
# Untracked folders come as one "dir/" record (`normal`, not `all`): git's untracked cache (in the private
# index only) then answers for every folder whose mtime did not change instead of reading them all (a third
# of the scan at 1,000 files); :func:`_expand_dirs` lists the new folders.
_SCAN = ["-c", "core.untrackedCache=true", "status", "--porcelain=v2", "-z", "--branch", "--no-ahead-behind",
         "--untracked-files=normal", "--no-renames", "--ignore-submodules=dirty"]
# the untracked files (and embedded repositories, "sub/") inside the folders a scan reported as "dir/"
_OTHERS = ["ls-files", "-z", "--others", "--exclude-standard", "--"]
_CFG = ["config", "-z", "--get-regexp", r"^user\.(name|email)$"]
# in <git dir>/lumo/: this repository lacked a configured identity once, so `_CFG` runs with the scan
_IDENT_MARK = "ident-fallback"
# started with the scan, so that its start-up is not on the snapshot's path; it waits for its one
# command on stdin (`create <ref> <commit>`: fails if the ref exists; `verify <ref> <commit>` for a
# reused snapshot) and takes no lock before it
_REF = ["update-ref", "-m", "lumo-hydra snapshot", "--stdin", "-z"]
_LS = ["ls-files", "-z", "--cached", "--"]


def _start_scan(git: str, repo: str, env: dict[str, str], dirs: list[str], secrets: tuple[str, ...],
                left: bool) -> dict[str, Any]:
    """Changed tracked files and untracked non-ignored files relative to the private index (Hydra's
    output folders excluded); side by side with ``left``, the private index's entries in the folders
    ``dirs`` and its secret-looking files (not asked for when the seed is marked clean). :func:`_begin`
    adds the ref update (waiting for its input) and the user's identity (when this repository lacked one
    before) unless Python writes the commit. ``env``: :func:`_env` of the private index."""
    scan_env = dict(env)
    del scan_env["GIT_OPTIONAL_LOCKS"]  # let status write the refreshed private index
    excl = [f":(exclude,top,literal){d}" for d in dirs]
    out = {"scan": _spawn(git, _SCAN + (["--", ":/", *excl] if excl else []), repo, scan_env)}
    specs = plan.secret_pathspecs(secrets)
    if left and (specs or dirs):
        out["left"] = _spawn(git, _LS + specs + [f":(top,literal){d}/" for d in dirs], repo, env)
    return out


def _left_out(git: str, repo: str, pending: dict[str, Any], opts: dict[str, Any],
              found: list[bytes]) -> tuple[set[bytes], list[bytes], list[dict[str, Any]]]:
    """The secret-looking paths git does not track (the user's index) to leave out, the private index's
    entries in the output folders (reset to HEAD), and their ``skipped`` entries. Sets
    ``opts["clean_after"]``: no secret-looking file is kept (tracked ones are) and the private index had
    no entry in the output folders, so the index written can be marked clean."""
    secrets: tuple[str, ...] = opts["secrets"]
    left = [x for x in _wait(pending["left"], _LS).split(b"\0") if x] if "left" in pending else []
    skipped: list[dict[str, Any]] = [{"path": d + "/", "reason": "Hydra output folder"} for d in opts["dirs"]]
    prefixes = tuple(os.fsencode(d) + b"/" for d in opts["dirs"])
    reset = [rel for rel in left if prefixes and rel.startswith(prefixes)]
    cands: dict[bytes, str] = {}
    for rel in [*found, *left]:
        pat = plan.secret_match(_decode(rel), secrets) if secrets and rel not in cands else None
        if pat is not None and not (prefixes and rel.startswith(prefixes)):
            cands[rel] = pat
    matched = len(cands)
    if cands:  # tracked (in the user's index) files are recorded whatever their name
        out = _run(git, _LS + [":(literal)" + _decode(x) for x in cands], repo, _env(opts["user_index"])).stdout
        for rel in out.split(b"\0"):
            cands.pop(rel, None)
    opts["clean_after"] = matched == len(cands) and not reset
    for rel, pat in cands.items():
        skipped.append({"path": _decode(rel), "reason": f"untracked file that looks like a secret "
                        f"(matches {pat!r}); `git add` it to record it"})
    return set(cands), reset, skipped


def _expand_dirs(git: str, repo: str, env: dict[str, str], found: list[bytes], dirs: list[str]) -> list[bytes]:
    """``found`` with each untracked folder ``dir/`` replaced by what ``--untracked-files=all`` lists in it:
    untracked, not ignored files and embedded repositories (``sub/``); the output folders ``dirs`` left out."""
    folders = [rel for rel in found if rel.endswith(b"/")]
    spec = [":(top,literal)" + _decode(rel) for rel in folders] + [f":(exclude,top,literal){d}" for d in dirs]
    out = _run(git, _OTHERS + spec, repo, env).stdout
    return [rel for rel in found if not rel.endswith(b"/")] + [rel for rel in out.split(b"\0") if rel]


def _build(git: str, info: dict[str, Any], tmp: str, max_size: int, ref: str,
           message: str | None, pending: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]], str]:
    repo = info["repo"]
    env = info["opts"]["env"]
    found = _changed_paths(info["scan_out"] if "scan_out" in info else _wait(pending["scan"], _SCAN))
    if any(rel.endswith(b"/") for rel in found):
        found = _expand_dirs(git, repo, env, found, info["opts"]["dirs"])
    ident = _ident(pending["cfg"]) if "cfg" in pending else None
    drop, reset, skipped = _left_out(git, repo, pending, info["opts"], found)
    seen: set[bytes] = set(drop)
    update: list[bytes] = []
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
    if skipped_raw or reset or drop:
        _reset_to_head(git, repo, env, info["base"], skipped_raw + reset, sorted(drop))
    try:  # an index left as the warm one was (its tree in its mark) needs no write-tree
        tree = (None if update or skipped_raw or reset or drop else info["opts"].get("seed_tree")) \
            or _run(git, ["write-tree"], repo, env).stdout.decode().strip()
    except _GitFailed:
        # Unusual index states (unmerged entries, intent-to-add, ...): rebuild with `git add -A` from
        # the user's index, excluding what is left out, then retry once.
        tree = _fallback_tree(git, info, env, tmp, skipped_raw + reset + sorted(drop))
        info["opts"]["clean_after"] = False
    sinfo = info.get("store") or {}
    reused = _reuse(info, sinfo, tree, pending)
    if reused is not None:
        return reused[0], tree, skipped, reused[1]
    return _commit(git, info, sinfo, tree, ref, message, pending, ident), tree, skipped, ref


def _commit_tree(git: str, repo: str, args: list[str], ident: dict[str, str] | None, mark: str) -> str:
    """The commit of ``commit-tree args``. Without ``ident`` (the repository had an identity last time)
    git is first asked to take the identity from the config or the environment only
    (``user.useConfigOnly``); failing that, the config is read (``_CFG``), the fallback identity filled in
    for what it lacks, and the file ``mark`` makes later snapshots read the config side by side."""
    if ident is None:
        p = _run(git, ["-c", "user.useConfigOnly=true", *args], repo, _env(None), check=False)
        if p.returncode == 0:
            return p.stdout.decode().strip()
        if b"auto-detection" not in p.stderr and b"ident" not in p.stderr:
            raise _GitFailed(args, p)
        plan.note(mark, "the git config lacked user.name or user.email\n")
        ident = _ident(_spawn(git, _CFG, repo, _env(None)))
    return _run(git, args, repo, _env(None, ident)).stdout.decode().strip()


def _commit(git: str, info: dict[str, Any], sinfo: dict[str, Any], tree: str, ref: str, message: str | None,
            pending: dict[str, Any], ident: dict[str, str] | None) -> str:
    """The snapshot commit of ``tree`` (message with the store's trailers), its new ref, the store's state."""
    repo = info["repo"]
    msg = message or f"lumo-hydra snapshot {ref}"
    if sinfo.get("store_id"):
        msg += "\n\n" + plan.trailers(sinfo["store_id"], sinfo.get("owner"))
    parents = [info["base"]] if info["base"] else []
    opts = info["opts"]
    commit = _py_commit(info["gitdir"], opts["py"], tree, parents, msg, ref) if opts.get("py") else None
    if commit is None:
        args = ["commit-tree", "--no-gpg-sign", tree, "-m", msg]
        if info["base"]:
            args[3:3] = ["-p", info["base"]]
        commit = _commit_tree(git, repo, args, ident, opts["ident_mark"])
        if opts.get("learn"):
            gw.learn_ident(info["gitdir"], opts["learn"]["key"], commit, tree, parents, msg)
        line = b"create " + ref.encode() + b"\0" + commit.encode() + b"\0"
        p_ref = pending.get("ref")
        if p_ref is not None and p_ref.returncode is None and p_ref.stdin is not None and not p_ref.stdin.closed:
            _wait(p_ref, _REF, stdin=line)
        else:  # its input went to a failed reuse check, or Python was to write the ref
            _run(git, _REF, repo, stdin=line)
    if sinfo.get("store_id"):
        plan.write_state(info["gitdir"], sinfo["store_id"], sinfo["root"],
                         {"tree": tree, "base": info["base"], "commit": commit, "ref": ref})
    return commit


def _py_commit(gitdir: str, py: tuple[dict[str, Any], str, str], tree: str, parents: list[str], msg: str,
               ref: str) -> str | None:
    """The snapshot commit written from Python (:func:`gw.write_commit`, :func:`gw.create_ref`) with
    the identity git gave the last one (``py``: :func:`gw.py_settings`, author, committer), flushed to
    disk as git would; ``None`` when it could not be written (then git writes it: a ref that exists fails
    there too)."""
    sets, author, committer = py
    when = gw.now_stamp()
    try:
        body = gw.commit_body(tree, parents, f"{author} {when}", f"{committer} {when}", msg)
        commit = gw.write_commit(gitdir, sets["fmt"], body, sync=sets["sync_object"])
        gw.create_ref(gitdir, ref, commit, sync=sets["sync_ref"])
    except OSError:
        return None
    return commit


def _reuse(info: dict[str, Any], sinfo: dict[str, Any], tree: str, pending: dict[str, Any]) -> tuple[str, str] | None:
    """(commit, ref) of this store's previous snapshot of the repository when its tree and base are the
    same and its ref still points at it (checked by the waiting ``update-ref``), else ``None``."""
    last = plan.last_snapshot(info["gitdir"], str(sinfo.get("store_id") or ""), tree, info["base"])
    if last is None:
        return None
    commit, ref = last
    if "ref" not in pending:  # Python writes the refs here: read it
        if gw.read_ref(info["gitdir"], ref) != commit:
            return None
    else:
        try:
            _wait(pending["ref"], _REF, stdin=b"verify " + ref.encode() + b"\0" + commit.encode() + b"\0")
        except _GitFailed:
            return None  # the ref was removed or moved: a new snapshot is made
    info["reused"] = True
    return commit, ref


def _reset_to_head(git: str, repo: str, env: dict[str, str], base: str | None, paths: list[bytes],
                   drop: list[bytes] | None = None) -> None:
    """Give ``paths`` their HEAD version in the private index (or drop them if not in HEAD); drop ``drop``."""
    in_head: dict[bytes, bytes] = {}
    if base and paths:
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
    lines += [b"0 " + _NULL_SHA.encode() + b"\t" + pth for pth in drop or ()]
    _run(git, ["update-index", "-z", "--index-info"], repo, env, stdin=b"\0".join(lines) + b"\0")


def _fallback_tree(git: str, info: dict[str, Any], env: dict[str, str], tmp: str, skipped: list[bytes]) -> str:
    repo = info["repo"]
    user_index = os.environ.get("GIT_INDEX_FILE") or os.path.join(info["gitdir"], "index")
    _unlink(tmp)  # (it may be a hard link to the warm index: never written in place)
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
    if not pre.startswith("refs/") or bad_ref(pre[5:]):
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
    if not isinstance(ref, str) or not ref.startswith(REF_NAMESPACE) or bad_ref(ref[5:]):
        raise GitError(f"invalid ref={ref!r}: allowed are refs under {REF_NAMESPACE!r} (lumo-hydra's own)")
    args = ["update-ref", "--no-deref", "-d", ref, *([] if old_sha is None else [_check_rev(old_sha, "old_sha")])]
    git, r = _ready(repo, f"delete the ref {ref!r}")
    p = _run(git, args, r, check=False)
    if p.returncode != 0:
        raise GitError(f"cannot delete ref={ref!r} in {r!r}: {_err(p)}")
