"""What a code snapshot leaves out and whom it belongs to; no git process runs here.

- Secret-looking files (:data:`DEFAULT_SECRET_FILES`, ``$LUMO_SECRET_FILES``) are left out of a
  snapshot unless git tracks them (issue 11, point 8).
- Hydra's output folders of the app (its run and sweep dirs, and ``outputs/`` and ``multirun/`` when
  they hold ``.hydra/`` folders) are left out (issue 12, point 3).
- A snapshot taken for a store carries the store id in its ref name (``refs/lumo/snapshots/<store id>/...``)
  and in its commit message (``Lumo-Store:`` and ``Lumo-Owner:`` trailers), and the repository keeps a small
  state file per store (``<git common dir>/lumo/stores/<store id>.json``: the store root and the last
  snapshot), which is both the proof that this store wrote snapshots there and what lets the next run with
  the same tree reuse the snapshot (issue 12, point 4). ``lumo-hydra gc`` only acts on such refs (docs/store.md).
- The private index files of :mod:`lumo_hydra.record.gitsnap` (``<git dir>/lumo/index``).
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import uuid
import zlib
from typing import Any

from lumo_hydra.errors import GitError, LumoValueError
from lumo_hydra.store.layout import SNAPSHOT_REF_PREFIX

__all__ = ["DEFAULT_SECRET_FILES", "ENV_SECRET_FILES", "secret_patterns", "secret_match", "output_dirs",
           "holds_hydra_outputs", "trailers", "parse_trailers", "common_dir", "state_file", "read_state",
           "write_state"]

#: untracked files whose name (any folder) matches one of these (case-insensitive) are left out of snapshots
DEFAULT_SECRET_FILES = (".env", ".env.*", "*.env", ".envrc", "*.pem", "*.key", "id_rsa*", "id_dsa*",
                        "id_ecdsa*", "id_ed25519*", ".netrc", "_netrc", "*.p12", "*.pfx", ".pgpass",
                        ".git-credentials", "credentials", "credentials.*", "*-credentials.json",
                        "*_credentials.json", ".pypirc", ".npmrc", "*.keystore", "*.jks")
#: ``,``-separated patterns replacing the default list; a leading ``+`` adds them to it; empty: none
ENV_SECRET_FILES = "LUMO_SECRET_FILES"
#: the folders Hydra writes by default, relative to the launch folder
HYDRA_DEFAULT_DIRS = ("outputs", "multirun")
STORE_TRAILER = "Lumo-Store"
OWNER_TRAILER = "Lumo-Owner"
# Plain string checks: every snapshot runs them, and compiling regexes cost ~0.6 ms per process (issue 18);
# ``_BAD_REF`` (the same test as a pattern, for other modules) is compiled when asked for (``__getattr__``).
_BAD_REF_PATTERN = r"(^[./])|(/\.)|(\.\.)|(@\{)|([\x00-\x20\x7f~^:?*\[\\])|(\.lock$)|(\.lock/)|(//)|([/.]$)|(^@$)"
_BAD_REF_CHARS = frozenset(map(chr, range(0x21))) | frozenset("\x7f~^:?*[\\")
_HEX = frozenset("0123456789abcdef")
_HOST_OK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_TRAILER_PATTERN = r"^(Lumo-[A-Za-z]+): *(\S.*?)\s*$"


def bad_ref(name: str) -> bool:
    """Whether ``name`` (after ``refs/``) breaks git's ref-name rules as ``_BAD_REF``: a leading ``.``/``/``, ``/.``,
    ``..``, ``@{``, a control character, space or ``~^:?*[\\``, ``.lock`` ending a part, ``//``, a trailing ``/``/``.``, ``@``."""
    return (name.startswith((".", "/")) or name.endswith((".lock", "/", ".")) or name == "@"
            or "/." in name or ".." in name or "@{" in name or ".lock/" in name or "//" in name
            or not _BAD_REF_CHARS.isdisjoint(name))


def is_sha(value: Any) -> bool:
    """Whether ``value`` is a full lower-case object name (40 or 64 hex digits)."""
    return isinstance(value, str) and len(value) in (40, 64) and _HEX.issuperset(value)


def __getattr__(name: str) -> Any:
    if name == "_BAD_REF":
        globals()[name] = pattern = re.compile(_BAD_REF_PATTERN)
        return pattern
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- secrets ---------------------------------------------------------------------------------------
def secret_patterns(patterns: Any = None) -> tuple[str, ...]:
    """The file-name patterns of secrets: ``patterns`` if given, else ``$LUMO_SECRET_FILES`` (see
    :data:`ENV_SECRET_FILES`), else :data:`DEFAULT_SECRET_FILES`."""
    if patterns is not None:
        return tuple(str(p) for p in patterns if str(p))
    env = os.environ.get(ENV_SECRET_FILES)
    if env is None:
        return DEFAULT_SECRET_FILES
    extra = env.startswith("+")
    given = tuple(p.strip() for p in env.lstrip("+").split(",") if p.strip())
    return DEFAULT_SECRET_FILES + given if extra else given


def secret_match(rel: str, patterns: tuple[str, ...]) -> str | None:
    """The pattern that file ``rel`` (``/``-separated) matches by its name, or ``None``."""
    name = rel.rstrip("/").rsplit("/", 1)[-1].lower()
    for pat in patterns:
        if fnmatch.fnmatchcase(name, pat.lower()):
            return pat
    return None


def secret_pathspecs(patterns: tuple[str, ...]) -> list[str]:
    """Pathspecs listing the patterns' files in every folder (for ``git ls-files``; plain wildcards, where
    ``*`` also matches ``/``, are the cheapest to match; :func:`secret_match` then judges each name)."""
    out: list[str] = []
    for p in patterns:
        if "/" not in p:
            out += [p, p if p.startswith("*") else "*/" + p]
    return list(dict.fromkeys(out))


# -- Hydra's output folders ------------------------------------------------------------------------
def holds_hydra_outputs(folder: str, depth: int = 4, budget: int = 64) -> bool:
    """Whether ``folder`` has a ``.hydra/`` folder at most ``depth`` levels down. Newest-named folders
    first (Hydra's are dated), at most ``budget`` folders looked into: a large folder of other files
    costs a bounded number of ``scandir`` calls."""
    level = [folder]
    for _ in range(depth + 1):
        nxt: list[str] = []
        for d in level:
            if budget <= 0:
                return False
            budget -= 1
            try:
                with os.scandir(d) as it:
                    subs = sorted((e.name for e in it if e.is_dir(follow_symlinks=False)), reverse=True)
            except OSError:
                continue
            if ".hydra" in subs:
                return True
            nxt += [os.path.join(d, n) for n in subs[:8]]
        level = nxt
    return False


def _rel_inside(path: str, repo: str) -> str | None:
    """``path`` relative to ``repo`` (``/``-separated) when strictly inside it, else ``None``."""
    try:
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(repo))
    except ValueError:
        return None
    if rel in (".", "") or rel == ".." or rel.startswith(".." + os.sep) or rel.split(os.sep)[0] == ".git":
        return None
    return rel.replace(os.sep, "/")


def output_dirs(repo: str, cwd: str, given: Any = (), memory: str | None = None) -> list[str]:
    """The folders (relative to ``repo``, ``/``-separated, sorted) a snapshot leaves out as Hydra's outputs.

    ``given``: folders the caller knows Hydra writes for this app (absolute or relative to ``cwd``: the run
    and sweep dirs, the fixed part of their patterns); they are left out as given, and remembered in the file
    ``memory`` (``<git dir>/lumo/hydra-dirs.json``), so that later snapshots (with other dirs, or outside Hydra)
    leave them out too while they hold a ``.hydra/`` folder. The default ``outputs/`` and ``multirun/`` (beside
    ``cwd`` and at the repository's top) likewise, when they hold a ``.hydra/`` folder. Never the repository
    itself, nor a folder holding ``cwd``.
    """
    found: set[str] = set()
    new = {r for r in (_rel_inside(os.path.join(cwd, g), repo) for g in (given or ()) if g) if r}
    known = _read_memory(memory)
    if memory and not new <= known:
        _write_memory(memory, known | new)
    cands = [(os.path.join(repo, r), r not in new) for r in new | known]
    cands += [(os.path.join(base, d), True) for base in {cwd, repo} for d in HYDRA_DEFAULT_DIRS]
    real_cwd = os.path.realpath(cwd)
    for path, check in cands:
        rel = _rel_inside(path, repo)
        if rel is None or not os.path.isdir(path) or (check and not holds_hydra_outputs(path)):
            continue
        real = os.path.realpath(path)
        if real_cwd == real or real_cwd.startswith(real + os.sep):
            continue  # the code is in there: never leave it out
        found.add(rel)
    # a folder inside another one left out is already covered
    return sorted(r for r in found if not any(r.startswith(o + "/") for o in found if o != r))


def _read_memory(path: str | None) -> set[str]:
    if not path:
        return set()
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError):
        return set()
    return {str(x) for x in data if isinstance(x, str) and x and ".." not in x.split("/")} if isinstance(data, list) else set()


def _write_memory(path: str, dirs: set[str]) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".hydra-dirs.", suffix=".tmp", dir=os.path.dirname(path))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(sorted(dirs)[-200:], f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only git dir: nothing remembered


# -- ref names and who owns a snapshot ---------------------------------------------------------------------------
def _check_ref(ref_prefix: str, name: str) -> str:
    if not ref_prefix.startswith("refs/") or bad_ref(ref_prefix[5:]) or ref_prefix.endswith("/"):
        raise LumoValueError(f"invalid ref_prefix {ref_prefix!r}: it must start with 'refs/' and be a valid "
                             "git ref name (no spaces, '..', '~^:?*[\\', trailing '/' or '.lock')")
    if not name or bad_ref(name):
        raise LumoValueError(f"invalid snapshot name {name!r}: allowed are git ref names without spaces, "
                             "'..', '~^:?*[\\', leading '.' or '/', trailing '/', '.' or '.lock'")
    return f"{ref_prefix}/{name}"


def _unique_name() -> str:
    host = "".join(c if c in _HOST_OK else "-" for c in socket.gethostname())[:32] or "host"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def store_ref(ref_prefix: str, name: str | None, store: Any, owner: str | None) -> tuple[str, dict[str, Any]]:
    """The ref to write and the store part of the snapshot (``store_id``, ``root``, ``owner``)."""
    sinfo: dict[str, Any] = {}
    if store is not None:
        from lumo_hydra.store.layout import StoreLayout, ensure_store_id

        root = str(StoreLayout(store).root)
        try:
            sinfo = {"store_id": ensure_store_id(root), "root": root, "owner": owner}
        except OSError as e:
            sinfo = {"store_id": None, "why": f"no store id ({e}); the snapshot is not collected by gc"}
    base = name if name is not None else _unique_name()
    if sinfo.get("store_id"):
        _check_ref(ref_prefix, base)
        return _check_ref(ref_prefix, f"{sinfo['store_id']}/{base}"), sinfo
    return _check_ref(ref_prefix, base), sinfo


def _check_rev(value: Any, what: str) -> str:
    """A commit or ref given by a caller; a leading '-' would be read by git as an option."""
    if not isinstance(value, str) or not value or value.startswith("-") or "\0" in value or "\n" in value:
        raise GitError(f"invalid {what}={value!r}: allowed is a commit sha or a ref name (not starting with '-')")
    return value


def trailers(store_id: str, owner: str | None) -> str:
    """The commit-message trailers naming the snapshot's store (and the store folder using it)."""
    lines = [f"{STORE_TRAILER}: {store_id}"]
    if owner:
        lines.append(f"{OWNER_TRAILER}: {owner}")
    return "\n".join(lines)


def parse_trailers(message: str) -> dict[str, str]:
    """``{"Lumo-Store": id, "Lumo-Owner": folder}`` of a snapshot's commit message (last paragraph only)."""
    last = message.strip().rsplit("\n\n", 1)[-1]
    return dict(re.findall(_TRAILER_PATTERN, last, re.M))


def common_dir(gitdir: str) -> str:
    """The repository's common git dir (a linked worktree's ``commondir``), where refs live."""
    try:
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as f:
            rel = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return gitdir
    return os.path.normpath(os.path.join(gitdir, rel)) if rel else gitdir


def state_file(gitdir: str, store_id: str) -> str:
    """``<common dir>/lumo/stores/<store id>.json``: the store's state in that repository."""
    return os.path.join(common_dir(gitdir), "lumo", "stores", f"{store_id}.json")


def read_state(gitdir: str, store_id: str) -> dict[str, Any] | None:
    """The store's state file in the repository of ``gitdir`` (``None``: this store never wrote there)."""
    try:
        with open(state_file(gitdir, store_id), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def write_state(gitdir: str, store_id: str, root: str, last: dict[str, Any]) -> None:
    """Record the store's last snapshot in the repository (temp file, rename; last writer wins)."""
    path = state_file(gitdir, store_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"store_id": store_id, "root": root, "last": last, "time": time.time()}, f)
        os.replace(tmp, path)
    except BaseException:
        unlink(tmp)
        raise


def last_snapshot(gitdir: str, sid: str, tree: str, base: str | None) -> tuple[str, str] | None:
    """(commit, ref) of store ``sid``'s last snapshot of the repository (its state file) when it has this
    ``tree`` and ``base`` and names a well-formed commit and one of the store's refs, else ``None``."""
    state = read_state(gitdir, sid) if sid else None
    last = state.get("last") if state else None
    if not isinstance(last, dict) or last.get("tree") != tree or last.get("base") != base:
        return None
    commit, ref = last.get("commit"), last.get("ref")
    if not (isinstance(commit, str) and isinstance(ref, str) and ref.startswith(SNAPSHOT_REF_PREFIX + "/" + sid + "/")
            and is_sha(commit)) or bad_ref(ref[5:]):
        return None
    return commit, ref


# -- git output parsing and the private index files of gitsnap ------------------------------------
def changed_paths(out: bytes) -> list[bytes]:
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


def guess_repo(path: str) -> tuple[str, str] | None:
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


def unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_stale(lumo_dir: str, age: float = 3600.0) -> None:
    """Private index files left by killed snapshots (older than ``age`` seconds) are removed."""
    now = time.time()
    try:
        with os.scandir(lumo_dir) as it:
            for e in it:
                # the creation time is in the name: copy2 gives the file the warm index's mtime
                parts = e.name.split(".")
                if (len(parts) >= 4 and parts[0] == "index" and parts[-1] == "tmp" and parts[1].isdigit()
                        and now - int(parts[1]) > age):
                    unlink(e.path)
    except OSError:
        pass


def clean_key(secrets: tuple[str, ...], dirs: list[str]) -> str:
    """What a clean private index was cleaned for: the secret patterns and the output folders."""
    return json.dumps([list(secrets), list(dirs)])


def _mark_path(lumo_dir: str) -> str:
    return os.path.join(lumo_dir, "index.clean")


def _same_file(st: os.stat_result, mark: Any) -> bool:
    return isinstance(mark, list) and mark == [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def file_id(path: str) -> list[int] | None:
    """``[device, inode, size, mtime]`` of ``path`` (what a mark names), ``None`` if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def mark_clean(warm: str, tmp: str, key: str | None, tree: str | None = None) -> None:
    """Record, before ``tmp`` becomes the warm index ``warm``, that it holds no secret-looking entry and no
    entry in the output folders of ``key`` (``None``: not known to) and that ``tree`` is its tree: the file is
    named by its device, inode, size and mtime, so a mark another snapshot wrote for its own file never vouches
    for this one (last writer wins: a mark naming another file than the warm index is ignored)."""
    st = os.stat(tmp)
    mark = _mark_path(os.path.dirname(warm))
    # named like the private index files, so that remove_stale also removes one left by a killed snapshot
    part = os.path.join(os.path.dirname(warm), f"index.{int(time.time())}.{os.getpid()}-{uuid.uuid4().hex}.clean.tmp")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, json.dumps({"key": key, "file": [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns],
                                     "tree": tree}).encode())
        finally:
            os.close(fd)
        os.replace(part, mark)
    except BaseException:
        unlink(part)
        raise


def _seed_mark(lumo_dir: str, st: os.stat_result, key: str | None) -> tuple[bool, str | None]:
    """(marked clean for ``key``, its tree or ``None``) of the index file ``st`` by its mark."""
    try:
        with open(_mark_path(lumo_dir), encoding="utf-8") as f:
            mark = json.load(f)
    except (OSError, ValueError, RecursionError):
        return False, None
    if not isinstance(mark, dict) or not _same_file(st, mark.get("file")):
        return False, None
    tree = mark.get("tree")
    return key is not None and mark.get("key") == key, tree if is_sha(tree) else None


def _copy_warm(warm: str, tmp: str, key: str | None) -> tuple[bool, str | None]:
    """Seed ``tmp`` with the warm index: a hard link (git writes an index only to a lock file renamed over it: the
    warm file never changes through ``tmp``; an unchanged seed costs no copy, and removing it frees nothing), else
    a copy (mode and times kept). Whether it is marked clean for ``key``, and its tree if known (issue 18)."""
    try:
        os.unlink(tmp)
        os.link(warm, tmp)
        st = os.stat(tmp)
    except OSError:
        unlink(tmp)  # nothing linked, or a link that cannot be read: a copy, into a new file
    else:
        return _seed_mark(os.path.dirname(warm), st, key)
    with open(warm, "rb") as src:
        st = os.fstat(src.fileno())
        with open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    return _seed_mark(os.path.dirname(warm), st, key)


def prepare_index(gitdir: str, user_index: str, key: str | None = None) -> tuple[str, str | None, bool, str | None]:
    """A private index file seeded from the warm index (or the user's index): (tmp, warm, clean, tree), ``clean``
    when the seed is a warm index marked clean for ``key``, ``tree`` its tree when marked (:func:`mark_clean`)."""
    lumo_dir = os.path.join(gitdir, "lumo")
    warm: str | None = os.path.join(lumo_dir, "index")
    try:
        os.makedirs(lumo_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"index.{int(time.time())}.", suffix=".tmp", dir=lumo_dir)
        os.close(fd)
        remove_stale(lumo_dir)
    except OSError:  # read-only git dir: no warm index, use a temp folder
        warm = None
        fd, tmp = tempfile.mkstemp(prefix="lumo-index.", suffix=".tmp")
        os.close(fd)
    # the mtime is kept: git's racy-entry detection compares entry times with the index file's time.
    if warm:
        try:
            return (tmp, warm, *_copy_warm(warm, tmp, key))
        except OSError:
            pass
    try:
        shutil.copy2(user_index, tmp)
        return tmp, warm, False, None
    except OSError:
        pass
    unlink(tmp)  # no index at all yet (fresh repository): git creates it
    return tmp, warm, False, None


def same_repo(guess: tuple[str, str], info: dict[str, Any]) -> bool:
    """Whether the guessed (toplevel, git dir) are the ones ``rev-parse`` found."""
    r = os.path.realpath
    return bool(r(guess[0]) == r(info["repo"]) and r(guess[1]) == r(info["gitdir"]))


def keep_warm(tmp: str, warm: str, key: str, clean: bool, tree: str | None = None) -> None:
    """``tmp`` becomes the warm index for the next snapshot (last writer wins: all are valid), marked clean
    for ``key`` when ``clean`` (it holds no secret-looking entry and no entry in the output folders: the
    next snapshot then needs no ``ls-files`` of them) and with its ``tree`` (for a next one changing nothing)."""
    if clean or tree:
        mark_clean(warm, tmp, key if clean else None, tree)
    else:
        unlink(_mark_path(os.path.dirname(warm)))
    os.replace(tmp, warm)
    unlink(tmp)  # still there when it was a hard link to the warm index itself: the rename did nothing


def note(path: str, text: str) -> None:
    """Write a small note file (best effort: a read-only git dir keeps none)."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        pass


# -- what `rev-parse` would say, without starting it (the plain case) ----------------------------------
def _odd_config(text: str) -> bool:
    """Whether a git config text may have ``[include...``, ``worktree =`` or ``bare = true|yes|on|1`` (any case;
    looked for with every blank taken out, so it errs only towards "odd"): :func:`plain_repo` asks ``rev-parse``."""
    t = "".join(text.lower().split())
    return "[include" in t or "worktree=" in t or any(f"bare={w}" in t for w in ("true", "yes", "on", "1"))


def plain_repo(path: str, top: str, gitdir: str) -> bool:
    """Whether git, started in ``top``, finds the repository :func:`guess_repo` found from ``path``: a
    valid git dir (``HEAD``, objects and refs), no ``core.worktree``, ``core.bare`` or include in its
    config, and no file-system boundary between ``path`` and ``top`` (git stops there). Otherwise the
    caller asks ``rev-parse``."""
    common = common_dir(gitdir)
    if not (os.path.isfile(os.path.join(gitdir, "HEAD")) and os.path.isdir(os.path.join(common, "objects"))
            and os.path.isdir(os.path.join(common, "refs"))):
        return False
    for cfg in (os.path.join(common, "config"), os.path.join(gitdir, "config.worktree")):
        try:
            with open(cfg, encoding="utf-8", errors="replace") as f:
                if _odd_config(f.read()):
                    return False
        except FileNotFoundError:
            continue
        except OSError:
            return False
    d, real_top = os.path.realpath(path), os.path.realpath(top)
    try:
        dev = os.stat(d).st_dev
        while d != real_top and os.path.dirname(d) != d:
            d = os.path.dirname(d)
            if os.stat(d).st_dev != dev:
                return False
    except OSError:
        return False
    return d == real_top


def branch_header(out: bytes) -> tuple[str | None, str | None, bool]:
    """(HEAD commit, branch, found) from the ``# branch.oid``/``# branch.head`` records of
    ``status --porcelain=v2 --branch -z``; no commit when unborn, no branch when detached."""
    oid = head = None
    for rec in out.split(b"\0"):
        if rec.startswith(b"# branch.oid "):
            oid = rec[13:].decode("ascii", "replace")
        elif rec.startswith(b"# branch.head "):
            head = os.fsdecode(rec[14:])
        elif not rec.startswith(b"# "):
            break  # the headers come first
    if oid is None or head is None or (oid != "(initial)" and not is_sha(oid)):
        return None, None, False
    return (None if oid == "(initial)" else oid), (None if head == "(detached)" else head), True


def head_tree(gitdir: str, commit: str) -> str | None:
    """The tree of ``commit`` without a git process: remembered (``<git dir>/lumo/head-tree``: a commit's
    tree never changes) or read from its loose object; ``None`` when packed (ask git, then
    :func:`remember_head_tree`) or when replace refs could make git answer otherwise."""
    try:
        with open(os.path.join(gitdir, "lumo", "head-tree"), encoding="utf-8") as f:
            known = f.read().split()
        if len(known) == 2 and known[0] == commit and is_sha(known[1]):
            return known[1]
    except (OSError, ValueError):
        pass
    common = common_dir(gitdir)
    if os.environ.get("GIT_OBJECT_DIRECTORY") or os.path.isdir(os.path.join(common, "refs", "replace")):
        return None
    try:
        with open(os.path.join(common, "objects", commit[:2], commit[2:]), "rb") as f:
            head = zlib.decompressobj().decompress(f.read(4096), 128)
    except (OSError, zlib.error):
        return None
    return _tree_of_commit_object(head)


def _tree_of_commit_object(head: bytes) -> str | None:
    """The tree named by a loose commit object's start (``commit <size>\\0tree <sha>\\n``), else ``None``."""
    nul = head.find(b"\0")
    if not head.startswith(b"commit ") or nul < 0 or not head[7:nul].isdigit():
        return None
    end = head.find(b"\n", nul)
    if head[nul + 1:nul + 6] != b"tree " or end < 0:
        return None
    tree = head[nul + 6:end].decode("latin-1")
    return tree if is_sha(tree) else None


def remember_head_tree(gitdir: str, commit: str, tree: str) -> None:
    """Remember the tree of ``commit`` for :func:`head_tree` (best effort)."""
    if is_sha(commit) and is_sha(tree):
        note(os.path.join(gitdir, "lumo", "head-tree"), f"{commit} {tree}\n")

