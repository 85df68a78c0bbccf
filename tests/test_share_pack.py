"""pack/unpack (lumo_hydra/share/, docs/share.md): real runs, a second store, hostile archives."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lumo_hydra.cli.app import main
from lumo_hydra.errors import ArchiveError
from lumo_hydra.share import pack, unpack
from lumo_hydra.share.unpack import UNPACKED_JSON
from lumo_hydra.store.moved import read_provenance
from lumo_hydra.watcher import Watcher

SCRIPT = """
import sys
from lumo_hydra import SimpleExperiment
for lr in (0.1, 0.2):
    exp = SimpleExperiment("share", heartbeat_interval=0)
    exp.start()
    exp.dump_params({"lr": lr, "layers": [1, 2]})
    exp.dump_metric("Acc", lr * 3, cmp="max")
    with open(exp.mk_bpath("model.bin"), "wb") as f:
        f.write(b"weights" * 10)
    exp.end()
    print(exp.test_name)
"""


@pytest.fixture
def two_runs(tmp_path: Path, lumo_home: Path) -> list[str]:
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "LUMO_HOME": str(lumo_home)}, timeout=120)
    assert r.returncode == 0, r.stderr
    ids = [w for w in r.stdout.split() if re.fullmatch(r"\d{6}\.\d{3,}\.\w\wt", w)]
    assert len(ids) == 2
    return ids


def _frame(root: Path) -> list[tuple[str, float, float]]:
    df = Watcher(root=str(root)).load(flatten=True)
    return sorted(zip(df["test_name"], df["params.lr"], df["metrics.Acc"]))


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_pack_unpack_into_a_second_store(tmp_path: Path, lumo_home: Path, two_runs: list[str]) -> None:
    out = pack(lumo_home, two_runs, tmp_path / "out" / "runs.tar.gz")
    assert out.is_file() and not [p for p in out.parent.iterdir() if p.name.endswith("~")]
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert names[0] == "manifest.json"
    assert manifest["format"] == 1 and manifest["lumo_hydra"] and manifest["host"]
    assert sorted(r["test_name"] for r in manifest["runs"]) == sorted(two_runs)
    assert any(n.startswith("locks/") for n in names)  # the dependency lock the runs name
    assert not any(n.startswith("blob/") for n in names)  # only with blobs=True
    assert set(manifest["members"]) == set(names[1:])

    second = tmp_path / "second"
    res = unpack(out, second)
    assert sorted(res.added) == sorted(f"share/{t}" for t in two_runs) and res.skipped == []
    assert _frame(second) == _frame(lumo_home)
    assert len(_frame(second)) == 2
    for t in two_runs:
        info = second / "experiments" / "share" / t
        origin = json.loads((info / UNPACKED_JSON).read_text())
        assert origin["archive"] == str(out) and origin["origin_host"] == manifest["host"]
        assert (info / "run.json").read_bytes() == (lumo_home / "experiments" / "share" / t / "run.json").read_bytes()
    # the runs' unpacked.json (one text per unpack and repository) are hard links of one file, read per run
    a, b = (second / "experiments" / "share" / t / UNPACKED_JSON for t in two_runs)
    assert os.path.samefile(a, b) and a.stat().st_nlink == 2 and read_provenance(a.parent) == read_provenance(b.parent)
    assert not [p for p in second.iterdir() if p.name.startswith(".lumo-unpack-")]

    before = {p: (second / p).read_bytes() for p in _files(second)}
    again = unpack(out, second)  # the same runs, identical: skipped, nothing changes
    assert again.added == [] and sorted(again.skipped) == sorted(f"share/{t}" for t in two_runs)
    assert {p: (second / p).read_bytes() for p in _files(second)} == before


def test_watcher_rows_of_unpacked_runs_name_the_new_store(tmp_path: Path, lumo_home: Path,
                                                          two_runs: list[str]) -> None:
    out = pack(lumo_home, two_runs, tmp_path / "runs.tar.gz", blobs=True)
    second = tmp_path / "second"
    unpack(out, second)
    for _ in range(2):  # the first load reads the records, the second comes from the index
        df = Watcher(root=str(second)).load(flatten=True)
        assert sorted(df["test_name"]) == sorted(two_runs)
        for t, info, blob in zip(df["test_name"], df["paths.info_dir"], df["paths.blob_dir"]):
            assert info == str(second / "experiments" / "share" / t)
            assert blob == str(second / "blob" / "share" / t)
        assert [list(m) for m in df["moved.root"]] == [[str(lumo_home), str(second)]] * 2
    own = Watcher(root=str(lumo_home)).load(flatten=True)  # the original store: nothing re-based
    assert all(p.startswith(str(lumo_home) + "/") for p in own["paths.info_dir"])
    assert "moved.root" not in own


def test_blobs_and_a_conflicting_run(tmp_path: Path, lumo_home: Path, two_runs: list[str]) -> None:
    out = pack(lumo_home, two_runs[:1], tmp_path / "one.tar.gz", blobs=True)
    second = tmp_path / "second"
    unpack(out, second)
    assert (second / "blob" / "share" / two_runs[0] / "model.bin").read_bytes() == b"weights" * 10
    # records first, then the same run with its blobs: the run is skipped, its blob folder added
    records_only = tmp_path / "records"
    assert unpack(pack(lumo_home, two_runs[:1], tmp_path / "rec.tar.gz"), records_only).added == [f"share/{two_runs[0]}"]
    assert not (records_only / "blob").exists()
    assert unpack(out, records_only).skipped == [f"share/{two_runs[0]}"]
    assert (records_only / "blob" / "share" / two_runs[0] / "model.bin").read_bytes() == b"weights" * 10
    # a different blob folder under the same id: an error naming it
    (records_only / "blob" / "share" / two_runs[0] / "model.bin").write_bytes(b"other")
    with pytest.raises(ArchiveError, match=f"blob/share/{two_runs[0]} differs"):
        unpack(out, records_only)
    # a different run with the same id in a third store: an error naming it, nothing written
    third = tmp_path / "third"
    (third / "experiments" / "share" / two_runs[0]).mkdir(parents=True)
    (third / "experiments" / "share" / two_runs[0] / "run.json").write_text('{"other": 1}')
    before = _files(third)
    with pytest.raises(ArchiveError, match=f"a different run share/{two_runs[0]}"):
        unpack(out, third)
    assert _files(third) == before


def test_cli_pack_and_unpack(tmp_path: Path, lumo_home: Path, two_runs: list[str],
                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.tar.gz"
    assert main(["pack", two_runs[0], two_runs[1], "-o", str(out)]) == 0
    assert main(["unpack", str(out), "--root", str(tmp_path / "s2")]) == 0
    assert "2 added" in capsys.readouterr().out
    assert main(["unpack", str(out), "--root", str(tmp_path / "s2")]) == 0
    assert "2 skipped" in capsys.readouterr().out
    assert main(["show", two_runs[1], "--root", str(tmp_path / "s2"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["test_name"] == two_runs[1] and shown["params"]["lr"] == 0.2
    (tmp_path / "bad.tar.gz").write_bytes(out.read_bytes()[: len(out.read_bytes()) // 2])
    assert main(["unpack", str(tmp_path / "bad.tar.gz"), "--root", str(tmp_path / "s3")]) == 1
    assert "nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "s3").exists()
    assert main(["pack", "no-such-run", "-o", str(tmp_path / "x.tar.gz")]) == 1
    assert "no-such-run" in capsys.readouterr().err and not (tmp_path / "x.tar.gz").exists()


def test_a_symlink_in_the_target_store_does_not_carry_members_out(tmp_path: Path, lumo_home: Path,
                                                                  two_runs: list[str]) -> None:
    out = pack(lumo_home, two_runs[:1], tmp_path / "one.tar.gz")
    store, outside = tmp_path / "store", tmp_path / "outside"
    (store / "experiments").mkdir(parents=True)
    outside.mkdir()
    (store / "experiments" / "share").symlink_to(outside)
    with pytest.raises(ArchiveError, match="outside the store"):
        unpack(out, store)
    assert list(outside.iterdir()) == [] and not (store / "locks").exists()


# -- hostile archives: each refused, nothing written ------------------------------------------------
def _hostile(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], manifest_extra: dict | None = None,
             listed: dict | None = None) -> Path:
    files = {i.name: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for i, d in members if i.isreg()}
    files.update(listed or {})
    doc = {"format": 1, "lumo_hydra": "0", "host": "h", "runs": [], "members": files, **(manifest_extra or {})}
    with tarfile.open(path, "w:gz") as tar:
        data = json.dumps(doc).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for i, d in members:
            tar.addfile(i, io.BytesIO(d) if i.isreg() else None)
    return path


def _reg(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    i = tarfile.TarInfo(name)
    i.size = len(data)
    return i, data


RUN = "experiments/e/261201.001.aat/run.json"
WHY = {"absolute": "an absolute path", "dotdot": "'..'", "symlink": "not a regular file", "hardlink": "not a regular file",
       "device": "not a regular file", "unlisted": "not listed in the manifest", "checksum": "sha256 does not match",
       "size": "the manifest says 1", "outside_top": "not under one of the store folders", "missing": "missing from the archive"}


@pytest.mark.parametrize("case", ["absolute", "dotdot", "symlink", "hardlink", "device", "unlisted",
                                  "checksum", "size", "outside_top", "missing"])
def test_hostile_archives_are_refused(tmp_path: Path, case: str) -> None:
    good = _reg(RUN, b'{"test_name": "261201.001.aat"}')
    members, listed = [good], None
    if case == "absolute":
        members.append(_reg("/tmp/evil", b"x"))
    elif case == "dotdot":
        members.append(_reg("experiments/e/../../../evil", b"x"))
    elif case in ("symlink", "hardlink"):
        link = tarfile.TarInfo("experiments/e/261201.001.aat/link")
        link.type = tarfile.SYMTYPE if case == "symlink" else tarfile.LNKTYPE
        link.linkname = "/etc/passwd"
        members.append((link, b""))
    elif case == "device":
        dev = tarfile.TarInfo("experiments/e/261201.001.aat/dev")
        dev.type = tarfile.CHRTYPE
        members.append((dev, b""))
    elif case == "unlisted":
        listed = {}
        members.append(_reg("experiments/e/261201.001.aat/extra", b"x"))
    elif case == "checksum":
        listed = {RUN: {"sha256": "0" * 64, "size": len(good[1])}}
    elif case == "size":
        listed = {RUN: {"sha256": hashlib.sha256(good[1]).hexdigest(), "size": 1}}
    elif case == "outside_top":
        members.append(_reg("diary/x.log", b"x"))
    elif case == "missing":
        listed = {"experiments/e/261201.001.aat/gone": {"sha256": "0" * 64, "size": 1}}
    path = _hostile(tmp_path / "h.tar.gz", members, listed=listed)
    if case == "unlisted":  # drop the extra member from the manifest after building it
        with tarfile.open(path) as tar:
            doc = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        doc["members"].pop("experiments/e/261201.001.aat/extra")
        path = _hostile(path, members, listed=None, manifest_extra={"members": doc["members"]})
    store = tmp_path / "store"
    with pytest.raises(ArchiveError) as ei:
        unpack(path, store)
    assert isinstance(ei.value, ValueError) and WHY[case] in ei.value.problem and ei.value.member in str(ei.value)
    assert not store.exists()
    assert not Path("/tmp/evil").exists() or case != "absolute"


def test_truncated_and_bomb_archives(tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    path = _hostile(tmp_path / "t.tar.gz", [_reg(RUN, payload)])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(path.read_bytes()[:150_000])
    store = tmp_path / "store"
    with pytest.raises(ArchiveError, match="truncated|not a readable"):
        unpack(cut, store)
    assert not store.exists()
    # a bomb: 64 MiB of zeros compress to ~64 KiB; refused from the member sizes, before reading the data
    zeros = b"\0" * (64 << 20)
    bomb = _hostile(tmp_path / "bomb.tar.gz", [_reg(RUN, zeros)])
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ArchiveError, match="archive bomb"):
        unpack(bomb, store, max_bytes=16 << 20)
    assert not store.exists()
    assert unpack(bomb, store, max_bytes=128 << 20).added == ["e/261201.001.aat"]  # under the limit: fine
    with pytest.raises(ArchiveError, match="not a lumo-hydra pack"):
        not_pack = tmp_path / "plain.tar.gz"
        with tarfile.open(not_pack, "w:gz") as tar:
            i, d = _reg("experiments/a/b/c", b"x")
            tar.addfile(i, io.BytesIO(d))
        unpack(not_pack, tmp_path / "s4")


SWEEP_APP = '''
import lumo_hydra

@lumo_hydra.main(version_base="1.3", config_path=None, config_name="config")
def main(cfg, exp):
    exp.dump_metric("acc", 0.1 * cfg.x, cmp="max")
    return 0.1 * cfg.x

if __name__ == "__main__":
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="config", node={"x": 1})
    main()
'''


def test_a_sweep_job_carries_its_sweep_record(tmp_path: Path, lumo_home: Path) -> None:
    (tmp_path / "app.py").write_text(SWEEP_APP)
    r = subprocess.run([sys.executable, "app.py", "-m", "x=1,2", f"hydra.sweep.dir={tmp_path}/multirun"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    df = Watcher(root=str(lumo_home)).load()
    sid = str(df["sweep"].iloc[0])
    assert sid and set(df["sweep"]) == {sid}
    one = str(df["test_name"].iloc[0])
    out = pack(lumo_home, [one], tmp_path / "job.tar.gz")
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert f"sweeps/{sid}/sweep.json" in names
    assert [n for n in names if n.startswith(f"sweeps/{sid}/jobs/")] == [
        f"sweeps/{sid}/jobs/{p.name}" for p in (lumo_home / "sweeps" / sid / "jobs").iterdir() if p.name.endswith(one)]
    second = tmp_path / "second"
    unpack(out, second)
    w2 = Watcher(root=str(second))
    jobs = w2.sweep(sid)
    assert list(jobs["test_name"]) == [one]
    assert jobs.attrs["sweep"] == json.loads((lumo_home / "sweeps" / sid / "sweep.json").read_text())


def test_archives_beyond_plain_ustar_are_read_with_tarfile(tmp_path: Path) -> None:
    """A member name longer than ustar holds gets a PAX header: not the in-memory reader's subset, so the
    archive is streamed with tarfile (data filter) instead, with the same checks and result."""
    from lumo_hydra.share.tarfast import gunzip_bounded, read_members

    long_test = "261201.001." + "x" * 180
    name = f"experiments/e/{long_test}/run.json"
    path = _hostile(tmp_path / "pax.tar.gz", [_reg(name, b'{"test_name": "long"}')])
    data = gunzip_bounded(path.read_bytes(), 1 << 20)
    assert data is not None and read_members(data) is None  # a PAX header: not for the fast reader
    res = unpack(path, tmp_path / "store")
    assert res.added == [f"e/{long_test}"]
    assert (tmp_path / "store" / name).read_bytes() == b'{"test_name": "long"}'
    # and the fast reader agrees with tarfile on a pack it wrote itself
    short = _hostile(tmp_path / "short.tar.gz", [_reg(RUN, b"{}")])
    members = read_members(gunzip_bounded(short.read_bytes(), 1 << 20) or b"")
    assert members is not None and [m[0] for m in members] == ["manifest.json", RUN]


@pytest.mark.parametrize("name", ["experiments/e/261201.001.aat/run.json", "a" * 100, "x/" * 60 + "y"])
def test_tarfast_headers_read_back_by_tarfile(tmp_path: Path, name: str) -> None:
    from lumo_hydra.share.tarfast import TarGzWriter, ustar_header

    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uname, info.gname = 12345, 1796221060, 0o644, "", ""
    if len(name) <= 100:  # tarfile's own ustar header, byte for byte
        assert ustar_header(name, 12345, 1796221060) == info.tobuf(tarfile.USTAR_FORMAT)
    with open(tmp_path / "t.tar.gz", "wb") as f, TarGzWriter(f) as w:
        w.add(name, b"data" * 3, 1796221060)
    with tarfile.open(tmp_path / "t.tar.gz") as tar:
        (m,) = tar.getmembers()
        assert m.name == name and m.isreg() and tar.extractfile(m).read() == b"data" * 3  # type: ignore[union-attr]


@pytest.mark.parametrize("spool", [False, True])
def test_tarfast_head_written_last_reads_first_with_gzip_and_tar(tmp_path: Path, spool: bool,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest is compressed after the members (it holds their checksums) and joined in front of
    them as one gzip member (pigz's way): gzip -t, tar, tarfile (both modes) and the fast reader agree."""
    import subprocess
    import zlib

    import lumo_hydra.share.tarfast as tf

    for a, b in [(b"", b"x"), (b"abc", b""), (os.urandom(999), os.urandom(70001))]:
        assert tf.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    if spool:
        monkeypatch.setattr(tf, "_SPOOL", 1000)  # the compressed members go through a temporary file
    big = os.urandom(300_000)
    path = tmp_path / "h.tar.gz"
    with open(path, "wb") as f, tf.TarGzWriter(f, spool_dir=str(tmp_path)) as w:
        w.add("experiments/e/t/a", b"hello" * 1000, 5)
        (tmp_path / "big").write_bytes(big)
        w.add_file("experiments/e/t/big", str(tmp_path / "big"), len(big), 5)
        w.head("manifest.json", b'{"m": 1}', 7)
    assert subprocess.run(["gzip", "-t", str(path)]).returncode == 0
    listed = subprocess.run(["tar", "tzf", str(path)], capture_output=True, text=True, check=True).stdout.split()
    assert listed == ["manifest.json", "experiments/e/t/a", "experiments/e/t/big"]
    for mode in ("r:gz", "r|gz"):
        with tarfile.open(path, mode) as tar:
            got = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
        assert got == {"manifest.json": b'{"m": 1}', "experiments/e/t/a": b"hello" * 1000, "experiments/e/t/big": big}
    members = tf.read_members(tf.gunzip_bounded(path.read_bytes(), 1 << 20) or b"")
    assert members is not None and [m[0] for m in members] == listed
    assert sorted(os.listdir(tmp_path)) == ["big", "h.tar.gz"]  # the spool file is gone
