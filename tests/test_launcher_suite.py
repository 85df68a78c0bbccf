"""Hydra's own launcher contract (``LauncherTestSuite``, 9 tests) still holds with ``hydra/callbacks=lumo``
added, for the basic, joblib and submitit-local launchers."""
from __future__ import annotations

import json

import pytest
from hydra.test_utils.launcher_common_tests import LauncherTestSuite

CB = ["hydra/callbacks=lumo"]


@pytest.fixture(autouse=True)
def _outside_this_repository(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's jobs run in this process and are recorded: run them from a folder outside this
    repository, so their code snapshots do not land in its refs."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.mark.parametrize(
    "launcher_name, overrides",
    [
        ("basic", CB),
        ("joblib", CB),
        pytest.param("submitit_local", CB + ["hydra.launcher.timeout_min=1"], marks=pytest.mark.slow),
    ],
)
class TestLauncherSuiteWithLumo(LauncherTestSuite):
    pass


@pytest.mark.usefixtures("hydra_restore_singletons")
@pytest.mark.parametrize("launcher_name", ["basic", "joblib"])
def test_suite_sweep_is_recorded(hydra_sweep_runner, launcher_name: str, tmp_path_factory: pytest.TempPathFactory,
                                 monkeypatch: pytest.MonkeyPatch, tmpdir) -> None:
    """The same sweep the suite runs, with recording on: both jobs are in the store, with one sweep."""
    from hydra.test_utils.launcher_common_tests import sweep_2_jobs

    lumo_home = tmp_path_factory.mktemp("store")  # not under tmpdir: the sweep runner deletes that
    monkeypatch.setenv("LUMO_HOME", str(lumo_home))
    sweep_2_jobs(hydra_sweep_runner, overrides=["hydra/launcher=" + launcher_name] + CB,
                 task_function=lambda cfg: 100, temp_dir=tmpdir)
    records = [json.loads(p.read_text()) for p in lumo_home.glob("experiments/*/*/run.json")]
    assert len(records) == 2
    assert {r["status"] for r in records} == {"finished"}
    assert {r["return_value"] for r in records} == {100}
    assert len({r["sweep"] for r in records}) == 1 and records[0]["sweep"]
    assert {r["hydra"]["launcher"].rsplit(".", 1)[-1] for r in records} == {
        {"basic": "BasicLauncher", "joblib": "JoblibLauncher"}[launcher_name]}
