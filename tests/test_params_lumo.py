"""lumo code runs unchanged on Params: issue 15 items 1-4 and 5a, and issue 11 item 14 (the params part).

One test per numbered case; the test name says which.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import lumo_hydra
from lumo_hydra import Params, arange, choice
from lumo_hydra.errors import ParamsArgsError, ParamsFileError, ParamsValueError, UnknownKeyError
from lumo_hydra.params.nested import MAX_DEPTH


def _lumo_style() -> Params:
    res = Params()
    res.a = 1
    res.b = [2, 3, 4]
    res.c = {"a": 1, "b": [5, 6, 7], "c": {"d": [8, 9]}}
    return res


# ---- issue 15, item 1: nested dicts are nested params ----------------------------------------------

def test_15_1_nested_dict_from_code_has_attribute_and_item_access() -> None:
    params = Params()
    params.optim = dict(lr=0.1)  # noqa: C408 - lumo's own example
    assert params.optim.lr == 0.1 and params.optim["lr"] == 0.1 and params["optim.lr"] == 0.1
    params.optim.lr = 0.2
    params.optim.momentum = 0.9  # a new key inside a nested dict, as on a DictConfig
    params["optim.wd"] = 1e-4
    assert params.to_dict() == {"optim": {"lr": 0.2, "momentum": 0.9, "wd": 1e-4}}
    assert type(params.to_dict()["optim"]) is dict
    assert params.optim == {"lr": 0.2, "momentum": 0.9, "wd": 1e-4}
    assert dict(**params.optim) == {"lr": 0.2, "momentum": 0.9, "wd": 1e-4}
    params.optim = {"name": "adam"}  # assigning a new dict replaces the old one, as in lumo
    assert params.to_dict() == {"optim": {"name": "adam"}}
    params.optim.lr = params.arange(default=0.1, left=0, right=1)  # validators work inside
    with pytest.raises(ParamsValueError, match="optim.lr"):
        params.optim.lr = 3


def test_15_1_nested_dict_from_json_and_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"c": {"a": 1, "c": {"d": [8, 9]}}}))
    (tmp_path / "p.yaml").write_text("c:\n  a: 1\n  c:\n    d: [8, 9]\n")
    for name in ("p.json", "p.yaml"):
        res = Params().from_json(tmp_path / name) if name.endswith("json") else Params().from_yaml(tmp_path / name)
        res.c.a = 4
        res.c.c.d.append(10)
        assert res.c.c.d == [8, 9, 10] and res["c.c.d"] == [8, 9, 10]
        assert res.to_dict() == {"c": {"a": 4, "c": {"d": [8, 9, 10]}}}


def test_15_1_nested_dict_from_the_command_line() -> None:
    params = Params()
    params.from_args(["--opt={lr: 0.5, betas: [0.9, 0.99]}", "opt.lr=0.25"])  # open: every key allowed
    assert params.opt.lr == 0.25 and params.opt.betas == [0.9, 0.99]
    declared = Params()
    declared.opt = {"lr": 0.1}
    declared.from_args(["--opt.lr=0.3"])
    assert declared.opt.lr == 0.3
    with pytest.raises(UnknownKeyError, match="opt.lrr"):
        declared.from_args(["--opt.lrr=0.3"])


def test_15_1_copy_is_deep_and_to_dict_gives_plain_dicts() -> None:
    res = _lumo_style()
    copy = res.copy()
    res.a = 2
    res.b.append(5)
    res.c.a = 2
    res.c.b.append(8)
    res.c.c.d.append(8)
    assert copy.to_dict() == {"a": 1, "b": [2, 3, 4], "c": {"a": 1, "b": [5, 6, 7], "c": {"d": [8, 9]}}}
    copy.c.a = 2
    assert res.c.a == 2 and copy.c.b == [5, 6, 7]
    back = Params().from_dict(copy.to_dict())
    assert back.hash() == copy.hash() and back == copy
    assert pickle.loads(pickle.dumps(copy)).c.c.d == [8, 9]


def test_15_1_dict_that_cannot_be_params_stays_a_dict_and_typed_dict_keys_stay_dicts() -> None:
    p = Params()
    p.m = {"keys": 1, 2: "two", "a.b": 3}  # a method name, an int key, a dotted key: kept as a plain dict
    assert type(p.m) is dict and p.m["keys"] == 1

    class Typed(Params):
        table: dict = {"x": 1}  # noqa: RUF012 - an annotated dict stays a dict (mypy says dict)

    t = Typed()
    assert type(t.table) is dict
    t.table = {"y": 2}
    assert type(t.table) is dict and t.to_dict() == {"table": {"y": 2}}


# ---- issue 15, item 2: lumo's names ---------------------------------------------------------------

def test_15_2_init_from_kwargs_from_kwargs_base_params_and_bound_check_error() -> None:
    from lumo_hydra import BaseParams, BoundCheckError
    from lumo_hydra.params import BaseParams as BP2
    from lumo_hydra.params import BoundCheckError as BCE2

    assert BaseParams is Params is BP2 and BoundCheckError is BCE2 is ParamsValueError
    p = BaseParams.init_from_kwargs(a=1, optim={"lr": 0.1})
    assert p.a == 1 and p.optim.lr == 0.1
    q = Params().from_kwargs(b=2)
    assert q.to_dict() == {"b": 2}
    r = Params.from_kwargs(c=3)  # also on the class (a new instance)
    assert isinstance(r, Params) and r.to_dict() == {"c": 3}

    class MyParams(BaseParams):
        def __init__(self) -> None:
            super().__init__()
            self.k = None
            self.size = self.arange(1, 0, 2)
            self.name = self.choice("cifar10", "cifar100")

    m = MyParams.init_from_kwargs(k=5)
    assert isinstance(m, MyParams) and m.k == 5
    for key, bad in (("size", 3), ("name", "stl10")):
        try:
            m[key] = bad
            raise AssertionError("should raise BoundCheckError")
        except BoundCheckError as e:
            assert key in str(e)
    with pytest.raises(BoundCheckError):
        Params().arange(5, 0, 2)  # a default outside its range


# ---- issue 15, item 3: nested new keys --------------------------------------------------------------

def test_15_3_nested_new_keys_on_bare_and_declared_params() -> None:
    bare = Params().from_args(["+d.c.d=2", "x.y=1", "--u.v.w=3"])
    assert bare.to_dict() == {"d": {"c": {"d": 2}}, "x": {"y": 1}, "u": {"v": {"w": 3}}}
    declared = Params()
    declared.a = 1
    declared.from_args(["+a2.b.c=1", "++e.f=2"])
    assert declared.a2.b.c == 1 and declared.e.f == 2
    with pytest.raises(UnknownKeyError, match=r"\+zz\.y=value"):
        declared.from_args(["zz.y=1"])  # a declared Params still refuses an unknown key without +
    with pytest.raises(UnknownKeyError, match="not a nested Params"):
        declared.from_args(["+a.b=1"])  # a is a number: it cannot get children
    with pytest.raises(UnknownKeyError, match="already exists"):
        declared.from_args(["+a2.b.c=5"])


# ---- issue 15, item 4: several config files ---------------------------------------------------------

def test_15_4_config_files_merge_left_to_right_then_the_command_line_wins(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    b = tmp_path / "b.yaml"
    a.write_text(json.dumps({"lr": 0.1, "epochs": 5, "optim": {"name": "sgd", "momentum": 0.9}}))
    b.write_text("batch: 32\nepochs: 10\noptim:\n  name: adam\n")
    p = Params().from_args([f"--config={a},{b}", "--batch=64"])
    assert p.to_dict() == {"lr": 0.1, "epochs": 10, "optim": {"name": "adam", "momentum": 0.9}, "batch": 64}
    q = Params().from_args(["--c", str(a), f"--c={b}"])  # lumo's --c
    assert q.epochs == 10 and q.batch == 32
    declared = Params()
    declared.lr = 0.5
    with pytest.raises(UnknownKeyError, match="a.json"):  # declared keys: a file's unknown key is refused
        declared.from_args([f"--config={a}"])
    has_c = Params()
    has_c.c = 1
    has_c.from_args(["--c=7"])  # a parameter named c keeps --c for itself
    assert has_c.c == 7


# ---- issue 15, item 5a: a missing file is a FileNotFoundError ---------------------------------------

def test_15_5a_missing_parameter_file_is_also_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    for load in (Params().from_json, Params().from_yaml, lambda f: Params().from_args(["-c", str(f)])):
        with pytest.raises(FileNotFoundError) as info:
            load(missing)
        assert isinstance(info.value, ParamsFileError) and isinstance(info.value, ValueError)
        assert str(missing) in str(info.value) and info.value.filename == str(missing)
    back = pickle.loads(pickle.dumps(info.value))
    assert isinstance(back, FileNotFoundError) and str(back) == str(info.value)


# ---- issue 11, item 14: huge numbers and deep files are ValueErrors naming the key or the file --------

def test_11_14_huge_ints_in_arange_and_choice_raise_params_value_error() -> None:
    big = 10**400
    r = arange(default=1, left=0, right=big)  # a huge bound is compared exactly
    assert r.check("k", big) == big
    with pytest.raises(ParamsValueError, match="k"):
        r.check("k", big + 1)

    class P(Params):
        lr: float = arange(default=1, left=0, right=10)
        mode: float = choice(1.0, 2.0)
        plain: float = 1.0

    for key in ("lr", "mode", "plain"):
        with pytest.raises(ParamsValueError, match=f"'{key}'.*too large"):
            P().from_args([f"--{key}={big}"])
        with pytest.raises(ParamsValueError, match=f"'{key}'"):
            P()[key] = big
    class Q(Params):
        x: float = arange(default=big)

    with pytest.raises(ParamsValueError, match="'x'"):
        Q()
    p = Params()
    p.n = p.choice(1, big)
    p.n = big
    assert p.to_dict() == {"n": big}
    with pytest.raises(ParamsValueError) as info:
        p.n = 10**5000  # too long even to print: the message still names the key
    assert "'n'" in str(info.value) and len(str(info.value)) < 1000


def test_11_14_deep_json_and_yaml_files_raise_params_file_error(tmp_path: Path) -> None:
    n = 100_000
    deep_json = tmp_path / "deep.json"
    deep_json.write_text('{"a":' * n + "1" + "}" * n)
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("a: " + "[" * n + "]" * n + "\n")
    deep_list = tmp_path / "list.json"
    deep_list.write_text('{"a":' + "[" * n + "]" * n + "}")
    for f in (deep_json, deep_yaml, deep_list):
        with pytest.raises(ParamsFileError, match=f.name):
            Params().from_file(f)
        with pytest.raises(ParamsFileError, match=f.name):
            Params().from_args(["--config", str(f)])
    limit = tmp_path / "limit.json"  # exactly as deep as allowed: loads, copies, dumps
    limit.write_text('{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH)
    p = Params().from_json(limit)
    assert p.copy() == p and json.loads(p.to_json()) == json.loads(limit.read_text())
    assert p.hash() and repr(p) and p.help_text()
    with pytest.raises(ParamsValueError, match="'x'"):
        value: dict = {}
        node = value
        for _ in range(5000):
            node["a"] = {}
            node = node["a"]
        Params().x = value
    with pytest.raises(ParamsArgsError):
        Params().from_args(["--x=" + "[" * 20000 + "]" * 20000])


def test_lumo_names_are_reachable_from_the_top_level() -> None:
    assert lumo_hydra.BaseParams is Params and lumo_hydra.BoundCheckError is ParamsValueError
