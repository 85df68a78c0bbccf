"""Writing a snapshot's commit object and its ref from Python in a plain repository (split from
:mod:`lumo_hydra.record.snapplan`, which re-exports these names): git's config read as git reads it, the
fsync settings, the identity git gave the last snapshot commit, loose objects (sha1/sha256) and refs
written with git's lock protocol."""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
import zlib
from typing import Any

from lumo_hydra.record.snapplan import bad_ref, common_dir, is_sha, unlink

# config lines are read with string steps, not regular expressions: every snapshot reads the config
# files, and compiling the patterns cost every recorded process ~0.3 ms (issue 18)
_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_KEY_CHARS = _LETTERS | frozenset("0123456789-")
_SECTION_CHARS = _KEY_CHARS | frozenset(".")
_PY_ENV_OFF = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE",
               "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE", "GIT_QUARANTINE_PATH", "GIT_REF_PARANOIA",
               "GIT_TEST_DEFAULT_HASH")
_IDENT_ENV = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL", "HOME",
              "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM")
_IDENT_FILE = "ident"


def _config_value(raw: str) -> str | None:
    """A config value as git reads it: quotes removed, ``\\``, ``\\"``, ``\\n``, ``\\t``, ``\\b``
    unescaped, a ``#``/``;`` outside quotes ends it, outer blanks dropped; ``None`` for a line continued
    on the next one or a bad escape."""
    out: list[str] = []
    quoted = False
    pending = ""  # blanks kept only when something follows them
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            i += 1
            if i >= len(raw):
                return None  # continued on the next line
            esc = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "b": "\b"}.get(raw[i])
            if esc is None:
                return None
            out.append(pending + esc)
            pending = ""
        elif c == '"':
            quoted = not quoted
            out.append(pending)
            pending = ""
        elif not quoted and c in "#;":
            break
        elif not quoted and c in " \t":
            pending += c if out else ""
        else:
            out.append(pending + c)
            pending = ""
        i += 1
    return None if quoted else "".join(out)


def _skip_blanks(line: str, i: int) -> int:
    while i < len(line) and line[i].isspace():
        i += 1
    return i


def _section(line: str) -> tuple[str, str | None] | None:
    """``(name, subsection as written or None)`` of a stripped ``[name "sub"]`` line (a comment may follow),
    else ``None``."""
    n = len(line)
    i = _skip_blanks(line, 1)
    j = i
    while j < n and line[j] in _SECTION_CHARS:
        j += 1
    if j == i:
        return None
    k = _skip_blanks(line, j)
    sub = None
    if k < n and line[k] == '"':
        start = k = k + 1
        while k < n and line[k] != '"':
            k += 2 if line[k] == "\\" else 1
        if k >= n:
            return None
        sub = line[start:k]
        k = _skip_blanks(line, k + 1)
    if k >= n or line[k] != "]":
        return None
    k = _skip_blanks(line, k + 1)
    return (line[i:j], sub) if k == n or line[k] in "#;" else None


def _keyval(line: str) -> tuple[str, str | None] | None:
    """``(key, raw value or None)`` of a stripped ``key`` / ``key = value`` line, else ``None``."""
    if not line or line[0] not in _LETTERS:
        return None
    j = 1
    while j < len(line) and line[j] in _KEY_CHARS:
        j += 1
    k = _skip_blanks(line, j)
    if k == len(line):
        return line[:j], None
    return (line[:j], line[k + 1:]) if line[k] == "=" else None


def config_values(text: str) -> dict[str, list[str]] | None:
    """``{"section.key": [values]}`` (section and key lower-case, a subsection kept as written) of a git
    config file's text; ``None`` when a line is beyond this small reader (continued lines, a key on the
    section's line): the caller then asks git."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            sec = _section(line)
            if sec is None:
                return None
            section = sec[0].lower() + (f".{sec[1]}" if sec[1] is not None else "")
            continue
        kv = _keyval(line)
        if kv is None or not section:
            return None
        value = _config_value(kv[1]) if kv[1] is not None else "true"
        if value is None:
            return None
        out.setdefault(f"{section}.{kv[0].lower()}", []).append(value)
    return out


_FSYNC_WORDS = {"loose-object": {"loose-object"}, "pack": {"pack"}, "pack-metadata": {"pack-metadata"},
                "commit-graph": {"commit-graph"}, "index": {"index"}, "reference": {"reference"},
                "objects": {"loose-object", "pack"}, "derived-metadata": {"pack-metadata", "commit-graph"},
                "committed": {"loose-object", "pack", "reference"},
                "added": {"loose-object", "pack", "reference", "index"},
                "all": {"loose-object", "pack", "pack-metadata", "commit-graph", "index", "reference"}}
_FSYNC_DEFAULT = {"pack", "pack-metadata", "commit-graph"}  # git's default: no loose object, no reference


def fsync_components(cfg: dict[str, list[str]]) -> set[str]:
    """What git flushes to disk (``core.fsync``, and the older ``core.fsyncObjectFiles``) by this config."""
    comps = set(_FSYNC_DEFAULT)
    for value in cfg.get("core.fsync", []):
        comps = set(_FSYNC_DEFAULT)  # each value starts from the default again
        for word in (w.strip().lower() for w in value.split(",")):
            if word == "none":
                comps = set()
            elif word.startswith("-"):
                comps -= _FSYNC_WORDS.get(word[1:], set())
            else:
                comps |= _FSYNC_WORDS.get(word, set())
    if cfg.get("core.fsyncobjectfiles", ["false"])[-1].lower() in ("true", "yes", "on", "1", "batch"):
        comps.add("loose-object")
    return comps


def _config_files(git: str) -> list[str]:
    """The config files git reads besides the repository's (system, global), in git's order."""
    env = os.environ
    files = []
    if not env.get("GIT_CONFIG_NOSYSTEM"):
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(git)))
        files += [env["GIT_CONFIG_SYSTEM"]] if env.get("GIT_CONFIG_SYSTEM") else \
            ["/etc/gitconfig", os.path.join(prefix, "etc", "gitconfig")]
    if env.get("GIT_CONFIG_GLOBAL"):
        files.append(env["GIT_CONFIG_GLOBAL"])
    else:
        home = env.get("HOME", "")
        xdg = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        files += [os.path.join(xdg, "git", "config"), os.path.join(home, ".gitconfig")]
    return files


def py_settings(git: str, gitdir: str) -> dict[str, Any] | None:
    """When the snapshot commit and its ref may be written from Python in this repository (checked after
    :func:`plain_repo`): ``{"fmt": "sha1"|"sha256", "key", "sync_object", "sync_ref"}``, else ``None``.

    Every config file git reads is read here (system, global, the repository's): none may include others
    or hold lines beyond :func:`config_values`, and none of ``git -c`` (``GIT_CONFIG_PARAMETERS``,
    ``GIT_CONFIG_COUNT``) nor the variables that move objects or refs (``GIT_OBJECT_DIRECTORY``,
    ``GIT_NAMESPACE``, ...) or set commit dates. The repository: format 0 or 1 with no extension but
    ``objectFormat`` and ``worktreeConfig``, files refs (no reftable), no ``core.sharedRepository`` (file
    modes), no ``core.logAllRefUpdates=always`` (a reflog to write). ``key``: what the identity git gives a
    commit depends on (the identity variables, the files' contents; :func:`cached_ident`). ``sync_*``: the
    object and the ref are flushed to disk when git would flush them (``core.fsync``: by default neither)."""
    import hashlib

    if any(k in os.environ for k in _PY_ENV_OFF) or os.environ.get("GIT_CONFIG_PARAMETERS") \
            or os.environ.get("GIT_CONFIG_COUNT"):
        return None
    common = common_dir(gitdir)
    if os.path.exists(os.path.join(common, "reftable")):
        return None
    h = hashlib.sha1()
    for k in _IDENT_ENV:
        h.update(f"{k}={os.environ.get(k)}\0".encode("utf-8", "surrogateescape"))
    cfg: dict[str, list[str]] = {}
    local: dict[str, list[str]] = {}
    repo_files = [os.path.join(common, "config"), os.path.join(gitdir, "config.worktree")]
    for path in [*_config_files(git), *repo_files]:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            h.update(path.encode("utf-8", "surrogateescape") + b"\0-\0")
            continue
        except OSError:
            return None
        h.update(path.encode("utf-8", "surrogateescape") + b"\0+" + data + b"\0")
        try:
            values = config_values(data.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        if values is None or any(k.startswith(("include.", "includeif.")) for k in values):
            return None
        for k, v in values.items():
            cfg.setdefault(k, []).extend(v)
            if path == repo_files[0]:
                local[k] = v
    version = local.get("core.repositoryformatversion", ["0"])[-1]
    ext = {k for k in local if k.startswith("extensions.")}
    fmt = local.get("extensions.objectformat", ["sha1"])[-1].lower()
    if version not in ("0", "1") or ext - {"extensions.objectformat", "extensions.worktreeconfig"} \
            or fmt not in ("sha1", "sha256") or (fmt == "sha256" and version != "1"):
        return None
    if "core.sharedrepository" in cfg or cfg.get("core.logallrefupdates", [""])[-1].lower() == "always":
        return None
    sync = fsync_components(cfg)
    return {"fmt": fmt, "key": h.hexdigest(), "sync_object": "loose-object" in sync, "sync_ref": "reference" in sync}


def cached_ident(gitdir: str, key: str | None) -> tuple[str, str] | None:
    """(author, committer) ``"Name <email>"`` git gave this repository's last snapshot commit, when what
    they depend on (``key``, :func:`py_settings`) is unchanged since; else ``None``."""
    if key is None:
        return None
    try:
        with open(os.path.join(gitdir, "lumo", _IDENT_FILE), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    a, c = data.get("author"), data.get("committer")
    ok = all(_ident_ok(x) for x in (a, c))
    return (a, c) if ok else None  # type: ignore[return-value]


def _ident_ok(x: Any) -> bool:
    """Whether ``x`` is ``"Name <email>"``: one ``<``, then a ``>`` at the end, no newline or NUL."""
    if not isinstance(x, str) or not x.endswith(">") or "\n" in x or "\0" in x:
        return False
    lt = x.find("<")
    return lt >= 0 and "<" not in x[lt + 1:] and ">" not in x[:-1]


def commit_body(tree: str, parents: list[str], author: str, committer: str, message: str) -> bytes:
    """The body of a commit object as `git commit-tree -m message` writes it (``author``/``committer``
    with their time: ``"Name <email> 1700000000 +0100"``)."""
    head = [f"tree {tree}", *(f"parent {p}" for p in parents), f"author {author}", f"committer {committer}"]
    msg = message if message.endswith("\n") else message + "\n"
    return ("\n".join(head) + "\n\n" + msg).encode("utf-8")


def now_stamp() -> str:
    """``"<unix time> <+hhmm>"`` of now in the local time zone, as git writes it."""
    t = time.time()
    off = time.localtime(t).tm_gmtoff // 60
    sign = "-" if off < 0 else "+"
    return f"{int(t)} {sign}{abs(off) // 60:02d}{abs(off) % 60:02d}"


def _object_path(gitdir: str, sha: str) -> str:
    return os.path.join(common_dir(gitdir), "objects", sha[:2], sha[2:])


def read_loose(gitdir: str, sha: str) -> tuple[bytes, bytes] | None:
    """(type, body) of the loose object ``sha``, or ``None`` (packed, missing, damaged)."""
    try:
        with open(_object_path(gitdir, sha), "rb") as f:
            raw = zlib.decompress(f.read())
    except (OSError, zlib.error):
        return None
    head, sep, body = raw.partition(b"\0")
    typ, _, size = head.partition(b" ")
    return (typ, body) if sep and size.isdigit() and int(size) == len(body) else None


def learn_ident(gitdir: str, key: str | None, commit: str, tree: str, parents: list[str], message: str) -> None:
    """Remember the identity of commit ``commit`` that git just wrote, when its object is exactly what
    :func:`commit_body` renders from it (no other header, the same message): later snapshots then write
    the commit from Python (:func:`cached_ident`). Best effort."""
    if key is None:
        return
    obj = read_loose(gitdir, commit)
    if obj is None or obj[0] != b"commit":
        return
    text = obj[1].decode("utf-8", "replace")
    lines = dict(ln.split(" ", 1) for ln in text.split("\n\n", 1)[0].split("\n")[len(parents) + 1:] if " " in ln)
    a, c = lines.get("author", ""), lines.get("committer", "")
    if len(a.rsplit(" ", 2)) != 3 or len(c.rsplit(" ", 2)) != 3 or commit_body(tree, parents, a, c, message) != obj[1]:
        return
    path = os.path.join(gitdir, "lumo", _IDENT_FILE)
    try:
        fd, part = tempfile.mkstemp(prefix=".ident.", suffix=".tmp", dir=os.path.dirname(path))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"key": key, "author": a.rsplit(" ", 2)[0], "committer": c.rsplit(" ", 2)[0]}, f)
        os.replace(part, path)
    except OSError:
        pass


# A loose object is zlib(b"<type> <size>\0" + body), named by the hash of those bytes; a loose ref is a
# file holding "<sha>\n", written under git's lock protocol (`<ref>.lock` created exclusively, written,
# renamed onto `<ref>`). Only used when :func:`py_settings` vouches for the repository; anything
# unusual falls back to `git commit-tree` and `git update-ref`.
def write_commit(gitdir: str, fmt: str, body: bytes, sync: bool = True) -> str:
    """Write the commit object ``body`` as a loose object (temp file in its fan-out folder, flushed to disk
    with ``sync``, read only, hard-linked or renamed to its name: an existing object is kept); its id.
    Raises ``OSError``."""
    import hashlib

    raw = b"commit %d\0" % len(body) + body
    sha = hashlib.new(fmt, raw).hexdigest()
    path = _object_path(gitdir, sha)
    if os.path.exists(path):
        return sha
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(zlib.compress(raw, 1))
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # no hard links here: rename (an object written meanwhile is the same bytes)
            os.replace(tmp, path)
    finally:
        unlink(tmp)
    return sha


def _packed_has(common: str, names: list[str]) -> bool:
    """Whether ``packed-refs`` holds one of the ref ``names`` (or a ref below the first one)."""
    try:
        with open(os.path.join(common, "packed-refs"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    first = names[0].encode()
    if b" " + first + b"/" in data:
        return True
    return any(re.search(rb" " + re.escape(n.encode()) + rb"\r?$", data, re.M) for n in names)


def read_ref(gitdir: str, ref: str) -> str | None:
    """The sha a ref under ``refs/`` points at (a loose file, else ``packed-refs``); ``None`` when missing
    or symbolic."""
    common = common_dir(gitdir)
    try:
        with open(os.path.join(common, *ref.split("/")), "rb") as f:
            val = f.read().strip().decode("ascii", "replace")
        return val if is_sha(val) else None
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return None
    try:
        with open(os.path.join(common, "packed-refs"), "rb") as f:
            m = re.search(rb"^([0-9a-f]{40}|[0-9a-f]{64}) " + re.escape(ref.encode()) + rb"\r?$", f.read(), re.M)
    except OSError:
        return None
    return m.group(1).decode() if m else None


def create_ref(gitdir: str, ref: str, sha: str, sync: bool = True) -> None:
    """Create the ref ``ref`` (under ``refs/lumo/``) pointing at ``sha``, as `update-ref` with ``create``
    does: ``FileExistsError`` if it or a clashing name (a ref above or below it) exists, loose or packed.
    ``<ref>.lock`` is created exclusively (a concurrent writer fails), written (flushed to disk with
    ``sync``) and renamed onto the ref; ``packed-refs`` is never written. Raises ``OSError``."""
    if not ref.startswith("refs/lumo/") or bad_ref(ref[5:]) or not is_sha(sha):
        raise FileExistsError(f"not a lumo-hydra ref: {ref!r}")
    common = common_dir(gitdir)
    parts = ref.split("/")
    path = os.path.join(common, *parts)
    if os.path.exists(os.path.join(common, "logs", *parts)):
        raise FileExistsError(f"{ref} has a reflog")  # git would append to it
    os.makedirs(os.path.dirname(path), exist_ok=True)  # a ref above it (a file) fails here
    lock = path + ".lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        above = ["/".join(parts[:i]) for i in range(len(parts) - 1, 2, -1)]
        if os.path.lexists(path) or _packed_has(common, [ref, *above]):
            raise FileExistsError(f"the ref {ref} exists")
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(sha.encode() + b"\n")
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.rename(lock, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        unlink(lock)
        raise
