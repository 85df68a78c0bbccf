"""The job facts and parameters read from a composed Hydra config, without ``OmegaConf.select`` per key."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from lumo_hydra._hydra.facts import hydra_facts, task_params


@pytest.fixture
def cfg(tmp_path: Path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(
        "x: 1\nname: run-${x}\nnested:\n  a: ${x}\n  b: [1, '${x}']\nlate: ${now:%Y}\nmissing: ???\n"
        "custom: ${only_in_task:1}\n")
    from hydra.version import VersionBase

    base = VersionBase.instance().version_base  # composing sets Hydra's global version base: restore it
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            c = compose("config", overrides=["x=3", "hydra/callbacks=lumo"], return_hydra_config=True)
    finally:
        VersionBase.instance().version_base = base
    with open_dict(c):
        c.hydra.job.num = 4
        c.hydra.job.id = "job-4"
        c.hydra.runtime.output_dir = "/out/4"
        c.hydra.sweep.dir = "multirun/${now:%Y}"
        c.hydra.job.name = "${hydra:job.config_name}-x"  # an interpolation: resolved the slow way
        c.hydra.job.config_name = "config"
    return c


def reference(c) -> dict:
    """What the facts must be: each value through OmegaConf.select (slow, obviously right)."""
    def sel(key: str):
        v = OmegaConf.select(c, key, default=None, throw_on_missing=False)
        return OmegaConf.to_container(v) if OmegaConf.is_config(v) else v

    return {"task": sel("hydra.overrides.task"), "hydra": sel("hydra.overrides.hydra"),
            "output_dir": sel("hydra.runtime.output_dir"), "job_name": "config-x", "job_num": 4, "job_id": "job-4",
            "sweep_dir": sel("hydra.sweep.dir"), "launcher": sel("hydra.launcher._target_"),
            "sweeper": sel("hydra.sweeper._target_"), "mode": None}


def test_facts_match_omegaconf_select(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)  # for ${hydra:...}
    try:
        facts = hydra_facts(cfg)
        expected = reference(cfg)
    finally:
        HydraConfig.instance().cfg = None  # type: ignore[assignment]  (other in-process Hydra tests follow)
    assert facts == expected
    assert facts["task"] == ["x=3"] and facts["hydra"] == ["hydra/callbacks=lumo"]
    assert facts["sweep_dir"].startswith("multirun/2")  # resolved
    assert hydra_facts(cfg, sweep_dir="/given")["sweep_dir"] == "/given"  # known by the launching process


def test_facts_of_configs_without_hydra_values() -> None:
    empty = hydra_facts(OmegaConf.create({"x": 1}))
    assert empty == {"task": [], "hydra": [], "output_dir": None, "job_name": None, "job_num": None,
                     "job_id": None, "sweep_dir": None, "launcher": None, "sweeper": None, "mode": None}
    partial = OmegaConf.create({"hydra": {"job": {"num": "???", "name": None}, "overrides": "???"}})
    assert hydra_facts(partial)["job_num"] is None and hydra_facts(partial)["task"] == []


def test_task_params_resolved_key_by_key(cfg) -> None:
    p = task_params(cfg)
    assert "hydra" not in p
    assert p["x"] == 3 and p["name"] == "run-3" and p["nested"] == {"a": 3, "b": [1, 3]}
    assert p["late"].isdigit() and p["missing"] == "???"
    assert p["custom"] == "${only_in_task:1}"  # a resolver the task registers later: kept unresolved
