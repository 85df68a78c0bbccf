"""The fast paths of pack (lumo_hydra/share/pack.py, tarfast.py; docs/share.md "Speed"): what is packed
from a run's info folder when it is read through one descriptor, the gzip levels of pack and push."""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from lumo_hydra.errors import StoreError
from lumo_hydra.share import pack_runs
from lumo_hydra.share.pack import LEVEL, PUSH_LEVEL
from lumo_hydra.share.remote import push
from lumo_hydra.share.tarfast import TarGzWriter

RUN = {"version": 1, "exp_name": "e", "test_name": "t1", "lock": None, "sweep": None}


def _store(root: Path, tests: tuple[str, ...] = ("t1",)) -> Path:
    """A hand-made store: one folder per run with a run.json, text files, a sub-folder, a symlink out
    and an unpacked.json (left out: unpack writes a new one)."""
    outside = root.parent / "outside.txt"
    outside.write_text("secret\n")
    for t in tests:
        info = root / "experiments" / "e" / t
        (info / "sub").mkdir(parents=True)
        (info / "run.json").write_text(json.dumps({**RUN, "test_name": t}))
        (info / "a.txt").write_text("a" * 700)
        (info / "z.log").write_text("line\n" * 50)
        (info / "sub" / "b.txt").write_text("b")
        (info / "link").symlink_to(outside)
        (info / "unpacked.json").write_text("{}")
    return root


def _members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def test_info_folder_members_in_name_order_without_links_or_unpacked_json(tmp_path: Path) -> None:
    root = _store(tmp_path / "store", ("t1", "t2"))
    out = pack_runs(root, ["e/t1", "t2"], tmp_path / "p.tar.gz", code=False).path
    got = _members(out)
    names = [n for n, _ in got]
    assert names == ["manifest.json"] + [f"experiments/e/{t}/{n}" for t in ("t1", "t2")
                                         for n in ("a.txt", "run.json", "sub/b.txt", "z.log")]
    manifest = json.loads(got[0][1])
    for name, data in got[1:]:
        assert data == (root / name).read_bytes()
        assert manifest["members"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert set(manifest["members"]) == set(names[1:])


def test_a_run_without_its_folder_or_run_json_is_named(tmp_path: Path) -> None:
    root = _store(tmp_path / "store", ("t1", "t2"))
    (root / "experiments" / "e" / "t2" / "run.json").unlink()
    with pytest.raises(StoreError, match=r"run e/t2: its run\.json cannot be read"):
        pack_runs(root, ["e/t1", "t2"], tmp_path / "p.tar.gz", code=False)
    assert not list(tmp_path.glob("p.tar.gz*")) and not list(tmp_path.glob(".tmp-*"))


def test_a_file_gone_between_listing_and_reading_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _store(tmp_path / "store")
    (root / "experiments" / "e" / "t1" / ".tmp-heartbeat.x~").write_text("1")  # renamed by its writer meanwhile
    real_open = os.open

    def racing_open(path: str, flags: int, *args: object, **kw: object) -> int:
        if str(path).startswith(".tmp-heartbeat"):
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", racing_open)
    out = pack_runs(root, ["e/t1"], tmp_path / "p.tar.gz", code=False).path
    monkeypatch.setattr(os, "open", real_open)
    names = [n for n, _ in _members(out)]
    assert "experiments/e/t1/run.json" in names and not [n for n in names if ".tmp-" in n]


def test_a_large_info_file_is_streamed_and_redaction_reads_it_whole(tmp_path: Path) -> None:
    root = _store(tmp_path / "store")
    home = os.path.expanduser("~").rstrip("/")
    big = (f"{home}/x\n" * 200_000).encode()  # over the 1 MiB held in memory
    (root / "experiments" / "e" / "t1" / "output.log").write_bytes(big)
    plain = dict(_members(pack_runs(root, ["e/t1"], tmp_path / "a.tar.gz", code=False).path))
    assert plain["experiments/e/t1/output.log"] == big
    if len(home) > 1:
        masked = dict(_members(pack_runs(root, ["e/t1"], tmp_path / "b.tar.gz", code=False, redact=True).path))
        assert masked["experiments/e/t1/output.log"] == b"~/x\n" * 200_000


def _levels_of(path: Path) -> set[int]:
    """The gzip levels whose output, written by TarGzWriter from the archive's content, is the archive."""
    data = path.read_bytes()
    body = zlib.decompress(data, 31)
    size = int(body[124:136].rstrip(b"\0 "), 8)
    cut = 512 + size + (-size % 512)  # the manifest member, written as the head
    found = set()
    for level in range(1, 10):
        w = io.BytesIO()
        with TarGzWriter(w, level) as tar:
            tar._put(body[cut:-1024])  # the writer adds the two end blocks itself
            tar._head = body[:cut]
        if w.getvalue() == data:
            found.add(level)
    return found


def test_pack_uses_its_level_and_push_keeps_gzips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUMO_CACHE_DIR", str(tmp_path / "cache"))
    root = _store(tmp_path / "store")
    assert (LEVEL, PUSH_LEVEL) == (3, 6)
    packed = _levels_of(pack_runs(root, ["e/t1"], tmp_path / "p.tar.gz", code=False).path)
    dest = tmp_path / "lab"
    assert push(root, ["e/t1"], f"file://{dest}", code=False).sent == ["e/t1"]
    pushed = _levels_of(dest / "e" / "t1.tar.gz")  # the checksums of earlier pushes still hold
    assert LEVEL in packed and PUSH_LEVEL in pushed and not packed & pushed


@pytest.mark.skipif(sys.platform == "win32", reason="gzip/tar command lines")
def test_a_level_3_pack_reads_with_gzip_and_tar(tmp_path: Path) -> None:
    import subprocess

    root = _store(tmp_path / "store")
    out = pack_runs(root, ["e/t1"], tmp_path / "p.tar.gz", code=False).path
    assert subprocess.run(["gzip", "-t", str(out)]).returncode == 0
    listed = subprocess.run(["tar", "tzf", str(out)], capture_output=True, text=True, check=True).stdout.split()
    assert listed[0] == "manifest.json" and "experiments/e/t1/sub/b.txt" in listed
