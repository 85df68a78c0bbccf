"""Code snapshots in packs: one ``git bundle`` per repository of the runs' snapshot refs, and fetching
those refs into a repository at unpack (docs/share.md, "Code").

Every git process goes through the safe runner :mod:`lumo_hydra.record.gitrun` (no user hooks, no
fsmonitor, no pager, no prompt). Only refs under ``refs/lumo/snapshots/`` are ever written: a manifest
naming any other ref (``refs/heads/main``) is refused, and an existing ref is never moved.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from lumo_hydra.errors import ArchiveError, GitError
from lumo_hydra.store.layout import SNAPSHOT_REF_PREFIX

__all__ = ["bundle_refs", "fetch_bundle", "check_code_entry", "CODE_DIR"]

#: the member folder of bundles in a pack, and the store folder of the repository they go to by default
CODE_DIR = "code"


def _gitrun() -> Any:
    """:mod:`lumo_hydra.record.gitrun`, imported when code is packed or unpacked (it and ``subprocess``
    cost a ``--no-code`` command 10-20 ms of start-up otherwise)."""
    from lumo_hydra.record import gitrun

    return gitrun


def _bad_ref() -> Any:
    """The pattern of ref names git refuses (:mod:`lumo_hydra.record.snapplan`, imported when needed)."""
    from lumo_hydra.record.snapplan import _BAD_REF

    return _BAD_REF


def _git() -> str:
    git = _gitrun()._git_exe()
    if git is None:
        raise GitError("no git executable found on PATH; cannot pack or unpack code snapshots "
                       "(pack with code=False / --no-code for the records only)")
    return git


def _snapshot_of(rec: dict[str, Any]) -> tuple[str, str, str] | str:
    """``(repo, ref, commit)`` of a run's snapshot, or why it has none that can be bundled."""
    g = rec.get("git")
    if not isinstance(g, dict) or not g.get("commit"):
        return "no code snapshot was recorded"
    repo, ref, commit = str(g.get("repo") or ""), str(g.get("ref") or ""), str(g["commit"])
    if not ref.startswith(SNAPSHOT_REF_PREFIX + "/") or _bad_ref().search(ref[5:]):
        return f"its ref {ref!r} is not a snapshot ref"
    if not repo or not os.path.isdir(repo):
        return f"its repository {repo!r} does not exist here"
    return repo, ref, commit


def bundle_refs(recs: list[dict[str, Any]], runs: list[tuple[str, str]], tmp_dir: Path,
                reproducible: bool = False, here: list[dict[str, Any]] | None = None,
                ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One bundle per repository of the snapshot refs of ``recs`` (written in ``tmp_dir``; the caller
    removes them; ``reproducible``: one pack thread, so the same refs give the same bytes; ``here``: the
    records re-based on where their snapshots are now, when they moved):
    ``[{member, path, size, sha256, repo, refs: {ref: commit}, runs}]``, and
    ``{"code of exp/test": why}`` for runs whose code cannot be bundled (the pack still holds their records)."""
    by_repo: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for rec, local, (exp, test) in zip(recs, here or recs, runs):
        snap = _snapshot_of(local)
        if isinstance(snap, str):
            skipped[f"code of {exp}/{test}"] = snap
            continue
        repo, ref, commit = snap
        recorded = str((rec.get("git") or {}).get("repo") or repo)
        entry = by_repo.setdefault(os.path.realpath(repo), {"repo": recorded, "refs": {}, "runs": []})
        entry["refs"][ref] = commit
        entry["runs"].append(f"{exp}/{test}")
    if not by_repo:
        return [], skipped
    git = _git()
    out: list[dict[str, Any]] = []
    for real, entry in by_repo.items():
        good = {}
        for ref, commit in entry["refs"].items():
            p = _gitrun()._run(git, ["rev-parse", "-q", "--verify", ref + "^{commit}"], real, check=False)
            if p.returncode == 0 and _gitrun()._decode(p.stdout.strip()) == commit:
                good[ref] = commit
            else:
                skipped[f"code ref {ref}"] = f"missing or moved in {real} (deleted by gc?)"
        if not good:
            continue
        import tempfile  # here: unpack imports this module too, and needs none of it

        fd, path = tempfile.mkstemp(prefix=".tmp-bundle-", suffix="~", dir=tmp_dir)
        os.close(fd)
        try:
            threads = ["-c", "pack.threads=1"] if reproducible else []
            _gitrun()._run(git, [*threads, "bundle", "create", "-q", path, *sorted(good)], real)
        except _gitrun()._GitFailed as e:
            os.unlink(path)
            raise GitError(f"cannot bundle the code snapshots of {entry['repo']}: {e}") from None
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out.append({"member": f"{CODE_DIR}/{len(out)}.bundle", "path": path, "size": os.path.getsize(path),
                    "sha256": h.hexdigest(), "repo": entry["repo"], "refs": good, "runs": entry["runs"]})
    return out, skipped


def check_code_entry(archive: str, entry: Any, members: dict[str, Any]) -> None:
    """A manifest's ``code`` entry is well formed and names only snapshot refs (else ``ArchiveError``)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("refs"), dict) or not isinstance(entry.get("runs"), list):
        raise ArchiveError(archive, "manifest.json", f"a code entry is not an object with refs and runs: {entry!r:.80}")
    member = entry.get("member")
    if not isinstance(member, str) or member not in members or not member.startswith(CODE_DIR + "/"):
        raise ArchiveError(archive, str(member), "a code bundle not listed in the manifest")
    for ref, commit in entry["refs"].items():
        if (not isinstance(ref, str) or not ref.startswith(SNAPSHOT_REF_PREFIX + "/") or _bad_ref().search(ref[5:])
                or not isinstance(commit, str) or len(commit) not in (40, 64) or commit.strip("0123456789abcdef")):
            raise ArchiveError(archive, member, f"names the ref {ref!r} -> {commit!r}; only "
                               f"{SNAPSHOT_REF_PREFIX}/... refs with a commit id are fetched")


def _ensure_repo(git: str, repo: Path) -> None:
    if repo.is_dir() and (repo / ".git").exists():
        return
    if repo.exists() and any(repo.iterdir()):
        p = _gitrun()._run(git, ["rev-parse", "--show-toplevel"], str(repo), check=False)
        if p.returncode == 0:
            return
        raise GitError(f"--repo {str(repo)!r} exists and is not a git repository")
    repo.mkdir(parents=True, exist_ok=True)
    _gitrun()._run(git, ["init", "-q", str(repo)], str(repo))


def fetch_bundle(bundle: Path, repo: Path, refs: dict[str, str]) -> list[str]:
    """Fetch ``refs`` from ``bundle`` into ``repo`` (made with ``git init`` when missing). A ref already
    there pointing at the same commit is kept; at another commit it is an error naming it. Returns the
    refs fetched."""
    git = _git()
    _ensure_repo(git, repo)
    todo = []
    for ref, commit in refs.items():
        p = _gitrun()._run(git, ["rev-parse", "-q", "--verify", ref + "^{commit}"], str(repo), check=False)
        have = _gitrun()._decode(p.stdout.strip()) if p.returncode == 0 else None
        if have is None:
            todo.append(ref)
        elif have != commit:
            raise GitError(f"the ref {ref} of {str(repo)!r} points at {have[:12]}, the pack's run at {commit[:12]}; "
                           "unpack into another --repo")
    if todo:
        try:
            _gitrun()._run(git, ["fetch", "-q", "--no-tags", "--no-write-fetch-head", str(bundle),
                       *(f"{r}:{r}" for r in todo)], str(repo))
        except _gitrun()._GitFailed as e:
            raise GitError(f"cannot fetch the code snapshots into {str(repo)!r}: {e}") from None
        for ref in todo:
            p = _gitrun()._run(git, ["rev-parse", "-q", "--verify", ref + "^{commit}"], str(repo), check=False)
            if p.returncode != 0 or _gitrun()._decode(p.stdout.strip()) != refs[ref]:
                raise GitError(f"the bundle did not give {ref} at {refs[ref][:12]} in {str(repo)!r}")
    return todo
