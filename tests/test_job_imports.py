"""The job path of ``hydra/callbacks=lumo`` imports no module it does not need (issue 18, H14).

A recorded one-job Hydra app prints ``sys.modules`` at exit; the modules made lazy (rarely used code,
heavy libraries) must not be there, while the recording modules must (so the check cannot pass by a
run that recorded nothing).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import git

APP = '''
import atexit, json, sys
import hydra

def dump():
    with open("modules.json", "w") as f:
        json.dump(sorted(sys.modules), f)

@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    atexit.register(dump)  # after Hydra's on_job_end / on_run_end: everything the run imported
    return {"acc": 0.5}

if __name__ == "__main__":
    main()
'''

# made lazy or never needed by one recorded job (docs/benchmarks.md, "Issue 18 ... imports")
NOT_IMPORTED = [
    "lumo_hydra.record.rerun", "lumo_hydra.record.rerun_link",  # only with $LUMO_RERUN_INFO / $LUMO_RERUN_OF
    "git", "pandas", "numpy", "rich", "psutil", "difflib", "importlib.metadata", "email",
    "lumo_hydra.watcher", "lumo_hydra.board", "lumo_hydra.share", "lumo_hydra.cli", "lumo_hydra.params.params",
]
RECORDING = ["lumo_hydra._hydra.callback", "lumo_hydra._hydra.job", "lumo_hydra.record.experiment",
             "lumo_hydra.record.gitsnap", "lumo_hydra.record.lockfile", "lumo_hydra.store.writer"]


def test_recorded_job_imports_no_lazy_module(tmp_path: Path, lumo_home: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("x: 0\n")
    (tmp_path / "app.py").write_text(APP)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "init")
    r = subprocess.run([sys.executable, "app.py", "hydra/callbacks=lumo"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    modules = set(json.loads((tmp_path / "modules.json").read_text()))
    runs = list((lumo_home / "experiments" / "app").glob("*/run.json"))
    assert len(runs) == 1
    rec = json.loads(runs[0].read_text())
    metrics = json.loads((runs[0].parent / "metrics.json").read_text())
    assert rec["status"] == "finished" and metrics["acc"]["last"] == 0.5
    assert [m for m in RECORDING if m not in modules] == []
    assert [m for m in NOT_IMPORTED if m in modules] == []


def test_callback_answers_every_hydra_hook() -> None:
    """A subclass of Hydra's ``Callback`` (kept on purpose: ~0.3 ms of imports is not worth leaving it)."""
    from hydra.experimental.callback import Callback

    from lumo_hydra._hydra.callback import LumoCallback
    from lumo_hydra.record.rerun import ENV_RERUN_INFO

    cb = LumoCallback(record=False, validate=False)
    hooks = [n for n in dir(Callback) if n.startswith("on_")]
    assert "on_job_end" in hooks
    assert all(callable(getattr(cb, n)) for n in hooks)
    assert isinstance(cb, Callback)
    assert ENV_RERUN_INFO == "LUMO_RERUN_INFO"  # the name record/experiment.py checks before importing
