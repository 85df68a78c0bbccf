"""DatasetBuilder: the seed snippet, lumo's surface with its bugs fixed, errors, views (hypothesis), DataLoader."""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumo_hydra import DatasetBuilder
from lumo_hydra.data.builder import DataIndexError, DataTypeError, DataValueError
from lumo_hydra.errors import LumoValueError


class Source:
    """A torchvision-like source with ``data`` and ``targets``."""

    def __init__(self, n: int = 10) -> None:
        self.data = np.arange(n * 4, dtype=np.float32).reshape(n, 2, 2)
        self.targets = list(range(n))


class CountingSeq:
    """A sequence that counts item reads."""

    def __init__(self, items):
        self.items = list(items)
        self.reads = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        return self.items[i]


class Counting:
    """A picklable transform that counts its calls (in this process)."""

    def __init__(self, fn=None):
        self.calls = 0
        self.fn = fn

    def __call__(self, x):
        self.calls += 1
        return x if self.fn is None else self.fn(x)


def add_one(x):
    return x + 1


def times_ten(x):
    return x * 10


def test_import_does_not_import_torch():
    code = "import sys, lumo_hydra.data, lumo_hydra.data_spec, lumo_hydra.data_digits; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    # nor hydra: only lumo_hydra/_hydra/ imports it, and the spec engine reaches it on first build only
    code = "import sys, lumo_hydra.data, lumo_hydra.data.spec, lumo_hydra.data_spec; print('hydra' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_seed_snippet():
    source = Source()
    transform1, transform2 = add_one, times_ten
    ds = (
        DatasetBuilder()
            .add_input('xs', source.data)
            .add_input('ys', source.targets)
            .add_output('xs', 'xs1', transform1)
            .add_output('xs', 'xs2', transform2)
            .add_output('ys', 'ys')
    )
    print(ds[0])   # {'xs1': ..., 'xs2': ..., 'ys': ...}
    item = ds[3]
    assert list(item) == ["xs1", "xs2", "ys"]
    np.testing.assert_array_equal(item["xs1"], source.data[3] + 1)
    np.testing.assert_array_equal(item["xs2"], source.data[3] * 10)
    assert item["ys"] == 3
    assert len(ds) == 10


def test_input_transform_runs_once_per_item_and_unused_inputs_are_never_read():
    xs, unused = CountingSeq(range(5)), CountingSeq(range(5))
    itf = Counting(add_one)
    ds = (DatasetBuilder().add_input("xs", xs, itf).add_input("unused", unused)
          .add_output("xs", "a").add_output("xs", "b", times_ten))
    assert ds[2] == {"a": 3, "b": 30}
    assert (xs.reads, itf.calls, unused.reads) == (1, 1, 0)
    list(ds)
    assert (xs.reads, itf.calls, unused.reads) == (6, 6, 0)
    assert "unused_inputs=['unused']" in repr(ds)


def test_modes_idx_and_global_transform():
    ds = DatasetBuilder().add_input("x", [10, 20, 30]).add_output("x", "b", add_one).add_idx("i").add_output("x", "a")
    assert list(ds[1]) == ["b", "i", "a"]  # zip: the order outputs were added
    assert ds.chain()[1] == [21, 1, 20]
    ds.add_global_transform(lambda d: {**d, "a": -d["a"]})
    assert ds[2] == [31, 2, -30]
    assert ds.zip()[0] == {"b": 11, "i": 0, "a": -10}
    single = DatasetBuilder().add_input("x", [1, 2]).add_output("x", "y", times_ten).item()
    assert single[1] == 20 and list(single) == [10, 20]
    with pytest.raises(DataValueError, match=r"item\(\) mode needs exactly one output.*\['b', 'i', 'a'\]"):
        ds.item()[0]
    with pytest.raises(DataValueError, match="invalid mode 'zipp'"):
        ds.set_mode("zipp")


def test_idx_is_the_source_index_after_subset():
    ds = DatasetBuilder().add_input("x", list("abcdef")).add_output("x", "x").add_idx("i").subset([4, 1])
    assert ds[0] == {"x": "e", "i": 4} and ds[1] == {"x": "b", "i": 1}


def test_copy_is_a_real_copy():
    # lumo's copy was shallow: outputs added to the copy appeared in the original
    ds = DatasetBuilder().add_input("x", list(range(6))).add_output("x", "x")
    ds[0]
    cp = ds.copy()
    cp.add_output("x", "y", add_one).add_input("z", list(range(6))).add_global_transform(dict).chain()
    cp.subset([1, 2])
    assert ds.output_names == ["x"] and list(ds.inputs) == ["x"] and ds.mode == "zip"
    assert len(ds) == 6 and ds[5] == {"x": 5} and ds.global_transform is None
    assert len(cp) == 2 and cp[1] == [2, 3]
    sub = ds.subset([0, 5], copy=True)
    assert len(ds) == 6 and len(sub) == 2 and sub[1] == {"x": 5}


class TaggedBuilder(DatasetBuilder):
    """A subclass with its own attribute and method."""

    tag = "base"

    def first(self):
        return self[0]


def test_copy_of_a_subclass_is_that_subclass():
    ds = TaggedBuilder().add_input("x", list(range(4))).add_output("x", "x")
    ds.tag = "mine"
    cp = ds.copy()
    sub = ds.subset([3], copy=True)
    assert type(cp) is TaggedBuilder and type(sub) is TaggedBuilder
    assert cp.tag == "mine" and sub.first() == {"x": 3}
    cp.add_output("x", "y")
    assert ds.output_names == ["x"]


def test_iteration_equals_indexing_with_views_and_global_transform():
    # lumo's iteration ignored subset, size and the global transform
    ds = (DatasetBuilder().add_input("x", list(range(10))).add_output("x", "x", add_one).add_idx("i")
          .add_global_transform(lambda d: {**d, "s": d["x"] + d["i"]}).subset([9, 0, 3]).repeat(2).chain())
    assert list(ds) == [ds[i] for i in range(len(ds))] and len(list(ds)) == 6


def test_unsized_iterable_sources():
    def gen():
        yield from range(4)

    ds = (DatasetBuilder().add_input("g", gen()).add_input("lst", [1, 2, 3])
          .add_output("g", "g", times_ten).add_output("lst", "l").add_idx("i"))
    assert not DatasetBuilder().add_input("g", gen()).sized
    assert len(ds) == 3  # the sized input gives the length
    assert list(ds) == [{"g": 0, "l": 1, "i": 0}, {"g": 10, "l": 2, "i": 1}, {"g": 20, "l": 3, "i": 2}]
    with pytest.raises(DataTypeError, match=r"input 'g' \(generator\) cannot be indexed"):
        ds[0]
    only = DatasetBuilder().add_input("g", iter(range(3))).add_output("g", "g").add_idx("i")
    with pytest.raises(TypeError, match="has no length"):
        len(only)
    assert list(only) == [{"g": 0, "i": 0}, {"g": 1, "i": 1}, {"g": 2, "i": 2}]
    with pytest.raises(DataTypeError, match=r"subset\(\) needs a sized builder"):
        DatasetBuilder().add_input("g", iter(range(3))).subset([0])


def test_sources_numpy_torch_and_custom():
    torch = pytest.importorskip("torch")
    ds = (DatasetBuilder().add_input("t", torch.arange(5)).add_input("n", np.arange(5))
          .add_input("c", CountingSeq("abcde")).add_output("t", "t").add_output("n", "n").add_output("c", "c"))
    assert ds[np.int64(4)]["c"] == "e" and int(ds[torch.tensor(3)]["t"]) == 3
    assert int(ds[-1]["n"]) == 4


def test_errors_are_clear():
    ds = DatasetBuilder().add_input("xs", [1, 2, 3]).add_output("xs", "a")
    with pytest.raises(DataValueError, match=r"duplicate input name 'xs'; inputs so far: \['xs'\]"):
        ds.add_input("xs", [1, 2, 3])
    with pytest.raises(DataValueError, match=r"duplicate output name 'a'"):
        ds.add_output("xs", "a")
    with pytest.raises(DataValueError, match=r"duplicate output name 'a'"):
        ds.add_idx("a")
    with pytest.raises(DataValueError, match=r"unknown input of output 'b' 'ys'; inputs: \['xs'\]"):
        ds.add_output("ys", "b")
    with pytest.raises(DataValueError, match=r"unknown input 'zz'"):
        ds.add_input_transform("zz", add_one)
    with pytest.raises(DataValueError, match=r"input 'zs' has length 4, other inputs differ: xs=3, ws=3, zs=4"):
        ds.add_input("ws", [0, 0, 0]).add_input("zs", [1, 2, 3, 4])
    with pytest.raises(DataIndexError, match="index 3 out of range for a DatasetBuilder of length 3"):
        ds[3]
    with pytest.raises(IndexError):
        ds[-4]
    with pytest.raises(DataTypeError, match="indices must be integers.*subset"):
        ds[0:2]
    with pytest.raises(DataTypeError, match=r"dict-like source.*add_input\('d', source\['a'\]\)"):
        ds.add_input("d", {"a": [1, 2, 3]})
    with pytest.raises(DataTypeError, match="must be indexable.*or iterable, got int"):
        ds.add_input("i", 5)
    with pytest.raises(DataTypeError, match="transform of output 'c' must be callable"):
        ds.add_output("xs", "c", "not callable")
    with pytest.raises(DataIndexError, match=r"subset\(\) index 7 out of range"):
        ds.subset([0, 7], copy=True)
    with pytest.raises(DataValueError, match=r"repeat\(multiple\) must be an int >= 0, got -1"):
        ds.repeat(-1)
    with pytest.raises(DataTypeError, match=r"scale_to_size\(size\) must be an int"):
        ds.scale_to_size(2.5)
    # every error is a ValueError subclass (the project's rule) and the fitting builtin type
    for cls in (DataIndexError, DataTypeError, DataValueError):
        assert issubclass(cls, LumoValueError)
    assert issubclass(DataIndexError, IndexError) and issubclass(DataTypeError, TypeError)
    assert pickle.loads(pickle.dumps(DataIndexError("x"))).args == ("x",)


def test_boolean_mask_subset():
    ds = DatasetBuilder().add_input("x", list("abcd")).add_output("x", "x").item()
    assert list(ds.subset(np.array([True, False, True, True]), copy=True)) == ["a", "c", "d"]
    with pytest.raises(DataValueError, match="boolean mask has length 2"):
        ds.subset([True, False])


# ---------------------------------------------------------------------- views against a reference

def _ops(n):
    op = st.one_of(
        st.tuples(st.just("subset"), st.lists(st.integers(-3 * n - 2, 3 * n + 2), max_size=12)),
        st.tuples(st.just("repeat"), st.integers(0, 3)),
        st.tuples(st.just("scale"), st.integers(0, 25)),
    )
    return st.lists(op, max_size=4)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(0, 12))
def test_views_match_a_reference(data, n):
    ops = data.draw(_ops(n))
    ds = DatasetBuilder().add_input("x", [f"v{k}" for k in range(n)]).add_output("x", "x").add_idx("i")
    view = list(range(n))  # the reference: position -> source index
    for op, arg in ops:
        original = ds.copy()
        if op == "subset":
            bad = [i for i in arg if not -len(view) <= i < len(view)]
            if bad:
                with pytest.raises(IndexError):
                    ds.subset(arg)
                continue
            ds = ds.subset(arg, copy=True)
            assert len(original) == len(view)  # copy=True left the original alone
            view = [view[i] for i in arg]
        elif op == "repeat":
            ds.repeat(arg)
            view = view * arg
        else:
            if not view and arg:
                with pytest.raises(ValueError, match="empty"):
                    ds.scale_to_size(arg)
                continue
            ds.scale_to_size(arg)
            view = [view[i % len(view)] for i in range(arg)]
    assert len(ds) == len(view)
    items = [ds[i] for i in range(len(ds))]
    assert items == [{"x": f"v{j}", "i": j} for j in view]
    assert list(ds) == items
    assert [ds[-k] for k in range(1, len(view) + 1)] == items[::-1]
    assert [ds.map_index(i) for i in range(len(ds))] == view
    with pytest.raises(IndexError):
        ds[len(view)]
    with pytest.raises(IndexError):
        ds[-len(view) - 1]
    clone = pickle.loads(pickle.dumps(ds))
    assert [clone[i] for i in range(len(clone))] == items


@settings(max_examples=50, deadline=None)
@given(keys=st.lists(st.sampled_from("abcdef"), unique=True, min_size=1, max_size=6))
def test_chain_order_is_the_order_outputs_were_added(keys):
    ds = DatasetBuilder().add_input("x", [1, 2]).add_input("y", [10, 20])
    for k in keys:
        ds.add_output("x" if k < "d" else "y", k, None)
    assert list(ds[1]) == keys
    assert ds.copy().chain()[1] == [2 if k < "d" else 20 for k in keys]


# ---------------------------------------------------------------------- torch DataLoader

def _digits_twoview_builder():
    from lumo_hydra.data.digits import Normalize, RandomAugment, load

    d = load("all", limit=64)
    return (DatasetBuilder().add_input("xs", d["images"], Normalize()).add_input("ys", d["targets"])
            .add_output("xs", "xs1", RandomAugment(0.3)).add_output("xs", "xs2", RandomAugment(1.0))
            .add_output("ys", "ys").add_idx("idx"))


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_with_two_workers(context):
    torch = pytest.importorskip("torch")
    ds = _digits_twoview_builder().subset(list(range(0, 64, 2)))
    loader = ds.DataLoader(batch_size=8, num_workers=2, shuffle=False, multiprocessing_context=context)
    batches = list(loader)
    assert len(batches) == 4
    idx = torch.cat([b["idx"] for b in batches]).tolist()
    assert idx == list(range(0, 64, 2))
    ys = torch.cat([b["ys"] for b in batches])
    assert ys.tolist() == [int(ds[i]["ys"]) for i in range(len(ds))]
    assert batches[0]["xs1"].shape == (8, 8, 8) and batches[0]["xs1"].dtype == torch.float32
    # the two views differ (random augmentation)
    assert not torch.equal(batches[0]["xs1"], batches[0]["xs2"])


def test_dataloader_unsized_builder_splits_items_between_workers():
    torch = pytest.importorskip("torch")
    ds = DatasetBuilder().add_input("g", _CountTo(10)).add_output("g", "g", times_ten).add_idx("i")
    assert not ds.sized
    got = sorted(torch.cat([b["i"] for b in ds.DataLoader(batch_size=3, num_workers=2)]).tolist())
    assert got == list(range(10))
    got = torch.cat([b["g"] for b in ds.DL(batch_size=4)]).tolist()
    assert got == [k * 10 for k in range(10)]


class _CountTo:
    """An iterable-only source (no __len__, no __getitem__) that can be iterated again and pickled."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


def test_random_augment_salt_separates_views_seeded_alike():
    """Two views seeded from the same run seed draw different numbers when their salts differ, and
    each stays reproducible; salt 0 keeps the streams of earlier versions; bad salts are refused."""
    import numpy as np

    from lumo_hydra.data.digits import RandomAugment

    img = np.zeros((8, 8), dtype=np.float32)

    def draws(aug):
        return [aug(img) for _ in range(5)]

    same = [np.array_equal(a, b) for a, b in zip(draws(RandomAugment(1.0, seed=3)), draws(RandomAugment(1.0, seed=3)))]
    assert all(same)  # reproducible, and identical without a salt: the problem salts solve
    v1, v2 = draws(RandomAugment(1.0, seed=3, salt="xs1")), draws(RandomAugment(1.0, seed=3, salt="xs2"))
    assert not all(np.array_equal(a, b) for a, b in zip(v1, v2))
    assert all(np.array_equal(a, b) for a, b in zip(v1, draws(RandomAugment(1.0, seed=3, salt="xs1"))))
    old = np.random.default_rng([3, 0])  # the pre-salt seeding: (seed, worker id)
    dy, dx = old.integers(-2, 3, size=2)
    first = RandomAugment(1.0, noise=0.0, seed=3)(np.arange(64, dtype=np.float32).reshape(8, 8))
    from lumo_hydra.data.digits import _shift2d

    assert np.array_equal(first, _shift2d(np.arange(64, dtype=np.float32).reshape(8, 8), int(dy), int(dx)))
    for bad in (-1, 1.5, True, None):
        with pytest.raises(ValueError, match="salt"):
            RandomAugment(salt=bad)  # type: ignore[arg-type]
    assert "salt='xs1'" in repr(RandomAugment(salt="xs1")) and "salt" not in repr(RandomAugment())
