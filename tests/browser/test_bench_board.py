"""benchmarks/bench_board.py runs end to end at tiny sizes in the real Chromium (MLflow skipped): it prints
its ratio lines and the load average. No timing is asserted."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .kit import ROOT


def test_bench_board_tiny_run(chromium: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(LUMO_HOME=str(tmp_path / "lumo-home"), LUMO_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_board.py"), "--runs", "8", "--small", "4",
                        "--large", "60", "--rounds", "1", "--server-rounds", "2", "--mlflow-python", "",
                        "--work", str(tmp_path / "work")], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = r.stdout
    assert "MLflow skipped" in out
    for line in ("ratio ours 60/4 runs first row:", "ratio ours 60/4 runs interactive table:",
                 "ratio worst of filter/sort/page", "ratio change check"):
        assert line in out, out
    assert "header click (sort) to a changed first row" in out and "not measured" not in out, out
    assert "load average at end" in out
    assert not (tmp_path / "lumo-home").exists()  # the benchmark's stores live in its work folder
