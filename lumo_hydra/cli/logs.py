"""``lumo-hydra logs RUN [-f]``: a run's recorded console output (``output.log``), followed with ``-f``."""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lumo_hydra.cli.common import watcher
from lumo_hydra.errors import CLIError
from lumo_hydra.record.console import HYDRA_FILES_DIR, OUTPUT_LOG

__all__ = ["cmd_logs", "run_files"]


def run_files(rec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(label, path)`` of a run's recorded output files that exist: ``output.log`` and the copies of
    Hydra's job log and ``.hydra/`` files."""
    info = rec.get("info_dir")
    if not info:
        return []
    out: list[tuple[str, str]] = []
    log = Path(str(info)) / OUTPUT_LOG
    if log.is_file():
        out.append(("log", str(log)))
    hd = Path(str(info)) / HYDRA_FILES_DIR
    if hd.is_dir():
        out.extend(("hydra", str(p)) for p in sorted(hd.iterdir()) if p.is_file())
    return out


def cmd_logs(args: argparse.Namespace) -> int:
    """Print the run's ``output.log``; with ``--follow`` keep printing what is added while it runs."""
    w = watcher(args)
    rec = w.record(args.run)
    path = Path(str(rec.get("info_dir"))) / OUTPUT_LOG
    if not path.is_file():
        raise CLIError(f"run {rec.get('exp_name')}/{rec.get('test_name')} has no recorded output ({path}); "
                       f"runs recorded before lumo-hydra kept console output, or with "
                       f"hydra.callbacks.lumo.output=false, have none")
    out = sys.stdout.buffer
    with open(path, "rb") as f:
        _copy(f, out)
        if not args.follow:
            return 0
        while True:
            if not _copy(f, out):
                if not _running(w, args.run):
                    _copy(f, out)
                    return 0
                time.sleep(args.interval)


def _copy(f: Any, out: Any) -> bool:
    data = f.read()
    if data:
        out.write(data)
        out.flush()
    return bool(data)


def _running(w: Any, run: str) -> bool:
    try:
        return w.record(run).get("status") == "running"
    except Exception:
        return False
