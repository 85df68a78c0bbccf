"""lumo 1.1 users' code with the import changed (issue 15 items 5-8) and the path/name checks of issue 11
(items 5, 6). One test per numbered case, named after it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import lumo_hydra
from lumo_hydra import C, Experiment, Metric, Watcher
from lumo_hydra.errors import LumoValueError


def _run(home: Path, name: str = "compat") -> Experiment:
    exp = Experiment(name, home=home, heartbeat_interval=0)
    exp.start()
    return exp


# -- 15.5 dump_info ----------------------------------------------------------------------------------
def test_15_5_dump_info_params_reach_properties_and_the_watcher(lumo_home: Path) -> None:
    exp = _run(lumo_home)
    exp.dump_info("params", {"lr": 0.1, "optim": {"name": "sgd"}})
    exp.dump_info("temp_number", 123)
    exp.dump_info("temp_dict", {"a": [1, 2, 3]})
    assert exp.properties["params"] == {"lr": 0.1, "optim": {"name": "sgd"}}
    assert exp.properties["temp_number"] == 123
    exp.end()
    df = Watcher(lumo_home).load()
    assert df.loc[0, "params"] == {"lr": 0.1, "optim": {"name": "sgd"}}
    flat = Watcher(lumo_home).load(flatten=True)
    assert flat.loc[0, "params.lr"] == 0.1
    back = Experiment.from_disk(exp.info_dir)
    assert back.properties["temp_dict"] == {"a": [1, 2, 3]}


@pytest.mark.parametrize("key", ["status", "progress", "paths", "exp_name", "execute", "metrics", "rerun_at"])
def test_15_5_dump_info_refuses_keys_the_record_owns(lumo_home: Path, key: str) -> None:
    exp = _run(lumo_home)
    with pytest.raises(ValueError, match=repr(key)):
        exp.dump_info(key, {"x": 1})
    assert exp.status == "running" and exp.record["paths"]["info_dir"] == exp.info_dir
    exp.end()


# -- 15.6 from_disk / from_cache / rerun --------------------------------------------------------------
def test_15_6_from_disk_of_a_moved_run_reaches_its_checkpoints(lumo_home: Path, tmp_path: Path) -> None:
    exp = _run(lumo_home)
    Path(exp.mk_bpath("ckpt", "model.pt")).write_text("weights")
    Path(exp.mk_cpath("tmp.bin")).write_text("cache")
    exp.dump_info("temp_string", "string")
    exp.end()
    new_root = tmp_path / "moved-store"
    shutil.move(str(lumo_home), new_root)  # the whole store moved (restored elsewhere)
    rel = Path(exp.info_dir).relative_to(lumo_home)
    moved = Experiment.from_disk(new_root / rel)
    assert moved.properties["temp_string"] == "string"
    assert Path(moved.mk_bpath("ckpt", "model.pt")).read_text() == "weights"
    assert Path(moved.mk_cpath("tmp.bin")).read_text() == "cache"
    # the run's folders given one by one (an unpacked backup)
    unpacked = tmp_path / "unpacked"
    shutil.copytree(new_root / rel, unpacked / "info")
    shutil.copytree(moved.blob_dir, unpacked / "blob")
    shutil.copytree(moved.cache_dir, unpacked / "cache")
    b = Experiment.from_disk(unpacked / "info", blob_dir=unpacked / "blob", cache_dir=unpacked / "cache")
    assert Path(b.mk_bpath("ckpt/model.pt")).read_text() == "weights"
    assert Path(b.mk_cpath("tmp.bin")).read_text() == "cache"


def test_15_6_from_cache_turns_a_watcher_row_into_an_experiment(lumo_home: Path) -> None:
    exp = _run(lumo_home)
    exp.dump_metric("acc", 0.7, "max")
    exp.end()
    df = Watcher(lumo_home).load()
    back = Experiment.from_cache(df.iloc[0])
    assert back.test_name == exp.test_name
    assert back.metrics["acc"]["best"] == 0.7
    assert Experiment.from_cache(df.to_dict("records")[0]).test_name == exp.test_name
    with pytest.raises(ValueError, match="info_dir"):
        Experiment.from_cache({"test_name": exp.test_name})


SCRIPT = """
import sys
from lumo_hydra import Experiment
exp = Experiment('rr', heartbeat_interval=0)
exp.start()
exp.dump_info('argv', sys.argv[1:])
exp.end()
print(exp.test_name)
"""


def test_15_6_rerun_links_the_new_run_and_the_original(lumo_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "LUMO_HOME": str(lumo_home)}
    env.pop("LUMO_RERUN_OF", None)
    first = subprocess.run([sys.executable, str(script), "--lr=1"], env=env, cwd=tmp_path, check=True,
                           capture_output=True, text=True).stdout.strip()
    w = Watcher(lumo_home)
    orig = w.retrieve(first)
    assert orig.rerun(["--seed=2"]) == 0
    df = Watcher(lumo_home).load()
    new = df[df.test_name != first].iloc[0]
    new_exp = Experiment.from_cache(new)
    assert new_exp.properties["rerun"] == {"from": first, "repeat": 1}
    assert new_exp.properties["rerun_of"] == first
    assert new_exp.properties["argv"] == ["--lr=1", "--seed=2"]
    assert Experiment.from_cache(df[df.test_name == first].iloc[0]).properties["rerun_at"] == new_exp.test_name
    assert new_exp.rerun([]) == 0  # a rerun of the rerun counts on
    third = [t for t in Watcher(lumo_home).load().test_name if t not in (first, new_exp.test_name)]
    assert Watcher(lumo_home).retrieve(third[0]).properties["rerun"] == {"from": new_exp.test_name, "repeat": 2}


def test_15_6_rerun_of_a_running_run_is_refused(lumo_home: Path) -> None:
    exp = _run(lumo_home)
    with pytest.raises(ValueError, match="still running"):
        exp.rerun([])
    exp.end()


# -- 15.7 Metric -----------------------------------------------------------------------------------------
def test_15_7_metric_file_as_in_lumo(tmp_path: Path) -> None:
    fn = tmp_path / "m" / "metric.json"
    m = Metric(fn)
    assert m.value == {}
    best = [m.dump_metric("acc", v, "max") for v in (2, 4, 1, 7, 5)]
    assert best == [2, 4, 4, 7, 7] and m.value["acc"] == 7
    assert m.dump_metrics({"k1": 1, "k2": 2}, "min") == {"k1": 1, "k2": 2}
    m.flush()
    assert json.loads(fn.read_text())["acc"] == 7
    assert Metric(fn).value["k2"] == 2  # read back
    with pytest.raises(ValueError, match="cmp"):
        m.dump_metric("acc", 1, "best")


def test_15_7_exp_metric_is_a_view_of_the_runs_metrics(lumo_home: Path) -> None:
    exp = _run(lumo_home)
    assert exp.metric.dump_metric("loss", 0.5, "min") == 0.5
    assert exp.metric.dump_metric("loss", 0.9, "min") == 0.5
    assert exp.metric.dump_metrics({"acc": 0.3, "f1": 0.2}, "max") == {"acc": 0.3, "f1": 0.2}
    assert exp.dump_metric("acc", 0.1, "max", True) == 0.3  # lumo's positional flush=True is no step
    assert exp.dump_metric("acc", 0.1, "max", flush=True) == 0.3
    exp.metric.flush()
    assert exp.metric.value == {"loss": 0.5, "acc": 0.3, "f1": 0.2}
    assert exp.metrics["acc"]["count"] == 3 and "flush" not in (exp.metrics["acc"].get("attachments") or {})
    exp.end()
    assert Experiment.from_disk(exp.info_dir).metric.value == {"loss": 0.5, "acc": 0.3, "f1": 0.2}
    assert lumo_hydra.Metric is Metric


# -- 15.8 C ------------------------------------------------------------------------------------------------
@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame({"name": ["Ann", "Bob", "Cy", "Dee", "Eve"], "age": [25, 30, 35, 40, 45],
                         "city": [{"index": i} for i in range(5)]})


def test_15_8_column_edits_add_and_drop(people: pd.DataFrame) -> None:
    add = C + {"city.index": "cindex"}
    assert add.op == "add_column"
    assert add.apply(people).columns.tolist() == ["name", "age", "city", "cindex"]
    assert add.apply(people)["cindex"].tolist() == [0, 1, 2, 3, 4]
    assert (C + "city.index").apply(people)["city.index"].tolist() == [0, 1, 2, 3, 4]
    assert (C - "city").op == "drop_column"
    assert (C - "city").apply(people).columns.tolist() == ["name", "age"]
    assert (C - ["city", "name"]).apply(people).columns.tolist() == ["age"]
    assert (-C["city"]).apply(people).columns.tolist() == ["name", "age"]
    assert people.columns.tolist() == ["name", "age", "city"]  # not changed in place
    with pytest.raises(ValueError, match="'ciyt'"):
        (C - "ciyt").apply(people)
    with pytest.raises(ValueError):
        C + 5  # type: ignore[operator]


def test_15_8_pipe_and_op_names(people: pd.DataFrame) -> None:
    out = C.pipe(people, [C["age"] > 35, C + {"city.index": "cindex"}, C - ["city", "name"]])
    assert out.shape == (2, 2) and out.columns.tolist() == ["age", "cindex"]
    assert out["cindex"].tolist() == [3, 4]
    assert [(C["age"] >= 1).op, (C["age"] <= 1).op, (C["age"] == 1).op, (C["age"] != 1).op,
            (C["age"] > 1).op, (C["age"] < 1).op, C["age"].in_([1]).op, C["age"].not_in_([1]).op] == \
        [">=", "<=", "==", "!=", ">", "<", "in", "notin"]
    assert C["age"].not_in_([25, 30]).apply(people)["age"].tolist() == [35, 40, 45]
    assert not isinstance(C.pipe, type(C["pipe"]))
    with pytest.raises(ValueError, match="C.pipe"):
        C.pipe(people, ["age"])  # type: ignore[list-item]


# -- 11.5 paths outside the run's folders -----------------------------------------------------------------
@pytest.mark.parametrize("meth,path", [("mk_ipath", "../../x"), ("mk_bpath", "/abs/x"), ("mk_cpath", "a/../../../x"),
                                        ("mk_bpath", "../other-run/ckpt.pt")])
def test_11_5_mk_paths_refuse_to_leave_the_run(lumo_home: Path, tmp_path: Path, meth: str, path: str) -> None:
    exp = _run(lumo_home)
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=repr(path)):
        getattr(exp, meth)(path)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # no folder was created
    assert Path(getattr(exp, meth)("a/../b/c.txt")).parent.is_dir()  # staying inside is fine
    exp.end()


def test_11_5_mk_path_through_a_symlink_out_is_refused(lumo_home: Path, tmp_path: Path) -> None:
    exp = _run(lumo_home)
    outside = tmp_path / "outside"
    outside.mkdir()
    Path(exp.blob_dir).mkdir(parents=True)
    os.symlink(outside, Path(exp.blob_dir) / "link")
    with pytest.raises(ValueError, match="link/x"):
        exp.mk_bpath("link/x")
    exp.end()


# -- 11.6 names ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [".hidden", "..x", "-rf", "--help", "-"])
def test_11_6_names_starting_with_dot_or_dash_are_refused(lumo_home: Path, name: str) -> None:
    with pytest.raises(LumoValueError, match=repr(name)):
        Experiment(name, home=lumo_home)
    with pytest.raises(LumoValueError, match=repr(name)):
        Experiment("ok", home=lumo_home, test_name=name)
    assert not (lumo_home / "experiments" / name).exists()
    Experiment("ok-name.v2", home=lumo_home)  # a dot or dash inside is fine


def test_15_6_rerun_of_a_running_original_leaves_its_record_to_its_writer(lumo_home: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    orig = _run(lumo_home)
    orig.heartbeat_interval = 0
    orig._writer.write_heartbeat()  # type: ignore[union-attr]  # alive: a fresh heartbeat and our pid
    monkeypatch.setenv("LUMO_RERUN_OF", str(orig.test_name))
    new = _run(lumo_home)
    assert new.properties["rerun"] == {"from": orig.test_name, "repeat": 1}
    new.end()
    monkeypatch.delenv("LUMO_RERUN_OF")
    assert "rerun_at" not in json.loads((Path(orig.info_dir) / "run.json").read_text())
    orig.end()
    assert "rerun_at" not in Experiment.from_disk(orig.info_dir).properties
    again = _run(lumo_home)  # without the variable: no rerun keys
    assert "rerun" not in again.properties and "rerun_of" not in again.properties
    again.end()


LUMO_README = '''
import random
from lumo_hydra import SimpleExperiment, Params

exp = SimpleExperiment(exp_name='my_exp_a')
exp.start()

params = Params()
params.dataset = params.choice('cifar10', 'cifar100')
params.alpha = params.arange(default=1, left=0, right=10)
params.from_args()  # python3 train.py --dataset=cifar100 --alpha=0.2
print(params.to_dict())  # {"dataset": "cifar100", "alpha": 0.2}

exp.dump_info('params', params.to_dict())
print(exp.test_name)

params.to_yaml(exp.mk_ipath('params.yaml'))

for i in range(10):
    max_acc = exp.dump_metric('Acc', random.random(), cmp='max')
    print(f'Max acc {max_acc}')

    ckpt_fn = exp.mk_bpath('checkpoints', f'model_{i}.ckpt')
    open(ckpt_fn, 'w').write('ckpt')  # save code given ckpt_fn

exp.end()
'''

LUMO_README_WATCHER = '''
from lumo_hydra import Experiment, Watcher

w = Watcher()
df = w.load()
exp = Experiment.from_cache(df.iloc[0].to_dict())
print("PROPS", exp.properties['params'], exp.test_name)
'''


def test_15_lumos_readme_quick_start_runs_with_the_import_changed(tmp_path: Path) -> None:
    """lumo's README "embedding into existing projects" and Watcher snippets, with ``lumo`` -> ``lumo_hydra``
    (its Logger/Meter/Record lines left out: the trainer's meters are out of scope, docs/from-lumo.md)."""
    env = {**os.environ, "LUMO_HOME": str(tmp_path / "store"), "LUMO_CACHE": str(tmp_path / "cache"),
           "HOME": str(tmp_path)}
    (tmp_path / "train.py").write_text(LUMO_README)
    (tmp_path / "watch.py").write_text(LUMO_README_WATCHER)
    p = subprocess.run([sys.executable, "train.py", "--dataset=cifar100", "--alpha=0.2"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "{'dataset': 'cifar100', 'alpha': 0.2}" in p.stdout
    maxes = [float(line.split()[-1]) for line in p.stdout.splitlines() if line.startswith("Max acc")]
    assert len(maxes) == 10 and maxes == sorted(maxes)  # the best so far, as lumo's dump_metric returns it
    [info] = (tmp_path / "store" / "experiments" / "my_exp_a").iterdir()
    rec = json.loads((info / "run.json").read_text())
    assert rec["status"] == "finished" and rec["params"] == {"dataset": "cifar100", "alpha": 0.2}
    assert "cifar100" in (info / "params.yaml").read_text()
    assert len(list((tmp_path / "store").rglob("model_*.ckpt"))) == 10
    w = subprocess.run([sys.executable, "watch.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert w.returncode == 0, w.stderr[-3000:]
    assert f"PROPS {{'dataset': 'cifar100', 'alpha': 0.2}} {info.name}" in w.stdout
