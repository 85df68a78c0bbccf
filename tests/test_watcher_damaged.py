"""Issue 11.3 and 11.12: one damaged record never hides the others (each skipped or repaired with ONE
warning naming its file), the Watcher's cache files are checksummed, and a run whose pid is gone is
read again before it is called crashed. Real files, real processes."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from test_watcher_fake import this_host, write_run

from lumo_hydra import Watcher
from lumo_hydra.errors import StoreWarning
from lumo_hydra.store.files import atomic_write_json
from lumo_hydra.watcher.rows import judge, make_row

N_GOOD = 4


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    now = time.time()
    for i in range(N_GOOD):
        write_run(root, "cls", counter=i + 1, metrics={"loss": (0.001, "min")}, start=now - 3000 + i, history_steps=3)
    return root


def _store_warnings(fn):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(r.message) for r in rec if issubclass(r.category, StoreWarning)]


def _deep(n: int = 3000) -> str:
    return "[" * n + "]" * n


def test_run_json_nested_3000_deep_recursionerror_is_skipped_with_one_warning(store: Path) -> None:
    bad = write_run(store, "cls", counter=9)
    (bad / "run.json").write_text('{"status": "finished", "x": ' + _deep() + "}")
    df, msgs = _store_warnings(lambda: Watcher(store, cache=False).load())
    assert len(df) == N_GOOD
    assert len(msgs) == 1 and str(bad / "run.json") in msgs[0]


def test_metrics_json_nested_3000_deep_recursionerror_keeps_the_run(store: Path) -> None:
    bad = write_run(store, "cls", counter=9, metrics={"acc": (0.5, "max")})
    (bad / "metrics.json").write_text('{"acc": ' + _deep() + "}")
    df, msgs = _store_warnings(lambda: Watcher(store, cache=False).load())
    assert len(df) == N_GOOD + 1
    assert df[df["test_name"] == bad.name]["metrics"].iloc[0] == {}
    assert len(msgs) == 1 and str(bad / "metrics.json") in msgs[0]


def test_progress_start_1e308_outofboundsdatetime_keeps_the_run(store: Path) -> None:
    bad = write_run(store, "cls", counter=9, extra={"progress": {"start": 1e308, "end": 1e308}})
    df, msgs = _store_warnings(lambda: Watcher(store, cache=False).load())
    assert len(df) == N_GOOD + 1 and bad.name in set(df["test_name"])
    row = df[df["test_name"] == bad.name].iloc[0]
    assert row["start"] != row["start"]  # NaT: unknown rather than a crash of every load
    assert len(msgs) == 1 and str(bad / "run.json") in msgs[0] and "progress.start" in msgs[0]
    flat, _ = _store_warnings(lambda: Watcher(store, cache=False).load(flatten=True))
    assert len(flat) == N_GOOD + 1


def test_exp_name_5_run_still_appears_under_its_folder_name(store: Path) -> None:
    bad = write_run(store, "cls", counter=9, extra={"exp_name": 5, "test_name": ["x"]})
    df, msgs = _store_warnings(lambda: Watcher(store, cache=False).load())
    assert len(df) == N_GOOD + 1
    row = df[df["test_name"] == bad.name].iloc[0]
    assert row["exp_name"] == "cls"
    assert len(msgs) == 1 and str(bad / "run.json") in msgs[0] and "exp_name" in msgs[0]
    assert len(Watcher(store, cache=False).load(exp="cls")) == N_GOOD + 1


def test_status_that_is_not_text_keeps_the_run(store: Path) -> None:
    bad = write_run(store, "cls", counter=9, extra={"status": ["finished"]})
    df, msgs = _store_warnings(lambda: Watcher(store, cache=False).load())
    assert len(df) == N_GOOD + 1 and bad.name in set(df["test_name"])
    assert len(msgs) == 1 and "status" in msgs[0]


def test_history_jsonl_is_a_directory_warns_once_naming_it(store: Path) -> None:
    bad = write_run(store, "cls", counter=9, metrics={"loss": (0.1, "min")})
    (bad / "history.jsonl").mkdir()
    w = Watcher(store, cache=False)
    df, msgs = _store_warnings(lambda: w.history(bad.name))
    assert len(df) == 0
    assert len(msgs) == 1 and str(bad / "history.jsonl") in msgs[0]
    assert len(w.load()) == N_GOOD + 1


def test_all_damages_at_once_cost_only_their_own_runs(store: Path) -> None:
    kinds = [
        ("run.json", '{"x": ' + _deep() + "}"),
        ("metrics.json", '{"a": ' + _deep() + "}"),
        ("run.json", json.dumps({"exp_name": 5, "status": "finished"})),
        ("run.json", json.dumps({"status": "finished", "progress": {"start": 1e308}})),
        ("run.json", "{"),
    ]
    for i, (name, text) in enumerate(kinds):
        d = write_run(store, "cls", counter=20 + i)
        (d / name).write_text(text)
    df, msgs = _store_warnings(lambda: Watcher(store).load())
    assert len(msgs) == len(kinds)  # one warning per damaged file
    assert len(df) == N_GOOD + 3  # unreadable run.json (2) skipped; the others appear
    df2, _ = _store_warnings(lambda: Watcher(store).load())
    assert len(df2) == len(df)


@pytest.mark.parametrize("which", ["index_path", "frame_path", "body"])
def test_garbled_cache_file_is_detected_by_its_checksum_and_rebuilt(store: Path, which: str) -> None:
    t = time.time() - 30
    for p in (store / "experiments").glob("*/*/*.json"):
        os.utime(p, (t, t))
    w = Watcher(store)
    first = w.load()
    if which == "body":  # the index's column chunks (the frame cache refers to them)
        (path,) = Path(w.index_path).parent.glob(Path(w.index_path).stem + ".*.body")
    else:
        path = getattr(w, which)
    assert os.path.exists(path)
    data = bytearray(Path(path).read_bytes())
    # the loss, as marshal stores it in the index's chunks (the index file and the frame cache hold a
    # run's name instead): flip its lowest bit
    probe = struct.pack("<d", 0.001) if which == "body" else first["test_name"][0].encode()
    at = data.find(probe)
    assert at > 0
    data[at] ^= 0x01
    Path(path).write_bytes(bytes(data))
    again = Watcher(store).load()
    assert [m["loss"] for m in again["metrics"]] == [0.001] * N_GOOD  # not 0.000999999...
    assert again["test_name"].tolist() == first["test_name"].tolist()
    data[at] ^= 0x01
    for pos in range(40, len(data), max(1, len(data) // 7)):  # flip one bit at several places
        data[pos] ^= 0x01
        Path(path).write_bytes(bytes(data))
        again = Watcher(store).load()
        assert again["metrics"].tolist() == first["metrics"].tolist()
        assert [m["loss"] for m in again["metrics"]] == [0.001] * N_GOOD
        data[pos] ^= 0x01
    data[-1] ^= 0xFF
    Path(path).write_bytes(bytes(data[:-3]))  # a short write
    assert Watcher(store).load()["test_name"].tolist() == first["test_name"].tolist()


def test_pid_gone_rereads_the_record_before_declaring_crashed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a real process that has exited: its pid is gone
    d = write_run(tmp_path / "store", "cls", counter=1, status="running", host=this_host(), pid=proc.pid,
                  pstart=time.time(), start=time.time() - 5)
    stale = json.loads((d / "run.json").read_text())  # what a reader read while the run was running
    row = make_row(stale, None, "cls", d.name)
    rec = json.loads((d / "run.json").read_text())  # the run then wrote its end record and exited
    rec["status"] = "finished"
    rec["progress"]["end"] = rec["progress"]["start"]
    atomic_write_json(d / "run.json", rec)
    status, _ = judge(row, str(d), time.time(), 120.0, this_host())
    assert status == "finished"
    assert Watcher(tmp_path / "store").record(d.name)["status"] == "finished"
    rec["status"] = "running"  # truly gone without an end record: crashed
    atomic_write_json(d / "run.json", rec)
    assert judge(row, str(d), time.time(), 120.0, this_host())[0] == "crashed"
