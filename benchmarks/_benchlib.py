"""What every benchmark script shares: the work folder (a fresh temporary one unless --work, removed
unless --keep), the load average line, the one 'median (min-max)' formatter and the timing of a child
process. Not a benchmark itself (tests/test_benchmarks.py skips `_` names)."""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as printed at the start and end of every benchmark."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spread(xs: list[float], scale: float = 1000.0, digits: int = 1, unit: str = "") -> str:
    """``'median (min-max)'`` of ``xs`` times ``scale`` (default: seconds shown as ms), e.g. ``12.3 (11.0-15.2)``."""
    m, lo, hi = (v * scale for v in (statistics.median(xs), min(xs), max(xs)))
    return f"{m:.{digits}f}{unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def run_child(cmd: list[str], cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
              stdout: int | None = subprocess.DEVNULL) -> tuple[float, float]:
    """Run ``cmd`` once: (wall seconds, CPU seconds = user + system time of the child and of the children
    it waited for, from ``os.wait4``: steadier than wall time on a shared machine). A failing child stops
    the benchmark with the end of its stderr."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE)
    assert p.stderr is not None
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stderr.close()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{err.decode(errors='replace')[-3000:]}")
    return wall, ru.ru_utime + ru.ru_stime


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


def py(code: str, *args: str, python: str = sys.executable, env: dict | None = None, timeout: float = 3600) -> str:
    """Run ``code`` as a script with ``python`` (any venv) and return its stdout; raise with its stderr on failure."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    try:
        p = subprocess.run([python, f.name, *args], capture_output=True, text=True, env=env, timeout=timeout)
    finally:
        os.unlink(f.name)
    if p.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{p.stderr[-3000:]}")
    return p.stdout
