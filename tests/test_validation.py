"""Validation of composed configs and sweeps: in-process units, then real Hydra apps run as subprocesses
with -Werror (lumo_hydra.main, and plain @hydra.main with hydra/callbacks=lumo)."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.test_utils.test_utils import run_python_script
from omegaconf import OmegaConf, open_dict

from lumo_hydra import Params, arange, choice
from lumo_hydra._hydra.callback import LumoCallback
from lumo_hydra._hydra.decorator import CALLBACK_OVERRIDE, with_callback_override
from lumo_hydra._hydra.sweep import validate_sweep
from lumo_hydra.errors import ParamsValueError
from lumo_hydra.params.validation import (
    ParamsValidationError,
    validate_config,
    validator_for_key,
)

ROOT = Path(__file__).resolve().parents[1]

PARAMS_SRC = '''
from lumo_hydra import Params, arange, choice


class OptimParams(Params):
    name: str = choice("sgd", "adam")
    lr: float = arange(default=0.1, left=0, right=1)


class TrainParams(Params):
    dataset: str = choice("cifar10", "cifar100")
    arch: str = choice("mlp", "cnn")
    alpha: float = arange(default=1, left=0, right=10)
    epochs: int = 10
    optim: OptimParams = OptimParams()


TrainParams.store(name="train")
OptimParams.store(name="optim_schema", group="optim")
'''

LUMO_APP = PARAMS_SRC + '''
import sys
import lumo_hydra


@lumo_hydra.main(config_name="train", version_base="1.3")
def task(cfg):
    from lumo_hydra._hydra.decorator import ORIGINAL_ARGV
    print("TASK STARTED alpha", cfg.alpha)
    p = TrainParams.from_config(cfg)
    print("RESULT", p.alpha, p.arch, p.optim.name, p.optim.lr, p.epochs)
    print("ARGV", ORIGINAL_ARGV[1:])


if __name__ == "__main__":
    task()
'''

PLAIN_APP = PARAMS_SRC + '''
import hydra


@hydra.main(config_name="train", version_base="1.3")
def task(cfg):
    print("RESULT", cfg.alpha, cfg.arch, cfg.optim.name, cfg.optim.lr)


if __name__ == "__main__":
    task()
'''

CONF = {
    "config.yaml": "defaults:\n  - train\n  - optim: sgd\n  - _self_\nepochs: 3\n",
    "bad_alpha.yaml": "defaults:\n  - train\n  - _self_\nalpha: 20\n",
    "broken_optim.yaml": "defaults:\n  - train\n  - optim: broken\n  - _self_\n",
    "optim/sgd.yaml": "defaults:\n  - optim_schema\nname: sgd\nlr: 0.2\n",
    "optim/broken.yaml": "defaults:\n  - optim_schema\nname: sgd\nlr: 5\n",
}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("apps")
    (d / "app.py").write_text(LUMO_APP)
    (d / "plain.py").write_text(PLAIN_APP)
    for name, text in CONF.items():
        (d / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (d / "conf" / name).write_text(text)
    return d


def run_app(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Like hydra's run_python_script (python -Werror), but keeps the exit code and stderr."""
    return subprocess.run([sys.executable, "-Werror", str(script), *args], cwd=cwd, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=180)


def result(stdout: str) -> list[str]:
    return [line.split()[1:] for line in stdout.splitlines() if line.startswith("RESULT")][0]


# ---- units ------------------------------------------------------------------------------------


class OptimParams(Params):
    name: str = choice("sgd", "adam")
    lr: float = arange(default=0.1, left=0, right=1)


class TrainParams(Params):
    arch: str = choice("mlp", "cnn")
    alpha: float = arange(default=1, left=0, right=10)
    epochs: int = 10
    optim: OptimParams = OptimParams()


def structured() -> object:
    return OmegaConf.structured(TrainParams.dataclass())


def with_task_overrides(cfg: object, task: list[str]) -> object:
    from omegaconf import open_dict

    with open_dict(cfg):  # as Hydra does: the hydra node is added to the (struct) composed config
        cfg.hydra = {"overrides": {"task": task}}  # type: ignore[attr-defined]
    return cfg


def test_validate_config_finds_validators_through_types() -> None:
    cfg = structured()
    validate_config(cfg)
    cfg.alpha = 20.0
    with pytest.raises(ParamsValueError) as e:
        validate_config(cfg)
    assert (e.value.key, e.value.value, e.value.allowed) == ("alpha", 20.0, "[0, 10]")
    cfg.optim.name = "rmsprop"
    with pytest.raises(ParamsValidationError) as e2:
        validate_config(cfg)
    assert isinstance(e2.value, ParamsValueError) and isinstance(e2.value, ValueError)
    assert [x.key for x in e2.value.errors] == ["alpha", "optim.name"]
    assert "2 invalid parameter values" in str(e2.value) and "'rmsprop'" in str(e2.value)
    assert pickle.loads(pickle.dumps(e2.value)).errors[1].key == "optim.name"


def test_validate_config_plain_nodes_hydra_node_interpolations_and_missing() -> None:
    validate_config(OmegaConf.create({"alpha": 1000, "x": [1, {"y": 2}]}))  # untyped: nothing to check
    cfg = OmegaConf.create({"train": structured(), "hydra": {"alpha": 99}, "lst": [structured()]})
    validate_config(cfg)
    cfg.lst[0].alpha = 11.0
    with pytest.raises(ParamsValueError, match=r"'lst.0.alpha': 11.0"):
        validate_config(cfg)
    cfg.lst[0].alpha = 1.0
    cfg.train.alpha = "${big}"
    cfg.big = 50
    with pytest.raises(ParamsValueError, match=r"'train.alpha': 50"):  # interpolations are resolved
        validate_config(cfg)
    cfg.train.alpha = "???"
    validate_config(cfg)  # missing values are Hydra's business


def test_validator_for_key() -> None:
    cfg = structured()
    assert validator_for_key(cfg, "alpha").allowed() == "[0, 10]"
    assert validator_for_key(cfg, "optim.lr").allowed() == "[0, 1]"
    assert validator_for_key(cfg, "epochs") is None and validator_for_key(cfg, "nope.x") is None


@pytest.mark.parametrize(
    "override, bad",
    [
        ("alpha=1,5,20", "20"),
        ("alpha=choice(1,11)", "11"),
        ("alpha=range(0,20,5)", "15"),
        ("alpha=interval(0,12)", "12.0"),
        ("optim.lr=0.1,2", "2"),
        ("arch=mlp,transformer", "'transformer'"),
        ("arch=shuffle(cnn,'x')", "'x'"),
        ("alpha=11", "11"),
    ],
)
def test_validate_sweep_expands_every_form(override: str, bad: str) -> None:
    with pytest.raises(ParamsValueError) as e:
        validate_sweep(structured(), [override])
    assert f": {bad};" in str(e.value)


def test_validate_sweep_good_and_skipped_overrides() -> None:
    validate_sweep(structured(), ["alpha=0,10", "alpha=range(0,11,5)", "alpha=interval(0,10)", "arch=mlp,cnn",
                                  "epochs=1,1000", "+new=1,2", "~epochs", "optim=a,b", "hydra.verbose=true"])
    cfg = OmegaConf.create({"hydra": {"overrides": {"task": ["alpha=3,30"]}}})
    cfg.merge_with({"alpha": 1.0})
    validate_sweep(cfg)  # an untyped config: no validators, nothing to check
    typed = with_task_overrides(structured(), ["alpha=3,30", "arch=x"])
    with pytest.raises(ParamsValidationError) as e:
        validate_sweep(typed)
    assert [(x.key, x.value) for x in e.value.errors] == [("alpha", 30), ("arch", "x")]


def test_validate_group_sweeps_composes_each_option_and_names_the_selection() -> None:
    from lumo_hydra._hydra.sweep import validate_group_sweeps

    cfg = with_task_overrides(structured(), ["optim=sgd,adam,missing", "alpha=1,2", "+x=1"])
    with open_dict(cfg):
        cfg.hydra.runtime = {"choices": {"optim": "sgd"}}
    composed: list[list[str]] = []

    def compose(overrides: list[str]) -> object:
        composed.append(overrides)
        if overrides == ["optim=missing"]:
            raise RuntimeError("no such option")  # Hydra reports those itself
        return OmegaConf.merge(structured(), {"optim": {"lr": 0.5 if overrides == ["optim=sgd"] else 5.0}})

    with pytest.raises(ParamsValueError) as e:
        validate_group_sweeps(cfg, compose)
    assert composed == [["optim=sgd"], ["optim=adam"], ["optim=missing"]]  # only the group sweep is composed
    assert (e.value.key, e.value.value, e.value.hint) == ("optim.lr", 5.0, "with optim=adam")
    validate_group_sweeps(cfg, compose, ["optim=sgd"])  # not a sweep: nothing composed
    assert len(composed) == 3


PLAIN_PROCESS = """
import sys
from omegaconf import OmegaConf
from lumo_hydra._hydra.sweep import validate_group_sweeps, validate_sweep
from lumo_hydra.params.validation import validate_config

cfg = OmegaConf.create({"optim": {"lr": 5}, "hydra": {"overrides": {"task": ["optim=a,b", "optim.lr=1,2"]},
                                                       "runtime": {"choices": {"optim": "a"}}}})
validate_config(cfg)
validate_sweep(cfg)
calls = []
validate_group_sweeps(cfg, lambda overrides: calls.append(overrides))
print(calls, sorted(m for m in sys.modules if m.startswith("lumo_hydra.params")))
"""


def test_a_process_without_validators_composes_nothing_for_a_group_sweep() -> None:
    """A plain YAML app never imports the validators: the config-group check composes nothing there."""
    r = subprocess.run([sys.executable, "-Werror", "-c", PLAIN_PROCESS], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[] ['lumo_hydra.params', 'lumo_hydra.params.validation']"


def test_callback_parameters_and_pickle() -> None:
    cb = LumoCallback(exp_name="e", home="/tmp/h", validate=False, git=False)
    assert (cb.exp_name, cb.home, cb.validate, cb.switches["git"]) == ("e", "/tmp/h", False, False)
    with pytest.raises(ValueError, match=r"lumo.gti=False; did you mean 'git'"):
        LumoCallback(gti=False)  # a typo in +hydra.callbacks.lumo.<option> is an error, not ignored
    cb2 = pickle.loads(pickle.dumps(cb))
    assert vars(cb2) == vars(cb)
    bad = OmegaConf.merge(structured(), {"alpha": 30.0})
    cb2.on_run_start(bad)  # validate=False: nothing happens
    with pytest.raises(SystemExit) as e:
        LumoCallback().on_run_start(bad)
    assert "alpha" in str(e.value.code) and "[0, 10]" in str(e.value.code)
    sweep = with_task_overrides(structured(), ["alpha=1,50"])
    with pytest.raises(SystemExit, match="50"):
        LumoCallback().on_multirun_start(sweep)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["a=1"], ["a=1", "CB"]),
        (["a=1", "b=2", "-m"], ["a=1", "b=2", "CB", "-m"]),
        (["-m", "a=1,2"], ["-m", "a=1,2", "CB"]),
        (["--cfg", "hydra"], ["CB", "--cfg", "hydra"]),
        (["--info"], ["CB", "--info"]),
        (["-cn", "x", "a=1", "--cfg", "job"], ["-cn", "x", "a=1", "CB", "--cfg", "job"]),
        ([], ["CB"]),
        (["-sc", "install=bash"], ["-sc", "install=bash"]),
        (["--experimental-rerun", "f.pickle"], ["--experimental-rerun", "f.pickle"]),
        (["--cfg", "nonsense"], ["--cfg", "nonsense"]),
    ],
)
def test_callback_override_goes_where_hydras_parser_accepts_it(argv: list[str], expected: list[str]) -> None:
    from hydra._internal.utils import get_args_parser

    out = with_callback_override(["app.py", *argv])
    assert out == ["app.py", *[CALLBACK_OVERRIDE if a == "CB" else a for a in expected]]
    if "CB" in expected:
        assert get_args_parser().parse_args(out[1:]).overrides[-1] == CALLBACK_OVERRIDE


# ---- real Hydra apps (subprocesses, -Werror) --------------------------------------------------


def test_lumo_main_app_runs_clean_under_werror(apps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the run is recorded: its snapshot must not land in this repository
    out, err = run_python_script([str(apps / "app.py"), "alpha=2.5", "arch=cnn", "optim.lr=0.5",
                                  f"hydra.run.dir={tmp_path / 'run'}"])
    assert result(out) == ["2.5", "cnn", "sgd", "0.5", "10"]
    assert "ARGV ['alpha=2.5', 'arch=cnn', 'optim.lr=0.5'," in out and "callbacks" not in out.split("ARGV")[1].splitlines()[0]
    overrides = yaml.safe_load((tmp_path / "run" / ".hydra" / "overrides.yaml").read_text())
    assert overrides == ["alpha=2.5", "arch=cnn", "optim.lr=0.5", f"hydra.run.dir={tmp_path / 'run'}"][:3]


def test_bad_range_value_exits_before_the_task(apps: Path, tmp_path: Path) -> None:
    r = run_app(apps / "app.py", "alpha=20", cwd=tmp_path)
    assert r.returncode != 0 and "RESULT" not in r.stdout
    assert "'alpha'" in r.stderr and "20" in r.stderr and "[0, 10]" in r.stderr
    assert "Traceback" not in r.stderr and "Warning" not in r.stderr


def test_bad_choice_lists_the_choices(apps: Path, tmp_path: Path) -> None:
    r = run_app(apps / "app.py", "arch=transformer", "optim.name=rmsprop", cwd=tmp_path)
    assert r.returncode != 0 and "RESULT" not in r.stdout
    assert "'arch': 'transformer'" in r.stderr and "one of ['mlp', 'cnn']" in r.stderr
    assert "'optim.name': 'rmsprop'" in r.stderr and "one of ['sgd', 'adam']" in r.stderr


def test_issue_example_dataset_imagenet_lists_choices(apps: Path, tmp_path: Path) -> None:
    r = run_app(apps / "app.py", "dataset=imagenet", cwd=tmp_path)
    assert r.returncode != 0
    assert "'dataset': 'imagenet'" in r.stderr and "one of ['cifar10', 'cifar100']" in r.stderr


@pytest.mark.parametrize("config, expect", [("bad_alpha", "'alpha': 20"), ("broken_optim", "'optim.lr': 5")])
def test_bad_values_from_yaml_files_and_config_groups(apps: Path, tmp_path: Path, config: str, expect: str) -> None:
    ok = run_app(apps / "app.py", "--config-path", str(apps / "conf"), "--config-name", "config", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert result(ok.stdout) == ["1.0", "mlp", "sgd", "0.2", "3"]
    r = run_app(apps / "app.py", "--config-path", str(apps / "conf"), "--config-name", config, cwd=tmp_path)
    assert r.returncode != 0 and "RESULT" not in r.stdout
    assert expect in r.stderr
    r = run_app(apps / "app.py", "--config-path", str(apps / "conf"), "--config-name", "config", "optim=broken",
                cwd=tmp_path)
    assert r.returncode != 0 and "'optim.lr': 5" in r.stderr


def test_type_errors_keep_hydras_message(apps: Path, tmp_path: Path) -> None:
    r = run_app(apps / "app.py", "epochs=ten", cwd=tmp_path)
    assert r.returncode != 0
    assert "Value 'ten' of type 'str' could not be converted to Integer" in r.stderr and "full_key: epochs" in r.stderr


def test_sweep_fails_before_any_job_folder_exists(apps: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    r = run_app(apps / "app.py", "-m", "alpha=1,5,20", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert r.returncode != 0 and "RESULT" not in r.stdout and "Launching" not in r.stdout + r.stderr
    assert "'alpha': 20" in r.stderr and "[0, 10]" in r.stderr
    assert not sweep.exists() or not [p for p in sweep.iterdir() if p.is_dir()]
    r = run_app(apps / "app.py", "-m", "alpha=range(0,14,4)", "arch=mlp,rnn", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert r.returncode != 0 and "2 invalid parameter values" in r.stderr and "'rnn'" in r.stderr
    assert not sweep.exists() or not [p for p in sweep.iterdir() if p.is_dir()]
    # the positive control: a good sweep creates its job folders
    r = run_app(apps / "app.py", "-m", "alpha=1,5", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]


def test_one_callback_whether_or_not_the_option_is_selected(apps: Path, tmp_path: Path) -> None:
    plain = run_app(apps / "app.py", "--cfg", "hydra", cwd=tmp_path)
    selected = run_app(apps / "app.py", "hydra/callbacks=lumo", "--cfg", "hydra", cwd=tmp_path)
    assert plain.returncode == 0 and selected.returncode == 0, plain.stderr + selected.stderr
    cb_plain = yaml.safe_load(plain.stdout)["hydra"]["callbacks"]
    cb_selected = yaml.safe_load(selected.stdout)["hydra"]["callbacks"]
    assert cb_plain == {"lumo": {"_target_": "lumo_hydra.hydra_callback.LumoCallback"}}
    # the option lists only _target_ (every key costs each job's composition); options are added with +
    assert cb_selected == cb_plain
    # the user's switch reaches the one callback (and the job-side check): validation off, the task starts
    # (and TrainParams.from_config in the task still refuses the value)
    r = run_app(apps / "app.py", "hydra/callbacks=lumo", "+hydra.callbacks.lumo.validate=false", "alpha=20",
                cwd=tmp_path)
    assert "TASK STARTED alpha 20.0" in r.stdout, r.stderr
    assert r.returncode != 0 and "'alpha': 20.0" in r.stderr
    r = run_app(apps / "app.py", "alpha=20", cwd=tmp_path)
    assert "TASK STARTED" not in r.stdout and r.returncode != 0


def test_plain_hydra_main_with_callback_option_gets_the_same_checks(apps: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the run is recorded: its snapshot must not land in this repository
    out, _ = run_python_script([str(apps / "plain.py"), "hydra/callbacks=lumo", "alpha=3",
                                f"hydra.run.dir={tmp_path / 'run'}"])
    assert result(out)[0] == "3.0"
    without = run_app(apps / "plain.py", "alpha=20", cwd=tmp_path)
    assert without.returncode == 0  # plain Hydra checks types only
    r = run_app(apps / "plain.py", "hydra/callbacks=lumo", "alpha=20", cwd=tmp_path)
    assert r.returncode != 0 and "RESULT" not in r.stdout
    assert "'alpha'" in r.stderr and "20" in r.stderr and "[0, 10]" in r.stderr
    r = run_app(apps / "plain.py", "hydra/callbacks=lumo", "arch=x", cwd=tmp_path)
    assert r.returncode != 0 and "one of ['mlp', 'cnn']" in r.stderr
    sweep = tmp_path / "plain-sweep"
    r = run_app(apps / "plain.py", "-m", "hydra/callbacks=lumo", "optim.lr=0.1,3", f"hydra.sweep.dir={sweep}",
                cwd=tmp_path)
    assert r.returncode != 0 and "'optim.lr': 3" in r.stderr
    assert not sweep.exists() or not [p for p in sweep.iterdir() if p.is_dir()]


def test_typed_example_app(tmp_path: Path) -> None:
    app = ROOT / "examples" / "typed_app" / "app.py"
    ok = run_app(app, "alpha=0.5", "optim=adam", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "dataset=cifar10 alpha=0.5 optim=adam lr=0.001" in ok.stdout
    bad = run_app(app, "alpha=20", cwd=tmp_path)
    assert bad.returncode != 0 and "[0, 10]" in bad.stderr


@pytest.mark.parametrize("script, extra", [("app.py", []), ("plain.py", ["hydra/callbacks=lumo"])])
def test_a_swept_config_group_is_checked_before_any_job(apps: Path, tmp_path: Path, script: str,
                                                        extra: list[str]) -> None:
    """Each option of a swept group is composed and checked before launch, for lumo_hydra.main and for
    plain @hydra.main apps with hydra/callbacks=lumo; the error names the selection."""
    sweep = tmp_path / f"group-sweep-{script}"
    r = run_app(apps / script, "-m", "--config-path", str(apps / "conf"), "--config-name", "config",
                "optim=sgd,broken", *extra, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert r.returncode != 0
    assert "TASK STARTED" not in r.stdout and "RESULT" not in r.stdout and "Launching" not in r.stdout + r.stderr
    assert "'optim.lr': 5" in r.stderr and "with optim=broken" in r.stderr, r.stderr
    assert not sweep.exists() or not any(sweep.iterdir())
    ok = run_app(apps / script, "-m", "--config-path", str(apps / "conf"), "--config-name", "config",
                 "optim=sgd,optim_schema", *extra, f"hydra.sweep.dir={sweep}-ok", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("RESULT") == 2
