"""The seed's Params and DatasetBuilder snippets, as runnable scripts (examples/quickstart/)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart"


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "error", str(QUICKSTART / script), *args],
        cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )


def test_params_demo_as_in_the_seed(tmp_path: Path) -> None:
    proc = _run("params_demo.py", "--dataset=cifar100", "--alpha=0.2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["{'dataset': 'cifar100', 'alpha': 0.2}", "cifar100"]


def test_params_demo_rejects_bad_values(tmp_path: Path) -> None:
    proc = _run("params_demo.py", "--alpha=20", cwd=tmp_path)
    assert proc.returncode != 0
    assert "alpha" in proc.stderr and "20" in proc.stderr and "[0, 10]" in proc.stderr
    proc = _run("params_demo.py", "--dataset=imagenet", cwd=tmp_path)
    assert proc.returncode != 0 and "cifar100" in proc.stderr and "imagenet" in proc.stderr


def test_dataset_demo_two_views(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    proc = _run("dataset_demo.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("{'xs1': array(") and "'xs2': array(" in out and "'ys':" in out
    assert "1438 items; xs1 (8, 8) float32, xs2 (8, 8), ys 0" in out
    assert "from YAML: ['xs1', 'xs2', 'ys'] 1438" in out
    assert "a batch: {'xs1': (32, 1, 8, 8), 'xs2': (32, 1, 8, 8), 'ys': (32,)}" in out
