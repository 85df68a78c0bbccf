"""Watcher on stores written per docs/store.md: columns, flattening, filters, C, status, the incremental
index, corrupt and deleted runs, concurrent writers."""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import psutil
import pytest
from test_watcher_fake import this_host, write_run

from lumo_hydra import C, Watcher
from lumo_hydra.errors import LumoValueError, RunNotFoundError, StoreError, StoreWarning
from lumo_hydra.store.status import judge_status
from lumo_hydra.watcher import RunRef


def age(root: Path, seconds: float = 30.0, pattern: str = "*/*/*.json") -> None:
    """Backdate record files so the index trusts them (files written in the last 2 s are 'racy')."""
    t = time.time() - seconds
    for p in (root / "experiments").glob(pattern):
        os.utime(p, (t, t))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    now = time.time()
    write_run(root, "cls", counter=1, params={"lr": 0.1, "model": {"depth": 18}}, metrics={"Acc": (0.8, "max")},
              tags=["base"], start=now - 3000)
    write_run(root, "cls", counter=2, params={"lr": 0.3, "model": {"depth": 50}}, metrics={"Acc": (0.9, "max"),
              "loss": (0.1, "min")}, tags=["base", "best"], start=now - 2000, sweep="261128.000.swt", job_num=1)
    write_run(root, "cls", counter=3, status="failed", params={"lr": 1.0}, start=now - 1000,
              sweep="261128.000.swt", job_num=0)
    write_run(root, "gan", counter=1, status="running", host=this_host(), pid=os.getpid(),
              pstart=psutil.Process().create_time(), start=now - 100)
    write_run(root, "gan", counter=2, status="running", heartbeat=now - 1000, start=now - 5000)  # stale
    age(root)
    return root


def test_columns_and_values(store: Path) -> None:
    df = Watcher(store).load()
    for col in ["exp_name", "test_name", "params", "metrics", "git", "progress", "execute", "exception", "note",
                "tags", "lock", "hooks", "info_dir", "status", "host", "start", "end", "duration", "sweep"]:
        assert col in df.columns, col
    assert len(df) == 5
    assert list(df["start"]) == sorted(df["start"])  # oldest first
    row = df[df["params"].map(lambda p: p.get("lr") == 0.3)].iloc[0]
    assert row["metrics"] == {"Acc": 0.9, "loss": 0.1} and row["metrics_last"]["Acc"] == pytest.approx(0.81)
    assert row["duration"] == pytest.approx(10.0) and row["sweep"] == "261128.000.swt"
    assert isinstance(df["start"].dtype, pd.DatetimeTZDtype)
    assert os.path.isdir(row["info_dir"])
    assert dict(df.groupby("status").size()) == {"finished": 2, "failed": 1, "running": 1, "crashed": 1}


def test_flatten(store: Path) -> None:
    df = Watcher(store).load(flatten=True)
    for col in ["params.lr", "params.model.depth", "metrics.Acc", "metrics.Acc.last", "lock.digest",
                "pinfo.host", "exception.type"]:
        assert col in df.columns, col
    assert "params" not in df.columns and "metrics" not in df.columns
    assert df.sort_values("metrics.Acc", ascending=False)["params.lr"].iloc[0] == 0.3
    assert df["params.lr"].dtype == float


def test_filters(store: Path) -> None:
    w = Watcher(store)
    assert set(w.load(exp="gan")["exp_name"]) == {"gan"}
    assert len(w.load(exp="c*")) == 3
    assert list(w.load(status="crashed")["exp_name"]) == ["gan"]
    assert len(w.load(status=["finished", "failed"])) == 3
    assert len(w.load(since="1h")) == 4 and len(w.load(until="1h")) == 1 and len(w.load(since="40m")) == 3
    assert len(w.load(sweep="261128.000")) == 2
    assert len(w.load(tag="best")) == 1 and len(w.load(tag=["base", "best"])) == 1
    with pytest.raises(LumoValueError, match="status.*'done'.*allowed"):
        w.load(status="done")
    with pytest.raises(LumoValueError, match="since.*yesterday"):
        w.load(since="yesterday")


def test_condition_helper_on_nested_and_flat(store: Path) -> None:
    w = Watcher(store)
    for df in (w.load(), w.load(flatten=True)):
        assert len(df[C["params.lr"] >= 0.3]) == 2
        sel = df[C["params.model.depth"] == 50]
        assert len(sel) == 1 and sel[C["params.lr"] == 0.3].shape[0] == 1
        assert len(df[(C["metrics.Acc"] > 0.5) & ~(C["status"] == "failed")]) == 2
        assert len(df[C["metrics.Acc.last"] > 0.8]) == 1
        assert len(df[C["tags"].contains("best") | C["exp_name"].isin(["gan"])]) == 3
        assert len(df.loc[C["exception.type"].notna()]) == 1
    assert len(w.load(where=C["status"] == "running")) == 1
    with pytest.raises(LumoValueError, match="unknown column 'parms.lr'"):
        w.load(where=C["parms.lr"] > 1)
    with pytest.raises(TypeError):
        bool(C["a"] > 1)


def test_status_judging_pure() -> None:
    now = 1000.0
    rec = {"status": "running", "pinfo": {"host": "h", "pid": 1, "pstart": 5.0}, "progress": {}}
    assert judge_status(rec, 990.0, now=now, host="other") == "running"
    assert judge_status(rec, 800.0, now=now, host="other") == "crashed"
    assert judge_status(rec, 800.0, now=now, stale_after=300, host="other") == "running"
    assert judge_status(rec, 990.0, now=now, host="h", alive=lambda pid, ps: False) == "crashed"
    assert judge_status(rec, 990.0, now=now, host="h", alive=lambda pid, ps: True) == "running"
    assert judge_status({"status": "killed"}, None, now=now) == "killed"
    assert judge_status({"progress": {"last_edit_time": "1970-01-01T00:16:35+00:00"}}, None, now=now,
                        host="x") == "running"
    # a pid reused by another process (different start time) is not the run
    me = psutil.Process()
    mine = {"status": "running", "pinfo": {"host": "h", "pid": me.pid, "pstart": me.create_time() - 3600}}
    assert judge_status(mine, time.time(), now=time.time(), host="h") == "crashed"
    mine["pinfo"]["pstart"] = me.create_time()
    assert judge_status(mine, time.time(), now=time.time(), host="h") == "running"


def test_stale_after_is_configurable(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write_run(root, "e", status="running", heartbeat=time.time() - 60)
    assert Watcher(root).load()["status"][0] == "running"
    assert Watcher(root, stale_after=30).load()["status"][0] == "crashed"
    with pytest.raises(LumoValueError, match="stale_after"):
        Watcher(root, stale_after=0)


def test_incremental_index_reads_only_changed_runs(store: Path) -> None:
    w = Watcher(store)
    w.clear_cache()
    w.load()
    assert w.stats["read"] == 5
    w2 = Watcher(store)  # a new reader (e.g. a new process) uses the index on disk
    w2.load()
    assert w2.stats == {"scanned": 5, "read": 0, "cached": 5, "skipped": 0, "removed": 0}
    # change one run's metrics, delete another, add a new one
    d = Path(w2.load(exp="cls")["info_dir"][0])
    m = json.loads((d / "metrics.json").read_text())
    m["Acc"]["best"] = 0.99
    (d / "metrics.json").write_text(json.dumps(m))

    shutil.rmtree(w2.load(exp="gan")["info_dir"][1])
    write_run(store, "new", counter=1)
    age(store, 20, f"{d.parent.name}/{d.name}/metrics.json")
    age(store, 20, "new/*/*.json")
    w3 = Watcher(store)
    df = w3.load()
    assert w3.stats == {"scanned": 5, "read": 2, "cached": 3, "skipped": 0, "removed": 1}
    assert 0.99 in [m.get("Acc") for m in df["metrics"]]
    assert "new" in set(df["exp_name"])
    # the index is disposable: deleted, it is rebuilt
    os.unlink(w3.index_path)
    w4 = Watcher(store)
    assert len(w4.load()) == 5 and w4.stats["read"] == 5
    # a garbage index is ignored and rebuilt
    Path(w4.index_path).write_bytes(b"garbage")
    w5 = Watcher(store)
    assert len(w5.load()) == 5 and w5.stats["read"] == 5
    # a filtered load keeps the other experiments' index entries
    w6 = Watcher(store)
    w6.load(exp="new")
    w7 = Watcher(store)
    w7.load()
    assert w7.stats["read"] == 0


def test_recently_written_runs_are_reread(tmp_path: Path) -> None:
    root = tmp_path / "s"
    write_run(root, "e")
    w = Watcher(root)
    w.load()
    w.load()
    assert w.stats["read"] == 1  # written < 2 s ago: its mtime could repeat, so it is not trusted yet


def test_corrupt_and_truncated_records_are_skipped_with_warning(store: Path) -> None:
    bad = write_run(store, "cls", counter=9)
    text = (bad / "run.json").read_text()
    (bad / "run.json").write_text(text[: len(text) // 2])
    half = write_run(store, "cls", counter=10, metrics={"Acc": (0.5, "max")})
    (half / "metrics.json").write_text('{"Acc": {"best"')
    (store / "experiments" / "cls" / "260101.001.zzt").mkdir()  # claimed, run.json not yet written
    with pytest.warns(UserWarning) as rec:
        df = Watcher(store).load()
    msgs = [str(r.message) for r in rec]
    assert any(str(bad / "run.json") in m for m in msgs)
    assert any(str(half / "metrics.json") in m for m in msgs)
    assert len(msgs) == 2
    assert len(df) == 6 and bad.name not in set(df["test_name"])
    assert df[df["test_name"] == half.name]["metrics"].iloc[0] == {}
    (bad / "run.json").write_text("[1, 2]")
    with pytest.warns(UserWarning) as rec2:
        Watcher(store).load()
    assert any("expected a JSON object" in str(r.message) for r in rec2)


def test_damaged_files_warn_through_the_reader_and_record_names_the_file(store: Path) -> None:
    bad = write_run(store, "cls", counter=9)
    (bad / "run.json").write_text("{")
    with pytest.warns(StoreWarning, match="skipped corrupt or truncated record " + re.escape(str(bad / "run.json"))):
        assert len(Watcher(store).load()) == 5
    with pytest.raises(StoreError, match=re.escape(str(bad / "run.json"))):
        Watcher(store).record(bad.name)
    shutil.rmtree(bad)
    sweep = store / "sweeps" / "261128.000.swt"
    sweep.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sweep.json is normal: no warning
        assert "sweep" not in Watcher(store).sweep("261128.000").attrs
    (sweep / "sweep.json").write_text('{"sweep_id": "261128.000.swt", "jobs"')
    with pytest.warns(StoreWarning, match=re.escape(str(sweep / "sweep.json"))):
        assert "sweep" not in Watcher(store).sweep("261128.000").attrs
    (sweep / "sweep.json").write_text('{"sweep_id": "261128.000.swt"}')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Watcher(store).sweep("261128.000").attrs["sweep"] == {"sweep_id": "261128.000.swt"}


def test_run_refs_pickle() -> None:
    ref = RunRef("e", "t", "/x/e/t")
    assert pickle.loads(pickle.dumps(ref)) == ref and pickle.loads(pickle.dumps(ref)).info_dir == "/x/e/t"


def test_retrieve_history_sweep_and_resolve(store: Path) -> None:
    d = write_run(store, "hist", counter=7, metrics={"Acc": (0.9, "max"), "loss": (0.2, "min")}, history_steps=5)
    with open(d / "history.jsonl", "a") as f:
        f.write('{"k": "Acc", "v": 1.0, "s"')  # a line still being written
    w = Watcher(store)
    h = w.history(d.name, "Acc")
    assert list(h.columns) == ["metric", "step", "value", "time"] and list(h["step"]) == [0, 1, 2, 3, 4]
    assert len(w.history(d.name)) == 10
    with pytest.raises(LumoValueError, match="did you mean Acc"):
        w.history(d.name, "acc")
    sw = w.sweep("261128.000")
    assert [h["job_num"] for h in sw["hydra"]] == [0, 1]
    assert w.resolve(d.name[:10]).test_name == d.name
    assert w.resolve(f"hist/{d.name}").info_dir == str(d)
    with pytest.raises(RunNotFoundError, match="did you mean"):
        w.resolve(d.name[:-1] + "q")
    with pytest.raises(RunNotFoundError, match="ambiguous"):
        w.resolve(d.name[:4])


_WRITER = r"""
import json, os, sys, time
sys.path.insert(0, {tests!r})
from lumo_hydra.store.files import atomic_write_json
d = sys.argv[1]
i = 0
end = time.time() + float(sys.argv[2])
while time.time() < end:
    i += 1
    rec = json.load(open(os.path.join(d, "run.json")))
    rec["params"] = {{"i": i, "pad": "x" * (i % 2000)}}
    rec["note"] = "n" * (i % 3000)
    atomic_write_json(os.path.join(d, "run.json"), rec)
    atomic_write_json(os.path.join(d, "metrics.json"), {{"Acc": {{"best": i, "last": i, "cmp": "max"}}}})
"""


def test_concurrent_writer_never_shows_half_a_record(tmp_path: Path) -> None:
    root = tmp_path / "s"
    dirs = [write_run(root, "e", counter=i, params={"i": 0}, metrics={"Acc": (0.0, "max")}) for i in range(3)]
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(tests=str(Path(__file__).parent)))
    procs = [subprocess.Popen([sys.executable, str(script), str(d), "4"]) for d in dirs]
    try:
        loads = 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a half record would warn: make it fail
            deadline = time.time() + 3.5
            while time.time() < deadline:
                for flat in (False, True):
                    df = Watcher(root).load(flatten=flat)
                    assert len(df) == 3
                    for _, r in df.iterrows():
                        i = r["params"]["i"] if not flat else r["params.i"]
                        note = r["note"]
                        assert note == "n" * (i % 3000)  # params and note come from one complete run.json
                loads += 1
        assert loads > 3
    finally:
        for p in procs:
            p.wait(timeout=30)
    assert all(p.returncode == 0 for p in procs)
