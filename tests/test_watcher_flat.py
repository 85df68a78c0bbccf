"""The flat frame built column by column from the index (``frame._flat_columns``) has exactly the columns,
order and values of flattening each run's record (``frame._flat_rows``), and a ``select()`` on the index's
meta part returns what the whole index returns."""
from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_watcher_fake import write_run

from lumo_hydra import Watcher
from lumo_hydra.watcher import frame as F


def _store(root: Path) -> Path:
    now = time.time() - 1000
    shared = {"commit": "abc", "dirty": False, "files": {"a.py": 1}}
    for i in range(40):
        extra: dict = {"git": shared}  # one object for many runs: flattened once
        if i % 3 == 0:
            extra["only_some"] = {"k": i, "deep": {"x": None}} if i % 2 else 7  # dict in some rows, a number in others
        if i % 5 == 0:
            extra["empty"] = {}
        if i % 7 == 0:
            extra["hydra"] = {"config": {"lr": 1}, "job_num": i}  # hydra.config is never flattened
        write_run(root, f"e{i % 3}", counter=i, start=now + i, extra=extra,
                  params={"lr": i / 10, "opt": {"name": "sgd" if i % 2 else "adam", "beta": None}} if i % 4 else {},
                  metrics={"acc": (i / 40, "max")} if i % 6 else {"acc": (0.1, "max"), "loss": (1.0, "min")},
                  tags=["x"] if i % 2 else [])
    t = time.time() - 30  # past the window in which file and folder times are not trusted yet
    for p in (root / "experiments").glob("**/*"):
        os.utime(p, (t, t))
    for p in (root / "experiments").glob("*"):
        os.utime(p, (t, t))
    return root


def test_flat_columns_equal_flat_rows(tmp_path: Path) -> None:
    root = _store(tmp_path / "s")
    table = Watcher(root, cache=False)._index.refresh()
    for sel in (None, list(range(0, 40, 3)), []):
        rows, keys_rows = F._flat_rows(table, sel)
        cols, keys_cols = F._flat_columns(table, sel)
        assert keys_cols == keys_rows
        n = len(rows)
        for k in keys_rows:
            if k in ("status", "info_dir", "duration", "start", "end"):
                continue
            assert (cols[k] if k in cols else [None] * n) == [f.get(k) for f in rows], k
    flat = Watcher(root, cache=False).load(flatten=True)
    assert "hydra.job_num" in flat.columns and "hydra.config.lr" not in flat.columns
    assert "only_some" in flat.columns and "only_some.deep.x" in flat.columns and "git.files.a.py" in flat.columns


def test_select_on_the_meta_part_equals_the_whole_index(tmp_path: Path) -> None:
    root = _store(tmp_path / "s")
    Watcher(root).load()  # the index on disk
    full = Watcher(root).select(limit=0, flatten=True)  # limit 0: the whole index
    for kw in ({"limit": 5}, {"limit": 7, "exp": "e1"}, {"limit": 3, "sort": "start", "desc": False},
               {"limit": 4, "tag": "x", "sort": "duration"}):
        w = Watcher(root)
        part = w.select(**kw)
        assert w._index.mem is not None and w._index.mem.get("partial")  # only the meta part was read
        whole = Watcher(root, cache=False).select(**kw)
        pd.testing.assert_frame_equal(part.drop(columns=["duration"]), whole.drop(columns=["duration"]))
        assert part.attrs["matched"] == whole.attrs["matched"]
    assert len(full) == 40


def _ref_flat_values(out: dict, prefix: str, vals: list, first: dict | None = None) -> None:
    """The straightforward column-by-column flattening (the code before the faster one): the oracle of
    :func:`test_the_faster_flattening_gives_exactly_the_straightforward_columns`."""
    n = len(vals)
    uniq = {id(v): v for v in vals if type(v) is dict and v}
    if len(uniq) * 8 < n:
        flats = {}
        for i, d in uniq.items():
            f: dict = {}
            F._flatten_into(f, prefix, d)
            flats[i] = f
        names: dict = {}
        for v in vals:
            if type(v) is dict:
                if v:
                    names.update(dict.fromkeys(flats[id(v)]))
            elif v is not F._MISS and prefix not in names:
                names[prefix] = None
        for name in names:
            if name == prefix:
                out[name] = [None if type(v) is dict or v is F._MISS else v for v in vals]
            else:
                out[name] = [flats.get(id(v), {}).get(name) if type(v) is dict else None for v in vals]
        return
    keys: dict = {}
    scalar = False
    for v in vals:
        if type(v) is dict:
            keys.update(dict.fromkeys(v))
        elif v is not F._MISS:
            scalar = True
    if scalar:
        out[prefix] = [None if type(v) is dict or v is F._MISS else v for v in vals]
    for k in keys:
        if f"{prefix}.{k}" not in F._NOT_FLATTENED:
            _ref_flat_values(out, f"{prefix}.{k}", [v.get(k, F._MISS) if type(v) is dict else F._MISS for v in vals])


def _random_table(rnd: random.Random, n: int) -> dict:
    """An index table of ``n`` rows whose nested columns mix dicts shared by many rows (as the reader
    shares equal values), dicts of their own, scalars, empty dicts, None and absent keys."""
    shared = [{"commit": f"c{j}", "dirty": bool(j % 2), "files": {"a.py": j, f"b{j}.py": None}} for j in range(3)]
    shared.append({"other": {"deep": {"x": 1}}, "commit": None})
    hydra_cfgs = [{"config": {"lr": 1}, "job_num": j} for j in range(2)]
    key_sets = [("status", "git", "params", "metrics", "metrics_last", "hydra", "note"),
                ("status", "git", "params", "metrics", "metrics_last"), ("status", "params", "note"),
                ("status", "git", "hydra")]
    cols: dict[str, list] = {k: [] for k in ("status", "git", "params", "metrics", "metrics_last", "hydra", "note")}
    rkeys = []
    for i in range(n):
        t = rnd.choice(key_sets)
        rkeys.append(t)
        roll = rnd.random()
        cols["git"].append(rnd.choice(shared) if roll < 0.8 else {} if roll < 0.85 else
                           "no repo" if roll < 0.9 else None if roll < 0.95 else {"commit": f"own{i}"})
        p: dict = {"lr": rnd.random(), "opt": {"name": rnd.choice(["sgd", "adam"])}}
        if rnd.random() < 0.3:
            p["depth"] = rnd.randint(1, 50)
        if rnd.random() < 0.1:
            p["opt"] = "plain"  # a scalar where other rows have a dict
        if rnd.random() < 0.1:
            p = {}
        cols["params"].append(p)
        m = {"acc": rnd.random()} if rnd.random() < 0.9 else {}
        if rnd.random() < 0.3:
            m["loss"] = rnd.random()
        cols["metrics"].append(m)
        cols["metrics_last"].append({k: v / 2 for k, v in m.items()} if rnd.random() < 0.9 else None)
        cols["hydra"].append(rnd.choice(hydra_cfgs) if rnd.random() < 0.9 else 3)
        cols["status"].append("finished")
        cols["note"].append(rnd.choice(["", "n", None]))
    return {"cols": cols, "rkeys": rkeys, "keys": [f"e/{i}" for i in range(n)]}


def test_the_faster_flattening_gives_exactly_the_straightforward_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flat columns (names, order, values) equal those of the straightforward flattening, and the
    values equal flattening each row, for tables where shared dicts, scalars and absent keys mix."""
    taken: list[str] = []
    real_shared = F._flat_shared

    def spy(out: dict, prefix: str, vals: list, ids: list, uniq: dict, first: dict) -> None:
        taken.append(prefix)
        real_shared(out, prefix, vals, ids, uniq, first)

    for seed in range(40):
        rnd = random.Random(seed)
        table = _random_table(rnd, rnd.choice([1, 7, 40, 200]))
        n = len(table["rkeys"])
        for sel in (None, sorted(rnd.sample(range(n), n // 2))):
            with monkeypatch.context() as m:
                m.setattr(F, "_flat_shared", spy)
                cols, keys = F._flat_columns(table, sel)
            with monkeypatch.context() as m:
                m.setattr(F, "_flat_values", _ref_flat_values)
                ref_cols, ref_keys = F._flat_columns(table, sel)
            assert set(keys) == set(ref_keys) and cols == ref_cols, (seed, sel)  # (dicts: order aside)
            rows, row_keys = F._flat_rows(table, sel)
            assert keys == row_keys, (seed, sel)  # the order of flattening row by row
            for k in cols:
                assert cols[k] == [f.get(k) for f in rows], (seed, k)
    assert {"git", "hydra"} <= set(taken)  # the path of dicts shared by many rows was taken


def test_the_column_order_does_not_depend_on_which_rows_share_a_dict() -> None:
    """The same values, once as two dicts shared by many rows (as the reader shares equal values) and once
    as a copy per row, give the same columns in the same order: that of flattening row by row. (It used
    to differ: the shared path kept the first-seen order, the other one went depth-first.)"""
    import copy

    a, b = {"a": {"x": 1}}, {"b": 1, "a": {"y": 2}, "c": "s"}
    shared = [a] * 10 + [b] * 10
    orders = []
    for vals in (shared, copy.deepcopy(shared), [copy.deepcopy(v) for v in shared]):
        table = {"cols": {"status": ["finished"] * 20, "hooks": vals}, "rkeys": [("status", "hooks")] * 20,
                 "keys": [f"e/{i}" for i in range(20)]}
        cols, keys = F._flat_columns(table, None)
        assert keys == F._flat_rows(table, None)[1]
        assert cols["hooks.a.y"] == [None] * 10 + [2] * 10 and cols["hooks.c"] == [None] * 10 + ["s"] * 10
        orders.append([k for k in keys if k.startswith("hooks")])
    assert orders[0] == orders[1] == orders[2] == ["hooks.a.x", "hooks.b", "hooks.a.y", "hooks.c"]


def _aged(d: Path) -> None:
    t = time.time() - 30  # past the window in which file and folder times are not trusted yet
    for p in [*d.glob("*"), d]:
        os.utime(p, (t, t))


# edits of one run's record: (what, edit, whether the flat frame can be patched)
_EDITS: list[tuple[str, Any, bool]] = [
    ("a param's value", lambda r, i: r["params"].__setitem__("lr", 0.5 + i), True),
    ("the note", lambda r, i: r.__setitem__("note", f"note {i}"), True),
    ("the tags", lambda r, i: r.__setitem__("tags", ["x", f"t{i}"]), True),
    ("a nested value", lambda r, i: r["params"].setdefault("opt", {}).__setitem__("name", f"o{i}")
     if isinstance(r["params"].get("opt"), dict) else None, True),
    ("the status", lambda r, i: r.__setitem__("status", "failed"), True),
    ("a new key", lambda r, i: r["params"].__setitem__(f"new{i}", i), False),
    ("a key removed", lambda r, i: r["params"].pop("lr", None), False),
    ("a value of another type", lambda r, i: r["params"].__setitem__("lr", "high"), False),
    ("a value set to null", lambda r, i: r.__setitem__("note", None), False),
    ("a huge int", lambda r, i: r["params"].__setitem__("lr", 1 << 70), False),
]


def test_a_flat_frame_patched_after_runs_changed_in_place_is_the_frame_built_anew(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Watcher that keeps loading (the board) sets only the changed values of the runs rewritten in place
    into its last flat frame; that frame is exactly (columns, order, dtypes, values) the one a new Watcher
    builds from the files, and a change that could move or retype a column builds it anew."""
    from lumo_hydra.store.reader import edit_record
    from lumo_hydra.watcher import watcher as W

    root = _store(tmp_path / "s")
    for i in range(40, 80):  # more runs: a few changed rows are patched, many are rebuilt
        write_run(root, f"e{i % 3}", counter=i, start=time.time() - 900 + i, params={"lr": i / 10, "opt": {"name": "sgd"}},
                  metrics={"acc": (i / 80, "max")}, tags=["x"])
        _aged(next((root / "experiments").glob(f"e{i % 3}/*{i:x}t"), root))
    for d in (root / "experiments").glob("*/*"):
        _aged(d)
    for d in (root / "experiments").glob("*"):
        os.utime(d, (time.time() - 30,) * 2)
    used: list[bool] = []
    real = W.patched_flat
    monkeypatch.setattr(W, "patched_flat", lambda *a: used.append((got := real(*a)) is not None) or got)
    Watcher(root).load(flatten=True)  # the index on disk (read back by the next Watcher, as a board starts)
    w = Watcher(root)
    w.load(flatten=True)  # from the flat frame cache file: the base of the first patch
    runs = sorted((root / "experiments").glob("*/*"))
    import json

    pool = [d for d in runs[1:] if "lr" in json.loads((d / "run.json").read_text())["params"]]  # (edits keep keys)
    random.Random(5).shuffle(pool)
    edit_record(runs[0], lambda r: r.__setitem__("note", "first"))
    _aged(runs[0])
    df = w.load(flatten=True)
    assert used == [True] and w.stats["read"] == 1
    pd.testing.assert_frame_equal(df.drop(columns=["duration"]),
                                  Watcher(root, cache=False).load(flatten=True).drop(columns=["duration"]))
    for step, (what, edit, patchable) in enumerate(_EDITS * 2):
        for d in [pool.pop() for _ in range(1 if step < len(_EDITS) else 2)]:  # each run edited once
            edit_record(d, lambda r, edit=edit, step=step: edit(r, step))
            _aged(d)
        used.clear()
        df = w.load(flatten=True)
        assert w.stats["read"] in (1, 2), what
        fresh = Watcher(root, cache=False).load(flatten=True)
        pd.testing.assert_frame_equal(df.drop(columns=["duration"]), fresh.drop(columns=["duration"]), obj=what)
        assert used == [patchable] or (not patchable and used == []), (what, used)
    assert Watcher(root).load(flatten=True).columns.tolist() == w.load(flatten=True).columns.tolist()
    w.clear_cache()
    w = Watcher(root)
    w.load(flatten=True)  # a cold load: the table built here (its signatures packed at the next refresh)
    d = pool.pop()
    edit_record(d, lambda r: r.__setitem__("note", "after a cold load"))
    _aged(d)
    used.clear()
    df = w.load(flatten=True)
    assert used == [True] and w.stats["read"] == 1
    pd.testing.assert_frame_equal(df.drop(columns=["duration"]),
                                  Watcher(root, cache=False).load(flatten=True).drop(columns=["duration"]))
