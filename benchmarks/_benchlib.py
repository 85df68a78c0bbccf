"""What every benchmark script shares: the work folder (a fresh temporary one unless --work, removed
unless --keep) and the load average line. Not a benchmark itself (tests/test_benchmarks.py skips `_` names)."""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as printed at the start and end of every benchmark."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def work_folder(a: argparse.Namespace, prefix: str = "lumo-bench-") -> Iterator[Path]:
    """``a.work`` (created if needed, kept), else a fresh temporary folder removed at the end unless ``a.keep``."""
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if not a.work and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif a.keep:
            print(f"work folder kept: {work}")
