"""The standard hooks: each records its part, a failing hook never breaks the run, all of them pickle."""
from __future__ import annotations

import json
import logging
import os
import pickle
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git

from lumo_hydra.record.experiment import Experiment
from lumo_hydra.record.hooks import (
    Diary,
    ExpHook,
    FinalReport,
    GitCommit,
    LastCmd,
    LockFile,
    RecordAbort,
    build_command,
    default_hooks,
)

PY = sys.executable


def load(exp: Experiment) -> dict:
    return json.loads((Path(exp.info_dir) / "run.json").read_text())


class Boom(ExpHook):
    def on_start(self, exp: Experiment) -> None:
        raise RuntimeError("start went wrong")


class BoomAtEnd(ExpHook):
    def on_end(self, exp: Experiment) -> None:
        raise OSError("disk full")


def test_a_failing_hook_is_recorded_and_the_run_goes_on(lumo_home: Path) -> None:
    exp = Experiment("hooks", hooks=[Boom(), BoomAtEnd(), LastCmd(command="x")], heartbeat_interval=0).start()
    exp.dump_metric("a", 1)
    exp.end()
    rec = load(exp)
    assert rec["status"] == "finished"
    assert rec["hooks"]["Boom"] == {"loaded": False, "msg": "on_start failed: RuntimeError: start went wrong"}
    assert rec["hooks"]["BoomAtEnd"] == {"loaded": False, "msg": "on_end failed: OSError: disk full"}
    assert rec["hooks"]["LastCmd"] == {"loaded": True, "msg": ""} and rec["execute"]["command"] == "x"


def test_hooks_pickle_with_their_settings() -> None:
    hooks = [GitCommit(result={"commit": "abc"}, path="/x"), LockFile(), LastCmd(command="c"), RecordAbort(),
             Diary(enabled=False), FinalReport(fallback_stderr=False)]
    back = pickle.loads(pickle.dumps(hooks))
    assert [h.name for h in back] == [h.name for h in hooks]
    assert back[0].result == {"commit": "abc"} and back[2].command == "c" and back[4].enabled is False


def test_git_commit_with_a_given_result_does_no_git_work(lumo_home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git reachable at all: any git call would fail
    snap = {"commit": "a" * 40, "base": "b" * 40, "branch": "main", "dirty": True, "repo": "/r",
            "ref": "refs/lumo/snapshots/sweep", "skipped": [], "msg": ""}
    exp = Experiment("given", hooks=[GitCommit(result=snap)], heartbeat_interval=0).start()
    exp.end()
    rec = load(exp)
    assert rec["git"] == snap and rec["execute"]["repo"] == "/r" and rec["hooks"]["GitCommit"]["loaded"]


def test_git_commit_snapshots_the_repo(lumo_home: Path, git_repo: Path, monkeypatch) -> None:
    (git_repo / "train.py").write_text("print('changed')\n")
    head = git(git_repo, "rev-parse", "HEAD").strip()
    monkeypatch.chdir(git_repo)
    exp = Experiment("snap", hooks=[GitCommit()], heartbeat_interval=0).start()
    exp.end()
    g = load(exp)["git"]
    assert g["commit"] and g["base"] == head and g["dirty"] is True, g
    assert exp.exp_name in g["ref"] and exp.test_name in g["ref"]
    assert git(git_repo, "show", f"{g['commit']}:train.py") == "print('changed')\n"
    assert git(git_repo, "rev-parse", "HEAD").strip() == head
    assert load(exp)["execute"]["repo"] == str(git_repo)


def test_git_commit_outside_a_repo_is_recorded_not_raised(lumo_home: Path, tmp_path: Path) -> None:
    exp = Experiment("norepo", hooks=[GitCommit(path=str(tmp_path))], heartbeat_interval=0).start()
    exp.end()
    g = load(exp)["git"]
    assert g["commit"] is None and g["msg"]


def test_lock_file(lumo_home: Path) -> None:
    exp = Experiment("lock", hooks=[LockFile()], heartbeat_interval=0).start()
    exp.end()
    rec = load(exp)
    assert rec["hooks"]["LockFile"]["loaded"], rec["hooks"]
    lock = rec["lock"]
    assert lock["packages"] > 10 and (lumo_home / lock["file"]).is_file()
    props = exp.properties["lock"]  # the full package map merged with the summary
    assert props["packages"]["hydra-core"] == "1.3.8"
    assert props["n_packages"] == lock["packages"] and props["digest"] == lock["digest"]


def test_last_cmd_is_re_runnable(tmp_path: Path, lumo_home: Path) -> None:
    work = tmp_path / "my project"
    work.mkdir()
    (work / "train.py").write_text(
        "import sys, json\n"
        "from lumo_hydra.record.experiment import Experiment\n"
        "from lumo_hydra.record.hooks import LastCmd\n"
        "exp = Experiment('cmd', hooks=[LastCmd()], heartbeat_interval=0).start()\n"
        "exp.end()\n"
        "print(json.dumps(sys.argv[1:]))\n"
    )
    args = ["lr=0.1", "name=it's a test", "$HOME"]
    out = subprocess.run([PY, "train.py", *args], cwd=work, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == args
    runs = sorted((lumo_home / "experiments" / "cmd").iterdir())
    cmd = json.loads((runs[0] / "run.json").read_text())["execute"]["command"]
    assert cmd.startswith(f"cd {shlex.quote(str(work))} && ")
    assert sorted(os.listdir(work)) == ["train.py"]  # nothing written into the user's folder
    out2 = subprocess.run(["bash", "-c", cmd], cwd="/", capture_output=True, text=True, check=True).stdout
    assert json.loads(out2) == args  # the recorded command runs again with the same arguments
    assert len(list((lumo_home / "experiments" / "cmd").iterdir())) == 2


def test_build_command_module_and_explicit() -> None:
    assert build_command(["a.py", "x=1"], cwd="/w", executable="/py") == "cd /w && /py a.py x=1"
    assert build_command(["-c"], cwd="/w", executable="/py") == "cd /w && /py -c"
    out = subprocess.run([PY, "-m", "json.tool", "--help"], capture_output=True, text=True)  # sanity: -m runs
    assert out.returncode == 0
    code = "import runpy, sys; from lumo_hydra.record.hooks import build_command; print(build_command())"
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert r.stdout.strip() == f"cd / && {shlex.quote(PY)} -c"


def test_diary_appends_one_line_per_run(lumo_home: Path) -> None:
    for status in ("finished", "failed"):
        exp = Experiment("diary", hooks=[LastCmd(command="python t.py"), Diary()], heartbeat_interval=0).start()
        exp.dump_metric("Acc", 0.5, cmp="max")
        exp.end(status=status)
    lines = (lumo_home / "diary" / (time.strftime("%Y-%m-%d") + ".log")).read_text().splitlines()
    assert len(lines) == 2
    fields = lines[1].split("\t")
    assert fields[1:] == ["diary", exp.test_name, "failed", "Acc=0.5(max)", "python t.py"]


def test_final_report_logs_to_the_lumo_hydra_logger(lumo_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lumo_hydra")
    exp = Experiment("report", hooks=[FinalReport()], heartbeat_interval=0).start()
    exp.dump_metric("loss", 0.25, cmp="min")
    exp.end()
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "lumo_hydra")
    assert exp.test_name in text and "finished" in text and "loss=0.25(min)" in text and exp.info_dir in text


def test_final_report_without_logging_goes_to_stderr_unless_quiet(tmp_path: Path, lumo_home: Path) -> None:
    code = ("from lumo_hydra.record.experiment import Experiment; from lumo_hydra.record.hooks import FinalReport; "
            "Experiment('r', hooks=[FinalReport()], heartbeat_interval=0).start().end()")
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout == "" and "lumo-hydra run r/" in r.stderr
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "LUMO_QUIET": "1"})
    assert r.stderr == ""


def test_default_hooks_are_fresh_objects() -> None:
    a, b = default_hooks(), default_hooks()
    assert all(x is not y for x, y in zip(a, b))


def test_hydra_style_job_is_fast(lumo_home: Path) -> None:
    """The path the Hydra callback takes (snapshot given, command given): no git, no pip, cheap."""
    snap = {"commit": "a" * 40, "msg": ""}
    hooks = [GitCommit(result=snap), LastCmd(command="python app.py -m"), LockFile(), Diary(), FinalReport(fallback_stderr=False)]
    Experiment("warm", hooks=hooks, heartbeat_interval=0).start().end()  # warm caches (lock cache)
    t0 = time.perf_counter()
    n = 10
    for _ in range(n):
        exp = Experiment("fast", hooks=hooks, heartbeat_interval=10).start(sweep="s", hydra={"job_num": 0})
        exp.dump_metric("acc", 0.5)
        exp.end(return_value=0.5)
    per_job = (time.perf_counter() - t0) / n
    assert per_job < 0.5  # generous; the benchmark measures the real figure
