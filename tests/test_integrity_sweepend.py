"""Issue 11.11: ``sweeps/<id>/sweep-end.json`` says how a sweep ended (real Hydra multiruns as subprocesses);
a sweep whose launcher is gone without one is judged ``crashed``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from test_hydra_record import APP

from lumo_hydra.store.sweepend import read_sweep_end, sweep_status


@pytest.fixture
def project(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (git_repo / "app.py").write_text(APP)
    (git_repo / ".gitignore").write_text("multirun/\noutputs/\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "app")
    monkeypatch.setenv("LUMO_HOME", str(tmp_path / "store"))
    monkeypatch.chdir(git_repo)
    return git_repo


def _sweep(home: Path) -> tuple[str, dict[str, Any]]:
    [d] = list((home / "sweeps").iterdir())
    return d.name, json.loads((d / "sweep.json").read_text())


def _multirun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "app.py", "-m", "hydra/callbacks=lumo", *args,
                           f"hydra.sweep.dir={tmp_path}/multirun"], capture_output=True, text=True, timeout=300)


def test_finished_sweep_has_end_record(project: Path, tmp_path: Path) -> None:
    r = _multirun(tmp_path, "x=1,2,3")
    assert r.returncode == 0, r.stderr
    home = tmp_path / "store"
    sid, sweep = _sweep(home)
    end = read_sweep_end(home, sid)
    assert end is not None and end["status"] == "finished"
    assert end["jobs"] == {"expected": 3, "started": 3, "finished": 3, "failed": 0}
    assert sweep["pinfo"]["pid"] != os.getpid() and sweep["expected_jobs"] == 3
    assert sweep_status(sweep, end) == "finished"


def test_failed_job_makes_a_failed_sweep(project: Path, tmp_path: Path) -> None:
    r = _multirun(tmp_path, "x=1,2", "mode=raise,ok")
    assert r.returncode != 0
    home = tmp_path / "store"
    sid, sweep = _sweep(home)
    end = read_sweep_end(home, sid)
    assert end is not None and end["status"] == "failed", (end, r.stderr[-2000:])
    assert end["jobs"]["expected"] == 4 and end["jobs"]["failed"] >= 1
    assert end["jobs"]["finished"] < end["jobs"]["expected"]


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, "interrupted"), (signal.SIGKILL, "crashed")])
def test_sweep_cut_short(project: Path, tmp_path: Path, sig: int, status: str) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    p = subprocess.Popen([sys.executable, "app.py", "-m", "hydra/callbacks=lumo", "mode=sleep", "x=1,2,3",
                          f"hydra.sweep.dir={tmp_path}/multirun"], env=dict(os.environ, MARKER_DIR=str(markers)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not list(markers.iterdir()):
        assert p.poll() is None, p.communicate()
        assert time.time() < deadline
        time.sleep(0.05)
    home = tmp_path / "store"
    sid, sweep = _sweep(home)
    assert read_sweep_end(home, sid) is None and sweep_status(sweep, None) == "running"
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    end = read_sweep_end(home, sid)
    assert sweep_status(sweep, end) == status, err[-2000:]
    if sig == signal.SIGKILL:
        assert end is None  # nothing could be written: the reader judges the dead launcher
    else:
        assert end is not None and end["jobs"]["started"] == 1 and end["jobs"]["finished"] == 0
        assert end["jobs"]["expected"] == 3


def test_watcher_sweep_attrs(project: Path, tmp_path: Path) -> None:
    from lumo_hydra.watcher.watcher import Watcher

    r = _multirun(tmp_path, "x=1,2")
    assert r.returncode == 0, r.stderr
    home = tmp_path / "store"
    sid, sweep = _sweep(home)
    df = Watcher(home).sweep(sid)
    assert len(df) == 2 and df.attrs["sweep_status"] == "finished" and df.attrs["sweep_end"]["jobs"]["started"] == 2
    (home / "sweeps" / sid / "sweep-end.json").unlink()  # as if the launcher died before writing it
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    from lumo_hydra.store.procinfo import process_start_time

    rec = {**sweep, "pinfo": {**sweep["pinfo"], "pid": dead.pid, "pstart": process_start_time()}}
    (home / "sweeps" / sid / "sweep.json").write_text(json.dumps(rec))
    df = Watcher(home).sweep(sid)
    assert df.attrs["sweep_end"] is None and df.attrs["sweep_status"] == "crashed"
