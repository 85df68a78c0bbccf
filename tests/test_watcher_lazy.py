"""The nested columns of a warm ``load()`` (from the frame cache) are built on first use: they equal the
columns of an uncached load, ``dtype == object`` holds, and writing the frame cache again (after a status
changes) does not build them."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
from test_watcher_fake import write_run

from lumo_hydra import Watcher
from lumo_hydra.watcher.lazycol import NestedArray


def _store(root: Path) -> Path:
    now = time.time() - 1000
    for i in range(12):
        write_run(root, f"e{i % 2}", counter=i, start=now + i, params={"lr": i / 10, "opt": {"name": "sgd"}},
                  metrics={"acc": (i / 12, "max")}, tags=["x", "y"] if i % 2 else ["z", "w"])
    t = time.time() - 30
    for p in (root / "experiments").glob("**/*"):
        os.utime(p, (t, t))
    return root


def test_warm_load_builds_nested_columns_on_first_use(tmp_path: Path) -> None:
    root = _store(tmp_path / "s")
    truth = Watcher(root, cache=False).load()
    Watcher(root).load()  # index and frame cache on disk
    df = Watcher(root).load()
    arr = df["params"].array
    assert isinstance(arr, NestedArray) and arr._vals is None  # nothing built yet
    assert df["params"].dtype == object and df["tags"].dtype == object
    pd.testing.assert_frame_equal(df.drop(columns=["duration"]), truth.drop(columns=["duration"]))
    assert arr._vals is not None
    df2 = Watcher(root).load()
    assert df2[df2["params"].map(lambda p: p["lr"] > 0.5)]["test_name"].tolist() == \
        truth[truth["params"].map(lambda p: p["lr"] > 0.5)]["test_name"].tolist()
    assert df2.iloc[3]["metrics"] == truth.iloc[3]["metrics"] and df2["tags"].tolist() == truth["tags"].tolist()


def test_frame_cache_rewrites_unbuilt_columns_as_they_are(tmp_path: Path) -> None:
    import io

    from lumo_hydra.watcher.frame import frame_from_bytes, split_frame_file, write_frame

    root = _store(tmp_path / "s")
    Watcher(root).load()
    df = Watcher(root).load()
    buf = io.BytesIO()
    write_frame(buf, {}, df)
    assert df["params"].array._vals is None  # written from its payload
    header, payload = split_frame_file(buf.getvalue())
    again = frame_from_bytes(header, payload)
    pd.testing.assert_frame_equal(again, Watcher(root, cache=False).load().drop(columns=[]), check_exact=False,
                                  rtol=1e-3)
