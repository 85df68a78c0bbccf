"""The snapshot commit and its ref written from Python (issue 18): valid objects in sha1 and sha256
repositories, git's answer for a ref that exists, and git itself in every repository the Python writer
does not vouch for."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import git

from lumo_hydra.record import gitwrite
from lumo_hydra.record.gitsnap import snapshot


def _repo(tmp_path: Path, fmt: str) -> Path:
    repo = tmp_path / f"repo-{fmt}"
    repo.mkdir()
    git(repo, "init", "-q", f"--object-format={fmt}")
    (repo / "train.py").write_text("x = 0\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def _snap(repo: Path, log: Path, **kw: object) -> tuple[dict, list[str]]:
    log.write_text("")
    res = snapshot(repo, **kw)  # type: ignore[arg-type]
    return res, log.read_text().split()


@pytest.mark.parametrize("fmt", ["sha1", "sha256"])
def test_python_written_commits_are_valid_git_objects(tmp_path: Path, counted: Path, fmt: str) -> None:
    repo = _repo(tmp_path, fmt)
    head = git(repo, "rev-parse", "HEAD").strip()
    store = tmp_path / "store"
    (repo / "train.py").write_text("x = 1\n")
    first, calls = _snap(repo, counted, store=store, owner="runs/a")
    assert "commit-tree" in calls  # the first one learns the identity from git
    (repo / "train.py").write_text("x = 2\n")
    (repo / "new.txt").write_text("new\n")
    res, calls = _snap(repo, counted, store=store, owner="runs/b")
    assert res["commit"] and not res["reused"] and "commit-tree" not in calls and "update-ref" not in calls, calls
    sha = res["commit"]
    assert len(sha) == (40 if fmt == "sha1" else 64)
    git(repo, "fsck", "--strict", "--no-dangling", "--no-progress")
    shown = git(repo, "cat-file", "-p", sha)
    assert f"parent {head}\n" in shown and "author lumo test <test@example.com> " in shown
    assert f"Lumo-Store: {res['store_id']}\nLumo-Owner: runs/b\n" in shown
    assert git(repo, "show", f"{sha}:new.txt") == "new\n"
    # the ref, as git reads it; the log of the ref; the store finds it by its trailer
    assert git(repo, "rev-parse", res["ref"]).strip() == sha
    assert git(repo, "log", "--format=%H", res["ref"]).split() == [sha, head]
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/lumo/").split() == sorted([first["ref"], res["ref"]])
    # the same bytes git writes: git's commit-tree with the same dates gives the same id
    when = git(repo, "log", "-1", "--format=%ad", "--date=raw", sha).strip()
    env = dict(os.environ, GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    msg = git(repo, "log", "-1", "--format=%B", sha)
    again = subprocess.run(["git", "commit-tree", "--no-gpg-sign", "-p", head, git(repo, "rev-parse", f"{sha}^{{tree}}").strip(),
                            "-m", msg.rstrip("\n")], cwd=repo, env=env, check=True, capture_output=True, text=True)
    assert again.stdout.strip() == sha
    # git's own index, HEAD and branches are untouched
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "status", "--porcelain").split() == ["M", "train.py", "??", "new.txt"]
    # an unchanged tree reuses the snapshot: its ref read from Python
    again_res, calls = _snap(repo, counted, store=store, owner="runs/c")
    assert again_res["reused"] and again_res["commit"] == sha and calls == ["status"], calls  # tree known: no write-tree


def test_a_ref_that_exists_fails_as_with_git(git_repo: Path, counted: Path) -> None:
    (git_repo / "train.py").write_text("x = 1\n")
    first = snapshot(git_repo, name="fixed")
    assert first["commit"]
    (git_repo / "train.py").write_text("x = 2\n")
    second, _ = _snap(git_repo, counted, name="warm")
    assert second["commit"]
    (git_repo / "train.py").write_text("x = 3\n")
    res, calls = _snap(git_repo, counted, name="fixed")  # Python refuses, then git refuses
    assert res["commit"] is None and "snapshot failed" in res["msg"] and "update-ref" in calls, res
    assert git(git_repo, "rev-parse", "refs/lumo/snapshots/fixed").strip() == first["commit"]
    git(git_repo, "pack-refs", "--all")  # a packed ref is found too
    assert not (git_repo / ".git" / "refs" / "lumo" / "snapshots" / "warm").exists()
    res, _ = _snap(git_repo, counted, name="warm")
    assert res["commit"] is None and git(git_repo, "rev-parse", "refs/lumo/snapshots/warm").strip() == second["commit"]
    with pytest.raises(FileExistsError):
        gitwrite.create_ref(str(git_repo / ".git"), "refs/lumo/snapshots/warm/below", second["commit"])
    assert not list((git_repo / ".git" / "refs").rglob("*.lock"))


@pytest.mark.parametrize("setting", [("core.sharedRepository", "group"), ("core.logAllRefUpdates", "always"),
                                     ("extensions.partialClone", "origin")])
def test_git_writes_the_commit_when_the_repository_is_unusual(git_repo: Path, counted: Path,
                                                              setting: tuple[str, str]) -> None:
    if setting[0].startswith("extensions."):
        git(git_repo, "config", "core.repositoryFormatVersion", "1")
    git(git_repo, "config", *setting)
    for i in range(2):
        (git_repo / "train.py").write_text(f"x = {i + 1}\n")
        res, calls = _snap(git_repo, counted)
        assert res["commit"] and "commit-tree" in calls and "update-ref" in calls, (res, calls)
    if setting[0] == "core.logAllRefUpdates":
        assert (git_repo / ".git" / "logs" / res["ref"]).exists()


def test_the_identity_follows_the_git_config(git_repo: Path, tmp_path: Path, counted: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "gitconfig"
    cfg.write_text("[user]\n\tname = Ada\n\temail = ada@example.org\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    who = "%an <%ae>|%cn <%ce>"
    for i in range(2):
        (git_repo / "train.py").write_text(f"x = {i + 1}\n")
        res = snapshot(git_repo)
        assert git(git_repo, "log", "-1", f"--format={who}", res["commit"]).strip() == \
            "Ada <ada@example.org>|Ada <ada@example.org>"
    cfg.write_text("[user]\n\tname = Grace\n\temail = grace@example.org\n")
    (git_repo / "train.py").write_text("x = 9\n")
    res, calls = _snap(git_repo, counted)
    assert "commit-tree" in calls
    assert git(git_repo, "log", "-1", "--format=%an", res["commit"]).strip() == "Grace"
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Env Name")
    (git_repo / "train.py").write_text("x = 10\n")
    res, calls = _snap(git_repo, counted)
    assert "commit-tree" in calls and git(git_repo, "log", "-1", "--format=%an|%cn", res["commit"]).strip() == \
        "Grace|Env Name"
    cfg.write_text("[include]\n\tpath = other\n[user]\n\tname = Grace\n\temail = grace@example.org\n")
    for i in range(2):  # an include is not followed here: git writes every commit
        (git_repo / "train.py").write_text(f"x = {i + 20}\n")
        res, calls = _snap(git_repo, counted)
        assert res["commit"] and "commit-tree" in calls


def test_config_reader_gives_up_on_what_it_does_not_read() -> None:
    assert gitwrite.config_values("[core]\n\tbare = false\n[remote \"o\"]\n\turl = x # c\n") == \
        {"core.bare": ["false"], "remote.o.url": ["x"]}
    assert gitwrite.config_values("[alias]\n\tlg = \"log ; x\" # c\n\tq = a\\\"b\n") == \
        {"alias.lg": ["log ; x"], "alias.q": ['a"b']}
    assert gitwrite.config_values("[core]\n\tname = \"open\n") is None
    assert gitwrite.config_values("[core] bare = false\n") is None
    assert gitwrite.config_values("[core]\n\tx = a \\\n b\n") is None


def test_concurrent_python_written_snapshots(git_repo: Path) -> None:
    import json
    import sys

    (git_repo / "train.py").write_text("x = 1\n")
    assert snapshot(git_repo)["commit"]  # learns the identity
    (git_repo / "train.py").write_text("x = 2\n")
    code = ("import json,sys\nfrom lumo_hydra.record.gitsnap import snapshot\n"
            "print(json.dumps(snapshot(sys.argv[1])))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(git_repo)], stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(r["commit"] for r in results), [r["msg"] for r in results]
    for r in results:
        assert git(git_repo, "rev-parse", r["ref"]).strip() == r["commit"]
        assert git(git_repo, "show", f"{r['commit']}:train.py") == "x = 2\n"
    git(git_repo, "fsck", "--strict", "--no-dangling", "--no-progress")
    assert not list((git_repo / ".git").rglob("*.lock")) and not list((git_repo / ".git" / "objects").rglob("tmp_obj_*"))


def test_flushed_to_disk_as_git_would() -> None:
    f = gitwrite.fsync_components
    assert not {"loose-object", "reference"} & f({})  # git's default flushes neither
    assert {"loose-object", "reference"} <= f({"core.fsync": ["committed"]})
    assert f({"core.fsync": ["all,-reference"]}) >= {"loose-object"} and "reference" not in f({"core.fsync": ["all,-reference"]})
    assert "loose-object" in f({"core.fsyncobjectfiles": ["true"]})
    assert f({"core.fsync": ["none"]}) == set()


def test_fsync_setting_reaches_the_writer(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    for i in range(2):
        (git_repo / "train.py").write_text(f"x = {i + 1}\n")
        assert snapshot(git_repo)["commit"]
    assert synced == []  # the second one was written from Python, unflushed like git's own
    git(git_repo, "config", "core.fsync", "committed")
    for i in range(2):  # a changed config: git learns the identity again, then Python writes
        (git_repo / "train.py").write_text(f"x = {i + 5}\n")
        assert snapshot(git_repo)["commit"]
    assert len(synced) == 2  # the object, then the ref
