"""Issue 11.13: the store writes standard JSON (non-finite floats as ``{"$float": ...}``), reads it back
as ``nan``/``inf``, and still reads old files holding bare ``NaN``/``Infinity`` tokens."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lumo_hydra.store.files import dumps, loads
from lumo_hydra.store.reader import parse_many, read_history, read_metrics, read_record
from lumo_hydra.watcher.watcher import Watcher

SCRIPT = textwrap.dedent('''
    import math, sys
    import numpy as np
    from lumo_hydra.record.experiment import Experiment
    exp = Experiment("nanrun", test_name="t-nan")
    exp.start()
    exp.dump_params({"lr": float("nan"), "wd": float("inf"), "nested": {"x": [1.0, float("-inf")]},
                     "np": np.float64("nan")})
    exp.dump_metric("loss", float("nan"), cmp="min")
    exp.dump_metric("loss", 0.5, cmp="min")
    exp.dump_metric("loss", float("inf"), cmp="min")
    exp.dump_metric("up", float("-inf"), cmp="max", step=float("nan"))
    exp.dump_metric("allnan", np.float32("nan"))
    exp.dump_info("extra", {"v": float("nan"), "w": [float("inf")]})
    exp.end()
    print(exp.info_dir, flush=True)
''')


def _strict(text: str) -> Any:
    """``json.loads`` that refuses the non-standard NaN/Infinity tokens, like jq or JavaScript."""
    def bad(tok: str) -> Any:
        raise ValueError(f"non-standard JSON token {tok}")
    return json.loads(text, parse_constant=bad)


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


@pytest.fixture
def nan_run(lumo_home: Path, tmp_path: Path) -> Path:
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "LUMO_HOME": str(lumo_home)})
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


def test_every_store_file_is_strict_json(nan_run: Path, lumo_home: Path) -> None:
    files = [p for p in lumo_home.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl")]
    assert any(p.name == "run.json" for p in files) and any(p.name == "history.jsonl" for p in files)
    texts = {p: p.read_text(encoding="utf-8") for p in files}
    assert any("$float" in t for t in texts.values())
    for p, text in texts.items():
        if p.suffix == ".jsonl":
            for line in text.splitlines():
                _strict(line)
        else:
            _strict(text)
    assert "NaN" not in texts[nan_run / "run.json"] and "Infinity" not in texts[nan_run / "metrics.json"]


def test_reader_and_watcher_give_back_nan_and_inf(nan_run: Path, lumo_home: Path) -> None:
    rec = read_record(nan_run)
    p = rec["params"]
    assert _nan(p["lr"]) and p["wd"] == math.inf and p["nested"]["x"] == [1.0, -math.inf] and _nan(p["np"])
    assert _nan(rec["info"]["extra"]["v"]) and rec["info"]["extra"]["w"] == [math.inf]
    m = read_metrics(nan_run)
    assert m["loss"]["best"] == 0.5 and m["loss"]["last"] == math.inf  # best-of logic unchanged
    assert m["up"]["last"] == -math.inf and _nan(m["allnan"]["last"])
    hist = read_history(nan_run, "loss")
    assert _nan(hist[0]["v"]) and hist[1]["v"] == 0.5 and hist[2]["v"] == math.inf
    assert _nan(read_history(nan_run, "up")[0]["s"])

    w = Watcher(lumo_home)
    df = w.load(flatten=True)
    row = df.iloc[0]
    assert math.isnan(row["params.lr"]) and row["params.wd"] == math.inf
    assert row["metrics.loss"] == 0.5 and row["metrics.loss.last"] == math.inf
    assert math.isnan(row["metrics.allnan"])
    nested = Watcher(lumo_home).load().iloc[0]
    assert _nan(nested["params"]["lr"]) and nested["metrics"]["up"] == -math.inf
    h = w.history(row["test_name"], "loss")
    vals = list(h["v"] if "v" in h.columns else h["value"])
    assert math.isnan(vals[0]) and vals[1:] == [0.5, math.inf]


def test_old_files_with_bare_nan_still_load(lumo_home: Path, nan_run: Path) -> None:
    run_json = nan_run / "run.json"
    rec = json.loads(run_json.read_text(encoding="utf-8"))
    old = json.dumps(loads(json.dumps(rec)) | {"params": {"lr": float("nan"), "wd": float("-inf")}})
    assert "NaN" in old  # the old format: bare tokens
    run_json.write_text(old, encoding="utf-8")
    (nan_run / "metrics.json").write_text(json.dumps({"loss": {"best": float("nan"), "last": float("inf"),
                                                               "cmp": "min", "count": 2}}), encoding="utf-8")
    with open(nan_run / "history.jsonl", "a", encoding="utf-8") as f:
        f.write('{"k": "loss", "v": NaN, "s": null, "t": 1.0}\n{"k": "loss", "v": -Infinity, "s": 3, "t": 2.0}\n')
    rec2 = read_record(nan_run)
    assert _nan(rec2["params"]["lr"]) and rec2["params"]["wd"] == -math.inf
    assert _nan(read_metrics(nan_run)["loss"]["best"])
    assert read_history(nan_run, "loss")[-1]["v"] == -math.inf and _nan(read_history(nan_run, "loss")[-2]["v"])
    row = Watcher(lumo_home).load(flatten=True).iloc[0]
    assert math.isnan(row["params.lr"]) and math.isnan(row["metrics.loss"]) and row["metrics.loss.last"] == math.inf


def test_encoding_round_trip_and_lookalikes() -> None:
    doc = {"a": float("nan"), "b": [float("inf"), -math.inf, 1.5], "c": {"$float": "nan"}, "t": (1, float("nan"))}
    text = dumps(doc)
    _strict(text)
    back = loads(text)
    assert _nan(back["a"]) and back["b"] == [math.inf, -math.inf, 1.5] and _nan(back["t"][1])
    # objects that only look like the tag are kept as they are
    for keep in ({"$float": "1.5"}, {"$float": "nan", "other": 1}, {"$float": 3}):
        assert loads(dumps({"x": keep}))["x"] == keep
    assert parse_many([dumps({"v": math.inf}).encode(), b'{"v": NaN}', b'{"v": 1}'])[0] == {"v": math.inf}
    assert dumps({"x": 1.0, "y": "NaN"}) == '{"x":1.0,"y":"NaN"}'  # finite data: unchanged, fast path


PARAMS_SCRIPT = textwrap.dedent('''
    import sys
    from lumo_hydra.params.params import Params
    from lumo_hydra.record.experiment import Experiment

    class P(Params):
        def __init__(self):
            super().__init__()
            self.lr = 0.1
            self.wd = 0.0
            self.nested = {"x": [1.0, 2.0], "y": 0.5}

    p = P()
    p.from_args(sys.argv[1:])
    exp = Experiment("params-nan", test_name="t-params").start()
    p.to_json(exp.mk_ipath("params.json"))  # the seed's way of recording params
    exp.end()
    print(exp.info_dir, flush=True)
''')


def test_11_13_params_to_json_writes_strict_json_and_round_trips(lumo_home: Path, tmp_path: Path) -> None:
    from lumo_hydra.experiment import Experiment
    from lumo_hydra.params.params import Params

    r = subprocess.run([sys.executable, "-c", PARAMS_SCRIPT, "--lr=nan", "--wd=-inf", "--nested.y=inf"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, "LUMO_HOME": str(lumo_home)})
    assert r.returncode == 0, r.stderr
    info = Path(r.stdout.strip().splitlines()[-1])
    text = (info / "params.json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text, text
    assert _strict(text)["lr"] == {"$float": "nan"} and _strict(text)["wd"] == {"$float": "-inf"}

    class P(Params):
        def __init__(self) -> None:
            super().__init__()
            self.lr = 0.1
            self.wd = 0.0
            self.nested = {"x": [1.0, 2.0], "y": 0.5}

    for load in (lambda p: p.from_json(info / "params.json"), lambda p: p.from_file(info / "params.json"),
                 lambda p: p.from_args([f"--config={info / 'params.json'}"])):
        q = load(P())
        assert _nan(q.lr) and q.wd == -math.inf and q.nested.y == math.inf and q.nested.x == [1.0, 2.0]
        _strict(q.to_json())  # and written again the same way
    # the record's reader maps the file back too (a run whose params were written only to params.json)
    props = Experiment.from_disk(info).properties
    assert _nan(props["params"]["lr"]) and props["params"]["nested"]["y"] == math.inf
    # an old params.json with bare tokens still loads
    (tmp_path / "old.json").write_text('{"lr": NaN, "wd": -Infinity, "nested": {"y": Infinity}}', encoding="utf-8")
    old = P().from_json(tmp_path / "old.json")
    assert _nan(old.lr) and old.wd == -math.inf and old.nested.y == math.inf
