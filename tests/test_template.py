"""The image-classification template, end to end, through the README's command path.

``examples/run_demo.sh`` (1 epoch, joblib launcher, LUMO_HOME in a temp folder) runs a 2 methods x 2
seeds sweep; we then check the records on disk, the Watcher table it prints, the analysis PNGs, the
fail-fast validation, and that the supervised baseline learns (> 0.9 test accuracy).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
APP_DIR = EXAMPLES / "image_classification"
PYTHON = sys.executable

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("hydra_plugins.hydra_joblib_launcher")


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LUMO_HOME"] = str(home)
    env["PYTHON"] = PYTHON
    env["PYTHONWARNINGS"] = "error"  # the template and our plugin must be warning-free, in workers too
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the README's demo once (tiny settings) and share the result with the tests below."""
    if shutil.which("bash") is None:
        pytest.skip("bash is needed for examples/run_demo.sh")
    tmp = tmp_path_factory.mktemp("demo")
    home = tmp / "store"
    env = _env(home)
    env.update(EPOCHS="1", JOBS="2", OUT=str(tmp / "hydra-out"))
    proc = subprocess.run(
        ["bash", str(EXAMPLES / "run_demo.sh")], cwd=tmp, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, f"run_demo.sh failed:\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-4000:]}"
    return {"tmp": tmp, "home": home, "stdout": proc.stdout, "stderr": proc.stderr, "env": env}


def _runs(home: Path) -> list[Path]:
    return sorted((home / "experiments" / "image_classification").glob("*/run.json"))


def test_demo_records_every_job(demo: dict) -> None:
    home = demo["home"]
    records = [json.loads(p.read_text()) for p in _runs(home)]
    assert len(records) == 4, [r.get("test_name") for r in records]
    assert len({r["test_name"] for r in records}) == 4
    combos = set()
    for rec in records:
        assert rec["status"] == "finished", rec.get("exception")
        info = Path(rec["paths"]["info_dir"])
        params = rec.get("params") or (rec.get("hydra") or {}).get("config") or {}
        combos.add((params["method"]["name"], params["seed"]))
        assert params["epochs"] == 1
        # per-epoch metrics with their best value kept
        metrics = json.loads((info / "metrics.json").read_text())
        assert metrics["acc"]["cmp"] == "max" and metrics["loss"]["cmp"] == "min"
        assert 0.1 < metrics["acc"]["best"] <= 1.0
        assert metrics["acc"]["count"] == 1
        hist = [json.loads(line) for line in (info / "history.jsonl").read_text().splitlines()]
        assert [h["s"] for h in hist if h["k"] == "acc"] == [0]
        # the checkpoint lives under the run's blob folder, not in the info folder
        ckpt = Path(rec["paths"]["blob_dir"]) / "model.pt"
        assert ckpt.is_file() and ckpt.stat().st_size > 1000
        assert not list(info.glob("*.pt"))
        assert {"supervised", "mixup"} & set(rec.get("tags") or [])
    assert combos == {("supervised", 0), ("supervised", 1), ("mixup", 0), ("mixup", 1)}
    # one sweep, recorded once, linking its four jobs
    sweeps = {rec.get("sweep") for rec in records}
    assert len(sweeps) == 1 and None not in sweeps
    assert (home / "sweeps" / sweeps.pop() / "sweep.json").is_file()


def test_demo_returns_final_metrics(demo: dict) -> None:
    records = [json.loads(p.read_text()) for p in _runs(demo["home"])]
    for rec in records:
        ret = rec.get("return_value")
        assert isinstance(ret, dict), rec.get("return_value")
        assert set(ret) >= {"final_acc", "best_acc", "final_loss"}
        assert ret["best_acc"] == pytest.approx(json.loads((Path(rec["paths"]["info_dir"]) / "metrics.json").read_text())["acc"]["best"])


def test_demo_prints_the_watcher_table(demo: dict) -> None:
    out = demo["stdout"]
    assert "== results" in out
    assert "lumo-hydra board" in out  # how to see the same runs in the browser
    table = out.split("best test accuracy per method:", 1)[1]
    rows = [line.split() for line in table.strip().split("\n\n")[0].splitlines()[1:]]  # up to the next section
    by_method = {r[0]: r for r in rows}
    assert set(by_method) == {"supervised", "mixup"}
    for r in rows:
        assert r[1] == "2" and r[2] == "2"  # runs, finished
        assert 0.1 < float(r[3]) <= 1.0  # mean best accuracy
    # the per-run part lists every run id that is on disk
    for p in _runs(demo["home"]):
        assert p.parent.name in out


def test_results_match_watcher(demo: dict) -> None:
    sys.path.insert(0, str(APP_DIR))
    try:
        import results
    finally:
        sys.path.remove(str(APP_DIR))
    runs = results.load_runs(str(demo["home"]))
    assert len(runs) == 4
    assert set(runs["status"]) == {"finished"}
    assert (runs["duration"] > 0).all()
    s = results.summary(runs)
    assert list(s["runs"]) == [2, 2]


def test_analysis_saves_pngs(demo: dict) -> None:
    out = demo["tmp"] / "plots"
    proc = subprocess.run(
        [PYTHON, "-W", "error", str(APP_DIR / "analysis.py"), "--out", str(out), "--param", "seed"],
        cwd=demo["tmp"], env=demo["env"], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("acc_curves.png", "best_vs_seed.png"):
        png = out / name
        assert png.is_file(), proc.stdout
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5000  # something was drawn


def test_bad_parameter_fails_before_any_job(tmp_path: Path) -> None:
    home = tmp_path / "store"
    proc = subprocess.run(
        [PYTHON, str(APP_DIR / "train.py"), "-m", "labelled_fraction=0.5,2", "epochs=1"],
        cwd=tmp_path, env=_env(home), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "labelled_fraction" in proc.stderr and "2" in proc.stderr and "[0.01, 1.0]" in proc.stderr
    assert not _runs(home)


def test_supervised_baseline_learns() -> None:
    """In-process: the supervised MLP beats 0.9 test accuracy in 5 epochs (a few seconds on one core)."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    sys.path.insert(0, str(APP_DIR))
    try:
        import engine
        import models
        from methods.pimodel import PiModel
        from methods.supervised import Supervised
    finally:
        sys.path.remove(str(APP_DIR))
    torch.set_num_threads(1)
    spec = OmegaConf.load(APP_DIR / "conf" / "dataset" / "digits.yaml")
    train_set = instantiate(spec)
    spec.nodes.digits.split = "test"
    test_set = instantiate(spec)
    engine.seed_everything(0)
    res = engine.fit(models.MLP(), Supervised(), train_set, test_set, epochs=5, log=None)
    assert res["best_acc"] > 0.9, res
    # the semi-supervised method refuses a one-view dataset with a clear message
    with pytest.raises(ValueError, match="digits_twoview"):
        engine.fit(models.MLP(), PiModel(), train_set, test_set, epochs=1, log=None)


def test_labelled_indices_are_class_balanced() -> None:
    import numpy as np

    sys.path.insert(0, str(APP_DIR))
    try:
        import engine
    finally:
        sys.path.remove(str(APP_DIR))
    labels = np.repeat(np.arange(10), 50)
    idx = engine.labelled_indices(labels, 0.1, seed=3)
    assert len(idx) == 50 and sorted(set(np.bincount(labels[idx]))) == [5]
    assert list(idx) == list(engine.labelled_indices(labels, 0.1, seed=3))  # deterministic
    assert list(idx) != list(engine.labelled_indices(labels, 0.1, seed=4))
    with pytest.raises(ValueError, match="labelled_fraction"):
        engine.labelled_indices(labels, 0.0, seed=0)


def test_notebook_cells_run(demo: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """analysis.ipynb's code cells run in order against the demo's store (IPython's Image replaced by a path)."""
    nb = json.loads((APP_DIR / "analysis.ipynb").read_text())
    monkeypatch.setenv("LUMO_HOME", str(demo["home"]))
    monkeypatch.chdir(APP_DIR)
    monkeypatch.syspath_prepend(str(APP_DIR))
    import matplotlib

    matplotlib.use("Agg")
    out = demo["tmp"] / "nb"
    out.mkdir()
    ns: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        src = src.replace("from IPython.display import Image", "Image = lambda p: p")
        src = src.replace("'plots", f"'{out}")  # write the PNGs into the test's folder
        exec(compile(src, "analysis.ipynb", "exec"), ns)
    assert len(ns["runs"]) == 4
    assert (out / "acc_curves.png").is_file() and (out / "best_vs_labelled_fraction.png").is_file()
