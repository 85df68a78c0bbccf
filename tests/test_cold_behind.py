"""Issue 17, the cold load's cache writes off its critical path (``watcher/behind.py``): a cold load of
thousands of runs returns its frame from plain columns and a detached process encodes and writes the
index, its body files and the frame cache; what it writes is what one process writes, and a writer that
fails only makes the next load cold again."""
from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_cold_reader import N, _damage, _store

import lumo_hydra.watcher.behind as behind
import lumo_hydra.watcher.parallel as parallel
import lumo_hydra.watcher.rows as rows
from lumo_hydra import Watcher
from lumo_hydra.watcher.index import RunIndex

pytestmark = pytest.mark.skipif(not parallel.can_fork(), reason="no fork here")


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch, only_this_tests_threads: None) -> None:
    """Two processes and a detached writer from 8 runs on, in chunks of 4."""
    monkeypatch.setattr(parallel, "MIN_RUNS", 8)
    monkeypatch.setattr(rows, "_CHUNK", 4)


def _cold(root: Path, fork: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Watcher, list[str]]:
    monkeypatch.setenv(parallel.ENV, fork)
    w = Watcher(root)
    w.clear_cache()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        df = w.load()
    return df, w, [str(r.message) for r in rec]


def _aged(root: Path) -> Path:
    """``root`` with every file and folder time 100 s old (not too recent to be trusted by the index)."""
    t = time.time() - 100
    for p in [*sorted(root.rglob("*"), reverse=True), root]:
        os.utime(p, (t, t))
    return root


def _same(a: Any, b: Any, types: bool = True) -> bool:
    """The same frame (the same kinds of arrays too, with ``types``: a cold and a warm load differ there)."""
    a, b = a.drop(columns=["duration"]), b.drop(columns=["duration"])
    return bool(a.equals(b)) and all(a[c].tolist() == b[c].tolist() for c in a.columns if a[c].dtype == object) and \
        (not types or [type(a[c].array) for c in a.columns] == [type(b[c].array) for c in b.columns])


def test_a_detached_writer_writes_what_one_process_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          small: None) -> None:
    root = _store(tmp_path / "store")
    _damage(root)
    _aged(root)
    one, w1, warn1 = _cold(root, "0", monkeypatch)
    assert w1._index._writer.fd is None  # one process: written before load() returned
    first = Watcher(root)
    warm1 = first.load()
    two, w2, warn2 = _cold(root, "1", monkeypatch)
    assert w2._index._writer.fd is not None  # written by the detached process
    assert len(one) == N - 3 and _same(one, two) and warn1 == warn2
    assert _same(w2.load(), two)  # the same object again: from memory, while the writer may still write
    assert w2._index.wait_writes(30)
    assert w2._index._writer.cpu is not None and w2._index._writer.cpu > 0  # its CPU time, said at its end
    again = Watcher(root)
    warm2 = again.load()
    assert again.stats == first.stats and again.stats["cached"] == N - 4  # the writer's index (damaged runs read again)
    assert _same(warm1, warm2) and _same(two, warm2, False)
    assert _same(Watcher(root).load(flatten=True), Watcher(root, cache=False).load(flatten=True))
    table = Watcher(root)._index._load_table()  # the run folders' signatures, taken by the readers
    assert table is not None and len(table["keys"]) == N - 3
    for i, d in enumerate(table["dirs"]):
        st = os.stat(d)
        assert table["dsigs"].at(i) == (st.st_ino, st.st_mtime_ns)


def test_a_failed_writer_makes_the_next_load_cold_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        small: None) -> None:
    root = _aged(_store(tmp_path / "store"))
    me = os.getpid()
    real = RunIndex._save_table

    def broken(self: RunIndex, table: dict[str, Any]) -> None:
        if os.getpid() != me:  # the writer dies
            os._exit(3)
        real(self, table)

    monkeypatch.setattr(RunIndex, "_save_table", broken)
    df, w, _ = _cold(root, "1", monkeypatch)
    assert w._index.wait_writes(30) and len(df) == N
    assert not os.path.exists(w.index_path) and not os.path.exists(w.frame_path)
    again = Watcher(root)
    assert _same(again.load(), df) and again.stats["read"] == N  # cold again, the same frame


def test_the_writers_frame_cache_and_clear_cache_waiting_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 small: None) -> None:
    root = _aged(_store(tmp_path / "store"))
    df, w, _ = _cold(root, "1", monkeypatch)
    assert w._index.wait_writes(30) and os.path.exists(w.frame_path)
    warm = Watcher(root)
    assert _same(df, warm.load(), False) and warm.stats["read"] == 0
    assert warm._index.frames[False] is not None  # answered by the writer's frame cache
    for flat in (True, False):  # a cold load(flatten=True) too, and a flat load right after a cold one
        w = Watcher(root)
        w.clear_cache()
        first = w.load(flatten=flat)
        flat_df = w.load(flatten=True)
        assert w._index.wait_writes(30)
        fresh = Watcher(root, cache=False)
        assert _same(fresh.load(flatten=flat), first, False) and _same(fresh.load(flatten=True), flat_df, False)
        assert _same(fresh.load(flatten=True), Watcher(root).load(flatten=True), False)
    df, w, _ = _cold(root, "1", monkeypatch)
    w.clear_cache()
    assert w._index._writer.fd is None and not os.path.exists(w.index_path)
    assert _same(w.load(), df) and w.stats["read"] == N


def _slow_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detached cache writer (any process but this one) sleeps 3 s before it writes the index."""
    me = os.getpid()
    real = RunIndex._save_table

    def slow(self: RunIndex, table: dict[str, Any]) -> None:
        if os.getpid() != me:
            time.sleep(3)
        real(self, table)

    monkeypatch.setattr(RunIndex, "_save_table", slow)


def test_a_stuck_writer_is_not_waited_for_forever(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: None) -> None:
    root = _aged(_store(tmp_path / "store"))
    _slow_writer(monkeypatch)
    monkeypatch.setattr(behind, "WAIT_S", 0.2)
    df, w, _ = _cold(root, "1", monkeypatch)
    assert not w._index.wait_writes(0.1)
    t = time.monotonic()
    w.clear_cache()
    assert time.monotonic() - t < 2 and w._index._writer.fd is None
    assert _same(w.load(), df)
    assert w._index.wait_writes(30)


def test_the_writer_holds_none_of_the_callers_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    small: None) -> None:
    """A pipe (or a server's socket, a locked file) the caller closes is closed: the writer keeps only the
    files it opens itself, so a process reading that pipe to its end is not kept waiting by the writer."""
    import select

    root = _aged(_store(tmp_path / "store"))
    _slow_writer(monkeypatch)
    r, wfd = os.pipe()
    try:
        df, w, _ = _cold(root, "1", monkeypatch)
        assert w._index._writer.fd is not None  # a writer is at work (sleeping)
        os.close(wfd)
        wfd = -1
        assert select.select([r], [], [], 2.0)[0] and os.read(r, 1) == b""  # end of file at once
        assert w._index.wait_writes(30) and os.path.exists(w.index_path) and len(df) == N
    finally:
        os.close(r)
        if wfd >= 0:
            os.close(wfd)


def test_the_process_between_is_reaped_without_the_load_waiting_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       small: None) -> None:
    """The process that forks the writer is reaped by a thread (``forked.reap_later``), not by ``load()``
    waiting for its exit: no zombie is left, and the next cold load, right after, still reads with two
    processes (``can_fork`` waits for that thread first)."""
    import psutil

    import lumo_hydra.store.forked as forked

    root = _aged(_store(tmp_path / "store"))
    reaped: list[int] = []
    real_reap = forked._reap
    monkeypatch.setattr(forked, "_reap", lambda pid: (real_reap(pid), reaped.append(pid)))
    waited: list[tuple[int, str]] = []
    real_waitpid = os.waitpid
    monkeypatch.setattr(os, "waitpid", lambda pid, opt: waited.append((pid, threading.current_thread().name))
                        or real_waitpid(pid, opt))
    forks: list[int] = []
    real_start = parallel.start
    monkeypatch.setattr(parallel, "start", lambda fn, arg: forks.append(1) or real_start(fn, arg))
    df, w, _ = _cold(root, "1", monkeypatch)
    assert w._index.wait_writes(30) and os.path.exists(w.index_path)
    forked.settle()
    assert len(reaped) == 1 and threading.active_count() == 1
    assert [t for p, t in waited if p == reaped[0]] == ["lumo-hydra-reaper"]  # load() did not wait for it
    assert not [c for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]
    df2, w2, _ = _cold(root, "1", monkeypatch)  # at once: the reaper is joined, the slice still forked
    assert len(forks) == 2 and _same(df2, df)
    assert w2._index.wait_writes(30)
    forked.settle()


def test_reap_later_reaps_here_when_no_thread_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import lumo_hydra.store.forked as forked

    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os._exit(0)

    def refuse(self: Any) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    forked.reap_later(pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped


def _slow_frame_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detached writer (any process but this one) sleeps 3 s before it writes a frame cache file."""
    import lumo_hydra.watcher.index as index

    me = os.getpid()
    real = index._write_frame_file

    def slow(*a: Any) -> None:
        if os.getpid() != me:
            time.sleep(3)
        real(*a)

    monkeypatch.setattr(index, "_write_frame_file", slow)


@pytest.mark.parametrize("flat", [False, True])
def test_after_a_change_the_frame_cache_is_written_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          small: None, flat: bool) -> None:
    """A whole load of many runs after some of them changed: the index is brought up to date here, while
    the frame cache (nested or flat) is encoded and written by the detached writer after ``load()``
    returned. The next process's load is answered by that file, with the changes."""
    from lumo_hydra.store.reader import edit_record

    root = _aged(_store(tmp_path / "store"))
    monkeypatch.setenv(parallel.ENV, "1")
    first = Watcher(root)
    first.load(flatten=flat)
    assert first._index.wait_writes(30)
    path = Path(first._index.flat_frame_path if flat else first.frame_path)
    before = path.stat().st_mtime_ns
    for d in sorted((root / "experiments").glob("*/*"))[:2]:
        edit_record(d, lambda r: r.__setitem__("note", "changed"))
        _aged(d)
    _slow_frame_writer(monkeypatch)
    w = Watcher(root)
    df = w.load(flatten=flat)
    assert w.stats["read"] == 2 and w._index._writer.fd is not None  # the writer is at work (sleeping)
    assert path.stat().st_mtime_ns == before  # load() did not wait for the frame cache file
    assert _same(w.load(flatten=flat), df)  # meanwhile from memory
    assert w._index.wait_writes(30) and path.stat().st_mtime_ns != before
    import lumo_hydra.watcher.watcher as watcher_mod

    monkeypatch.setattr(watcher_mod, "build_frame", lambda *a: pytest.fail("not answered by the frame cache"))
    again = Watcher(root)
    got = again.load(flatten=flat)
    assert again.stats["read"] == 0
    monkeypatch.undo()
    fresh = Watcher(root, cache=False).load(flatten=flat)
    for other in (fresh, df):  # the same values (a column may come back as another kind of array)
        pd.testing.assert_frame_equal(got.drop(columns=["duration"]), other.drop(columns=["duration"]))
    notes = got["note"] if "note" in got else got[[c for c in got.columns if c.startswith("note")][0]]
    assert list(notes).count("changed") == 2


def test_with_other_threads_the_frame_cache_is_written_before_the_load_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small: None) -> None:
    """No fork while other threads run (a board's server, a notebook's kernel): written here, as before."""
    from lumo_hydra.store.reader import edit_record

    root = _aged(_store(tmp_path / "store"))
    monkeypatch.setenv(parallel.ENV, "1")
    first = Watcher(root)
    first.load(flatten=True)
    assert first._index.wait_writes(30)
    path = Path(first._index.flat_frame_path)
    before = path.stat().st_mtime_ns
    d = sorted((root / "experiments").glob("*/*"))[0]
    edit_record(d, lambda r: r.__setitem__("note", "changed"))
    _aged(d)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        w = Watcher(root)
        w.load(flatten=True)
        assert w.stats["read"] == 1 and w._index._writer.fd is None and path.stat().st_mtime_ns != before
    finally:
        stop.set()
        other.join()
