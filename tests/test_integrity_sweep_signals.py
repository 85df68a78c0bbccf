"""Issue 11.10/11.11: records that tell the truth when a sweep is cut short by a signal (real Hydra multiruns
with the joblib and basic launchers as subprocesses, real signals, real loky workers)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import git

from lumo_hydra.store.procinfo import process_start_time
from lumo_hydra.store.status import process_alive
from lumo_hydra.store.sweepend import read_sweep_end, sweep_status
from lumo_hydra.store.times import parse_time

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")

APP = textwrap.dedent('''
    import os, signal, time
    import hydra
    import lumo_hydra

    @hydra.main(version_base="1.3", config_path=None, config_name="config")
    def main(cfg):
        exp = lumo_hydra.current_experiment()
        if os.environ.get("SLOW_SIGINT"):  # a job slow to react to Ctrl-C (e.g. a busy machine)
            prev = signal.getsignal(signal.SIGINT)

            def slow(signum, frame):
                time.sleep(float(os.environ["SLOW_SIGINT"]))
                prev(signum, frame)

            signal.signal(signal.SIGINT, slow)
        for i in range(int(cfg.n)):
            exp.dump_metric("loss", 1.0 / (i + 1), step=i)
            if i == 3:
                open(os.path.join(os.environ["MARKER_DIR"], f"started.{os.getpid()}.{cfg.x}"), "w").close()
            time.sleep(0.05)
        return 1.0

    if __name__ == "__main__":
        from hydra.core.config_store import ConfigStore
        ConfigStore.instance().store(name="config", node={"x": 1, "n": 2000})
        main()
''')


@pytest.fixture
def project(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (git_repo / "app.py").write_text(APP)
    (git_repo / ".gitignore").write_text("multirun/\noutputs/\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "app")
    monkeypatch.chdir(git_repo)
    yield git_repo
    # never leave a job's process behind, even when a test failed (old code left loky workers running)
    for f in (tmp_path / "store").glob("experiments/*/*/run.json"):
        pinfo = json.loads(f.read_text()).get("pinfo") or {}
        if pinfo.get("pid") and process_alive(pinfo["pid"], pinfo.get("pstart")):
            os.kill(pinfo["pid"], signal.SIGKILL)


def _launch(tmp_path: Path, launcher: str, jobs: str = "1,2,3,4",
            **env_extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = dict(os.environ, LUMO_HOME=str(tmp_path / "store"), MARKER_DIR=str(markers), **env_extra)
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    # its own process group, like a terminal's foreground job; output to files (workers inherit them)
    with open(tmp_path / "out.txt", "wb") as out, open(tmp_path / "err.txt", "wb") as err:
        p = subprocess.Popen([sys.executable, "app.py", "-m", "hydra/callbacks=lumo", f"hydra/launcher={launcher}",
                              *extra, f"x={jobs}", f"hydra.sweep.dir={tmp_path}/multirun"], env=env,
                             start_new_session=True, stdout=out, stderr=err)
    return p, markers


def _wait_started(p: subprocess.Popen[bytes], markers: Path, n: int, tmp_path: Path) -> None:
    deadline = time.time() + 180
    while len(list(markers.iterdir())) < n:
        assert p.poll() is None, (tmp_path / "err.txt").read_text()[-3000:]
        assert time.time() < deadline, "the jobs never started"
        time.sleep(0.05)


def _runs(home: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [(f.parent, json.loads(f.read_text())) for f in sorted((home / "experiments").glob("*/*/run.json"))]


def _wait_gone(pids: list[tuple[int, Any]], seconds: float = 60) -> list[int]:
    deadline = time.time() + seconds
    while time.time() < deadline:
        alive = [pid for pid, pstart in pids if process_alive(pid, pstart)]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def _sweep(home: Path) -> tuple[str, dict[str, Any]]:
    [d] = list((home / "sweeps").iterdir())
    return d.name, json.loads((d / "sweep.json").read_text())


def _snapshot(paths: list[Path]) -> dict[str, tuple[int, int]]:
    out = {}
    for d in paths:
        for f in d.iterdir():
            st = f.stat()
            out[str(f)] = (st.st_mtime_ns, st.st_size)
    return out


def test_11_10_joblib_ctrl_c_leaves_runs_interrupted_with_their_real_duration(project: Path, tmp_path: Path) -> None:
    p, markers = _launch(tmp_path, "joblib")
    _wait_started(p, markers, 2, tmp_path)
    first = min(f.stat().st_mtime for f in markers.iterdir())
    time.sleep(1.0)
    t_kill = time.time()
    os.killpg(p.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground process group
    p.wait(timeout=120)
    home = tmp_path / "store"
    runs = _runs(home)
    assert len(runs) == 2, [r["params"] for _, r in runs]
    for info, rec in runs:
        assert rec["status"] == "interrupted", (rec["status"], rec["progress"], (tmp_path / "err.txt").read_text()[-2000:])
        prog = rec["progress"]
        assert prog["end_code"] == -2 and prog["ended_by"] == "SIGINT"
        start, end = parse_time(prog["start"]), parse_time(prog["end"])
        assert start is not None and end is not None
        # the real duration: at least half the time the job is known to have run before the Ctrl-C
        assert end - start >= 0.5 * (t_kill - first), (end - start, t_kill - first)
        points = (info / "history.jsonl").read_bytes().splitlines()
        assert len(points) >= 4 and json.loads((info / "metrics.json").read_text())["loss"]["count"] == len(points)
    assert _wait_gone([(r["pinfo"]["pid"], r["pinfo"]["pstart"]) for _, r in runs]) == []
    sid, sweep = _sweep(home)
    end_rec = read_sweep_end(home, sid)
    assert sweep_status(sweep, end_rec) == "interrupted"
    from lumo_hydra.watcher.watcher import Watcher

    df = Watcher(home).load()
    assert set(df["status"]) == {"interrupted"}


def test_11_10_joblib_ctrl_c_waits_for_workers_slow_to_record(project: Path, tmp_path: Path) -> None:
    """loky SIGKILLs its workers as soon as the launcher's KeyboardInterrupt reaches joblib: the launcher
    first waits (bounded) for its jobs to write their own end, so a worker slow to react still records it
    (without the wait, both runs stayed "running" here)."""
    p, markers = _launch(tmp_path, "joblib", SLOW_SIGINT="0.6")
    _wait_started(p, markers, 2, tmp_path)
    os.killpg(p.pid, signal.SIGINT)
    p.wait(timeout=120)
    runs = _runs(tmp_path / "store")
    assert len(runs) == 2
    for _, rec in runs:
        assert rec["status"] == "interrupted", (rec["status"], (tmp_path / "err.txt").read_text()[-2000:])
        assert rec["progress"]["ended_by"] == "SIGINT"
    assert _wait_gone([(r["pinfo"]["pid"], r["pinfo"]["pstart"]) for _, r in runs]) == []


@pytest.mark.parametrize("sig, sweep_says", [(signal.SIGTERM, "killed"), (signal.SIGKILL, "crashed")])
def test_11_10_loky_workers_stop_when_the_launcher_dies_and_their_runs_end_killed(
        project: Path, tmp_path: Path, sig: int, sweep_says: str) -> None:
    p, markers = _launch(tmp_path, "joblib")
    _wait_started(p, markers, 2, tmp_path)
    home = tmp_path / "store"
    sid, sweep = _sweep(home)
    assert sweep["pinfo"]["pid"] == p.pid
    os.kill(p.pid, sig)  # the launching process alone (its workers get no signal)
    p.wait(timeout=60)
    runs = _runs(home)
    workers = sorted({(r["pinfo"]["pid"], r["pinfo"]["pstart"]) for _, r in runs})
    assert len(workers) == 2
    assert _wait_gone(workers) == [], "loky workers kept running after their launcher died"
    runs = _runs(home)
    assert len(runs) == 2 and len(list(markers.iterdir())) == 2  # no further job started
    for _, rec in runs:
        assert rec["status"] == "killed" and rec["progress"]["ended_by"] == "sweep launcher gone", rec["progress"]
        assert rec["progress"]["end_code"] == -15
    before = _snapshot([info for info, _ in runs])
    time.sleep(3)  # longer than a heartbeat tick: nothing writes any more
    assert _snapshot([info for info, _ in _runs(home)]) == before
    assert len(_runs(home)) == 2
    end_rec = read_sweep_end(home, sid)
    assert sweep_status(sweep, end_rec) == sweep_says
    if sig == signal.SIGTERM:
        assert end_rec is not None and end_rec["jobs"]["started"] == 2 and end_rec["jobs"]["expected"] == 4


def test_11_11_sigterm_to_a_basic_sweep_launcher_is_killed_not_crashed(project: Path, tmp_path: Path) -> None:
    p, markers = _launch(tmp_path, "basic", "1,2,3")
    _wait_started(p, markers, 1, tmp_path)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGTERM  # still dies by the signal
    home = tmp_path / "store"
    [(_, rec)] = _runs(home)
    assert rec["status"] == "killed" and rec["progress"]["ended_by"] == "SIGTERM"
    assert rec["hooks"]["Diary"]["loaded"] is True  # the full end ran (not only a provisional mark)
    sid, sweep = _sweep(home)
    end_rec = read_sweep_end(home, sid)
    assert end_rec is not None and end_rec["status"] == "killed", (tmp_path / "err.txt").read_text()[-2000:]
    assert end_rec["jobs"] == {"expected": 3, "started": 1, "finished": 0, "failed": 1}
    assert sweep_status(sweep, end_rec) == "killed"
    from lumo_hydra.watcher.watcher import Watcher

    assert Watcher(home).sweep(sid).attrs["sweep_status"] == "killed"


def test_11_10_a_job_whose_launcher_is_already_gone_never_starts(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    code = textwrap.dedent('''
        import sys
        from lumo_hydra.record.abort import stop_with_parent
        from lumo_hydra.store.status import this_host
        stop_with_parent({"pid": int(sys.argv[1]), "host": this_host(), "pstart": sys.argv[2]})
        print("TASK-RAN", flush=True)
    ''')
    r = subprocess.run([sys.executable, "-c", code, str(dead.pid), str(process_start_time())], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == -signal.SIGTERM and "TASK-RAN" not in r.stdout, (r.returncode, r.stdout, r.stderr)
    # a live launcher on this host, or one on another host: the job runs
    for pid, host in ((os.getpid(), "this"), (dead.pid, "elsewhere.example")):
        r = subprocess.run([sys.executable, "-c", code.replace("this_host()", "this_host()" if host == "this" else
                                                               repr(host)), str(pid), str(process_start_time())],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "TASK-RAN" in r.stdout, r.stderr
