"""Params: the seed snippet, every from_args form, errors, files, from_hydra, hash, copy, repr, class-based."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lumo_hydra import Params, arange, choice
from lumo_hydra.errors import LumoValueError, ParamsArgsError, ParamsFileError, ParamsValueError, UnknownKeyError
from lumo_hydra.params.validators import Arange, Choice

ROOT = Path(__file__).resolve().parents[1]

SEED = """\
from lumo_hydra import Params
params = Params()
params.dataset = params.choice('cifar10', 'cifar100')
params.alpha = params.arange(default=1, left=0, right=10)
params.from_args()  # python3 train.py --dataset=cifar100 --alpha=0.2
print(params.to_dict())  # {"dataset": "cifar100", "alpha": 0.2}
print(params.dataset)
"""


def seed_params() -> Params:
    params = Params()
    params.dataset = params.choice("cifar10", "cifar100")
    params.alpha = params.arange(default=1, left=0, right=10)
    return params


class OptimParams(Params):
    name: str = choice("sgd", "adam")
    """the optimizer"""
    lr: float = arange(default=0.1, left=0, right=1)


class TrainParams(Params):
    dataset: str = choice("cifar10", "cifar100")
    alpha: float = arange(default=1, left=0, right=10, doc="mixing weight")
    epochs: int = 10
    optim: OptimParams = OptimParams()


def run(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-Werror", "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, env=os.environ.copy(), timeout=120)


# ---- the seed snippet -------------------------------------------------------------------------


def test_seed_snippet_verbatim_as_subprocess(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SEED)
    out = subprocess.run([sys.executable, "-Werror", str(script), "--dataset=cifar100", "--alpha=0.2"],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["{'dataset': 'cifar100', 'alpha': 0.2}", "cifar100"]


def test_params_demo_example_runs() -> None:
    demo = ROOT / "examples" / "quickstart" / "params_demo.py"
    out = subprocess.run([sys.executable, "-Werror", str(demo), "--dataset=cifar100", "--alpha=0.2"],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["{'dataset': 'cifar100', 'alpha': 0.2}", "cifar100"]


def test_seed_snippet_bad_value_fails_naming_key_value_and_range(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SEED)
    out = subprocess.run([sys.executable, str(script), "--alpha=20"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "ParamsValueError" in out.stderr and "'alpha'" in out.stderr
    assert "20" in out.stderr and "[0, 10]" in out.stderr


# ---- from_args --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--dataset=cifar100", "--alpha=0.2"],
        ["--dataset", "cifar100", "--alpha", "0.2"],
        ["dataset=cifar100", "alpha=0.2"],
        ["--dataset='cifar100'", "alpha=0.2"],
        ["dataset=\"cifar100\"", "--alpha", "0.2"],
    ],
)
def test_from_args_forms(argv: list[str]) -> None:
    p = seed_params().from_args(argv)
    assert p.to_dict() == {"dataset": "cifar100", "alpha": 0.2}


def test_from_args_defaults_to_sys_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--alpha=3"])
    assert seed_params().from_args().alpha == 3


def test_from_args_nested_add_delete_force_and_value_grammar() -> None:
    p = TrainParams().from_args([
        "--optim.lr=0.5", "optim.name=adam", "+tags=[a,b]", "+extra={x: 1, y: null}", "+flag=true",
        "+text='1,2'", "~epochs", "++alpha=2", "++newkey=7",
    ])
    assert p.optim.lr == 0.5 and p.optim.name == "adam"
    assert p.tags == ["a", "b"] and p.extra == {"x": 1, "y": None} and p.flag is True and p.text == "1,2"
    assert "epochs" not in p and p.alpha == 2.0 and p.newkey == 7
    assert "verbose" not in TrainParams()  # --verbose is unknown
    with pytest.raises(UnknownKeyError):
        TrainParams().from_args(["--verbose"])


def test_from_args_unknown_key_did_you_mean() -> None:
    with pytest.raises(UnknownKeyError) as e:
        seed_params().from_args(["--alpah=0.5"])
    assert isinstance(e.value, ValueError)
    assert "'alpah'" in str(e.value) and "did you mean 'alpha'" in str(e.value) and "+alpah" in str(e.value)
    with pytest.raises(UnknownKeyError, match="did you mean 'optim.lr'"):
        TrainParams().from_args(["optim.rl=0.5"])
    with pytest.raises(UnknownKeyError, match="already exists"):
        seed_params().from_args(["+alpha=2"])


def test_from_args_invalid_values_and_arguments() -> None:
    with pytest.raises(ParamsValueError, match=r"'dataset'.*'imagenet'.*cifar10"):
        seed_params().from_args(["--dataset=imagenet"])
    with pytest.raises(ParamsValueError, match=r"'epochs': 'ten'.*int"):
        TrainParams().from_args(["epochs=ten"])
    with pytest.raises(ParamsArgsError, match="sweep"):
        seed_params().from_args(["alpha=1,2"])
    with pytest.raises(ParamsArgsError, match="unrecognised argument 'oops'"):
        seed_params().from_args(["oops"])
    with pytest.raises(ParamsArgsError):
        seed_params().from_args(["--config"])


def test_from_args_config_files_first_command_line_wins(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("alpha: 3\ndataset: cifar100\n")
    (tmp_path / "b.json").write_text(json.dumps({"alpha": 4}))
    p = seed_params().from_args(["--alpha=5", "--config", str(tmp_path / "a.yaml")])
    assert p.to_dict() == {"dataset": "cifar100", "alpha": 5}
    p = seed_params().from_args([f"-c={tmp_path / 'a.yaml'},{tmp_path / 'b.json'}"])
    assert p.to_dict() == {"dataset": "cifar100", "alpha": 4}
    p = seed_params().from_args(["-c", f"{tmp_path / 'a.yaml'},{tmp_path / 'b.json'}", "dataset=cifar10"])
    assert p.to_dict() == {"dataset": "cifar10", "alpha": 4}


def test_from_args_help_lists_everything_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        TrainParams().from_args(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--dataset" in out and "(str, default: 'cifar10')" in out and "one of ['cifar10', 'cifar100']" in out
    assert "--alpha" in out and "[0, 10]" in out and "mixing weight" in out
    assert "--epochs  (int, default: 10)" in out
    assert "--optim.lr" in out and "the optimizer" in out


# ---- validation on assignment -----------------------------------------------------------------


def test_every_assignment_is_validated() -> None:
    p = seed_params()
    with pytest.raises(ParamsValueError) as e:
        p.dataset = "imagenet"
    assert isinstance(e.value, ValueError)
    assert (e.value.key, e.value.value) == ("dataset", "imagenet")
    assert "'imagenet'" in str(e.value) and "['cifar10', 'cifar100']" in str(e.value)
    p.alpha = 0
    p.alpha = 10  # inclusive bounds
    for bad in (-0.001, 10.5, "x", None, True, float("nan")):
        with pytest.raises(ParamsValueError, match=r"'alpha'.*\[0, 10\]"):
            p.alpha = bad
    p["alpha"] = 2.5
    assert p["alpha"] == 2.5
    with pytest.raises(ParamsValueError):
        p["dataset"] = "mnist"
    assert p.to_dict() == {"dataset": "cifar10", "alpha": 2.5}


def test_validator_defaults_are_checked_too() -> None:
    with pytest.raises(ParamsValueError, match=r"'default': 11.*\[0, 10\]"):
        arange(default=11, left=0, right=10)
    with pytest.raises(ParamsValueError, match="'default'"):
        choice("a", "b", default="c")
    assert Arange(default=0, left=0, right=0).default == 0
    assert Choice(["x", "y"]).choices == ("x", "y") and Choice("x", "y", default="y").default == "y"
    with pytest.raises(ParamsValueError):
        arange(default=1, left=5, right=0)
    with pytest.raises(LumoValueError):
        choice()


def test_choice_does_not_confuse_bool_and_int() -> None:
    p = Params()
    p.n = p.choice(1, 2)
    with pytest.raises(ParamsValueError):
        p.n = True
    p.n = 2
    assert p.n == 2


def test_method_names_are_reserved() -> None:
    p = Params()
    with pytest.raises(LumoValueError, match="method name"):
        p.copy = 1
    with pytest.raises(LumoValueError, match="method name"):
        class Bad(Params):
            hash: str = "x"


# ---- files ------------------------------------------------------------------------------------


def test_json_yaml_round_trip(tmp_path: Path) -> None:
    p = TrainParams(alpha=3.5)
    p.optim.name = "adam"
    p.to_json(tmp_path / "p.json")
    p.to_yaml(tmp_path / "p.yaml")
    assert json.loads((tmp_path / "p.json").read_text())["optim"]["name"] == "adam"
    assert TrainParams().from_json(tmp_path / "p.json") == p
    assert TrainParams().from_yaml(tmp_path / "p.yaml") == p
    assert Params().from_yaml(tmp_path / "p.yaml").to_dict() == p.to_dict()  # empty params accept any key
    assert json.loads(p.to_json()) == p.to_dict()


def test_file_errors_name_path_and_line(tmp_path: Path) -> None:
    with pytest.raises(ParamsFileError, match="missing.yaml") as e:
        seed_params().from_yaml(tmp_path / "missing.yaml")
    assert isinstance(e.value, ValueError)
    (tmp_path / "bad.yaml").write_text("alpha: 1\ndataset: [unclosed\nx: 2\n")
    with pytest.raises(ParamsFileError, match=r"bad.yaml.*line [34]"):
        seed_params().from_yaml(tmp_path / "bad.yaml")
    (tmp_path / "bad.json").write_text('{\n  "alpha": 1,\n  "dataset": \n}\n')
    with pytest.raises(ParamsFileError, match=r"bad.json.*line 4"):
        seed_params().from_json(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ParamsFileError, match="mapping"):
        seed_params().from_yaml(tmp_path / "list.yaml")
    (tmp_path / "v.yaml").write_text("alpha: 12\n")
    with pytest.raises(ParamsValueError, match=r"'alpha': 12"):
        seed_params().from_yaml(tmp_path / "v.yaml")
    (tmp_path / "typo.yaml").write_text("alpah: 1\n")
    with pytest.raises(UnknownKeyError, match="did you mean 'alpha'"):
        seed_params().from_yaml(tmp_path / "typo.yaml")


# ---- from_hydra -------------------------------------------------------------------------------


def test_from_hydra_schema_and_overrides_keep_cwd_and_argv() -> None:
    cwd, argv = os.getcwd(), list(sys.argv)
    p = seed_params().from_hydra(overrides=["alpha=3"])
    assert p.to_dict() == {"dataset": "cifar10", "alpha": 3.0}
    with pytest.raises(ParamsValueError, match=r"'alpha'.*\[0, 10\]"):
        seed_params().from_hydra(overrides=["alpha=30"])
    t = TrainParams().from_hydra(overrides=["optim.lr=0.5"])
    assert t.optim.lr == 0.5 and isinstance(t.optim, OptimParams)
    assert os.getcwd() == cwd and sys.argv == argv


def test_from_hydra_dataset_override() -> None:
    p = seed_params().from_hydra(overrides=["dataset=cifar100"])
    assert p.dataset == "cifar100"
    with pytest.raises(ParamsValueError, match="imagenet"):
        seed_params().from_hydra(overrides=["dataset=imagenet"])


def test_from_hydra_config_dir_and_restores_global_hydra(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("alpha: 4\ndataset: cifar100\n")
    (tmp_path / "conf" / "bad.yaml").write_text("alpha: 40\n")
    with initialize_config_dir(config_dir=str(tmp_path / "conf"), version_base="1.3"):
        p = seed_params().from_hydra(config_path=tmp_path / "conf", config_name="config", overrides=["alpha=5"])
        assert p.to_dict() == {"dataset": "cifar100", "alpha": 5}
        with pytest.raises(ParamsValueError, match="'alpha': 40"):
            seed_params().from_hydra(config_path=str(tmp_path / "conf"), config_name="bad")
        assert GlobalHydra.instance().is_initialized()
        assert compose(config_name="config").alpha == 4  # the outer Hydra still works
    assert not GlobalHydra.instance().is_initialized()


# ---- hash, copy, repr, containers -------------------------------------------------------------


def test_hash_is_stable_across_processes_and_key_orders() -> None:
    code = textwrap.dedent("""
        import sys
        from lumo_hydra import Params
        p = Params()
        keys = sys.argv[1].split(",")
        values = {"a": 1, "b": [1, 2], "c": {"y": 2, "x": "s"}}
        for k in keys:
            setattr(p, k, values[k])
        print(p.hash())
    """)
    one = run(code, "a,b,c")
    two = run(code, "c,b,a")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    assert one.stdout.strip() == two.stdout.strip() and len(one.stdout.strip()) == 32
    p = Params()
    p.a, p.b, p.c = 1, [1, 2], {"x": "s", "y": 2}
    assert p.hash() == one.stdout.strip()
    p.a = 2
    assert p.hash() != one.stdout.strip()


def test_copy_is_deep_and_keeps_validators() -> None:
    t = TrainParams()
    c = t.copy()
    assert c == t and c is not t and c.optim is not t.optim
    c.optim.lr = 0.9
    assert t.optim.lr == 0.1
    with pytest.raises(ParamsValueError, match="'optim.lr'"):
        c.optim.lr = 2
    p = seed_params().copy()
    with pytest.raises(ParamsValueError):
        p.dataset = "x"
    assert pickle.loads(pickle.dumps(t)) == t


def test_repr_shows_values_and_validators() -> None:
    r = repr(TrainParams())
    assert r.startswith("TrainParams(dataset='cifar10' <choice('cifar10', 'cifar100')>, alpha=1.0 <arange(0, 10)>")
    assert "epochs=10" in r and "optim=OptimParams(name='sgd' <choice('sgd', 'adam')>" in r


def test_access_iteration_membership() -> None:
    t = TrainParams()
    assert list(t) == ["dataset", "alpha", "epochs", "optim"] and len(t) == 4
    assert "alpha" in t and "optim.lr" in t and "optim.xx" not in t and "nope" not in t and 3 not in t
    assert t["optim.lr"] == 0.1 and t.get("optim.name") == "sgd" and t.get("zzz", 5) == 5
    t["optim.lr"] = 0.2
    assert t.optim.lr == 0.2
    with pytest.raises(AttributeError, match="did you mean 'alpha'"):
        _ = t.alpah
    with pytest.raises(UnknownKeyError):
        t["optim.zz.a"] = 1


def test_nested_params_imperative() -> None:
    p = Params()
    p.optim = OptimParams()
    p.optim.lr = 0.3
    p.from_args(["optim.name=adam"])
    assert p.to_dict() == {"optim": {"name": "adam", "lr": 0.3}}
    with pytest.raises(ParamsValueError, match="'optim.lr'"):
        p.from_args(["optim.lr=3"])
    p.optim = {"lr": 0.4}  # a mapping updates the nested params, validated
    assert isinstance(p.optim, OptimParams) and p.optim.lr == 0.4 and p.optim.name == "adam"


# ---- class-based and the ConfigStore adapter --------------------------------------------------


def test_class_based_typed_values_and_kwargs() -> None:
    t = TrainParams(alpha=2, epochs=3)
    assert t.alpha == 2.0 and isinstance(t.alpha, float) and t.epochs == 3
    with pytest.raises(ParamsValueError, match="'epochs'"):
        TrainParams(epochs="ten")
    with pytest.raises(UnknownKeyError):
        TrainParams().from_dict({"alhpa": 1})
    t2 = TrainParams()
    assert t2.optim is not t.optim  # the class default is copied per instance

    class Sub(TrainParams):
        extra: bool = False

    assert list(Sub()) == ["dataset", "alpha", "epochs", "optim", "extra"]


def test_store_registers_dataclass_with_validator_metadata() -> None:
    import dataclasses

    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    TrainParams.store(name="test_params_train", group="lumo_test_group", package="_global_")
    node = ConfigStore.instance().load("lumo_test_group/test_params_train.yaml").node
    assert OmegaConf.get_type(node) is TrainParams.dataclass()
    assert OmegaConf.get_type(node.optim) is OptimParams.dataclass()
    fields = {f.name: f for f in dataclasses.fields(TrainParams.dataclass())}
    assert fields["alpha"].metadata["lumo_validator"] == Arange(1, 0, 10, doc="mixing weight")
    assert fields["alpha"].type is float and fields["epochs"].type is int
    assert node.alpha == 1.0 and node.optim.lr == 0.1
    assert pickle.loads(pickle.dumps(node)) == node  # ConfigStore travels to remote jobs
    t = TrainParams.from_config(node)
    assert isinstance(t, TrainParams) and t == TrainParams()
    node.alpha = 20.0  # OmegaConf checks types only
    with pytest.raises(ParamsValueError, match=r"'alpha': 20.0"):
        TrainParams.from_config(node)


def test_imperative_params_store() -> None:
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from lumo_hydra.params.validation import validate_config

    p = seed_params()
    p.store(name="test_params_imperative")
    node = ConfigStore.instance().load("test_params_imperative.yaml").node
    assert OmegaConf.to_container(node) == {"dataset": "cifar10", "alpha": 1.0}
    node.alpha = 11.0
    with pytest.raises(ParamsValueError, match="'alpha'"):
        validate_config(node)


# ---- errors, the package's names and modules ----------------------------------------------------


def test_a_params_value_error_with_a_hint_pickles_with_its_whole_message() -> None:
    from lumo_hydra.errors import ParamsValidationError

    e = ParamsValueError("optim.lr", 20, "[0, 1]", "with optim=sgd")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is ParamsValueError and str(back) == str(e)
    assert str(back) == "invalid value for parameter 'optim.lr': 20; allowed: [0, 1] (with optim=sgd)"
    assert (back.key, back.value, back.allowed, back.hint) == ("optim.lr", 20, "[0, 1]", "with optim=sgd")
    many = ParamsValidationError([e, ParamsValueError("alpha", 30, "[0, 10]")])
    back_many = pickle.loads(pickle.dumps(many))
    assert str(back_many) == str(many) and "(with optim=sgd)" in str(back_many)
    assert [str(x) for x in back_many.errors] == [str(x) for x in many.errors]


def test_every_public_name_is_exported_from_its_documented_paths() -> None:
    import lumo_hydra
    import lumo_hydra.params as package
    import lumo_hydra.params.params as old
    from lumo_hydra import errors
    from lumo_hydra.params import argv, validators

    homes = {"Params": old, "parse_value": argv, "ParamsArgsError": errors, "ParamsFileError": errors,
             "ParamsValueError": errors,
             **dict.fromkeys(("choice", "arange", "Validator", "Choice", "Arange", "VALIDATOR_KEY"), validators)}
    assert sorted(package.__all__) == sorted(homes)
    for name, home in homes.items():
        assert getattr(package, name) is getattr(home, name), name
        assert getattr(old, name) is getattr(home, name), name  # lumo_hydra.params.params keeps every name
    assert (lumo_hydra.Params, lumo_hydra.choice, lumo_hydra.arange) == (old.Params, validators.choice,
                                                                          validators.arange)
    assert set(package.__all__) <= set(dir(package)) and "validators" in dir(package)
    with pytest.raises(AttributeError):
        _ = package.nothing_here


def test_importing_params_loads_no_hydra_and_the_validators_load_nothing_else() -> None:
    code = textwrap.dedent("""
        import sys
        from lumo_hydra.params import choice
        print(sorted(m for m in sys.modules if m.startswith("lumo_hydra.")), "hydra" in sys.modules)
        import lumo_hydra.params.params
        print("hydra" in sys.modules, "omegaconf" in sys.modules)
        from lumo_hydra import Params
        p = Params()
        p.x = p.choice(1, 2)
        p.from_dict({"x": 2})
        print("hydra" in sys.modules)
        p.from_args(["x=1"])  # the value grammar is Hydra's
        print("hydra" in sys.modules)
    """)
    r = run(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        str(["lumo_hydra._version", "lumo_hydra.errors", "lumo_hydra.params", "lumo_hydra.params.validators"])
        + " False",
        "False False", "False", "True"]


PICKLED_APP = '''
from lumo_hydra import Params, arange, choice


class OptimParams(Params):
    name: str = choice("sgd", "adam")
    lr: float = arange(default=0.1, left=0, right=1)


class TrainParams(Params):
    alpha: float = arange(default=1, left=0, right=10)
    optim: OptimParams = OptimParams()


TrainParams.store(name="pickled_train")
'''


def test_class_based_params_and_their_dataclass_unpickle_in_a_fresh_process(tmp_path: Path) -> None:
    """What a joblib/submitit worker does: unpickle what the launcher pickled, importing only the user's module."""
    (tmp_path / "pickled_app.py").write_text(PICKLED_APP)
    dump = textwrap.dedent("""
        import pickle, sys
        from pickled_app import TrainParams
        p = TrainParams(alpha=2)
        p.optim.name = "adam"
        dc = TrainParams.dataclass()
        sys.stdout.buffer.write(pickle.dumps((p, dc, dc(alpha=3.0), p.optim._validators["lr"])))
    """)
    load = textwrap.dedent("""
        import pickle, sys
        p, dc, inst, lr = pickle.loads(sys.stdin.buffer.read())
        print(type(p).__module__, type(p).__qualname__, p.to_dict())
        print(dc.__qualname__, inst.alpha, type(inst.optim).__qualname__, lr)
        p.alpha = 5
        try:
            p.alpha = 50
        except ValueError as e:
            print(type(e).__name__)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    first = subprocess.run([sys.executable, "-c", dump], capture_output=True, env=env, cwd=tmp_path, timeout=120)
    assert first.returncode == 0, first.stderr.decode()
    second = subprocess.run([sys.executable, "-c", load], input=first.stdout, capture_output=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert second.returncode == 0, second.stderr.decode()
    assert second.stdout.decode().splitlines() == [
        "pickled_app TrainParams {'alpha': 2.0, 'optim': {'name': 'adam', 'lr': 0.1}}",
        "TrainParams.__lumo_dataclass__ 3.0 OptimParams.__lumo_dataclass__ arange(0, 1)",
        "ParamsValueError",
    ]


class NeedsParams(Params):
    name: str
    loose: NotDefinedAnywhere = 1  # noqa: F821 - an annotation that does not resolve: the key is untyped


def test_a_required_parameter_and_an_untyped_key_survive_pickling() -> None:
    n = NeedsParams()
    back = pickle.loads(pickle.dumps(n))
    assert back.to_dict() == {"name": "???", "loose": 1}
    with pytest.raises(AttributeError, match="required"):
        _ = back.name
    back.name = "x"
    back.loose = [1, "anything"]
    assert back.to_dict() == {"name": "x", "loose": [1, "anything"]}
    with pytest.raises(ParamsValueError, match="'name'"):
        back.name = [1]


def test_parse_argv_returns_files_and_operations_in_order() -> None:
    from lumo_hydra.params.argv import ArgvOp, parse_argv

    parsed = parse_argv(["--a=1", "-c", "x.yaml,y.json", "+b=[1,2]", "++c='s'", "~d", "--flag", "--e", "v",
                         "-c=z.yaml"])
    assert parsed.files == ["x.yaml", "y.json", "z.yaml"] and not parsed.help
    assert parsed.ops == [ArgvOp("set", "a", 1), ArgvOp("add", "b", [1, 2]), ArgvOp("force", "c", "s"),
                          ArgvOp("del", "d"), ArgvOp("set", "flag", True), ArgvOp("set", "e", "v")]
    assert parse_argv(["a=1", "--help", "oops"]).help  # parsing stops at --help
    with pytest.raises(ParamsArgsError, match="bad parameter name"):
        parse_argv(["a..b=1"])
