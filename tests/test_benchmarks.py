"""The scripts in benchmarks/: every one answers --help quickly without running anything, the cheap
ones run end to end at their smallest sizes, and bench_sweep works with a virtual environment's python.
No timing is asserted (only that a ratio line is printed)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))  # _benchlib.py: shared code


def bench_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(LUMO_HOME=str(tmp_path / "lumo-home"), LUMO_CACHE_DIR=str(tmp_path / "cache"))
    return env


def run_script(python: str, name: str, args: list[str], tmp_path: Path, timeout: float) -> str:
    r = subprocess.run([python, str(BENCH / name), *args, "--work", str(tmp_path / "work")],
                       env=bench_env(tmp_path), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r.stdout


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 6


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_help_exits_0_quickly(script: Path, tmp_path: Path) -> None:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, str(script), "--help"], env=bench_env(tmp_path),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage" in r.stdout.lower()
    assert time.perf_counter() - t < 10  # generous: --help must not run the benchmark
    assert not (tmp_path / "lumo-home").exists()


@pytest.mark.parametrize("name, args", [
    ("bench_lock.py", ["--rounds", "1", "--memo-calls", "2"]),
    ("bench_metrics.py", ["--points", "1000", "--rounds", "1", "--mlflow-python", ""]),
    ("bench_dataset.py", ["--items", "64", "--rounds", "1", "--workers", "--nodes", "11"]),
])
def test_tiny_real_run(name: str, args: list[str], tmp_path: Path) -> None:
    out = run_script(sys.executable, name, args, tmp_path, timeout=120)
    assert any(line.lower().lstrip().startswith("ratio") for line in out.splitlines()), out
    assert "load average at end" in out


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind (callgrind) is not installed")
def test_single_run_counts_instructions(tmp_path: Path) -> None:
    """``bench_single_run.py --instructions``: both variants counted by callgrind with their git processes,
    lumo's extra instructions turned into milliseconds at the bare run's rate."""
    out = run_script(sys.executable, "bench_single_run.py", ["--rounds", "1", "--instructions", "1"], tmp_path,
                     timeout=300)
    m = re.search(r"instructions \(callgrind.*\): bare ([\d,]+) M, lumo ([\d,]+) M .*lumo added ([+-][\d.]+) ms", out)
    assert m, out
    bare, lumo = (int(g.replace(",", "")) for g in m.group(1, 2))
    assert 100 < bare < lumo, out  # a Hydra app runs hundreds of millions of instructions; recording adds some


def test_board_curves_tiny_run(tmp_path: Path) -> None:
    """The curves benchmark records real runs, draws them and reads them back with the store's reader."""
    out = run_script(sys.executable, "bench_board_curves.py", ["--runs", "2", "--points", "300", "--rounds", "1"],
                     tmp_path, timeout=120)
    assert "recorded 2 runs x 300 points" in out and "2 runs x 300 points of 'loss' (600 drawn)" in out, out
    assert "target: cold under 1 s server side: met" in out, out
    assert (tmp_path / "work" / "home" / "experiments" / "curves").is_dir()


def test_watcher_loads_tiny_run(tmp_path: Path) -> None:
    """``bench_watcher.py --parts loads`` (bench_watcher_load.py's rows folded in): cold beside the floor
    with wall and CPU, peak RSS and the reader used, warm, after N changed, flat warm."""
    out = run_script(sys.executable, "bench_watcher.py", ["--direct", "--runs", "12", "--parts", "loads", "--rounds", "1",
                                                          "--changed", "2"], tmp_path, timeout=180)
    for label in ("cold load ", "floor (json.loads) ", "warm load ", "after 2 changed ", "flat load, warm ", "flat, after 2 changed "):
        assert any(line.startswith(label) and "/ CPU " in line for line in out.splitlines()), (label, out)
    assert "cold / floor" in out and "peak rss" in out and ("reader orjson" in out or "reader json" in out), out
    assert not (BENCH / "bench_watcher_load.py").exists()
    import json

    run = next((tmp_path / "work" / "store-12" / "experiments").glob("*/*/run.json"))
    assert json.loads(run.read_text())["paths"]["info_dir"] == str(run.parent)  # written in place: not a moved run


@pytest.mark.slow
def test_bench_sweep_in_a_venv(tmp_path: Path) -> None:
    """A venv's python is a symlink to the base interpreter: the sweep must run with the venv's own
    python (its sys.prefix), not the resolved base one."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=60)
    python = str(venv / "bin" / "python")
    out = run_script(python, "bench_sweep.py", ["--jobs", "2", "--repeats", "1"], tmp_path, timeout=120)
    assert f"sys.prefix {venv}" in out, out
    assert "ratio to the anchor" in out
