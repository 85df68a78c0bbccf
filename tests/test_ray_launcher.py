"""The Ray launcher (local cluster) with ``hydra/callbacks=lumo``.

hydra-ray-launcher 1.2.2 pins ``cloudpickle<3`` while joblib 1.5+ (the joblib launcher) needs
``cloudpickle>=3``, so it cannot share the test environment. This test runs when the current interpreter
has it, or when ``LUMO_TEST_RAY_PYTHON`` names an interpreter that has it, e.g.::

    python -m venv --system-site-packages /tmp/venv-ray && /tmp/venv-ray/bin/pip install hydra-ray-launcher==1.2.2
    LUMO_TEST_RAY_PYTHON=/tmp/venv-ray/bin/python python -m pytest -q tests/test_ray_launcher.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

APP = '''
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    import lumo_hydra
    lumo_hydra.current_experiment().dump_metric("acc", 0.5 + 0.1 * cfg.x, cmp="max")
    return {"acc": 0.5 + 0.1 * cfg.x}

if __name__ == "__main__":
    main()
'''


def _ray_python() -> str | None:
    candidate = os.environ.get("LUMO_TEST_RAY_PYTHON") or sys.executable
    r = subprocess.run([candidate, "-c", "import hydra_plugins.hydra_ray_launcher, ray"], capture_output=True)
    return candidate if r.returncode == 0 else None


@pytest.mark.slow
def test_ray_local_cluster_records_every_job(git_repo: Path, tmp_path: Path) -> None:
    py = _ray_python()
    if py is None:
        pytest.skip("hydra-ray-launcher not installed (it pins cloudpickle<3, see this module's docstring)")
    (git_repo / "app.py").write_text(APP)
    home = tmp_path / "store"
    env = dict(os.environ, LUMO_HOME=str(home), HOME=str(tmp_path / "home"), RAY_AUTH_MODE="disabled",
               RAY_USAGE_STATS_ENABLED="0")
    r = subprocess.run([py, "app.py", "-m", "hydra/callbacks=lumo", "hydra/launcher=ray", "+x=1,2",
                        f"hydra.sweep.dir={tmp_path}/multirun"], cwd=git_repo, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    recs = [json.loads(p.read_text()) for p in home.glob("experiments/app/*/run.json")]
    assert sorted(x["params"]["x"] for x in recs) == [1, 2]
    assert {x["status"] for x in recs} == {"finished"}
    assert {x["hydra"]["launcher"].rsplit(".", 1)[-1] for x in recs} == {"RayLauncher"}
    assert len({x["sweep"] for x in recs}) == 1 and len({x["git"]["commit"] for x in recs}) == 1
    assert {x["pinfo"]["pid"] for x in recs}.isdisjoint({os.getpid()})
