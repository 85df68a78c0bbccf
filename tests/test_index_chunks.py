"""The index keeps its record columns as chunks in immutable body files: a load after a few runs changed
re-encodes only their chunks into a small new body file (the others stay where they are, byte for byte),
the frame cache refers to the chunks instead of holding a copy, too many files are compacted into one,
and every body file stays disposable."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_watcher_cache import age, same
from test_watcher_fake import write_run

from lumo_hydra import Watcher
from lumo_hydra.store.reader import edit_record
from lumo_hydra.watcher import nested

N = 40


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(nested, "CHUNK", 4)  # 10 chunks of 4 runs
    r = tmp_path / "store"
    now = time.time() - 5000
    for i in range(N):
        write_run(r, "e", counter=i, start=now + i * 10, params={"lr": i / 100, "marker": f"zq-{i}"},
                  metrics={"acc": (i / N, "max")}, tags=["t"])
    age(r)
    return r


def _bodies(w: Watcher) -> list[Path]:
    index = Path(w.index_path)
    return sorted(index.parent.glob(index.name[: -len(".index")] + ".*.body"))


def _edit(root: Path, i: int, note: str) -> None:
    d = sorted(p for p in (root / "experiments" / "e").iterdir())[i]
    edit_record(d, lambda rec: rec.update(note=note))
    age(root)


def test_an_edit_writes_only_its_chunk_to_a_new_body_file(root: Path) -> None:
    w = Watcher(root)
    w.load()
    (first,) = _bodies(w)
    st = first.stat()
    assert b"zq-" not in Path(w.frame_path).read_bytes()  # the frame cache refers to the index's chunks
    _edit(root, 17, "changed")
    w2 = Watcher(root)
    df = w2.load()
    assert w2.stats["read"] == 1 and "changed" in set(df["note"])
    bodies = _bodies(w2)
    assert len(bodies) == 2 and first in bodies
    assert first.stat().st_mtime_ns == st.st_mtime_ns and first.stat().st_ino == st.st_ino  # never rewritten
    (new,) = [b for b in bodies if b != first]
    assert new.stat().st_size * 5 < st.st_size  # one chunk of 4 runs (of 10 chunks), not the whole index
    same(df, Watcher(root, cache=False).load())
    again = Watcher(root)
    same(again.load(), Watcher(root, cache=False).load())  # the frame cache, its chunks in two files
    assert again.stats["read"] == 0


def test_many_edits_are_compacted_into_one_body_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nested, "GRACE_S", 0.0)  # files no longer referred to go at once
    Watcher(root).load()
    counts = []
    for k in range(3 * nested._MAX_BODIES):
        _edit(root, (7 * k) % N, f"n{k}")
        w = Watcher(root)
        df = w.load()
        counts.append(len(_bodies(w)))
        assert f"n{k}" in set(df["note"])
        assert counts[-1] <= nested._MAX_BODIES  # files no longer referred to are deleted
    assert 1 in counts[1:] and max(counts) > 2
    same(Watcher(root).load(), Watcher(root, cache=False).load())
    same(Watcher(root).load(flatten=True), Watcher(root, cache=False).load(flatten=True))


def test_body_files_are_disposable(root: Path) -> None:
    w = Watcher(root)
    truth = w.load()
    _edit(root, 3, "x")
    Watcher(root).load()
    for b in _bodies(w)[:1]:
        b.unlink()
    w2 = Watcher(root)
    df = w2.load()
    assert w2.stats["read"] == N  # the index could not be read: every run read again
    same(df, Watcher(root, cache=False).load())
    assert len(truth) == len(df)


def test_a_body_file_deleted_meanwhile_is_looked_up_again(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that read the index's first part just before another process replaced it (and deleted a
    body file it no longer needed) reads the index again instead of every run."""
    Watcher(root).load()
    real = nested.read_bodies
    calls = []

    def once_gone(d: str, files: list) -> list:
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError(files[0][0])
        return real(d, files)

    from lumo_hydra.watcher import index

    monkeypatch.setattr(nested, "read_bodies", once_gone)
    monkeypatch.setattr(index.nested, "read_bodies", once_gone)
    _edit(root, 5, "y")
    w = Watcher(root)
    df = w.load()
    assert w.stats["read"] == 1 and len(calls) >= 2
    same(df, Watcher(root, cache=False).load())


def test_moves_additions_and_removals_patch_the_chunks_in_order(root: Path) -> None:
    """Runs rewritten in place keep their rows; a run whose start moved, a new run and a removed run
    take the merge: every load still equals an uncached one, row for row."""
    import shutil

    Watcher(root).load()
    runs = sorted(p for p in (root / "experiments" / "e").iterdir())
    edit_record(runs[9], lambda rec: rec["progress"].update(start="2001-01-01T00:00:00"))  # first now
    edit_record(runs[30], lambda rec: rec.update(note="kept in place"))
    shutil.rmtree(runs[20])
    write_run(root, "e", counter=99, start=time.time() - 4000, params={"lr": 9.0, "marker": "zq-new"})
    age(root)
    w = Watcher(root)
    df = w.load()
    assert w.stats["read"] == 3 and w.stats["removed"] == 1
    truth = Watcher(root, cache=False).load()
    same(df, truth)
    assert df["test_name"].iloc[0] == runs[9].name and df["params"].iloc[-1]["marker"] == "zq-new"
    same(Watcher(root).load(), truth)


def test_a_compaction_keeps_the_files_it_replaced_for_a_while(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader of the index before (or a writer that started from it) may still want its body files."""
    monkeypatch.setattr(nested, "_MAX_BODIES", 2)
    w = Watcher(root)
    w.load()
    _edit(root, 1, "a")
    Watcher(root).load()
    before = set(_bodies(w))
    assert len(before) == 2
    _edit(root, 2, "b")
    Watcher(root).load()  # compacted: one new file, the two before kept (younger than GRACE_S)
    after = set(_bodies(w))
    assert before < after and len(after) == 3
    monkeypatch.setattr(nested, "GRACE_S", 0.0)
    _edit(root, 3, "c")
    df = Watcher(root).load()
    assert not before & set(_bodies(w))  # gone once old enough
    same(df, Watcher(root, cache=False).load())
    w.clear_cache()
    assert _bodies(w) == []


def test_a_first_load_keeps_the_run_folders_signatures(root: Path) -> None:
    """Runs read for the first time get the signature their folder had at the scan: the next load after
    an edit in their experiment stats their folders only, not their two files each."""
    import os

    t = time.time() - 60
    for d in (root / "experiments" / "e").iterdir():
        os.utime(d, (t, t))
    w = Watcher(root)
    w.load()
    table = w._index.mem
    assert table is not None and all(table["dsigs"].get(k) is not None for k in table["keys"])
