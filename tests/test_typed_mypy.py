"""mypy sees real types for class-based Params (and the test can fail: a deliberate error is caught)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

TYPED = '''
from {module} import Params, arange, choice


class OptimParams(Params):
    name: str = choice("sgd", "adam")
    lr: float = arange(default=0.1, left=0, right=1)


class TrainParams(Params):
    dataset: str = choice("cifar10", "cifar100")
    alpha: float = arange(default=1, left=0, right=10)
    epochs: int = 10
    optim: OptimParams = OptimParams()


TrainParams.store(name="train")
TrainParams.store(name="train2", group="exp", package="_global_")
p = TrainParams()
alpha: float = p.alpha
name: str = p.optim.name
lr: float = p.optim.lr
q = TrainParams.from_config({{"alpha": 2.0}}).copy().from_args(["alpha=3"]).from_yaml("x.yaml")
epochs: int = q.epochs
digest: str = q.hash()
data: dict[str, object] = q.to_dict()
reveal_type(q.alpha)

imperative = Params()
imperative.dataset = imperative.choice("a", "b")
imperative.from_args()
'''

BROKEN = '''
from {module} import Params, arange


class TrainParams(Params):
    alpha: float = arange(default=1, left=0, right=10)


wrong: str = TrainParams().alpha
'''


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "example.py"
    f.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
         "--cache-dir", str(tmp_path / ".mypy_cache"), str(f)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )


def test_class_based_params_type_check(tmp_path: Path) -> None:
    r = mypy(tmp_path, TYPED.format(module="lumo_hydra.params"))
    assert 'Revealed type is "float"' in r.stdout
    assert r.returncode == 0 and "Success: no issues found" in r.stdout, r.stdout


def test_a_type_error_is_reported(tmp_path: Path) -> None:
    r = mypy(tmp_path, BROKEN.format(module="lumo_hydra.params"))
    assert r.returncode == 1
    assert 'Incompatible types in assignment (expression has type "float", variable has type "str")' in r.stdout


def test_package_level_import_type_checks(tmp_path: Path) -> None:
    r = mypy(tmp_path, TYPED.format(module="lumo_hydra"))
    assert 'Revealed type is "float"' in r.stdout and r.stdout.count("error:") == 0, r.stdout
