"""The flat frame built column by column from the index (``frame._flat_columns``) has exactly the columns,
order and values of flattening each run's record (``frame._flat_rows``), and a ``select()`` on the index's
meta part returns what the whole index returns."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
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
