"""Issue 17, the cold load: the optional orjson parser reads every document as ``json`` does, a load
read by two processes gives what one process gives (damaged files included, each costing only its run),
and runs of a copied store are re-based as ``store/moved.py`` says, sharing what repeats."""
from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from test_watcher_fake import write_run

import lumo_hydra.store.reader as reader
import lumo_hydra.watcher.parallel as parallel
import lumo_hydra.watcher.rows as rows
from lumo_hydra import Watcher
from lumo_hydra.errors import StoreWarning
from lumo_hydra.store.moved import UNPACKED_JSON, rebase_record

N = 40

# documents json and orjson could read differently, and plain ones around them
TRICKY = [
    b'{"big": 123456789012345678901, "neg": -9223372036854775809, "ok": 9223372036854775807}',
    b'{"small": 0.00012345678901234567, "e": 1e-7, "x": 5e-324, "top": 1.7976931348623157e308}',
    b'{"nan": NaN, "inf": Infinity}',
    b'{"over": 1e400}',
    b'{"s": "\\ud800 lone surrogate"}',
    b'{"x": ' + b"[" * 3000 + b"]" * 3000 + b"}",  # deeper than json reads: damaged for both
    b'{"x": ' + b"[" * 300 + b"]" * 300 + b"}",
    b'{"dup": 1, "dup": 2, "z": {"$float": "nan"}}',
    b'\xef\xbb\xbf{"bom": 1}',
    b'{"ts": "1796346230730000000", "n": 1796346230730000000}',
    b'{"truncated": ',
    b"[1, 2]",
    b'{"a": 1}',
    b'{"in_list": [123456789012345678901, 1], "deep_ok": ' + b"{\"a\":" * 150 + b"1" + b"}" * 150 + b"}",
]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, ValueError) or isinstance(b, ValueError):
        return isinstance(a, ValueError) and isinstance(b, ValueError)
    return json.dumps(a, sort_keys=False) == json.dumps(b, sort_keys=False) and repr(a) == repr(b)


@pytest.mark.skipif(reader._fast() is None, reason="orjson (the [fast] extra) is not installed")
@pytest.mark.parametrize("doc", TRICKY, ids=[f"doc{i}" for i in range(len(TRICKY))])
def test_orjson_reads_every_document_as_json_does(doc: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [b'{"a": 1}', doc, b'{"b": [2.5]}']  # alone among sound documents: one parse of the whole chunk
    assert reader.reader_name() == "orjson"
    fast = reader.parse_many(docs)
    monkeypatch.setattr(reader, "_orjson", None)
    assert reader.reader_name() == "json"
    slow = reader.parse_many(docs)
    assert len(fast) == len(slow) == len(docs)
    for a, b in zip(fast, slow):
        assert _same(a, b), doc[:60]
    if doc is TRICKY[0]:
        assert fast[1]["big"] == 123456789012345678901 and type(fast[1]["neg"]) is int
    if doc is TRICKY[5]:
        assert isinstance(fast[1], ValueError)  # never a record json cannot read


@pytest.mark.skipif(reader._fast() is None, reason="orjson (the [fast] extra) is not installed")
def test_orjson_chunk_of_plain_records_keeps_the_values(tmp_path: Path) -> None:
    recs = [{"i": i, "f": i / 7, "n": None, "t": [True, False], "d": {"k": "v" * i}, "nan": math.inf} for i in range(50)]
    from lumo_hydra.store.files import dumps

    out = reader.parse_many([dumps(r).encode() for r in recs])
    assert out == recs


def _store(root: Path, n: int = N) -> Path:
    now = time.time() - 3000
    for i in range(n):
        write_run(root, f"e{i % 3}", counter=i + 1, metrics={"loss": (0.5 / (i + 1), "min")}, start=now + i,
                  params={"lr": i / 10, "deep": {"a": i}}, tags=["t"])
    return root


def _damage(root: Path) -> None:
    runs = sorted((root / "experiments").glob("*/*/run.json"))
    runs[3].write_text('{"status": "fini')  # truncated record: the run skipped
    (runs[10].parent / "metrics.json").write_text("not json")  # damaged metrics: the run kept, no metrics
    runs[20].write_text("[1, 2]")  # not an object
    runs[30].unlink()  # a folder just claimed: skipped silently
    runs[35].write_text(json.dumps({"status": 5, "exp_name": 7, "progress": {"start": 1e308}}))  # bad values


def _load(root: Path, fork: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    monkeypatch.setenv(parallel.ENV, fork)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        df = Watcher(root, cache=False).load()
    return df, [str(r.message) for r in rec if issubclass(r.category, StoreWarning)]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch, only_this_tests_threads: None) -> list[int]:
    """Two processes from 8 runs on, in chunks of 4; the list counts the children started."""
    monkeypatch.setattr(parallel, "MIN_RUNS", 8)
    monkeypatch.setattr(rows, "_CHUNK", 4)
    started: list[int] = []
    real = parallel.start

    def start(fn: Any, arg: Any) -> Any:
        job = real(fn, arg)
        started.append(len(arg[0]))  # (the runs of its slice, whether to take their folders' signatures)
        return job

    monkeypatch.setattr(parallel, "start", start)
    return started


@pytest.mark.skipif(not parallel.can_fork(), reason="no fork here")
def test_two_processes_give_what_one_gives_damaged_files_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: list[int]
) -> None:
    root = _store(tmp_path / "store")
    _damage(root)
    one, w1 = _load(root, "0", monkeypatch)
    assert small_chunks == []
    two, w2 = _load(root, "1", monkeypatch)
    assert small_chunks and 0 < small_chunks[0] < N  # the child read a slice
    assert len(one) == N - 3
    assert one.drop(columns=["duration"]).equals(two.drop(columns=["duration"]))
    assert one["params"].tolist() == two["params"].tolist() and one["metrics"].tolist() == two["metrics"].tolist()
    assert w1 == w2 and len(w1) == 4  # the same warnings, in the same order, each naming its file


@pytest.mark.skipif(not parallel.can_fork(), reason="no fork here")
def test_a_child_that_fails_costs_time_not_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: list[int]
) -> None:
    root = _store(tmp_path / "store")
    _damage(root)
    one, w1 = _load(root, "0", monkeypatch)

    def boom(todo: Any) -> Any:
        raise MemoryError("the child dies")

    monkeypatch.setattr(rows, "_read_part", boom)
    two, w2 = _load(root, "1", monkeypatch)
    assert small_chunks  # a child was started, failed, and its slice was read here
    assert one.drop(columns=["duration"]).equals(two.drop(columns=["duration"])) and w1 == w2


@pytest.mark.skipif(not parallel.can_fork(), reason="no fork here")
def test_a_child_that_hangs_is_killed_and_costs_time_not_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: list[int]
) -> None:
    """A child stuck (say on a lock a native thread held at the fork) is killed after the patience and its
    slice read here: the load neither hangs nor loses a run."""
    import time

    root = _store(tmp_path / "store")
    one, _ = _load(root, "0", monkeypatch)

    def stuck(todo: Any) -> Any:
        time.sleep(600)

    monkeypatch.setattr(rows, "_read_part", stuck)
    monkeypatch.setattr(parallel, "patience", lambda own_s: 0.5)
    began = time.monotonic()
    two, _ = _load(root, "1", monkeypatch)
    assert small_chunks and time.monotonic() - began < 60
    assert one.drop(columns=["duration"]).equals(two.drop(columns=["duration"]))


def test_no_fork_with_another_thread_running(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setattr(threading, "active_count", lambda: 2)
    assert not parallel.can_fork()
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setenv(parallel.ENV, "0")
    assert not parallel.can_fork()


def test_a_copied_store_is_rebased_as_rebase_record_says_sharing_what_repeats(tmp_path: Path) -> None:
    src = tmp_path / "src"
    hooks = {"GitCommit": {"loaded": True, "msg": f"snapshot in {src}/x"}}
    git = {"commit": "abc", "repo": str(tmp_path / "repo")}
    now = time.time() - 3000
    for i in range(12):
        write_run(src, "e", counter=i + 1, start=now + i, git=git,
                  extra={"hooks": hooks, "execute": {"cwd": str(src), "command": f"cd {src} && python t.py"},
                         "hydra": {"run_dir": f"{src}/experiments/e/{i}"}})
    dst = tmp_path / "copy" / "store"
    shutil.copytree(src, dst)
    unpacked = sorted((dst / "experiments" / "e").iterdir())[5]
    (unpacked / UNPACKED_JSON).write_text(json.dumps(
        {"code": {"origin_repo": str(tmp_path / "repo"), "repo": str(tmp_path / "repo2")}}))
    new, skipped = rows.read_rows([rows.RunRef("e", d.name, str(d)) for d in sorted((dst / "experiments" / "e").iterdir())],
                                  None, 1)
    assert skipped == 0 and len(new) == 12
    for ref, row, _ in new:
        want = rebase_record(ref[2], json.loads((Path(ref[2]) / "run.json").read_text()))
        for k in ("paths", "execute", "git", "hooks", "hydra", "moved"):
            assert row[k] == want[k], k
        assert row["paths"]["info_dir"] == ref[2]
    plain = [r for ref, r, _ in new if ref[1] != unpacked.name]
    assert "repo" in next(r for ref, r, _ in new if ref[1] == unpacked.name)["moved"]
    assert all(r["moved"] is plain[0]["moved"] for r in plain)  # one mapping object, not one per run
    assert all(r["hooks"] is plain[0]["hooks"] and r["execute"] is plain[0]["execute"] for r in plain)


def test_packed_signatures_of_a_dict_give_every_signature_back() -> None:
    """``sigs.pack`` of a plain dict (a cold load's, its common case inlined) against ``_flat`` of each."""
    import random
    from array import array

    from lumo_hydra.watcher import sigs as S

    rnd = random.Random(3)
    keys = [f"e/{i}" for i in range(3000)]
    choices: list[Any] = [None, ((rnd.getrandbits(64), 5, 6), None), ((1, 2, 3), (-1, -1, -1)),
                          ((2**63 + 5, 2, 3), (2**64 - 1, 8, 9)), ((7, 2**62, 300), (2**63 - 1, 1, 0))]
    d = {k: rnd.choice(choices) if rnd.random() < 0.3 else
         ((rnd.getrandbits(40), rnd.getrandbits(62), 300), (rnd.getrandbits(40), rnd.getrandbits(62), 200)) for k in keys}
    ref = array("q")
    for k in keys:
        ref.extend(S._flat(d[k], 6))
    packed = S.pack(keys, d, 6)
    assert packed == ref.tobytes()
    back = S.SigMap(keys, packed, 6)
    assert all(back.at(i) == d[k] for i, k in enumerate(keys))
    folders = {k: rnd.choice([None, (2**64 - 3, 5), (rnd.getrandbits(40), rnd.getrandbits(62))]) for k in keys}
    ref2 = array("q")
    for k in keys:
        ref2.extend(S._flat(folders[k], 2))
    assert S.pack(keys, folders, 2) == ref2.tobytes()
    assert all(S.SigMap(keys, ref2.tobytes(), 2).at(i) == folders[k] for i, k in enumerate(keys))
