"""Untracked files in the snapshot (issue 18): the scan asks git for untracked folders as one ``dir/``
record, so that git's untracked cache (kept in the private index) can answer for unchanged folders; the
snapshot must still hold exactly what ``git add -A`` would add, in new folders, nested ones, beside
ignored files and embedded repositories, and see files added later to a folder the cache already knows."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import git

from lumo_hydra.record.gitsnap import snapshot


def _files(repo: Path, commit: str) -> set[str]:
    return set(git(repo, "ls-tree", "-r", "--name-only", commit).split())


def _add_all_files(repo: Path, tmp_path: Path) -> set[str]:
    """What ``git add -A`` on a copy of the user's index records (the reference)."""
    idx = tmp_path / "ref-index"
    idx.write_bytes((repo / ".git" / "index").read_bytes())
    env = {**os.environ, "GIT_INDEX_FILE": str(idx)}
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()
    return _files(repo, tree)


def test_new_folders_nested_ignored_and_embedded_repositories(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    snapshot(git_repo, store=store)  # a warm private index with its untracked cache
    (git_repo / ".gitignore").write_text("*.log\n")
    for rel in ("new/deep/er/f.py", "new/g.py", "new/h.log", "only_ignored/x.log", "data/keep.txt"):
        (git_repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (git_repo / rel).write_text(rel)
    emb = git_repo / "vendor" / "emb"
    emb.mkdir(parents=True)
    git(emb, "init", "-q")
    (emb / "q.py").write_text("q\n")
    git(emb, "add", "q.py")
    git(emb, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "-m", "i")
    res = snapshot(git_repo, store=store)
    assert res["commit"], res
    files = _files(git_repo, res["commit"])
    assert {"new/deep/er/f.py", "new/g.py", "data/keep.txt", ".gitignore"} <= files
    assert not {"new/h.log", "only_ignored/x.log"} & files
    assert "vendor/emb" in files  # a gitlink, as `git add -A` records it
    assert files == _add_all_files(git_repo, tmp_path)


def test_a_file_added_later_to_a_cached_folder_is_seen(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (git_repo / "notes").mkdir()
    (git_repo / "notes" / "a.txt").write_text("a\n")
    first = snapshot(git_repo, store=store)
    second = snapshot(git_repo, store=store)  # the cache knows notes/ now
    assert "notes/a.txt" in _files(git_repo, second["commit"]) and second["commit"] == first["commit"]
    (git_repo / "notes" / "b.txt").write_text("b\n")
    (git_repo / "notes" / "a.txt").unlink()
    third = snapshot(git_repo, store=store)
    files = _files(git_repo, third["commit"])
    assert "notes/b.txt" in files and "notes/a.txt" not in files
    (git_repo / "notes" / "sub").mkdir()
    (git_repo / "notes" / "sub" / "c.txt").write_text("c\n")
    assert "notes/sub/c.txt" in _files(git_repo, snapshot(git_repo, store=store)["commit"])


def test_secret_looking_and_big_files_in_a_new_folder_are_left_out(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / "cfg").mkdir()
    (git_repo / "cfg" / "ok.yaml").write_text("a: 1\n")
    (git_repo / "cfg" / "id_rsa").write_text("secret\n")
    (git_repo / "cfg" / "big.bin").write_bytes(b"x" * 2000)
    res = snapshot(git_repo, store=tmp_path / "store", max_file_size=1000)
    files = _files(git_repo, res["commit"])
    assert "cfg/ok.yaml" in files and "cfg/id_rsa" not in files and "cfg/big.bin" not in files
    assert {s["path"] for s in res["skipped"]} >= {"cfg/id_rsa", "cfg/big.bin"}
