"""YAML DAG specs: shared nodes built once, cycles, bad references, node errors, Hydra config groups."""
from __future__ import annotations

import os
import pickle
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lumo_hydra import DatasetBuilder
from lumo_hydra.data.spec import DatasetSpecError, build, build_from_spec

ROOT = Path(__file__).resolve().parents[1]
HERE = __name__  # the module name Hydra imports the targets below from


class Loader:
    """A source node that counts how often it is constructed."""

    built = 0

    def __init__(self, n: int = 5) -> None:
        type(self).built += 1
        self.data = {"x": list(range(n)), "y": [k * k for k in range(n)]}
        self.n = n


class Scale:
    built = 0

    def __init__(self, factor: float = 2.0) -> None:
        type(self).built += 1
        self.factor = factor

    def __call__(self, v):
        return v * self.factor


class Chain:
    def __init__(self, steps) -> None:
        self.steps = list(steps)

    def __call__(self, v):
        for s in self.steps:
            v = s(v)
        return v


def offset(v, by):
    return v + by


def broken(**kw):
    raise RuntimeError("the disk is on fire")


@pytest.fixture(autouse=True)
def _reset_counters():
    Loader.built = Scale.built = 0


def spec(text: str):
    return OmegaConf.create(textwrap.dedent(text).replace("HERE", HERE))


def test_shared_nodes_are_built_once_and_shared():
    cfg = spec("""
        _target_: lumo_hydra.data_spec.build
        _recursive_: false
        nodes:
          src: {_target_: HERE.Loader, n: 4}
          double: {_target_: HERE.Scale, factor: 2}
          both: {_target_: HERE.Chain, steps: ["@double", "@double", {_target_: HERE.Scale, factor: 10}]}
          unused: {_target_: HERE.Loader}
        inputs:
          x: {source: "@src.data.x", transform: "@double"}
          y: "@src.data.y"
          z: "@src.data.x"
        outputs:
          a: {input: x}
          b: {input: x, transform: "@both"}
          c: {input: y, transform: "@double"}
          i: {idx: true}
    """)
    ds = instantiate(cfg)
    assert isinstance(ds, DatasetBuilder)
    assert (Loader.built, Scale.built) == (1, 2)  # 'unused' never built; 'double' once + the inline one
    assert ds[3] == {"a": 6, "b": 6 * 2 * 2 * 10, "c": 18, "i": 3}
    double = ds.get_input_transform("x")
    assert ds.get_output_transform("c") is double
    assert ds.get_output_transform("b").steps[0] is double and ds.get_output_transform("b").steps[1] is double
    assert list(ds.inputs) == ["x", "y"]  # input z: no output uses it, never built nor read
    assert len(ds) == 4


def test_partial_transforms_literals_interpolations_and_views():
    cfg = spec("""
        factor: 3
        dataset:
          _target_: lumo_hydra.data_spec.build
          _recursive_: false
          nodes:
            add: {_target_: HERE.offset, _partial_: true, by: "${factor}"}
            arr: {_target_: numpy.arange, _args_: [6]}
            names: [a, b, c, d, e, f]
            tag: "@@literal"
          inputs:
            n: "@arr"
            s: "@names"
            t: [1, 2, 3, 4, 5, 6]
          outputs:
            n: {input: n, transform: "@add"}
            s: s
            t: null
            tag: {input: s, transform: {_target_: HERE.offset, _partial_: true, by: "@tag"}}
          mode: chain
          subset: {start: 1, step: 2}
          repeat: 2
          scale_to_size: 5
    """)
    ds = instantiate(cfg.dataset)
    assert len(ds) == 5
    assert [ds[i][0] for i in range(5)] == [4, 6, 8, 4, 6]
    assert ds[0][1:] == ["b", 2, "b@literal"]
    assert isinstance(ds.get_source("n"), np.ndarray)
    clone = pickle.loads(pickle.dumps(ds))  # partial transforms travel to DataLoader workers
    assert [clone[i] for i in range(5)] == [ds[i] for i in range(5)]


def test_hydra_target_policy_still_applies(tmp_path):
    # nodes are called through Hydra's own partial objects: its blocklist is not bypassed
    marker = tmp_path / "pwned"
    with pytest.raises(DatasetSpecError, match=r"node 'evil' \(os\.system\).*blocklisted"):
        build(nodes={"evil": {"_target_": "os.system", "_args_": [f"touch {marker}"]}},
              inputs={"x": "@evil"}, outputs={"x": "x"})
    assert not marker.exists()


def test_torch_tensor_source_and_item_mode():
    pytest.importorskip("torch")
    ds = build_from_spec({
        "nodes": {"t": {"_target_": "torch.arange", "_args_": [4]}},
        "inputs": {"t": "@t"},
        "outputs": {"t": {"input": "t", "transform": {"_target_": f"{HERE}.Scale", "factor": 2}}},
        "mode": "item",
    })
    assert [int(v) for v in ds] == [0, 2, 4, 6]


def test_cycle_is_named():
    with pytest.raises(DatasetSpecError, match=r"cycle in dataset spec nodes: a -> b -> a"):
        build(nodes={"a": {"_target_": f"{HERE}.Chain", "steps": ["@b"]},
                     "b": {"_target_": f"{HERE}.Chain", "steps": ["@a"]}})
    with pytest.raises(DatasetSpecError, match=r"b -> c -> d -> b"):
        build(nodes={"a": "@b", "b": "@c", "c": {"x": ["@d"]}, "d": {"y": "@b"}})
    with pytest.raises(DatasetSpecError, match=r"cycle in dataset spec nodes: s -> s"):
        build(nodes={"s": {"_target_": f"{HERE}.Chain", "steps": ["@s"]}})


def test_unknown_references_name_the_path_and_known_nodes():
    nodes = {"src": {"_target_": f"{HERE}.Loader"}, "f": {"_target_": f"{HERE}.Scale"}}
    with pytest.raises(DatasetSpecError,
                       match=r"unknown reference '@scale' at outputs\.x\.transform; known nodes: \['f', 'src'\]"):
        build(nodes=nodes, inputs={"x": "@src.data.x"}, outputs={"x": {"input": "x", "transform": "@scale"}})
    with pytest.raises(DatasetSpecError, match=r"unknown reference '@nope' at nodes\.f\.factor"):
        build(nodes={**nodes, "f": {"_target_": f"{HERE}.Scale", "factor": "@nope"}})
    with pytest.raises(DatasetSpecError, match=r"unknown reference '@zz' at nodes\.c\.steps\[1\]"):
        build(nodes={**nodes, "c": {"_target_": f"{HERE}.Chain", "steps": ["@f", "@zz"]}})
    with pytest.raises(DatasetSpecError, match=r"unknown input 'xx' at outputs\.x\.input; known inputs: \['x'\]"):
        build(nodes=nodes, inputs={"x": "@src.data.x"}, outputs={"x": {"input": "xx"}})
    with pytest.raises(DatasetSpecError,
                       match=r"@src\.data has no key 'q' \(reference at inputs\.x\); keys: \['x', 'y'\]"):
        build(nodes=nodes, inputs={"x": "@src.data.q"}, outputs={"x": {"input": "x"}})
    with pytest.raises(DatasetSpecError, match=r"unknown dataset spec key\(s\) \['output'\]; allowed: \['nodes'"):
        build(output={})
    with pytest.raises(DatasetSpecError, match=r"unknown key\(s\) \['transfrom'\] at outputs\.x; allowed"):
        build(inputs={"x": [1]}, outputs={"x": {"input": "x", "transfrom": None}})
    with pytest.raises(DatasetSpecError, match=r"invalid reference '@a b'"):
        build(nodes={"a": 1}, inputs={"x": "@a b"})


def test_node_constructor_errors_name_the_node():
    with pytest.raises(DatasetSpecError, match=r"node 'disk' \(.*broken\) failed to build at nodes\.disk: "
                                                r"RuntimeError: the disk is on fire") as e:
        build(nodes={"disk": {"_target_": f"{HERE}.broken"}}, inputs={"x": "@disk"}, outputs={"x": {"input": "x"}})
    assert isinstance(e.value, ValueError)
    with pytest.raises(DatasetSpecError, match=r"node 'digits' .*invalid value for 'split': 'bogus'"):
        build_from_spec(ROOT / "conf/lumo/dataset/digits.yaml", nodes={"digits": {"split": "bogus"}})
    with pytest.raises(DatasetSpecError,
                       match=r"the config at outputs\.x\.transform \(no\.such\.Thing\) failed to build"):
        build(inputs={"x": [1]}, outputs={"x": {"input": "x", "transform": {"_target_": "no.such.Thing"}}})


def test_builder_errors_get_the_spec_path():
    with pytest.raises(ValueError, match=r"inputs\.b: input 'b' has length 3, other inputs differ: a=2, b=3"):
        build(inputs={"a": [1, 2], "b": [1, 2, 3]}, outputs={"a": "a", "b": "b"})
    with pytest.raises(IndexError, match=r"subset: subset\(\) index 9 out of range"):
        build(inputs={"a": [1, 2]}, outputs={"a": "a"}, subset=[9])
    with pytest.raises(TypeError, match=r"inputs\.a(\.source)?: input 'a' is a dict-like source"):
        build(nodes={"d": {"k": [1]}}, inputs={"a": "@d"}, outputs={"a": "a"})


@pytest.mark.parametrize("name", ["digits", "digits_twoview"])
def test_shipped_specs(name):
    cfg = OmegaConf.load(ROOT / "lumo_hydra" / "conf" / "lumo" / "dataset" / f"{name}.yaml")
    ds = instantiate(cfg)
    assert len(ds) == 1438
    item = ds[0]
    assert item["ys"].dtype == np.int64
    for key in ("xs",) if name == "digits" else ("xs1", "xs2"):
        assert item[key].shape == (1, 8, 8) and item[key].dtype == np.float32
    test = instantiate(cfg, nodes={"digits": {"split": "test"}})
    assert len(test) == 359
    if name == "digits_twoview":
        assert not np.array_equal(item["xs1"], item["xs2"])
        assert ds.get_output_transform("xs2").strength == 1.0


def test_spec_builds_fast_enough_to_not_matter():
    # 50 nodes (a chain of references) with trivial constructors: the whole build stays well under a second
    nodes = {"n0": {"_target_": f"{HERE}.Scale", "factor": 1}}
    for k in range(1, 50):
        nodes[f"n{k}"] = {"_target_": f"{HERE}.Chain", "steps": [f"@n{k - 1}"]}
    ds = build(nodes=nodes, inputs={"x": [1, 2]}, outputs={"x": {"input": "x", "transform": "@n49"}})
    assert ds[1] == {"x": 2}


def test_hydra_app_swaps_dataset_and_overrides_a_transform(tmp_path):
    from hydra.test_utils.test_utils import run_python_script

    app = str(ROOT / "examples" / "dataset_demo" / "app.py")
    env = dict(os.environ)
    out, _ = run_python_script([app, f"hydra.run.dir={tmp_path / 'a'}"], env=env)
    assert "outputs={xs: xs -> Normalize(mean=0.5, std=0.25) -> AddChannel(), ys: ys}" in out
    assert "items: 1438" in out
    out, _ = run_python_script(
        [app, "dataset=digits_twoview", "dataset.outputs.xs2.transform.strength=0.5",
         "dataset.nodes.digits.split=test", "num_workers=2", f"hydra.run.dir={tmp_path / 'b'}"],
        env=env,
    )
    assert "xs1: xs -> Normalize(mean=0.5, std=0.25) -> RandomAugment(strength=0.3," in out
    assert "xs2: xs -> Normalize(mean=0.5, std=0.25) -> RandomAugment(strength=0.5," in out
    assert "items: 359" in out
    assert "batch: {'xs1': (32, 1, 8, 8), 'xs2': (32, 1, 8, 8), 'ys': (32,)}" in out


class DigitsBuilder(DatasetBuilder):
    """A user's subclass that adds a method: ``from_spec`` must build this class."""

    def labels(self):
        return [int(item["ys"]) for item in self]


def test_from_spec_on_a_subclass_builds_the_subclass(tmp_path):
    shipped = ROOT / "lumo_hydra" / "conf" / "lumo" / "dataset" / "digits.yaml"
    path = tmp_path / "digits.yaml"
    path.write_text(shipped.read_text())
    ds = DigitsBuilder.from_spec(path, nodes={"digits": {"split": "test", "limit": 5}})
    assert type(ds) is DigitsBuilder
    assert len(ds) == 5 and len(ds.labels()) == 5 and ds[0]["xs"].shape == (1, 8, 8)
    from_dict = DigitsBuilder.from_spec(
        {"inputs": {"ys": [3, 1, 4]}, "outputs": {"ys": "ys", "i": {"idx": True}}, "subset": [2, 0]},
        outputs={"ys": {"input": "ys", "transform": {"_target_": f"{HERE}.offset", "_partial_": True, "by": 1}}},
    )
    assert type(from_dict) is DigitsBuilder and from_dict.labels() == [5, 4]
    assert from_dict[0] == {"ys": 5, "i": 2}
    from_config = DigitsBuilder.from_spec(OmegaConf.create({"inputs": {"ys": [7]}, "outputs": {"ys": None}}))
    assert type(from_config) is DigitsBuilder and from_config.labels() == [7]
    # the plain entry points still build the plain class
    assert type(DatasetBuilder.from_spec({"inputs": {"ys": [7]}, "outputs": {"ys": None}})) is DatasetBuilder
    assert type(build_from_spec({"inputs": {"ys": [7]}, "outputs": {"ys": None}})) is DatasetBuilder


OLD_NAMES_SPEC = """
_target_: lumo_hydra.data_spec.build
_recursive_: false
nodes:
  digits: {_target_: lumo_hydra.data_digits.load, split: test, limit: 6}
  normalize: {_target_: lumo_hydra.data_digits.Normalize, mean: 0.5, std: 0.25}
  aug:
    _target_: lumo_hydra.data_digits.Compose
    transforms:
      - {_target_: lumo_hydra.data_digits.RandomAugment, strength: 0.5, seed: 0}
      - {_target_: lumo_hydra.data_digits.AddChannel}
inputs:
  xs: {source: "@digits.images", transform: "@normalize"}
  ys: "@digits.targets"
outputs:
  xs1: {input: xs, transform: "@aug"}
  xs2: {input: xs}
  ys: {input: ys}
global_transform: {_target_: lumo_hydra.data_digits.AddChannelTo, keys: [xs2]}
"""


def test_old_target_names_still_build():
    # users' YAML written before the package layout names lumo_hydra.data_spec / lumo_hydra.data_digits
    old = instantiate(OmegaConf.create(OLD_NAMES_SPEC))
    new = instantiate(OmegaConf.create(
        OLD_NAMES_SPEC.replace("lumo_hydra.data_spec.", "lumo_hydra.data.spec.")
        .replace("lumo_hydra.data_digits.", "lumo_hydra.data.digits.")
    ))
    assert type(old) is DatasetBuilder and len(old) == 6
    for i in range(6):  # the same objects: same digits, same normalisation, same seeded augmentation
        a, b = old[i], new[i]
        assert a["xs1"].shape == a["xs2"].shape == (1, 8, 8) and a["ys"].dtype == np.int64
        for key in ("xs1", "xs2", "ys"):
            np.testing.assert_array_equal(a[key], b[key])


def test_data_modules_reach_hydra_only_through_the_hydra_edge():
    # no module of lumo_hydra/data imports hydra, at module level or inside a function
    import ast

    for path in sorted((ROOT / "lumo_hydra" / "data").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n == "hydra" or n.startswith("hydra.")], f"{path.name} imports hydra"


# -- issue 11.15: what a reference may reach ---------------------------------------------------------
EXPLOIT_SPEC = """
_target_: lumo_hydra.data.spec.build
_recursive_: false
nodes:
  p: {_target_: pathlib.Path, _args_: ["%s"]}
inputs:
  x: ["import os; os.system('touch %s')"]
outputs:
  x: {input: x, transform: "@p.write_text"}
"""


def test_spec_reference_to_bound_method_write_text_is_refused_and_writes_nothing(tmp_path):
    # the exploit: a Path node and `transform: "@p.write_text"` wrote a .pth file into site-packages
    site = tmp_path / "site-packages"
    site.mkdir()
    pth, ran = site / "evil.pth", tmp_path / "ran"
    cfg = OmegaConf.create(EXPLOIT_SPEC % (pth, ran))
    msg = r"'@p\.write_text' at outputs\.x\.transform reaches a callable \(method Path\.write_text\).*`_target_`"
    with pytest.raises(ValueError, match=msg) as info:
        build_from_spec(cfg)[0]  # (were it built, reading the item would call the transform)
    assert isinstance(info.value, DatasetSpecError)
    with pytest.raises(Exception, match=msg) as info:  # through Hydra's instantiate: the same error, as its cause
        instantiate(cfg)[0]
    assert isinstance(info.value.__cause__, DatasetSpecError)
    assert list(site.iterdir()) == [] and not ran.exists()


def test_spec_reference_reaching_a_blocked_function_is_refused_with_hydras_reason(tmp_path):
    nodes = {"o": {"_target_": "hydra.utils.get_object", "path": "os"}}
    with pytest.raises(DatasetSpecError, match=r"'@o\.system'.*'posix\.system', which Hydra refuses.*blocklisted"):
        build(nodes=nodes, inputs={"x": [f"touch {tmp_path}/ran"]}, outputs={"x": {"input": "x", "transform": "@o.system"}})
    nodes = {"o": {"_target_": "hydra.utils.get_object", "path": "shutil"}}
    with pytest.raises(DatasetSpecError, match=r"'shutil\.rmtree', which Hydra refuses"):
        build(nodes=nodes, inputs={"x": [str(tmp_path)]}, outputs={"x": {"input": "x", "transform": "@o.rmtree"}})
    assert tmp_path.is_dir() and not (tmp_path / "ran").exists()


def test_spec_reference_to_private_or_dunder_attributes_is_refused():
    nodes = {"p": {"_target_": "pathlib.Path", "_args_": ["/tmp"]}}
    for ref in ("@p.__class__", "@p._raw_paths"):
        with pytest.raises(DatasetSpecError, match=r"attributes starting with '_' cannot be referenced"):
            build(nodes=nodes, inputs={"x": [1]}, outputs={"x": {"input": "x", "transform": ref}})


def test_spec_reference_to_a_lambda_or_local_function_inside_a_node_is_refused():
    spec = {"nodes": {"d": {"_target_": "builtins.dict"}}, "inputs": {"x": [1]},
            "outputs": {"x": {"input": "x", "transform": "@d.f"}}}
    from lumo_hydra.data.spec_engine import _SpecBuilder

    sb = _SpecBuilder(spec)
    sb.built["d"] = {"f": lambda v: v}  # what a target could return: a lambda is no `_target_`
    with pytest.raises(DatasetSpecError, match=r"'@d\.f'.*not a `_target_` Hydra would accept"):
        sb.run(DatasetBuilder)


def test_spec_references_to_data_partials_instances_and_classes_still_work():
    nodes = {
        "src": {"_target_": f"{HERE}.Loader", "n": 3},
        "chain": {"_target_": f"{HERE}.Chain", "steps": [{"_target_": f"{HERE}.Scale", "factor": 3}]},
        "d": {"_target_": "builtins.dict", "f": {"_target_": "operator.add", "_partial_": True, "_args_": [10]},
              "cls": {"_target_": "hydra.utils.get_class", "path": "builtins.str"}},
    }
    ds = build(nodes=nodes, inputs={"x": "@src.data.x", "y": "@src.data.y"},
               outputs={"a": {"input": "x", "transform": "@chain.steps.0"},   # a callable instance (Scale)
                        "b": {"input": "x", "transform": "@d.f"},             # a partial of operator.add
                        "c": {"input": "y", "transform": "@d.cls"}})          # a class
    assert ds[2] == {"a": 6, "b": 12, "c": "4"}
