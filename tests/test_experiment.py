"""The Experiment record in a plain script: every public method, properties, from_disk, current_experiment."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lumo_hydra.errors import LumoValueError, StoreError
from lumo_hydra.record.experiment import (
    Experiment,
    ExperimentStateError,
    SimpleExperiment,
    current_experiment,
)
from lumo_hydra.record.hooks import Diary, LastCmd
from lumo_hydra.store.ids import RUN_ID_RE
from lumo_hydra.store.reader import read_history

PY = sys.executable


def run_script(tmp_path: Path, code: str, home: Path, *, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    e = {**os.environ, "LUMO_HOME": str(home), **(env or {})}
    return subprocess.run([PY, str(script)], cwd=tmp_path, env=e, capture_output=True, text=True, timeout=timeout)


def only_run(home: Path, exp_name: str) -> Path:
    runs = sorted((home / "experiments" / exp_name).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def load(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def test_seed_snippet_verbatim(tmp_path: Path, lumo_home: Path) -> None:
    try:
        import lumo_hydra.params  # noqa: F401
    except Exception as e:  # written in parallel by another engineer
        pytest.skip(f"lumo_hydra.params (another engineer's Params) is not importable yet: {type(e).__name__}: {e}")
    r = run_script(tmp_path, """
        from lumo_hydra import Params, SimpleExperiment
        params = Params(); params.alpha = params.arange(default=1, left=0, right=10)
        exp = SimpleExperiment(exp_name='my_exp_a')
        exp.start()
        params.to_json(exp.mk_ipath('params.json'))
        exp.dump_metric('Acc', 0.1, cmp='max')
        print(exp.properties)
        exp.end()
    """, lumo_home)
    assert r.returncode == 0, r.stderr
    run = only_run(lumo_home, "my_exp_a")
    rec = load(run)
    assert rec["status"] == "finished" and rec["progress"]["end_code"] == 0
    assert rec["params"] == {"alpha": 1}
    assert json.loads((run / "params.json").read_text()) == {"alpha": 1}
    for key in ("exp_name", "test_name", "paths", "execute", "git", "lock", "hooks", "pinfo", "progress",
                "params", "note", "tags", "exception", "metrics", "status"):
        assert repr(key) in r.stdout, key
    assert set(rec["hooks"]) == {"ConsoleOutput", "GitCommit", "LockFile", "LastCmd", "RecordAbort", "Diary", "FinalReport"}
    assert "'params': {'alpha': 1}" in r.stdout  # properties read params.json while the run is going


def test_quickstart_example_runs(tmp_path: Path, lumo_home: Path) -> None:
    try:
        import lumo_hydra.params  # noqa: F401
    except Exception as e:  # written in parallel by another engineer
        pytest.skip(f"lumo_hydra.params is not importable yet: {type(e).__name__}: {e}")
    example = Path(__file__).parent.parent / "examples" / "quickstart" / "experiment_demo.py"
    r = subprocess.run([PY, str(example)], cwd=tmp_path, env={**os.environ, "LUMO_HOME": str(lumo_home)},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert load(only_run(lumo_home, "my_exp_a"))["status"] == "finished"


def test_simple_experiment_plain_script(tmp_path: Path, lumo_home: Path) -> None:
    """The seed without Params: every standard hook runs, nothing is written into the user's folder."""
    r = run_script(tmp_path, """
        import json
        from lumo_hydra import SimpleExperiment
        exp = SimpleExperiment(exp_name='my_exp_a')
        exp.start()
        exp.dump_metric('Acc', 0.1, cmp='max')
        props = exp.properties
        exp.end()
        print(json.dumps(props))
    """, lumo_home)
    assert r.returncode == 0, r.stderr
    props = json.loads(r.stdout)
    assert props["status"] == "running" and RUN_ID_RE.fullmatch(props["test_name"])
    assert props["metrics"]["Acc"]["best"] == 0.1
    assert props["pinfo"]["pid"] > 0 and props["pinfo"]["host"] and props["pinfo"]["pstart"] > 0
    assert props["execute"]["command"].endswith("script.py")
    assert props["execute"]["cwd"] == str(tmp_path)
    assert "finished" in r.stderr  # FinalReport falls back to stderr in a script without logging
    assert sorted(os.listdir(tmp_path)) == ["lumo-home", "script.py"]  # nothing written into the user's folder
    rec = load(only_run(lumo_home, "my_exp_a"))
    assert rec["status"] == "finished"
    assert all(h["loaded"] or "lockfile" in h["msg"] or "gitsnap" in h["msg"] for h in rec["hooks"].values()), rec["hooks"]


def test_every_method(lumo_home: Path) -> None:
    exp = Experiment("methods", hooks=[], heartbeat_interval=0)
    assert exp.status is None and current_experiment() is None
    with pytest.raises(ExperimentStateError, match="start"):
        exp.mk_ipath("x")
    exp.start(sweep="261128.000.aat", hydra={"job_num": 3})
    assert current_experiment() is exp
    assert exp.status == "running" and RUN_ID_RE.fullmatch(exp.test_name)
    info = Path(exp.info_dir)
    assert info == lumo_home / "experiments" / "methods" / exp.test_name

    p = Path(exp.mk_ipath("sub", "a.txt"))
    assert p.parent.is_dir() and not p.exists() and str(p).startswith(exp.info_dir)
    b = Path(exp.mk_bpath("ckpt", is_dir=True))
    assert b.is_dir() and b == lumo_home / "blob" / "methods" / exp.test_name / "ckpt"
    c = Path(exp.mk_cpath("tmp.bin"))
    assert c.parent == lumo_home / "cache" / "methods" / exp.test_name

    exp.dump_info("cfg", {"a": 1})
    exp.dump_info("cfg", {"b": 2}, append=True)
    exp.dump_info("events", "one")
    exp.dump_info("events", "two", append=True)
    exp.dump_string("log", "hello ")
    exp.dump_string("log", "world", append=True)
    exp.dump_note("a note")
    assert exp.add_tags("a", "b", "a") == ["a", "b"]
    assert exp.add_tags(["c"]) == ["a", "b", "c"]
    assert exp.remove_tags("b", "zz") == ["a", "c"]
    assert exp.dump_tags("x", "y") == ["x", "y"]
    exp.dump_progress(0.5)
    exp.update_record(params={"lr": 0.1})

    assert exp.dump_metric("loss", 3.0, cmp="min") == 3.0
    assert exp.dump_metric("loss", 1.0, step=10, epoch=1) == 1.0
    assert exp.dump_metric("loss", 2.0) == 1.0
    assert exp.dump_metrics({"acc": 0.5, "f1": 0.2}, cmp="max") == {"acc": 0.5, "f1": 0.2}
    assert exp.dump_metric("acc", 0.4) == 0.5
    assert exp.dump_metric("plain", 5) == 5 and exp.dump_metric("plain", 7) == 7  # cmp None: best = last

    rec = load(info)  # records are written at once
    assert rec["info"] == {"cfg": {"a": 1, "b": 2}, "events": ["one", "two"], "log": "hello world"}
    assert rec["note"] == "a note" and rec["tags"] == ["x", "y"] and rec["progress"]["ratio"] == 0.5
    assert rec["sweep"] == "261128.000.aat" and rec["hydra"] == {"job_num": 3} and rec["params"] == {"lr": 0.1}

    props = exp.properties
    assert props["cfg"] == {"a": 1, "b": 2}  # info entries also at top level, as in lumo
    assert props["metrics"]["loss"] == {"best": 1.0, "last": 2.0, "cmp": "min", "count": 3, "best_step": 10,
                                        "last_step": 2, "attachments": {"epoch": 1},
                                        "time": props["metrics"]["loss"]["time"]}
    exp.end()
    assert current_experiment() is None
    rec = load(info)
    assert rec["status"] == "finished" and rec["progress"]["end_code"] == 0 and rec["progress"]["ratio"] == 1.0
    metrics = json.loads((info / "metrics.json").read_text())
    assert metrics["acc"]["best"] == 0.5 and metrics["acc"]["last"] == 0.4 and metrics["plain"]["best"] == 7
    hist = list(read_history(info))
    assert [(h["k"], h["v"], h["s"]) for h in hist if h["k"] == "loss"] == [("loss", 3.0, 0), ("loss", 1.0, 10), ("loss", 2.0, 2)]
    assert len(hist) == 8
    with pytest.raises(ExperimentStateError, match="ended"):
        exp.dump_metric("loss", 0.0)
    exp.end()  # idempotent
    assert load(info)["status"] == "finished"


def test_bad_values_raise_value_errors(lumo_home: Path) -> None:
    for bad in ("a/b", "", "with space", "..", None, "é"):
        with pytest.raises(ValueError, match="exp_name"):
            Experiment(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="heartbeat_interval"):
        Experiment("ok", heartbeat_interval=-1)
    exp = Experiment("bad_values", heartbeat_interval=0).start()
    with pytest.raises(LumoValueError, match="'Acc'.*'mean'"):
        exp.dump_metric("Acc", 1.0, cmp="mean")
    exp.dump_metric("Acc", 1.0, cmp="max")
    with pytest.raises(LumoValueError, match="'Acc'.*'min'.*'max'"):
        exp.dump_metric("Acc", 1.0, cmp="min")
    with pytest.raises(LumoValueError, match="metric value: 'high'"):
        exp.dump_metric("Acc", "high")
    with pytest.raises(LumoValueError, match="progress ratio: 2"):
        exp.dump_progress(2)
    with pytest.raises(LumoValueError, match="status"):
        exp.update_record(status="finished")
    with pytest.raises(LumoValueError, match="tag"):
        exp.add_tags("")
    with pytest.raises(LumoValueError, match="status: 'done'"):
        exp.end(status="done")
    exp.end()


def test_metric_values_nan_numpy_and_torch_like(lumo_home: Path) -> None:
    np = pytest.importorskip("numpy")
    exp = Experiment("values", heartbeat_interval=0).start()
    assert exp.dump_metric("m", float("nan"), cmp="max") != exp.dump_metric("m", float("nan"))  # NaN best
    assert exp.dump_metric("m", np.float32(0.5)) == 0.5  # a real value replaces a NaN best
    assert exp.dump_metric("m", np.int64(2)) == 2
    assert exp.dump_metric("m", float("inf")) == float("inf")
    exp.end()
    hist = list(read_history(exp.info_dir))
    assert len(hist) == 5 and hist[-1]["v"] == float("inf")


def test_context_manager(lumo_home: Path) -> None:
    with Experiment("ctx", heartbeat_interval=0) as exp:
        exp.dump_metric("a", 1)
    assert load(Path(exp.info_dir))["status"] == "finished"

    with pytest.raises(ZeroDivisionError), Experiment("ctx", heartbeat_interval=0) as exp2:
        _ = 1 / 0
    rec = load(Path(exp2.info_dir))
    assert rec["status"] == "failed" and rec["progress"]["end_code"] == 1
    assert rec["exception"]["type"] == "ZeroDivisionError" and "1 / 0" in rec["exception"]["traceback"]

    with pytest.raises(KeyboardInterrupt), Experiment("ctx", heartbeat_interval=0) as exp3:
        raise KeyboardInterrupt
    assert load(Path(exp3.info_dir))["status"] == "interrupted"

    with pytest.raises(SystemExit), Experiment("ctx", heartbeat_interval=0) as exp4:
        sys.exit(3)
    rec = load(Path(exp4.info_dir))
    assert rec["status"] == "failed" and rec["progress"]["end_code"] == 3


def test_end_with_status_exception_and_return_value(lumo_home: Path) -> None:
    exp = Experiment("hydra_like", heartbeat_interval=0).start()
    try:
        raise ValueError("bad lr")
    except ValueError as e:
        err = e
    exp.end(status="failed", exception=err, return_value={"acc": 0.5})
    rec = load(Path(exp.info_dir))
    assert rec["status"] == "failed" and rec["exception"]["msg"] == "bad lr"
    assert rec["return_value"] == {"acc": 0.5}
    assert "ValueError: bad lr" in rec["exception"]["traceback"]


def test_from_disk_is_read_only(lumo_home: Path) -> None:
    exp = Experiment("disk", heartbeat_interval=0).start()
    exp.dump_metric("Acc", 0.7, cmp="max")
    exp.add_tags("t")
    exp.end()
    back = Experiment.from_disk(exp.info_dir)
    assert back.exp_name == "disk" and back.test_name == exp.test_name and back.status == "finished"
    assert back.properties["metrics"]["Acc"]["best"] == 0.7 and back.properties["tags"] == ["t"]
    assert back.info_dir == exp.info_dir and back.blob_dir == exp.blob_dir
    with pytest.raises(ExperimentStateError, match="read-only"):
        back.dump_note("x")
    with pytest.raises(ExperimentStateError):
        back.start()
    with pytest.raises(StoreError, match="no valid run record"):
        Experiment.from_disk(lumo_home)


def test_current_experiment_is_the_latest_started(lumo_home: Path) -> None:
    a = Experiment("cur", heartbeat_interval=0).start()
    b = Experiment("cur", heartbeat_interval=0).start()
    assert current_experiment() is b
    b.end()
    assert current_experiment() is a
    a.end()
    assert current_experiment() is None


def test_explicit_test_name_and_rerun_of(lumo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMO_RERUN_OF", "261127.003.abt")
    exp = Experiment("named", test_name="261128.999.zzt", heartbeat_interval=0).start()
    assert exp.test_name == "261128.999.zzt"
    exp.end()
    assert load(Path(exp.info_dir))["rerun_of"] == "261127.003.abt"
    with pytest.raises(StoreError, match="already exists"):
        Experiment("named", test_name="261128.999.zzt", heartbeat_interval=0).start()


def test_home_argument_and_hooks_subset(tmp_path: Path, lumo_home: Path) -> None:
    home = tmp_path / "other-home"
    exp = Experiment("h", home=home, hooks=[LastCmd(command="python train.py lr=0.1"), Diary(enabled=False)],
                     heartbeat_interval=0).start()
    exp.end()
    rec = load(Path(exp.info_dir))
    assert Path(exp.info_dir).is_relative_to(home) and not lumo_home.exists()
    assert rec["execute"]["command"] == "python train.py lr=0.1"
    assert rec["hooks"] == {"LastCmd": {"loaded": True, "msg": ""}, "Diary": {"loaded": False, "msg": "disabled"}}
    assert not (home / "diary").exists()


def test_simple_experiment_has_all_standard_hooks() -> None:
    exp = SimpleExperiment("names")
    assert [h.name for h in exp.hooks] == ["ConsoleOutput", "GitCommit", "LockFile", "LastCmd", "RecordAbort", "Diary", "FinalReport"]


def test_import_is_light() -> None:
    code = ("import sys, lumo_hydra.record.experiment, lumo_hydra.record.hooks, lumo_hydra.store.writer, lumo_hydra.record.abort; "
            "bad = [m for m in ('torch', 'pandas', 'git', 'hydra', 'omegaconf', 'psutil') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_pickling_gives_a_read_only_copy_or_a_fresh_unstarted_run(lumo_home: Path) -> None:
    import pickle

    fresh = pickle.loads(pickle.dumps(SimpleExperiment("pick", heartbeat_interval=0)))
    assert type(fresh) is SimpleExperiment and fresh.status is None and len(fresh.hooks) == 7
    exp = Experiment("pick", heartbeat_interval=0).start()
    exp.dump_metric("a", 1.0)
    copy = pickle.loads(pickle.dumps(exp))
    assert copy.test_name == exp.test_name and copy.status == "running"
    with pytest.raises(ExperimentStateError, match="read-only"):
        copy.dump_metric("a", 2.0)
    exp.end()
    assert pickle.loads(pickle.dumps(copy)).status == "finished"


def test_start_record_is_there_before_a_slow_hook_runs(lumo_home: Path) -> None:
    """A hook that is not known to be quick (here a plain object) sees the start record on disk; when
    every hook is quick, the record is written once, after them."""
    from lumo_hydra.record.hooks import LastCmd

    seen: list[bool] = []

    class Plain:  # not an ExpHook: counts as slow
        def on_start(self, exp: Experiment) -> None:
            seen.append((Path(exp.info_dir) / "run.json").exists())

        def on_end(self, exp: Experiment) -> None:
            pass

    Experiment("slow", hooks=[Plain()], heartbeat_interval=0).start().end()

    class Quick(LastCmd):
        def on_start(self, exp: Experiment) -> None:
            seen.append((Path(exp.info_dir) / "run.json").exists())
            super().on_start(exp)

    exp = Experiment("quick", hooks=[Quick(command="x")], heartbeat_interval=0).start()
    assert seen == [True, False]
    assert json.loads((Path(exp.info_dir) / "run.json").read_text())["execute"]["command"] == "x"
    exp.end()


def test_a_start_that_cannot_write_its_record_is_not_left_open(lumo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lumo_hydra import current_experiment
    from lumo_hydra.errors import StoreError
    from lumo_hydra.record import abort
    from lumo_hydra.record.hooks import RecordAbort
    from lumo_hydra.store.writer import RunWriter

    def refuse(self: RunWriter) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunWriter, "write_record", refuse)
    exp = Experiment("full", hooks=[RecordAbort()], heartbeat_interval=0)
    with pytest.raises(StoreError, match="No space left"):
        exp.start()
    assert current_experiment() is not exp and exp not in abort.open_runs() and not exp.is_running
