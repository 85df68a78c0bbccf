"""Watcher on stores written by the real API (Experiment / SimpleExperiment), including killed runs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lumo_hydra import C, Experiment, Watcher

RUNNER = r"""
import sys, time
from lumo_hydra import Experiment
exp = Experiment("victim", heartbeat_interval=0.2)
exp.start()
exp.dump_metric("loss", 1.0, cmp="min")
exp.flush()
print(exp.test_name, flush=True)
while True:
    time.sleep(0.05)
"""


def _wait_status(w: Watcher, name: str, want: str, timeout: float = 15.0) -> str:
    deadline = time.time() + timeout
    st = ""
    while time.time() < deadline:
        df = w.load()
        st = df.loc[df["test_name"] == name, "status"].iloc[0]
        if st == want:
            return st
        time.sleep(0.1)
    return st


def test_real_runs_load_with_metrics_and_status(lumo_home: Path) -> None:
    for i, outcome in enumerate(["finished", "failed"]):
        exp = Experiment("real", heartbeat_interval=0)
        exp.start()
        exp.dump_params({"lr": 0.1 * (i + 1), "model": {"depth": 18}})
        for s in range(5):
            exp.dump_metric("acc", 0.1 * s + i, cmp="max", step=s)
        exp.add_tags(f"t{i}")
        if outcome == "failed":
            try:
                raise RuntimeError("boom")
            except RuntimeError as e:
                exp.end(exception=e)
        else:
            exp.end()
    w = Watcher()
    df = w.load()
    assert len(df) == 2 and set(df["status"]) == {"finished", "failed"}
    flat = w.load(flatten=True)
    assert flat["metrics.acc"].tolist() == pytest.approx([0.4, 1.4])
    assert flat["params.model.depth"].tolist() == [18, 18]
    name = df["test_name"][0]
    assert len(w.history(name, "acc")) == 5
    exp2 = w.retrieve(name)
    assert exp2.test_name == name
    assert len(df[C["params.lr"] > 0.15]) == 1


def test_sigkilled_run_is_crashed_and_stopped_run_goes_stale(lumo_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    env = dict(os.environ)
    w = Watcher(stale_after=1.5)
    procs = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    try:
        names = [p.stdout.readline().strip() for p in procs]  # type: ignore[union-attr]
        assert all(names)
        df = w.load()
        assert set(df["status"]) == {"running"}
        # 1) SIGKILL: no end record; the pid is gone on this host -> crashed
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=10)
        assert _wait_status(w, names[0], "crashed") == "crashed"
        # 2) SIGSTOP: the process exists but its heartbeat stops -> crashed after the staleness limit
        procs[1].send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        df = w.load()
        assert df.loc[df["test_name"] == names[1], "status"].iloc[0] == "running"
        assert _wait_status(w, names[1], "crashed") == "crashed"
        assert _wait_status(Watcher(stale_after=600), names[1], "running") == "running"  # the limit is the user's
        rec = Watcher().record(names[0])
        assert rec["recorded_status"] == "running" and rec["status"] == "crashed"
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
