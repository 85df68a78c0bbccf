"""The dependency lock: content, caching and invalidation, no pkg_resources, write-once lock files."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lumo_hydra.errors import LumoValueError
from lumo_hydra.record import lockfile
from lumo_hydra.record.lockfile import LockNotFoundError, collect_lock, read_lock, write_lock


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("LUMO_CACHE_DIR", str(d))
    lockfile._memo.clear()
    yield d
    lockfile._memo.clear()


def _norm(n: str) -> str:
    return re.sub(r"[-_.]+", "-", n).lower()


def _dist(folder: Path, dirname: str, name: str | None = None, version: str | None = None) -> None:
    d = folder / dirname
    d.mkdir(parents=True)
    meta = "Metadata-Version: 2.1\n"
    if name:
        meta += f"Name: {name}\n"
    if version:
        meta += f"Version: {version}\n"
    (d / ("PKG-INFO" if dirname.endswith(".egg-info") else "METADATA")).write_text(meta + "\nlong description\n")


def test_content_matches_importlib_metadata(fresh_cache: Path) -> None:
    import importlib.metadata as md
    import platform

    lock = collect_lock()
    assert lock["python"] == platform.python_version()
    assert lock["platform"] == platform.platform()
    assert lock["executable"] == sys.executable
    expected: dict[str, str] = {}
    for d in md.distributions():
        expected.setdefault(_norm(d.metadata["Name"]), d.version)
    assert lock["packages"] == expected
    for name in ("hydra-core", "omegaconf", "pytest", "pyyaml"):
        assert lock["packages"][name] == md.version(name)
    json.dumps(lock)


def test_folder_names_and_metadata_fallbacks(fresh_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(first, "Foo_Bar-2.0.dist-info", "Foo_Bar", "2.0")
    _dist(first, "noversion.dist-info", "No.Version-Pkg", "4.5.6")  # version only in METADATA
    _dist(first, "Legacy_Pkg.egg-info", "Legacy_Pkg", "0.3")  # `setup.py develop` style
    (first / "old_thing-1.5-py3.11.egg-info").write_text("Metadata-Version: 1.0\nName: old-thing\nVersion: 1.5\n")
    _dist(first, "broken.dist-info")  # no Name: ignored
    _dist(second, "foo_bar-1.0.dist-info", "foo-bar", "1.0")  # shadowed: the first on sys.path wins
    _dist(second, "only_second-7.dist-info", "only-second", "7")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    pk = collect_lock()["packages"]
    assert pk["foo-bar"] == "2.0" and pk["no-version-pkg"] == "4.5.6" and pk["legacy-pkg"] == "0.3"
    assert pk["old-thing"] == "1.5" and pk["only-second"] == "7" and "broken" not in pk
    import importlib.metadata as md

    expected: dict[str, str] = {}
    for d in md.distributions(path=[str(first), str(second)]):
        if d.metadata["Name"]:
            expected.setdefault(_norm(d.metadata["Name"]), d.version)
    assert {k: pk[k] for k in expected} == expected
    assert list(pk) == sorted(pk)


def test_cache_is_used_and_invalidated(fresh_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _dist(site, "alpha-1.0.dist-info", "alpha", "1.0")
    monkeypatch.syspath_prepend(str(site))
    lock = collect_lock()
    assert lock["packages"]["alpha"] == "1.0"
    files = list((fresh_cache / "locks").glob("*.json"))
    assert len(files) == 1
    # prove the next call is served from the cache file: tamper with it
    data = json.loads(files[0].read_text())
    data["lock"]["packages"]["from-the-cache"] = "9"
    files[0].write_text(json.dumps(data))
    lockfile._memo.clear()
    assert collect_lock()["packages"].get("from-the-cache") == "9"
    assert "from-the-cache" in collect_lock()["packages"]  # in-process memo, same answer
    assert "from-the-cache" not in collect_lock(use_cache=False)["packages"]
    # installing a package into a site folder changes its mtime: the cache is invalidated
    time.sleep(0.01)
    _dist(site, "beta-2.0.dist-info", "beta", "2.0")
    pk = collect_lock()["packages"]
    assert pk["beta"] == "2.0" and "from-the-cache" not in pk
    # touching a site folder invalidates too (file cache and memo)
    data = json.loads(files[0].read_text())
    data["lock"]["packages"]["from-the-cache"] = "9"
    files[0].write_text(json.dumps(data))
    lockfile._memo.clear()
    assert "from-the-cache" in collect_lock()["packages"]
    st = site.stat()
    os.utime(site, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert "from-the-cache" not in collect_lock()["packages"]
    # a new folder on sys.path is another environment key
    other = tmp_path / "other"
    _dist(other, "gamma-3.dist-info", "gamma", "3")
    monkeypatch.syspath_prepend(str(other))
    assert collect_lock()["packages"]["gamma"] == "3"
    assert len(list((fresh_cache / "locks").glob("*.json"))) == 2


def test_cached_call_is_much_cheaper(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cold, cached = [], []
    for i in range(5):
        monkeypatch.setenv("LUMO_CACHE_DIR", str(tmp_path / f"c{i}"))
        lockfile._memo.clear()
        t = time.perf_counter()
        collect_lock()
        cold.append(time.perf_counter() - t)
        lockfile._memo.clear()
        t = time.perf_counter()
        collect_lock()  # from the cache file
        cached.append(time.perf_counter() - t)
    assert min(cached) * 2 < min(cold), (cold, cached)


def test_unwritable_cache_still_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LUMO_CACHE_DIR", str(blocker / "cache"))
    lockfile._memo.clear()
    assert "pytest" in collect_lock()["packages"]
    lockfile._memo.clear()


def test_fresh_process_imports_nothing_heavy(tmp_path: Path) -> None:
    code = ("import sys, json\nfrom lumo_hydra.record.lockfile import collect_lock\nlock = collect_lock()\n"
            "print(json.dumps({'mods': [m for m in ('pkg_resources', 'pip', 'torch', 'importlib.metadata', 'email')"
            " if m in sys.modules], 'n': len(lock['packages']), 'cuda': 'cuda' in lock}))\n")
    env = dict(os.environ, LUMO_CACHE_DIR=str(tmp_path / "c"))
    for _ in range(2):  # cold, then cached
        out = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                        check=True).stdout)
        assert out["mods"] == [] and out["n"] > 20 and out["cuda"] is False


def test_cuda_facts_only_when_torch_is_imported(tmp_path: Path) -> None:
    code = ("import json, torch\nfrom lumo_hydra.record.lockfile import collect_lock, write_lock\n"
            "lock = collect_lock()\nprint(json.dumps([lock.get('cuda'), write_lock(sys.argv[1], lock)]))\n")
    code = "import sys\n" + code
    env = dict(os.environ, LUMO_CACHE_DIR=str(tmp_path / "c"))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "store")], env=env, capture_output=True,
                         text=True, check=True).stdout
    cuda, summary = json.loads(out)
    import importlib.metadata as md

    assert cuda["torch"] == md.version("torch") and cuda["available"] in (True, False)
    assert "cuda" in cuda and summary["cuda"] == cuda


def test_write_lock_once_and_read_back(fresh_cache: Path, tmp_path: Path) -> None:
    root = tmp_path / "store"
    lock = collect_lock()
    s1 = write_lock(root, lock)
    # "cuda" is there only when torch was imported in this process (other tests may have imported it)
    assert set(s1) == {"digest", "file", "python", "platform", "packages"} | ({"cuda"} if "cuda" in lock else set())
    assert s1["file"] == f"locks/{s1['digest']}.json" and s1["packages"] == len(lock["packages"])
    path = root / s1["file"]
    raw = path.read_bytes()
    assert hashlib.sha256(raw).hexdigest()[:16] == s1["digest"]
    mtime = path.stat().st_mtime_ns
    time.sleep(0.01)
    s2 = write_lock(root, collect_lock())
    assert s2 == s1 and path.stat().st_mtime_ns == mtime and path.read_bytes() == raw
    assert os.listdir(root / "locks") == [path.name]  # no temp files left
    assert read_lock(root, s1["digest"]) == lock
    assert read_lock(str(root), s1["file"]) == lock
    other = dict(lock, packages=dict(lock["packages"], extra="1"))
    s3 = write_lock(root, other)
    assert s3["digest"] != s1["digest"] and s3["packages"] == s1["packages"] + 1
    assert read_lock(root, s3["digest"])["packages"]["extra"] == "1"


def test_read_lock_errors(tmp_path: Path) -> None:
    with pytest.raises(LumoValueError, match="invalid lock digest '../etc'"):
        read_lock(tmp_path, "../etc")
    with pytest.raises(LockNotFoundError, match="0123456789abcdef") as ei:
        read_lock(tmp_path, "0123456789abcdef")
    assert isinstance(ei.value, ValueError)
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "00000000000000aa.json").write_text("{half")
    with pytest.raises(LumoValueError, match="corrupt"):
        read_lock(tmp_path, "00000000000000aa")
    with pytest.raises(LumoValueError, match="invalid lock"):
        write_lock(tmp_path, ["not", "a", "dict"])  # type: ignore[arg-type]


def test_concurrent_write_lock(fresh_cache: Path, tmp_path: Path) -> None:
    root = tmp_path / "store"
    code = ("import sys, json\nfrom lumo_hydra.record.lockfile import collect_lock, write_lock\n"
            "print(json.dumps(write_lock(sys.argv[1], collect_lock())))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({o["digest"] for o in outs}) == 1
    assert os.listdir(root / "locks") == [f"{outs[0]['digest']}.json"]
    json.loads((root / "locks" / f"{outs[0]['digest']}.json").read_text())


def test_relative_sys_path_entries_follow_the_working_directory(fresh_cache: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative sys.path entry means another folder after a chdir (Hydra jobs may chdir): the lock follows."""
    _dist(tmp_path / "a" / "rel", "in_a-1.0.dist-info", "in-a", "1.0")
    _dist(tmp_path / "b" / "rel", "in_b-2.0.dist-info", "in-b", "2.0")
    monkeypatch.setattr(sys, "path", [*sys.path, "rel"])
    monkeypatch.chdir(tmp_path / "a")
    first = collect_lock()["packages"]
    monkeypatch.chdir(tmp_path / "b")
    second = collect_lock()["packages"]
    assert first.get("in-a") == "1.0" and "in-b" not in first
    assert second.get("in-b") == "2.0" and "in-a" not in second
