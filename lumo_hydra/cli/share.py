"""``lumo-hydra pack``, ``unpack``, ``push``, ``pull`` and ``backup`` (docs/share.md)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lumo_hydra.errors import CLIError, LumoError
from lumo_hydra.store.layout import StoreLayout

__all__ = ["cmd_pack", "cmd_unpack", "cmd_push", "cmd_pull", "cmd_backup", "FEW"]

#: progress bars are shown for more runs than this (on a terminal, without --json)
FEW = 5


@contextmanager
def _progress(args: argparse.Namespace, label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr for more than a few runs, on a terminal, without ``--json``."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "show" not in state:  # decided once: isatty() is a system call, and this is called per run
            state["show"] = not getattr(args, "json", False) and sys.stderr.isatty()
        if total <= FEW or not state["show"]:
            return
        if "p" not in state:
            from rich.console import Console
            from rich.progress import Progress

            state["p"] = p = Progress(transient=True, console=Console(stderr=True))
            p.start()
            state["t"] = p.add_task(label, total=total)
        state["p"].update(state["t"], completed=done)

    try:
        yield update
    finally:
        if "p" in state:
            state["p"].stop()


def _out(args: argparse.Namespace, doc: dict[str, Any], lines: list[str]) -> None:
    if getattr(args, "json", False):
        json.dump(doc, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print("\n".join(lines))


def cmd_pack(args: argparse.Namespace) -> int:
    """Write the runs (or sweeps) ``args.runs`` into the ``.tar.gz`` ``args.output``."""
    from lumo_hydra.share import pack_runs

    with _progress(args, "packing") as update:
        level = {} if getattr(args, "level", None) is None else {"level": args.level}
        res = pack_runs(getattr(args, "root", None), args.runs, args.output, blobs=args.blobs,
                        code=not args.no_code, max_blob_size=args.max_blob_size, redact=args.redact, progress=update,
                        processes=None, **level)  # a second process for many runs when a core is idle
    lines = [f"packed {len(res.runs)} run(s) into {res.path} ({res.size} bytes)"]
    lines += [f"  code: {len(b['refs'])} snapshot(s) of {b['repo']}" for b in res.bundles]
    lines += [f"  left out {k}: {v}" for k, v in res.skipped.items()]
    _out(args, res.as_dict(), lines)
    return 0


def cmd_unpack(args: argparse.Namespace) -> int:
    """Unpack ``args.file`` into the store ``--root``; a run already there with the same content is skipped."""
    from lumo_hydra.share import unpack

    root = StoreLayout(getattr(args, "root", None)).root
    with _progress(args, "unpacking") as update:
        res = unpack(args.file, root, repo=args.repo, code=not args.no_code, progress=update,
                     processes=None)  # a second process for many runs when a core is idle
    lines = [f"{len(res.added)} added, {len(res.skipped)} skipped (already in {root})"]
    lines += [f"  + {run}" for run in res.added] + [f"  = {run}" for run in res.skipped]
    lines += [f"  code: {c['fetched']} of {c['refs']} snapshot ref(s) fetched into {c['repo']}" for c in res.code]
    _out(args, {**res.as_dict(), "root": str(root)}, lines)
    return 0


@contextmanager
def _remote(url: str, what: str) -> Iterator[None]:
    """A failure of the storage backend (no credentials, no network, no bucket) as one line naming the URL."""
    try:
        yield
    except (LumoError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 (fsspec backends raise their own exception types)
        raise CLIError(f"{what} {url}: {type(e).__name__}: {e}") from None


def cmd_push(args: argparse.Namespace) -> int:
    """Push the runs ``args.runs`` to the fsspec URL ``args.url``."""
    from lumo_hydra.share.remote import push

    with _progress(args, "pushing") as update, _remote(args.url, "push to"):
        res = push(getattr(args, "root", None), args.runs, args.url, blobs=args.blobs, code=not args.no_code,
                   progress=update, verify=getattr(args, "verify", False))
    how = " (unchanged since pushed and seen there within the hour: not looked at; --verify looks)" if res.trusted else ""
    _out(args, res.as_dict(), [f"{len(res.sent)} sent ({res.bytes} bytes), {len(res.skipped)} already at {args.url}{how}"])
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull the runs at ``args.url`` (all, or ``args.runs``) into the store ``--root``."""
    from lumo_hydra.share.remote import pull

    root = StoreLayout(getattr(args, "root", None)).root
    with _progress(args, "pulling") as update, _remote(args.url, "pull from"):
        res = pull(args.url, root, args.runs or None, repo=args.repo, code=not args.no_code, progress=update)
    _out(args, res.as_dict(), [f"{len(res.added)} added, {len(res.skipped)} already in {root}"])
    return 0


def _backup_targets(args: argparse.Namespace) -> list[str]:
    """The info folders of the runs named and of those the filters select."""
    from lumo_hydra.cli.common import filtered, load, watcher

    w = watcher(args)
    dirs = [w.resolve(r).info_dir for r in args.runs or []]
    if filtered(args) or getattr(args, "where", None):
        df = load(args)
        if getattr(args, "where", None) and len(df):
            from lumo_hydra.watcher.where import parse_where

            df = df[parse_where(args.where)(df)]
        dirs += [str(d) for d in df["info_dir"]] if len(df) else []
    if not dirs:
        raise CLIError("no runs to back up; allowed: RUN ids, or --exp/--sweep/--where selecting them")
    return list(dict.fromkeys(dirs))


def cmd_backup(args: argparse.Namespace) -> int:
    """Back up runs to a GitHub issue each (``--github owner/name``) or an archive each (``--local DIR``)."""
    from lumo_hydra.share.backup import backup_github, backup_local

    if bool(args.github) == bool(args.local):
        raise CLIError("give one of --github owner/name or --local DIR")
    labels = [x.strip() for x in (args.labels or "").split(",") if x.strip()]
    done: list[dict[str, Any]] = []
    with _progress(args, "backing up") as update:
        targets = _backup_targets(args)
        for i, d in enumerate(targets):
            if args.github:
                n = backup_github(d, args.github, None, labels, not args.no_update, args.api_url)
                done.append({"info_dir": d, "backend": "github", "repo": args.github, "number": n})
            else:
                path = backup_local(d, args.local, with_code=args.with_code, with_blob=args.with_blob,
                                    with_cache=args.with_cache)
                done.append({"info_dir": d, "backend": "local", "path": path})
            update(i + 1, len(targets))
    lines = [f"{e['info_dir']}: " + (f"issue #{e['number']} of {e['repo']}" if e["backend"] == "github" else e["path"])
             for e in done]
    _out(args, {"backups": done}, lines)
    return 0
