"""The seed's DatasetBuilder snippet as a runnable script (examples/quickstart/dataset_demo.py).

The seed's Params snippet is checked where it is documented: docs/params.md runs it with
``--dataset=cifar100 --alpha=0.2`` and checks what it prints, and the error messages of bad values and
unknown keys (tests/test_docs.py); tests/test_params.py runs examples/quickstart/params_demo.py itself.
The Experiment snippet is docs/experiment.md's first block.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart"


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", str(QUICKSTART / script), *args],
        cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )


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
