"""The store writer: run-id claiming under real concurrency, atomic records, metric flushing, heartbeat."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lumo_hydra.errors import StoreError
from lumo_hydra.record.experiment import Experiment
from lumo_hydra.store.ids import IDS_DIR, RUN_ID_RE, claim_dir, ids_dir
from lumo_hydra.store.procinfo import process_start_time
from lumo_hydra.store.reader import read_history

PY = sys.executable


def test_claim_dir_shape_and_counter(tmp_path: Path) -> None:
    names = [claim_dir(tmp_path / "exp")[0] for _ in range(5)]
    assert len(set(names)) == 5
    day = time.strftime("%y%m%d")
    for i, n in enumerate(names):
        m = RUN_ID_RE.fullmatch(n)
        assert m and m.group(1) == day and int(m.group(2)) == i
    assert sorted(names) == names  # readable and sortable
    # the folder of runs holds only runs: the claim's markers and hint live beside it, under a dot-name
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == names
    assert sorted(p.name for p in tmp_path.iterdir()) == [IDS_DIR, "exp"]


def test_claim_goes_past_the_runs_of_a_store_written_before_ids(tmp_path: Path) -> None:
    """A folder of runs with no ids folder yet (an older version's store): listed once, and the next id goes
    past the day's highest counter; from then on the hint is used."""
    day = time.strftime("%y%m%d")
    exp = tmp_path / "exp"
    exp.mkdir()
    os.mkdir(exp / f"{day}.041.zzt")
    os.mkdir(exp / "250101.900.aat")  # another day's counter does not count
    assert claim_dir(exp)[0].startswith(f"{day}.042.")
    assert claim_dir(exp)[0].startswith(f"{day}.043.")
    assert (Path(ids_dir(exp)) / day / "next").read_text().strip() == "44"


def _counters(names: list[str]) -> list[int]:
    return [int(RUN_ID_RE.fullmatch(n).group(2)) for n in names]  # type: ignore[union-attr]


def test_claim_with_a_garbled_or_missing_hint_probes_the_markers(tmp_path: Path) -> None:
    day = time.strftime("%y%m%d")
    exp = tmp_path / "exp"
    first = [claim_dir(exp)[0] for _ in range(20)]
    hint = Path(ids_dir(exp)) / day / "next"
    for garbage in (b"", b"x7\n", b"\xff\x00", b"-3\n", b"99999999999999999999\n"):
        hint.write_bytes(garbage)
        first.append(claim_dir(exp)[0])
    hint.unlink()
    first.append(claim_dir(exp)[0])
    assert _counters(first) == list(range(26))
    assert hint.read_text().strip() == "26"


def test_claim_with_a_hint_behind_the_real_counter_never_reuses_a_counter(tmp_path: Path) -> None:
    day = time.strftime("%y%m%d")
    exp = tmp_path / "exp"
    names = [claim_dir(exp)[0] for _ in range(100)]
    hint = Path(ids_dir(exp)) / day / "next"
    for behind in ("99", "97", "60", "0"):  # one lost update, a few, far behind
        hint.write_text(behind + "\n")
        names.append(claim_dir(exp)[0])
    assert _counters(names) == list(range(104))
    assert len(set(names)) == 104


def test_claim_does_not_list_a_folder_of_many_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Claiming in a folder with 5,000 runs of the day lists nothing and costs about what it costs in an
    empty folder (a generous margin: the listing it replaced cost 20-50x here)."""
    import lumo_hydra.store.ids as ids

    day = time.strftime("%y%m%d")
    big, small = tmp_path / "big", tmp_path / "small"
    claim_dir(big)
    claim_dir(small)
    for i in range(1, 5000):
        os.mkdir(big / f"{day}.{i:03d}.aat")
        os.mkdir(Path(ids_dir(big)) / day / f"{i:03d}")
    (Path(ids_dir(big)) / day / "next").write_text("5000\n")
    scans: list[object] = []
    real_scandir = os.scandir
    monkeypatch.setattr(ids.os, "scandir", lambda *a: scans.append(a) or real_scandir(*a))

    def cost(parent: Path) -> float:
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(20):
                claim_dir(parent)
            best = min(best, time.perf_counter() - t)
        return best

    cost(small)
    t_small, t_big = cost(small), cost(big)
    assert scans == []
    assert t_big < 3 * t_small + 0.01
    # and without a hint, a bounded probe (a few dozen stat calls), still no listing
    (Path(ids_dir(big)) / day / "next").unlink()
    assert claim_dir(big)[0].startswith(f"{day}.5100.")
    assert scans == []


def _start_one(home: str, barrier, out) -> None:  # runs in a child process
    os.environ["LUMO_HOME"] = home
    from lumo_hydra.record.experiment import Experiment

    exp = Experiment("race", heartbeat_interval=0)
    barrier.wait()
    exp.start()
    exp.dump_metric("x", os.getpid())
    exp.end()
    out.put(exp.test_name)


def test_64_concurrent_starts_get_64_distinct_complete_records(tmp_path: Path) -> None:
    n = 64
    home = tmp_path / "home"
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(n)
    q = ctx.Queue()
    procs = [ctx.Process(target=_start_one, args=(str(home), barrier, q)) for _ in range(n)]
    for p in procs:
        p.start()
    names = [q.get(timeout=120) for _ in range(n)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(set(names)) == n
    runs = sorted((home / "experiments" / "race").iterdir())
    assert len(runs) == n
    assert sorted(int(RUN_ID_RE.fullmatch(p.name).group(2)) for p in runs) == list(range(n))  # type: ignore[union-attr]
    pids = set()
    for run in runs:
        rec = json.loads((run / "run.json").read_text())
        assert rec["status"] == "finished" and rec["test_name"] == run.name and RUN_ID_RE.fullmatch(run.name)
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["x"]["best"] == rec["pinfo"]["pid"]
        pids.add(rec["pinfo"]["pid"])
    assert len(pids) == n


def test_readers_never_see_invalid_json(tmp_path: Path, lumo_home: Path) -> None:
    """A reader process loops over run.json / metrics.json while this process rewrites them."""
    exp = Experiment("atomic", heartbeat_interval=0).start()
    info = Path(exp.info_dir)
    reader = subprocess.Popen([PY, "-c", textwrap.dedent(f"""
        import json, os, sys, time
        info = {str(info)!r}
        n = bad = 0
        stop = time.time() + 60
        while not os.path.exists(os.path.join(info, "stop")) and time.time() < stop:
            for name in ("run.json", "metrics.json"):
                try:
                    with open(os.path.join(info, name), "rb") as f:
                        data = f.read()
                except FileNotFoundError:
                    continue
                try:
                    json.loads(data); n += 1
                except ValueError:
                    bad += 1
        print(n, bad)
    """)], stdout=subprocess.PIPE, text=True)
    big = "x" * 20000  # large records make a torn read likely if writes were not atomic
    for i in range(400):
        exp.dump_info("blob", {"i": i, "pad": big})
        exp.dump_metric("m", i)
        exp.flush()
    (info / "stop").touch()
    out, _ = reader.communicate(timeout=90)
    exp.end()
    n, bad = map(int, out.split())
    assert bad == 0 and n > 50


def test_unwritable_root_gives_store_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    root = afile / "store"  # fails for root too (chmod does not stop root)
    exp = Experiment("e", home=root, heartbeat_interval=0)
    with pytest.raises(StoreError, match=str(afile)) as ei:
        exp.start()
    assert isinstance(ei.value, ValueError) and "LUMO_HOME" in str(ei.value)
    assert exp.status is None and exp.test_name is None


def test_metrics_flushed_by_heartbeat_thread_and_at_end(lumo_home: Path) -> None:
    exp = Experiment("flush", heartbeat_interval=0.2).start()
    info = Path(exp.info_dir)
    for i in range(1000):
        exp.dump_metric("loss", 1.0 / (i + 1), cmp="min")
    assert not (info / "history.jsonl").exists()  # no file I/O per call
    deadline = time.time() + 10
    while time.time() < deadline and not (info / "metrics.json").exists():
        time.sleep(0.05)
    assert len(list(read_history(info))) == 1000
    assert json.loads((info / "metrics.json").read_text())["loss"]["count"] == 1000
    hb1 = float((info / "heartbeat").read_text())
    time.sleep(0.6)
    hb2 = float((info / "heartbeat").read_text())
    assert hb2 > hb1
    exp.dump_metric("loss", 0.0)
    exp.end()
    hist = list(read_history(info))
    assert len(hist) == 1001 and hist[-1]["v"] == 0.0 and hist[-1]["s"] == 1000
    from lumo_hydra.store.writer import _Beater

    assert exp._writer not in _Beater._runs  # the shared heartbeat thread no longer beats for it
    hb3 = float((info / "heartbeat").read_text())
    time.sleep(0.5)
    assert float((info / "heartbeat").read_text()) == hb3  # stopped at end


def test_process_start_time_matches_psutil() -> None:
    psutil = pytest.importorskip("psutil")
    assert abs(process_start_time() - psutil.Process().create_time()) < 0.05


def test_history_reader_ignores_a_torn_last_line(tmp_path: Path) -> None:
    (tmp_path / "history.jsonl").write_text('{"k": "a", "v": 1, "s": 0, "t": 1.0}\n{"k": "a", "v"')
    assert [h["v"] for h in read_history(tmp_path)] == [1]


def test_a_forked_child_cannot_write_the_parents_run(lumo_home: Path) -> None:
    exp = Experiment("forked", heartbeat_interval=0.05).start()
    exp.dump_metric("a", 1.0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: every write is refused with a clear error, end() does nothing
        try:
            msgs = []
            for call in (lambda: exp.dump_metric("a", 2.0), lambda: exp.dump_note("child")):
                try:
                    call()
                    msgs.append("no error")
                except ValueError as e:
                    msgs.append("fork" if "fork of the run's writer" in str(e) else str(e))
            exp.end()
            os.write(w, ",".join(msgs).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 1000).decode()
    os.waitpid(pid, 0)
    assert out == "fork,fork"
    assert json.loads((Path(exp.info_dir) / "run.json").read_text())["status"] == "running"
    exp.dump_metric("a", 3.0)
    exp.end()
    assert [h["v"] for h in read_history(exp.info_dir)] == [1.0, 3.0]


def test_one_heartbeat_thread_per_process_beats_for_every_open_run(lumo_home: Path) -> None:
    """Runs share one daemon thread: sequential runs (the jobs of a sweep) start no thread each, and
    concurrent runs each get their heartbeat; an ended run is not beaten for any more."""
    def beat_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "lumo-hydra-heartbeat"]

    for _ in range(5):
        Experiment("seq", heartbeat_interval=0.1).start().end()
    assert len(beat_threads()) == 1  # one thread served all five runs
    a = Experiment("a", heartbeat_interval=0.1).start()
    b = Experiment("b", heartbeat_interval=0.1).start()
    assert len(beat_threads()) == 1
    first = {e: float((Path(e.info_dir) / "heartbeat").read_text()) for e in (a, b)}
    a.dump_metric("m", 1.0)
    time.sleep(0.5)
    for e in (a, b):
        assert float((Path(e.info_dir) / "heartbeat").read_text()) > first[e]
    assert (Path(a.info_dir) / "metrics.json").exists()  # flushed by the shared thread
    a.end()
    ended = (Path(a.info_dir) / "heartbeat").read_text()
    time.sleep(0.4)
    assert (Path(a.info_dir) / "heartbeat").read_text() == ended
    still = float((Path(b.info_dir) / "heartbeat").read_text())
    time.sleep(0.4)
    assert float((Path(b.info_dir) / "heartbeat").read_text()) > still
    b.end()
    assert len(beat_threads()) == 1  # it stays, asleep, for the next run


def test_atomic_writes_leave_no_temporary_files_and_usual_permissions(tmp_path: Path) -> None:
    from lumo_hydra.store.files import atomic_write_json

    old = os.umask(0o022)
    try:
        for i in range(20):
            atomic_write_json(tmp_path / "r.json", {"i": i, "t": (1, 2), "s": {3}, "p": tmp_path})
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert json.loads((tmp_path / "r.json").read_text()) == {"i": 19, "t": [1, 2], "s": [3], "p": str(tmp_path)}
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


def test_json_of_values_json_does_not_know() -> None:
    from lumo_hydra.store.files import dumps, loads

    class Obj:
        def __repr__(self) -> str:
            return "<obj>"

    class Scalar:  # numpy/torch scalars have .item()
        def item(self) -> float:
            return 0.25

    assert loads(dumps({"a": Obj(), "b": [Scalar(), float("nan")], 1: "int key"})) == {
        "a": "<obj>", "b": [0.25, pytest.approx(float("nan"), nan_ok=True)], "1": "int key"}
    assert json.loads(dumps({(1, 2): "tuple key"})) == {"(1, 2)": "tuple key"}  # to_jsonable's str(key)


def test_the_hint_is_written_in_place_and_mends_a_long_garbled_one(tmp_path: Path) -> None:
    """No rename per claim (ext4 flushes a file a rename replaces: issue 18), and a long garbled hint
    is cut back, so that later claims read it again instead of probing every time."""
    exp = tmp_path / "experiments" / "e"
    claim_dir(exp)
    day = time.strftime("%y%m%d")
    hint = Path(ids_dir(exp)) / day / "next"
    ino = hint.stat().st_ino
    claim_dir(exp)
    assert hint.stat().st_ino == ino and hint.read_bytes() == b"%8d\n" % 2
    hint.write_bytes(b"x" * 40)
    claim_dir(exp)
    assert int(hint.read_bytes()) == 3 and len(hint.read_bytes()) == 9
    assert sorted(p.name for p in hint.parent.iterdir()) == ["000", "001", "002", "next"]


def test_start_thread_does_not_wait_for_the_new_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's threads (heartbeat, output copy, snapshot) start without the main thread waiting for the
    scheduler to run them (``Thread.start`` does: ~3 ms each on a busy machine, issue 18); they are
    listed, run and can be joined as usual; a non-daemon thread is started by ``Thread.start``."""
    import threading

    from lumo_hydra.store.writer import start_thread

    go, ran = threading.Event(), threading.Event()
    waited: list[bool] = []
    monkeypatch.setattr(threading.Event, "wait", lambda self, timeout=None: waited.append(True) or True)
    th = threading.Thread(target=lambda: (ran.set(), go.wait()), name="lumo-test-start", daemon=True)
    start_thread(th)
    assert waited == [] and th in threading.enumerate()  # started, not waited for
    monkeypatch.undo()
    assert ran.wait(10)
    go.set()
    th.join(10)
    assert not th.is_alive()
    plain = threading.Thread(target=ran.clear)
    start_thread(plain)
    plain.join(10)
    assert not ran.is_set()
