"""A pack read by two processes (lumo_hydra/share/split.py, ``pack_runs(processes=...)``), the deflate
parts it joins (``TarGzWriter.part``/``splice``), CRC-32 combining, and ``pack --level``."""
from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import os
import tarfile
import threading
import zlib
from pathlib import Path

import pytest

from lumo_hydra.cli import main
from lumo_hydra.errors import LumoValueError, StoreError
from lumo_hydra.share import pack_runs, unpack
from lumo_hydra.share.tarfast import TarGzWriter, crc32_combine

pytestmark = [pytest.mark.skipif(not hasattr(os, "fork"), reason="a second packing process needs os.fork"),
              pytest.mark.usefixtures("only_this_tests_threads")]

SPLIT = importlib.import_module("lumo_hydra.share.split")  # (lumo_hydra.share.pack is also a function name)


def _store(root: Path, n: int) -> list[str]:
    """``n`` runs of experiment e sharing one lock, each with a few files and a sub-folder."""
    (root / "locks").mkdir(parents=True)
    (root / "locks" / "abcdef12.json").write_text('{"packages": {}}')
    ids = []
    for i in range(n):
        t = f"t{i:03d}"
        info = root / "experiments" / "e" / t
        (info / "sub").mkdir(parents=True)
        rec = {"version": 1, "exp_name": "e", "test_name": t, "lock": {"digest": "abcdef12", "file": "locks/abcdef12.json"},
               "sweep": None}
        (info / "run.json").write_text(json.dumps(rec, separators=(",", ":")))
        (info / "metrics.json").write_text(json.dumps({"acc": i / n}))
        (info / "output.log").write_text(f"run {i}\n" * (i % 7 + 1))
        (info / "sub" / "x.txt").write_text(t)
        ids.append(f"e/{t}")
    return ids


def _contents(path: Path) -> tuple[dict[str, bytes], dict[str, object]]:
    with tarfile.open(path) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    manifest = json.loads(got.pop("manifest.json"))
    return got, manifest


class _Counting:
    """``split.Child``, counting the children started."""

    started = 0

    def __init__(self, fn: object, what: str) -> None:
        type(self).started += 1
        self._c = _REAL_CHILD(fn, what)

    def result(self) -> object:
        return self._c.result()

    def close(self) -> None:
        self._c.close()


_REAL_CHILD = SPLIT.Child


@pytest.fixture()
def counting(monkeypatch: pytest.MonkeyPatch) -> type[_Counting]:
    _Counting.started = 0
    monkeypatch.setattr(SPLIT, "Child", _Counting)
    return _Counting


def _no_child_left() -> None:
    try:
        assert os.waitpid(-1, os.WNOHANG) == (0, 0)  # a child not reaped yet would show here
    except ChildProcessError:
        pass  # no child at all


def test_two_processes_pack_the_same_members_as_one(tmp_path: Path, counting: type[_Counting]) -> None:
    ids = _store(tmp_path / "store", 9)
    seen: list[tuple[int, int]] = []
    one = pack_runs(tmp_path / "store", ids, tmp_path / "one.tar.gz", code=False)
    assert counting.started == 0  # the API's default: this process alone
    two = pack_runs(tmp_path / "store", ids, tmp_path / "two.tar.gz", code=False, processes=2,
                    progress=lambda d, t: seen.append((d, t)))
    assert counting.started == 1
    _no_child_left()
    a, ma = _contents(one.path)
    b, mb = _contents(two.path)
    assert a == b and ma["members"] == mb["members"] and ma["runs"] == mb["runs"]
    assert list(b) == list(a)  # the same order: the runs in order, the shared lock once (after the first run)
    assert sum(n == "locks/abcdef12.json" for n in b) == 1
    for name, data in b.items():
        assert mb["members"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}  # type: ignore[index]
    assert seen[-1] == (9, 9)
    with gzip.open(two.path) as f:  # one gzip member with a right CRC-32 and length
        f.read()
    res = unpack(two.path, tmp_path / "other", code=False)
    assert sorted(res.added) == sorted(ids)


def test_an_unreadable_run_in_the_childs_half_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    ids = _store(tmp_path / "store", 6)
    (tmp_path / "store" / "experiments" / "e" / "t004" / "run.json").unlink()
    out = tmp_path / "p.tar.gz"
    with pytest.raises(StoreError, match="run e/t004: its run.json cannot be read"):
        pack_runs(tmp_path / "store", ids, out, code=False, processes=2)
    assert not out.exists() and os.listdir(tmp_path) == ["store"]
    _no_child_left()


def test_a_failure_in_this_process_stops_and_reaps_the_child(tmp_path: Path) -> None:
    ids = _store(tmp_path / "store", 6)
    (tmp_path / "store" / "experiments" / "e" / "t001" / "run.json").unlink()
    with pytest.raises(StoreError, match="run e/t001"):
        pack_runs(tmp_path / "store", ids, tmp_path / "p.tar.gz", code=False, processes=2)
    assert os.listdir(tmp_path) == ["store"]
    _no_child_left()


def test_no_fork_with_another_thread_running_or_few_runs(tmp_path: Path, counting: type[_Counting]) -> None:
    ids = _store(tmp_path / "store", 4)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        pack_runs(tmp_path / "store", ids, tmp_path / "a.tar.gz", code=False, processes=2)
    finally:
        stop.set()
        t.join()
    pack_runs(tmp_path / "store", ids, tmp_path / "b.tar.gz", code=False, processes=None)  # under SPLIT_RUNS
    pack_runs(tmp_path / "store", ids, tmp_path / "d.tar.gz", True, code=False, processes=2)  # blobs: one process
    pack_runs(tmp_path / "store", ids, tmp_path / "e.tar.gz", code=False, processes=2, reproducible=True)
    assert counting.started == 0
    with pytest.raises(LumoValueError, match="processes=3 is not allowed; allowed: None"):
        pack_runs(tmp_path / "store", ids, tmp_path / "c.tar.gz", code=False, processes=3)


def test_parts_compressed_apart_join_into_one_gzip_stream(tmp_path: Path) -> None:
    part = TarGzWriter(None, 3)
    part.add("b.txt", b"b" * 3000, 0)
    data, crc, n = part.part()
    part.close()  # after part(): nothing more
    assert n == 512 + 3072 and crc == zlib.crc32(part_bytes := _tar_bytes("b.txt", b"b" * 3000))
    with open(tmp_path / "x.tar.gz", "wb") as raw, TarGzWriter(raw, 3) as w:
        w.add("a.txt", b"a" * 10, 0)
        w.splice(data, crc, n)
        w.add("c.txt", b"c", 0)
        w.head("head.txt", b"h", 0)
    with tarfile.open(tmp_path / "x.tar.gz") as tar:
        assert tar.getnames() == ["head.txt", "a.txt", "b.txt", "c.txt"]
        assert tar.extractfile("b.txt").read() == b"b" * 3000  # type: ignore[union-attr]
    assert part_bytes[:5] == b"b.txt"


def _tar_bytes(name: str, data: bytes) -> bytes:
    from lumo_hydra.share.tarfast import ustar_header

    return ustar_header(name, len(data), 0) + data + bytes(-len(data) % 512)


@pytest.mark.parametrize(("la", "lb"), [(0, 1), (1, 1), (5, 7), (1000, 4096), (3, 1 << 20), (77, 3_000_017)])
def test_crc32_combine_matches_zlib(la: int, lb: int) -> None:
    a, b = os.urandom(la), os.urandom(lb)
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_pack_level_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _store(tmp_path / "store", 2)
    root = ["--root", str(tmp_path / "store")]
    with pytest.raises(SystemExit) as e:
        main(["pack", *ids, "-o", str(tmp_path / "x.tar.gz"), "--level", "10", *root])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --level: invalid gzip level: '10'; allowed: an integer from 1 (fastest) to 9 (smallest)" in err
    sizes = {}
    for level in ("1", "9"):
        out = tmp_path / f"l{level}.tar.gz"
        assert main(["pack", *ids, "-o", str(out), "--no-code", "--level", level, *root]) == 0
        sizes[level] = out.stat().st_size
        assert _contents(out)[0].keys() == _contents(tmp_path / "l1.tar.gz")[0].keys()
    assert sizes["9"] < sizes["1"]
    with pytest.raises(LumoValueError, match="level=0 is not a gzip level"):
        pack_runs(tmp_path / "store", ids, tmp_path / "y.tar.gz", code=False, level=0)


UNPACK = importlib.import_module("lumo_hydra.share.unpack")


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "unpacked.json"}


def test_unpack_by_two_processes_writes_the_same_files(tmp_path: Path, counting: type[_Counting]) -> None:
    ids = _store(tmp_path / "store", 8)
    out = pack_runs(tmp_path / "store", ids, tmp_path / "p.tar.gz", code=False).path
    one = unpack(out, tmp_path / "one", code=False)
    assert counting.started == 0
    two = unpack(out, tmp_path / "two", code=False, processes=2)
    assert counting.started == 1
    _no_child_left()
    assert sorted(one.added) == sorted(two.added) == sorted(ids)
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two") and len(_tree(tmp_path / "two")) == 8 * 4 + 1
    for t in ("t000", "t007"):  # every run has its provenance, in the parent's half and in the child's
        assert json.loads((tmp_path / "two" / "experiments" / "e" / t / "unpacked.json").read_text())["archive"] == str(out)
    assert unpack(out, tmp_path / "two", code=False, processes=2).skipped == two.added


def test_a_failure_writing_in_the_child_is_raised_here_and_nothing_is_left(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _store(tmp_path / "store", 6)
    out = pack_runs(tmp_path / "store", ids, tmp_path / "p.tar.gz", code=False).path
    here, write = os.getpid(), UNPACK._write_members

    def failing_in_the_child(tmp: Path, members: list[object]) -> None:
        if os.getpid() != here:
            raise PermissionError(13, "Permission denied", str(tmp / "experiments"))
        write(tmp, members)

    monkeypatch.setattr(UNPACK, "_write_members", failing_in_the_child)
    with pytest.raises(PermissionError) as e:
        unpack(out, tmp_path / "other", code=False, processes=2)
    assert e.value.filename.endswith("experiments")  # errno, text and file name survive the trip
    assert not (tmp_path / "other" / "experiments").exists()
    assert [p.name for p in (tmp_path / "other").iterdir()] == []  # the staging folder is gone
    _no_child_left()
    with pytest.raises(LumoValueError, match="processes=0 is not allowed"):
        unpack(out, tmp_path / "other", code=False, processes=0)


@pytest.mark.parametrize(("cores", "line", "idle"), [(2, "0.00 0.00 0.00 1/90 7", True), (2, "1.9 1.0 0.5 2/90 7", False),
                                                     (8, "5.0 5.0 5.0 6/90 7", True), (8, "5.0 5.0 5.0 8/90 7", False)])
def test_a_second_process_only_when_a_core_is_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int,
                                                   line: str, idle: bool) -> None:
    (tmp_path / "loadavg").write_text(line + "\n")
    monkeypatch.setattr(SPLIT, "LOADAVG", str(tmp_path / "loadavg"))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert SPLIT.can_fork(idle=True) is idle
    assert SPLIT.can_fork() is True  # asked for: whatever the load
    monkeypatch.setattr(SPLIT, "LOADAVG", str(tmp_path / "missing"))
    monkeypatch.setattr(os, "getloadavg", lambda: (cores - 0.5, 0.0, 0.0))  # elsewhere: the 1-minute load average
    assert SPLIT.can_fork(idle=True) is False


def test_with_code_the_childs_records_reach_the_bundles(tmp_path: Path) -> None:
    ids = _store(tmp_path / "store", 6)
    rec = tmp_path / "store" / "experiments" / "e" / "t005" / "run.json"
    git = {"repo": str(tmp_path / "gone"), "ref": "refs/lumo/snapshots/e/t005", "commit": "ab" * 20}
    rec.write_text(json.dumps({**json.loads(rec.read_text()), "git": git,
                               "params": {"lr": 0.1, "big": 2 ** 70, "ok": True, "none": None}}))
    one = pack_runs(tmp_path / "store", ids, tmp_path / "one.tar.gz")
    two = pack_runs(tmp_path / "store", ids, tmp_path / "two.tar.gz", processes=2)
    assert one.skipped == two.skipped and one.bundles == two.bundles
    assert two.skipped["code of e/t005"] == f"its repository {str(tmp_path / 'gone')!r} does not exist here"  # the child's run
    assert _contents(one.path)[1]["skipped"] == _contents(two.path)[1]["skipped"]
