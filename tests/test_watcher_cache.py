"""The Watcher's caches (the columnar index and the frame cache of the unfiltered load): a cached load
returns exactly what a load without any cache returns, after runs are changed, added and deleted, and
the status of unfinished runs is judged again at every load (a running run crashes without any file
changing)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from test_watcher_fake import this_host, write_run

from lumo_hydra import Watcher


def age(root: Path, seconds: float = 30.0) -> None:
    """Backdate record files so the caches trust them (files written in the last 2 s are 'racy')."""
    t = time.time() - seconds
    for p in (root / "experiments").glob("*/*/*.json"):
        if os.stat(p).st_mtime > t:
            os.utime(p, (t, t))


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    # durations of running runs grow between two loads: compare them loosely, everything else exactly
    pd.testing.assert_frame_equal(a.drop(columns=["duration"]), b.drop(columns=["duration"]))
    pd.testing.assert_series_equal(a["duration"], b["duration"], check_exact=False, rtol=1e-3)


def check_all_loads(root: Path, *watchers: Watcher) -> pd.DataFrame:
    """Every way of loading (cached on disk in a new Watcher, cached in memory, no cache) agrees."""
    truth = Watcher(root, cache=False).load()
    same(Watcher(root, cache=False, workers=3).load(), truth)  # read by threads, as on NFS
    for w in (*watchers, Watcher(root)):
        same(w.load(), truth)
        same(w.load(flatten=True), Watcher(root, cache=False).load(flatten=True))
        same(w.load(exp="a*", status="finished"), Watcher(root, cache=False).load(exp="a*", status="finished"))
    return truth


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    now = time.time()
    for i in range(6):
        write_run(root, "a" if i % 2 else "b", counter=i, params={"lr": i / 10, "model": {"depth": 18 + i}},
                  metrics={"Acc": (0.5 + i / 20, "max")}, tags=["x"] if i % 3 else [], start=now - 1000 + i)
    write_run(root, "a", counter=9, status="failed", start=now - 500)
    age(root)
    return root


def test_cached_loads_equal_uncached_loads_through_changes(store: Path) -> None:
    w = Watcher(store)
    w.clear_cache()
    check_all_loads(store, w)
    assert os.path.isfile(w.index_path) and os.path.isfile(w.frame_path)
    w2 = Watcher(store)
    w2.load()
    assert w2.stats == {"scanned": 7, "read": 0, "cached": 7, "skipped": 0, "removed": 0}

    # a changed record, changed metrics, a new run with a key no other run has and no 'version'
    exp_a = sorted((store / "experiments" / "a").iterdir())
    rec = json.loads((exp_a[0] / "run.json").read_text())
    rec["note"] = "changed"
    (exp_a[0] / "run.json").write_text(json.dumps(rec))
    m = json.loads((exp_a[1] / "metrics.json").read_text())
    m["Acc"]["best"] = 0.99
    (exp_a[1] / "metrics.json").write_text(json.dumps(m))  # in place, not atomic: still seen
    d = write_run(store, "c", counter=1, extra={"rerun_of": "x", "only_here": {"k": 1}, "version": None})
    age(store)
    w3 = Watcher(store)
    df = w3.load()
    assert w3.stats == {"scanned": 8, "read": 3, "cached": 5, "skipped": 0, "removed": 0}
    assert "changed" in set(df["note"]) and 0.99 in [x.get("Acc") for x in df["metrics"]]
    assert "only_here" in df.columns
    check_all_loads(store, w, w3)

    # the only run with that key deleted: its column goes, as without a cache; a deleted run disappears
    shutil.rmtree(d)
    shutil.rmtree(exp_a[2])
    w4 = Watcher(store)
    df = w4.load()
    assert w4.stats["removed"] == 2 and len(df) == 6
    assert "only_here" not in df.columns and d.name not in set(df["test_name"])
    assert df["version"].dtype == Watcher(store, cache=False).load()["version"].dtype
    check_all_loads(store, w, w3, w4)

    # same runs, one record rewritten (same size: only its inode and mtime change)
    p = exp_a[3] / "run.json"
    p.write_text(json.dumps(json.loads(p.read_text())))  # the spaced form, so one space can go below
    age(store)
    Watcher(store).load()
    p.write_text(p.read_text().replace('"note": "', '"note": "X', 1).replace('"exp_name": "a"', '"exp_name":"a"', 1))
    age(store)
    w6 = Watcher(store)
    assert "X" in set(w6.load()["note"]) and w6.stats["read"] == 1
    check_all_loads(store, w, w6)

    # a filtered load updates the index: the frame cache is rebuilt from it (not from the old frame)
    write_run(store, "b", counter=20, start=time.time() - 10)
    age(store)
    assert len(Watcher(store).load(exp="b")) == 4
    w5 = Watcher(store)
    assert len(w5.load()) == 7 and w5.stats["read"] == 0
    check_all_loads(store, w, w5)


def test_frame_cache_files_are_disposable(store: Path) -> None:
    w = Watcher(store)
    n = len(w.load())
    Path(w.frame_path).write_bytes(b"garbage")
    assert len(Watcher(store).load()) == n
    os.unlink(w.frame_path)
    w2 = Watcher(store)
    assert len(w2.load()) == n and w2.stats["read"] == 0  # rebuilt from the index, nothing read again
    with open(w2.frame_path, "r+b") as f:  # a damaged pickle after a valid header
        f.seek(-100, os.SEEK_END)
        f.write(b"\0" * 100)
    check_all_loads(store)


def test_returned_frames_are_copies_of_the_cache(store: Path) -> None:
    w = Watcher(store)
    df = w.load()
    df["note"] = "mine"
    df.loc[0, "status"] = "running"
    del df["params"]
    for _ in range(2):  # the first load builds the frame cache, the next ones return it
        again = w.load()
        assert set(again["note"]) == {""} and "params" in again.columns and "running" not in set(again["status"])
        again["note"] = "mine"
        again.loc[0, "status"] = "running"
        del again["params"]


def test_a_cached_running_run_turns_crashed_without_any_file_changing(tmp_path: Path) -> None:
    root = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pstart = psutil.Process(proc.pid).create_time()
        now = time.time()
        d = write_run(root, "e", status="running", host=this_host(), pid=proc.pid, pstart=pstart, start=now - 50,
                      heartbeat=now + 3600)  # fresh for the whole test: only the dead process can crash it
        done = write_run(root, "e", counter=1, start=now - 100)
        stale = write_run(root, "e", counter=2, status="running", host="elsewhere.example", start=now - 40,
                          heartbeat=now)  # another host: judged by its heartbeat only
        age(root)
        w = Watcher(root, stale_after=4)
        df = w.load()
        assert dict(zip(df["test_name"], df["status"])) == {d.name: "running", stale.name: "running",
                                                           done.name: "finished"}
        assert os.path.isfile(w.frame_path)
        frame_before = Path(w.frame_path).read_bytes()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        time.sleep(4.5)  # the other host's heartbeat goes stale
        for reader in (w, Watcher(root, stale_after=4)):  # in memory, and from the file in a new reader
            df = reader.load()
            assert reader.stats["read"] == 0
            st = dict(zip(df["test_name"], df["status"]))
            assert st[d.name] == "crashed" and st[stale.name] == "crashed"
            dur = dict(zip(df["test_name"], df["duration"]))
            assert dur[stale.name] == pytest.approx(40, abs=2)  # start to the last heartbeat
        assert Path(w.frame_path).read_bytes() == frame_before  # nothing changed on disk: nothing rewritten
        same(Watcher(root, stale_after=4).load(), Watcher(root, stale_after=4, cache=False).load())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
