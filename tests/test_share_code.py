"""Packs carry their code (git bundles) and unpacked runs work on a "second machine": another store root,
another repository, another HOME; show/diff/checkout/rerun on the bundled code (docs/share.md)."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import git

from lumo_hydra.errors import ArchiveError
from lumo_hydra.share import pack, pack_runs, unpack
from lumo_hydra.store.moved import UNPACKED_JSON
from lumo_hydra.store.reader import read_record

TRAIN = """
from lumo_hydra import SimpleExperiment
from model import SCALE

exp = SimpleExperiment("code", heartbeat_interval=0)
exp.start()
exp.dump_params({"lr": 0.5})
exp.dump_metric("acc", SCALE * 0.5, cmp="max")
exp.end()
print("RUN", exp.test_name)
"""


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (cmd, r.stdout, r.stderr)
    return r


@pytest.fixture
def recorded(tmp_path: Path) -> dict[str, object]:
    """A run recorded in a real repository (code SCALE = 1.5), then the repository's code changed."""
    repo = tmp_path / "m1" / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "train.py").write_text(TRAIN)
    (repo / "model.py").write_text("SCALE = 1.5\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    store = tmp_path / "m1" / "store"
    env = {**os.environ, "LUMO_HOME": str(store), "HOME": str(tmp_path / "m1")}
    out = _run([sys.executable, "train.py"], repo, env).stdout
    test = re.search(r"RUN (\S+)", out).group(1)  # type: ignore[union-attr]
    (repo / "model.py").write_text("SCALE = 0.1\n")  # the code moves on after the run
    git(repo, "commit", "-q", "-am", "second")
    return {"repo": repo, "store": store, "test": test, "env": env}


def _second_machine(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "m2"
    home.mkdir()
    return home / "store", {**os.environ, "LUMO_HOME": str(home / "store"), "HOME": str(home),
                            "LUMO_CACHE_DIR": str(home / "cache")}


def test_pack_bundles_the_snapshot_and_a_second_machine_reruns_it(tmp_path: Path, recorded: dict) -> None:
    test, store = str(recorded["test"]), Path(recorded["store"])  # type: ignore[arg-type]
    res = pack_runs(store, [test], tmp_path / "run.tar.gz")
    assert [b["member"] for b in res.bundles] == ["code/0.bundle"] and res.skipped == {}
    with tarfile.open(res.path) as tar:
        assert "code/0.bundle" in tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    ref = read_record(store / "experiments" / "code" / test)["git"]["ref"]
    assert list(manifest["code"][0]["refs"]) == [ref]

    # the second machine: the original repository is gone, another HOME, another store root
    shutil.move(str(recorded["repo"]), str(tmp_path / "gone"))
    store2, env2 = _second_machine(tmp_path)
    out = _run([sys.executable, "-m", "lumo_hydra", "unpack", str(res.path), "--json"], tmp_path, env2).stdout
    doc = json.loads(out)
    assert doc["added"] == [f"code/{test}"] and doc["code"][0]["repo"] == str(store2 / "code")
    assert git(store2 / "code", "for-each-ref", "--format=%(refname)").split() == [ref]

    shown = json.loads(_run([sys.executable, "-m", "lumo_hydra", "show", test, "--json"], tmp_path, env2).stdout)
    assert shown["git"]["repo"] == str(store2 / "code")  # re-based: the record's repo is not here
    assert shown["paths"]["info_dir"] == str(store2 / "experiments" / "code" / test)
    assert shown["paths"]["blob_dir"].startswith(str(store2))
    assert shown["execute"]["cwd"] == str(store2 / "code")
    prov = json.loads((store2 / "experiments" / "code" / test / UNPACKED_JSON).read_text())
    assert prov["code"] == {"repo": str(store2 / "code"), "origin_repo": str(recorded["repo"])}
    # run.json itself is untouched (one writer)
    assert (store2 / "experiments" / "code" / test / "run.json").read_bytes() == \
        (store / "experiments" / "code" / test / "run.json").read_bytes()

    # checkout: the bundled code, not the repository's later code
    _run([sys.executable, "-m", "lumo_hydra", "checkout", test, str(tmp_path / "wt")], tmp_path, env2)
    assert (tmp_path / "wt" / "model.py").read_text() == "SCALE = 1.5\n"

    # rerun on the second machine reproduces the original result from the bundled code
    _run([sys.executable, "-m", "lumo_hydra", "rerun", test], tmp_path, env2)
    runs = json.loads(_run([sys.executable, "-m", "lumo_hydra", "list", "--json"], tmp_path, env2).stdout)
    again = [r for r in runs if r["test_name"] != test]
    assert len(again) == 1 and again[0]["metrics.acc"] == pytest.approx(0.75)
    diff = json.loads(_run([sys.executable, "-m", "lumo_hydra", "diff", test, again[0]["test_name"], "--json"],
                           tmp_path, env2).stdout)
    assert diff["params"] == {} and diff["metrics"]["acc"] == [0.75, 0.75]

    # a third machine, from the second one's store: the code travels again (bundled from <store2>/code)
    res3 = pack_runs(store2, [test], tmp_path / "again.tar.gz")
    assert res3.bundles and res3.bundles[0]["repo"] == str(recorded["repo"])  # the repository run.json names
    store3 = tmp_path / "m3" / "store"
    got = unpack(res3.path, store3)
    assert got.added == [f"code/{test}"] and got.code[0]["repo"] == str(store3 / "code")
    rec3 = read_record(store3 / "experiments" / "code" / test)
    assert rec3["git"]["repo"] == str(store3 / "code") and rec3["paths"]["info_dir"].startswith(str(store3))
    assert json.loads((store3 / "experiments" / "code" / test / UNPACKED_JSON).read_text())["archive"] == str(res3.path)


def test_unpack_into_the_runs_own_repository_or_a_given_one(tmp_path: Path, recorded: dict) -> None:
    test, store, repo = str(recorded["test"]), Path(recorded["store"]), Path(recorded["repo"])  # type: ignore[arg-type]
    out = pack(store, [test], tmp_path / "run.tar.gz")
    # the repository named in the record exists here: the refs are already there, nothing fetched
    same = unpack(out, tmp_path / "s2")
    assert same.code == [{"repo": str(repo), "origin_repo": str(repo), "refs": 1, "fetched": 0}]
    assert read_record(tmp_path / "s2" / "experiments" / "code" / test)["git"]["repo"] == str(repo)
    # --repo: a new repository (made with git init) gets the refs; the record names it
    other = tmp_path / "elsewhere" / "repo"
    res = unpack(out, tmp_path / "s3", repo=other)
    assert res.code[0]["repo"] == str(other) and res.code[0]["fetched"] == 1
    rec = read_record(tmp_path / "s3" / "experiments" / "code" / test)
    assert rec["git"]["repo"] == str(other) and rec["moved"]["repo"] == [str(repo), str(other)]
    assert git(other, "cat-file", "-t", rec["git"]["commit"]).strip() == "commit"
    # records only: no bundle
    assert pack_runs(store, [test], tmp_path / "nocode.tar.gz", code=False).bundles == []


def test_a_ref_already_there_at_another_commit_is_an_error(tmp_path: Path, recorded: dict) -> None:
    test, store = str(recorded["test"]), Path(recorded["store"])  # type: ignore[arg-type]
    out = pack(store, [test], tmp_path / "run.tar.gz")
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    (other / "f").write_text("x")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "x")
    ref = read_record(store / "experiments" / "code" / test)["git"]["ref"]
    git(other, "update-ref", ref, "HEAD")
    with pytest.raises(ValueError, match="points at"):
        unpack(out, tmp_path / "s2", repo=other)
    assert not (tmp_path / "s2" / "experiments").exists()


def test_a_manifest_naming_a_branch_is_refused(tmp_path: Path, recorded: dict) -> None:
    test, store = str(recorded["test"]), Path(recorded["store"])  # type: ignore[arg-type]
    out = pack(store, [test], tmp_path / "run.tar.gz")
    with tarfile.open(out) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    doc = json.loads(members[0][1])
    commit = next(iter(doc["code"][0]["refs"].values()))
    doc["code"][0]["refs"] = {"refs/heads/main": commit}
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        data = json.dumps(doc).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for m, d in members[1:]:
            tar.addfile(m, io.BytesIO(d))
    target = tmp_path / "target-repo"
    with pytest.raises(ArchiveError, match="only refs/lumo/snapshots"):
        unpack(evil, tmp_path / "s2", repo=target)
    assert not (tmp_path / "s2").exists() and not target.exists()


def test_pack_a_sweep_id_packs_its_jobs(tmp_path: Path, lumo_home: Path) -> None:
    app = ("import lumo_hydra\n\n@lumo_hydra.main(version_base='1.3', config_path=None, config_name='config')\n"
           "def main(cfg, exp):\n    return 0.1 * cfg.x\n\nif __name__ == '__main__':\n"
           "    from hydra.core.config_store import ConfigStore\n"
           "    ConfigStore.instance().store(name='config', node={'x': 1})\n    main()\n")
    (tmp_path / "app.py").write_text(app)
    r = subprocess.run([sys.executable, "app.py", "-m", "x=1,2,3", f"hydra.sweep.dir={tmp_path}/multirun"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    sid = next(p.name for p in (lumo_home / "sweeps").iterdir())
    res = pack_runs(lumo_home, [sid[:6]], tmp_path / "sweep.tar.gz", code=False)  # a prefix of the sweep id
    assert len(res.runs) == 3
    got = unpack(res.path, tmp_path / "s2")
    assert len(got.added) == 3 and (tmp_path / "s2" / "sweeps" / sid / "sweep.json").is_file()


def test_redact_and_max_blob_size(tmp_path: Path, lumo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    fake_home = tmp_path / "home-of-someone"
    fake_home.mkdir()
    monkeypatch.setenv("HOME", str(fake_home))
    script = ("import os, socket\nfrom lumo_hydra import SimpleExperiment\n"
              "exp = SimpleExperiment('red', heartbeat_interval=0)\nexp.start()\n"
              "exp.dump_params({'data': os.path.expanduser('~/data/x.csv'), 'host': socket.gethostname()})\n"
              "open(exp.mk_bpath('big.bin'), 'wb').write(b'x' * 5000)\n"
              "open(exp.mk_bpath('small.bin'), 'wb').write(b'y' * 10)\nexp.end()\nprint(exp.test_name)\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "HOME": str(fake_home)})
    assert r.returncode == 0, r.stderr
    test = r.stdout.split()[-1]
    res = pack_runs(lumo_home, [test], tmp_path / "red.tar.gz", blobs=True, max_blob_size="1K", redact=True,
                    code=False)
    assert list(res.skipped) == [f"blob/red/{test}/big.bin"]
    with tarfile.open(res.path) as tar:
        names = tar.getnames()
        text = tar.extractfile(f"experiments/red/{test}/run.json").read().decode()  # type: ignore[union-attr]
    assert f"blob/red/{test}/small.bin" in names and f"blob/red/{test}/big.bin" not in names
    assert str(fake_home) not in text and "~/data/x.csv" in text
    assert socket.gethostname() not in text and "<host>" in text
    got = unpack(res.path, tmp_path / "s2")  # a redacted pack unpacks (checksums are of the redacted text)
    assert got.added == [f"red/{test}"]
