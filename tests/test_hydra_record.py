"""Every Hydra job recorded: real Hydra apps run as subprocesses (under ``-Werror``) in real git repositories,
with the basic, joblib and submitit-local launchers, failures, exits and signals."""
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
from hydra.test_utils.test_utils import run_python_script

APP = '''
import os, sys, time
import hydra
from omegaconf import OmegaConf
import lumo_hydra

@hydra.main(version_base="1.3", config_path=None, config_name="config")
def main(cfg):
    exp = lumo_hydra.current_experiment()
    assert exp is not None, "no current experiment in the job"
    exp.dump_metric("acc", 0.5 + 0.1 * cfg.x, cmp="max", step=0)
    exp.dump_metric("acc", 0.1, cmp="max", step=1)
    if cfg.mode == "raise":
        raise RuntimeError(f"boom x={cfg.x}")
    if cfg.mode == "exit3":
        sys.exit(3)
    if cfg.mode == "sleep":
        open(os.path.join(os.environ["MARKER_DIR"], f"started.{os.getpid()}"), "w").close()
        time.sleep(60)
    return {"acc": 0.5 + 0.1 * cfg.x, "loss": 1.0 / (1 + cfg.x)}

if __name__ == "__main__":
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="config", node={"x": 1, "mode": "ok", "name": "${mode}-${x}"})
    main()
'''

DECORATED = '''
import lumo_hydra

@lumo_hydra.main(version_base="1.3", config_path=None, config_name="config")
def main(cfg, exp):
    assert exp is lumo_hydra.current_experiment()
    exp.dump_metric("acc", 0.25, cmp="max")
    return 0.25

if __name__ == "__main__":
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="config", node={"x": 1})
    main()
'''


@pytest.fixture
def project(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with the Hydra app committed, a dirty edit and an untracked file."""
    (git_repo / "app.py").write_text(APP)
    (git_repo / "decorated.py").write_text(DECORATED)
    (git_repo / ".gitignore").write_text("*.log\noutputs/\nmultirun/\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "app")
    (git_repo / "train.py").write_text("print('edited')\n")
    (git_repo / "new_module.py").write_text("X = 1\n")
    monkeypatch.setenv("LUMO_HOME", str(tmp_path / "store"))
    monkeypatch.chdir(git_repo)
    return git_repo


def runs(home: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted((home / "experiments").glob("*/*/run.json")):
        rec = json.loads(p.read_text())
        rec["_metrics"] = json.loads((p.parent / "metrics.json").read_text()) if (p.parent / "metrics.json").exists() else {}
        out.append(rec)
    return out


def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_run_mode_records_everything(project: Path, tmp_path: Path) -> None:
    head = git(project, "rev-parse", "HEAD").strip()
    index_before = (project / ".git" / "index").read_bytes()
    run_python_script(["app.py", "hydra/callbacks=lumo", "x=2", f"hydra.run.dir={tmp_path}/out"])
    [rec] = runs(store(tmp_path))
    assert rec["status"] == "finished"
    assert rec["exp_name"] == "app"
    assert rec["params"] == {"x": 2, "mode": "ok", "name": "ok-2"}  # resolved
    assert rec["hydra"]["overrides"] == ["x=2"]
    assert rec["hydra"]["output_dir"] == str(tmp_path / "out")
    assert rec["sweep"] is None
    # code: a snapshot of the dirty tree on a side ref, user state untouched
    g = rec["git"]
    assert g["base"] == head and g["dirty"] is True and g["commit"] != head
    assert git(project, "show", f"{g['commit']}:new_module.py") == "X = 1\n"
    assert git(project, "rev-parse", "HEAD").strip() == head
    assert (project / ".git" / "index").read_bytes() == index_before
    # command: re-runnable, from the original folder
    cmd = rec["execute"]["command"]
    assert cmd.startswith(f"cd {project} && ") and "app.py" in cmd and "x=2" in cmd and "hydra/callbacks=lumo" in cmd
    # metrics: best kept, return value recorded as metrics too
    assert rec["_metrics"]["acc"]["best"] == pytest.approx(0.7)
    assert rec["_metrics"]["acc"]["last"] == pytest.approx(0.1)
    assert rec["_metrics"]["loss"]["last"] == pytest.approx(1 / 3)
    assert rec["return_value"] == {"acc": pytest.approx(0.7), "loss": pytest.approx(1 / 3)}
    assert rec["lock"]["packages"] > 10
    assert all(h["loaded"] for h in rec["hooks"].values()), rec["hooks"]
    assert set(rec["hooks"]) == {"ConsoleOutput", "GitCommit", "LockFile", "LastCmd", "RecordAbort", "Diary", "FinalReport"}
    diary = list((store(tmp_path) / "diary").glob("*.log"))
    assert diary and rec["test_name"] in diary[0].read_text()


def test_rerun_command_reproduces_the_job(project: Path, tmp_path: Path) -> None:
    run_python_script(["app.py", "hydra/callbacks=lumo", "x=3"])
    [rec] = runs(store(tmp_path))
    subprocess.run(rec["execute"]["command"], shell=True, check=True, capture_output=True, cwd=tmp_path)
    recs = runs(store(tmp_path))
    assert len(recs) == 2
    assert recs[0]["params"] == recs[1]["params"]


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_multirun_records_every_job_and_one_sweep(project: Path, tmp_path: Path, launcher: str) -> None:
    run_python_script(["app.py", "-m", "hydra/callbacks=lumo", f"hydra/launcher={launcher}", "x=1,2,3",
                       f"hydra.sweep.dir={tmp_path}/multirun"])
    recs = runs(store(tmp_path))
    assert len(recs) == 3
    assert len({r["test_name"] for r in recs}) == 3
    assert sorted(r["params"]["x"] for r in recs) == [1, 2, 3]
    assert {r["status"] for r in recs} == {"finished"}
    # one snapshot for the whole sweep, made by the launching process
    assert len({r["git"]["commit"] for r in recs}) == 1
    refs = git(project, "for-each-ref", "refs/lumo").splitlines()
    assert len(refs) == 1, refs
    # one sweep record, every job linked to it
    [sweep_dir] = list((store(tmp_path) / "sweeps").iterdir())
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert {r["sweep"] for r in recs} == {sweep["sweep_id"]}
    assert sweep["overrides"]["task"] == ["x=1,2,3"]
    assert sweep["git"]["commit"] == recs[0]["git"]["commit"]
    assert "-m" in sweep["command"]
    markers = sorted(p.name for p in (sweep_dir / "jobs").iterdir())
    assert markers == sorted(f"{r['hydra']['job_num']}.{r['test_name']}" for r in recs)
    # each job's command re-runs that job alone
    for r in recs:
        cmd = r["execute"]["command"]
        assert f"x={r['params']['x']}" in cmd and " -m" not in cmd and "hydra/launcher" not in cmd
    if launcher == "joblib":
        assert len({r["pinfo"]["pid"] for r in recs}) >= 1
        assert all(r["hydra"]["launcher"].endswith("JoblibLauncher") for r in recs)


@pytest.mark.slow
def test_submitit_local_launcher(project: Path, tmp_path: Path) -> None:
    run_python_script(["app.py", "-m", "hydra/callbacks=lumo", "hydra/launcher=submitit_local",
                       "hydra.launcher.timeout_min=1", "x=1,2", f"hydra.sweep.dir={tmp_path}/multirun"])
    recs = runs(store(tmp_path))
    assert sorted(r["params"]["x"] for r in recs) == [1, 2]
    assert {r["status"] for r in recs} == {"finished"}
    assert len({r["sweep"] for r in recs}) == 1
    assert len({r["git"]["commit"] for r in recs}) == 1


def test_failing_job_records_traceback(project: Path, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "app.py", "-m", "hydra/callbacks=lumo", "x=1,2", "mode=raise,ok",
                        f"hydra.sweep.dir={tmp_path}/multirun"], capture_output=True, text=True)
    assert r.returncode != 0
    recs = runs(store(tmp_path))
    assert len(recs) == 4
    failed = [x for x in recs if x["params"]["mode"] == "raise"]
    assert {x["status"] for x in failed} == {"failed"}
    for x in failed:
        assert x["exception"]["type"] == "RuntimeError"
        assert f"boom x={x['params']['x']}" in x["exception"]["msg"]
        assert "Traceback" in x["exception"]["traceback"] and "app.py" in x["exception"]["traceback"]
        assert x["_metrics"]["acc"]["best"] > 0.5  # metrics before the failure are kept
    assert {x["status"] for x in recs if x["params"]["mode"] == "ok"} == {"finished"}


def test_sys_exit_in_task(project: Path, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "app.py", "hydra/callbacks=lumo", "mode=exit3"], capture_output=True, text=True)
    assert r.returncode == 3
    [rec] = runs(store(tmp_path))
    assert rec["status"] == "failed"
    assert rec["progress"]["end_code"] == 3


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, "killed"), (signal.SIGINT, "interrupted"), (signal.SIGKILL, "running")])
def test_signals(project: Path, tmp_path: Path, sig: int, status: str) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = dict(os.environ, MARKER_DIR=str(markers))
    p = subprocess.Popen([sys.executable, "app.py", "hydra/callbacks=lumo", "mode=sleep",
                          "+hydra.callbacks.lumo.heartbeat_interval=0.2"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not list(markers.iterdir()):
        assert p.poll() is None, p.communicate()
        assert time.time() < deadline
        time.sleep(0.05)
    p.send_signal(sig)
    p.wait(timeout=30)
    [rec] = runs(store(tmp_path))
    assert rec["status"] == status, rec
    if sig == signal.SIGKILL:  # no handler can run: the record stays open, the heartbeat goes stale

        hb = float((Path(rec["paths"]["info_dir"]) / "heartbeat").read_text())
        assert time.time() - hb < 30
        assert rec["progress"]["end"] is None
    else:
        assert rec["progress"]["end"] is not None


def test_decorator_records_and_passes_exp(project: Path, tmp_path: Path) -> None:
    run_python_script(["decorated.py", "x=5"])
    [rec] = runs(store(tmp_path))
    assert rec["status"] == "finished" and rec["exp_name"] == "decorated"
    assert rec["_metrics"]["acc"]["best"] == 0.25
    assert rec["return_value"] == 0.25
    # the injected override is not part of the recorded command
    assert "++hydra.callbacks" not in rec["execute"]["command"]
    # selecting the option as well does not make a second recorder
    run_python_script(["decorated.py", "x=6", "hydra/callbacks=lumo"])
    assert len(runs(store(tmp_path))) == 2


def test_switches_and_chdir(project: Path, tmp_path: Path) -> None:
    run_python_script(["app.py", "hydra/callbacks=lumo", "+hydra.callbacks.lumo.git=false",
                       "+hydra.callbacks.lumo.diary=false", "+hydra.callbacks.lumo.exp_name=custom"])
    [rec] = runs(store(tmp_path))
    assert rec["exp_name"] == "custom"
    assert rec["hooks"]["GitCommit"]["loaded"] is False
    assert "commit" not in rec["git"] or rec["git"]["commit"] is None
    assert not (store(tmp_path) / "diary").exists()
    # hydra.job.chdir=True: the repository is still found from the original working directory
    run_python_script(["app.py", "hydra/callbacks=lumo", "hydra.job.chdir=True", f"hydra.run.dir={tmp_path}/elsewhere"])
    rec2 = [r for r in runs(store(tmp_path)) if r["exp_name"] == "app"][0]
    assert rec2["git"]["repo"] == str(project)
    assert rec2["git"]["commit"]


def test_home_from_config_and_unwritable_home(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-store"
    run_python_script(["app.py", "hydra/callbacks=lumo", f"+hydra.callbacks.lumo.home={other}"])
    assert len(runs(other)) == 1
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = subprocess.run([sys.executable, "app.py", "hydra/callbacks=lumo", f"+hydra.callbacks.lumo.home={blocker}/store"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert str(blocker) in r.stderr


def test_cli_rerun_of_a_sweep_job_runs_that_job_alone(project: Path, tmp_path: Path) -> None:
    run_python_script(["app.py", "-m", "hydra/callbacks=lumo", "hydra/launcher=joblib", "x=1,2",
                       f"hydra.sweep.dir={tmp_path}/multirun"])
    recs = runs(store(tmp_path))
    job = next(r for r in recs if r["params"]["x"] == 2)
    # the job's execute block describes the job, not the launcher's worker process
    assert job["execute"]["exec_file"] == str(project / "app.py")
    assert "-m" not in job["execute"]["exec_argv"] and "x=2" in job["execute"]["exec_argv"]
    assert job["execute"]["cwd"] == str(project)
    r = subprocess.run([sys.executable, "-m", "lumo_hydra", "rerun", job["test_name"], "mode=ok"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    new = [x for x in runs(store(tmp_path)) if x.get("rerun_of") == job["test_name"]]
    assert len(new) == 1, [x["params"] for x in new]
    assert new[0]["params"] == job["params"] and new[0]["sweep"] is None
    assert len(runs(store(tmp_path))) == 3


def test_unknown_option_is_an_error(project: Path, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "app.py", "hydra/callbacks=lumo", "+hydra.callbacks.lumo.dairy=false"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "hydra.callbacks.lumo.dairy" in r.stderr and "did you mean 'diary'" in r.stderr
    assert not (store(tmp_path) / "experiments").exists() or not runs(store(tmp_path))


LEAN = '''
import sys
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name="config")
def main(cfg):
    heavy = ("lumo_hydra.params.params", "lumo_hydra.params.validators", "lumo_hydra.watcher", "difflib", "pandas",
             "torch", "git", "psutil")
    print("LOADED", sorted(m for m in heavy if m in sys.modules))

if __name__ == "__main__":
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="config", node={"x": 1})
    main()
'''


def test_recording_a_plain_app_loads_nothing_heavy(project: Path, tmp_path: Path) -> None:
    """What a recorded job of a plain (no typed Params) app imports: none of the heavy or unneeded
    modules (each costs every launching process its import time)."""
    (project / "lean.py").write_text(LEAN)
    out, _ = run_python_script(["lean.py", "-m", "x=1,2", "hydra/callbacks=lumo", f"hydra.sweep.dir={tmp_path}/mr"])
    assert out.count("LOADED []") == 2, out
    assert len(runs(store(tmp_path))) == 2


COUNTED = '''
import lumo_hydra
import lumo_hydra.params.validation as V

calls = []
_orig = V.validate_config

def counting(cfg, **kw):
    calls.append(1)
    return _orig(cfg, **kw)

V.validate_config = counting

@lumo_hydra.main(version_base="1.3", config_path=None, config_name="config")
def main(cfg):
    print("VALIDATED", len(calls))

if __name__ == "__main__":
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="config", node={"x": 1})
    main()
'''


def test_a_run_mode_job_validates_its_config_once(project: Path, tmp_path: Path) -> None:
    """RUN mode: the callback checks the config in on_run_start, and the job (same process) does not check
    the same values again; each job of a multirun still checks its own composed config."""
    (project / "counted.py").write_text(COUNTED)
    out, _ = run_python_script(["counted.py", f"hydra.run.dir={tmp_path}/run"])
    assert "VALIDATED 1" in out, out
    out, _ = run_python_script(["counted.py", "-m", "x=1,2", f"hydra.sweep.dir={tmp_path}/mr"])
    # the launching process checks the base config (1 call), then each job its own (basic launcher: same process)
    assert "VALIDATED 2" in out and "VALIDATED 3" in out, out
