"""What differs between two runs' records: params, best metrics, packages (their lock files), code.

The one diff of ``lumo-hydra diff`` (:mod:`lumo_hydra.cli.code`) and of the board's diff view
(:mod:`lumo_hydra.board.views_diff`). It takes the records and the store's root, never the Watcher, so
both import it without an import cycle (the Watcher's module imports the board lazily).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lumo_hydra.errors import LumoValueError

__all__ = ["flat", "changed", "lock_packages", "code_diff", "diff_records"]


def flat(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as ``{"a.b.c": value}`` (empty dicts stay values); ``{}`` for a non-dict."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(flat(v, key))
            else:
                out[key] = v
    return out


def changed(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{key: [a's value, b's value]}`` of the keys whose values differ, sorted by key."""
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def lock_packages(root: str, rec: Mapping[str, Any]) -> dict[str, str] | None:
    """The ``{package: version}`` of the run's lock file, or ``None`` when it has none or it cannot be read."""
    lock = rec.get("lock") or {}
    ref = lock.get("digest") or lock.get("file")
    if not ref:
        return None
    try:
        from lumo_hydra.record.lockfile import read_lock

        return dict((read_lock(root, ref) or {}).get("packages") or {})
    except (LumoValueError, OSError, ValueError):
        return None


def code_diff(ga: Mapping[str, Any], gb: Mapping[str, Any]) -> tuple[str | None, str]:
    """The code diff of two snapshots (the records' ``git``; ``""``: the same commit) and, when there is
    none (``None``), why not."""
    if not (ga.get("commit") and gb.get("commit")):
        return None, "code diff unavailable: " + ("run A" if not ga.get("commit") else "run B") + " has no snapshot"
    if ga["commit"] == gb["commit"]:
        return "", ""
    repo = str(ga.get("repo") or gb.get("repo") or "")
    try:
        from lumo_hydra.record.gitsnap import diff

        return diff(repo, ga["commit"], gb["commit"]), ""
    except (LumoValueError, OSError) as e:
        return None, f"code diff unavailable: {e}"


def diff_records(root: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The diff of run records ``a`` and ``b`` of the store ``root``: ``({"a", "b", "params", "metrics",
    "packages", "code"}, why there is no code diff)``, the data of ``lumo-hydra diff --json``.

    ``params``: the flattened params that differ; ``metrics``: every metric's best of A and B; ``packages``:
    the lock files' versions that differ (``None`` when either run has no readable lock); ``code``: the
    unified diff of the snapshots (``""`` for the same commit, ``None`` with the reason when there is none).
    """
    data: dict[str, Any] = {"a": a.get("test_name"), "b": b.get("test_name")}
    data["params"] = changed(flat(a.get("params") or {}), flat(b.get("params") or {}))
    ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
    data["metrics"] = {k: [(ma.get(k) or {}).get("best"), (mb.get(k) or {}).get("best")]
                       for k in sorted(set(ma) | set(mb))}
    la, lb = lock_packages(root, a), lock_packages(root, b)
    data["packages"] = changed(la, lb) if la is not None and lb is not None else None
    data["code"], code_msg = code_diff(a.get("git") or {}, b.get("git") or {})
    return data, code_msg
