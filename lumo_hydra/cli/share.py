"""``lumo-hydra pack`` and ``lumo-hydra unpack`` (docs/share.md)."""
from __future__ import annotations

import argparse

from lumo_hydra.store.layout import StoreLayout

__all__ = ["cmd_pack", "cmd_unpack"]


def cmd_pack(args: argparse.Namespace) -> int:
    """Write the runs ``args.runs`` into the ``.tar.gz`` ``args.output``."""
    from lumo_hydra.share import pack

    out = pack(getattr(args, "root", None), args.runs, args.output, blobs=args.blobs)
    print(f"packed {len(dict.fromkeys(args.runs))} run(s) into {out}")
    return 0


def cmd_unpack(args: argparse.Namespace) -> int:
    """Unpack ``args.file`` into the store ``--root``; a run already there with the same content is skipped."""
    from lumo_hydra.share import unpack

    root = StoreLayout(getattr(args, "root", None)).root
    res = unpack(args.file, root)
    print(f"{len(res.added)} added, {len(res.skipped)} skipped (already in {root})")
    for run in res.added:
        print(f"  + {run}")
    for run in res.skipped:
        print(f"  = {run}")
    return 0
