"""Which snapshot refs of a repository belong to a store, and whether a record's snapshot can be trusted
(split from :mod:`lumo_hydra.record.gitsnap`; used by ``lumo-hydra gc`` and ``checkout``/``rerun``)."""
from __future__ import annotations

import os
import re
from typing import Any

from lumo_hydra.record import snapplan as plan
from lumo_hydra.record.gitrun import _decode, _git_exe, _ready, _run
from lumo_hydra.record.gitsnap import find_repo
from lumo_hydra.record.snapplan import _check_rev, bad_ref
from lumo_hydra.store.layout import REF_NAMESPACE, SNAPSHOT_REF_PREFIX

__all__ = ["snapshot_problem", "store_refs"]


def store_refs(repo: str | os.PathLike[str], store_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The snapshot refs of ``repo`` proven to belong to the store ``store_id``, with the store's state
    file in that repository: ``(state, [{"ref", "sha", "time", "owner"}])``.

    Proven means: the repository holds the store's state file (``snapplan.state_file``: this store wrote
    snapshots there), the ref is under ``<SNAPSHOT_REF_PREFIX>/<store_id>/`` and points at a commit whose
    message has the ``Lumo-Store: <store_id>`` trailer. ``(None, [])`` without a state file (a
    repository named only by a record), and when git or the repository is missing.
    """
    git, d = _git_exe(), os.fspath(repo)
    if git is None or not re.fullmatch(r"[0-9a-f]{32}", store_id or "") or not os.path.isdir(d):
        return None, []
    p = _run(git, ["rev-parse", "--absolute-git-dir"], d, check=False)
    gitdir = _decode(p.stdout.strip())
    state = plan.read_state(gitdir, store_id) if p.returncode == 0 and gitdir else None
    if state is None or state.get("store_id") != store_id:
        return None, []
    pre = f"{SNAPSHOT_REF_PREFIX}/{store_id}"
    fmt = "%00%(objectname) %(objecttype) %(committerdate:unix) %(refname)%00%(contents)"
    q = _run(git, ["for-each-ref", f"--format={fmt}", pre], d, check=False)
    parts = q.stdout.split(b"\0")[1:] if q.returncode == 0 else []
    found = []
    for head, body in zip(parts[0::2], parts[1::2]):
        sha, typ, when, name = (_decode(head).split(" ", 3) + ["", "", ""])[:4]
        tr = plan.parse_trailers(body.decode("utf-8", "replace"))
        if typ == "commit" and name.startswith(pre + "/") and tr.get(plan.STORE_TRAILER) == store_id:
            found.append({"ref": name, "sha": sha, "time": float(when or 0), "owner": tr.get(plan.OWNER_TRAILER)})
    return state, found


def snapshot_problem(repo: str | os.PathLike[str], ref: Any, commit: str) -> str | None:
    """Why ``commit`` of ``repo`` cannot be trusted as a run's snapshot, or ``None``: ``repo`` must be the
    top of a work tree (symlinks and ``..`` resolved) and ``ref`` a lumo-hydra ref of it pointing at
    ``commit`` (without ``ref``: some ref under ``refs/lumo/`` points at it). A record naming another
    repository's commit is not checked out there."""
    git, d = _ready(repo, "check a snapshot")
    top = find_repo(d)
    if top is None or os.path.realpath(top) != os.path.realpath(d):
        return f"the recorded repository {d!r} is not the top of a git work tree"
    _check_rev(commit, "commit")
    if ref:
        if not isinstance(ref, str) or not ref.startswith(REF_NAMESPACE) or bad_ref(ref[5:]):
            return f"the recorded ref {ref!r} is not one of lumo-hydra's (under {REF_NAMESPACE!r})"
        p = _run(git, ["rev-parse", "-q", "--verify", ref + "^{commit}"], d, check=False)
        if p.returncode != 0 or _decode(p.stdout.strip()) != commit:
            return f"the recorded ref {ref!r} does not point at the recorded commit {commit[:12]} in {d!r}"
        return None
    p = _run(git, ["for-each-ref", "--format=%(refname)", "--points-at", commit, REF_NAMESPACE.rstrip("/")], d,
             check=False)
    if p.returncode != 0 or not p.stdout.strip():
        return f"no lumo-hydra ref of {d!r} points at the recorded commit {commit[:12]}"
    return None
