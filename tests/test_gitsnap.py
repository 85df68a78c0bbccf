"""The git snapshot with real git repositories: the user's state is never touched, the tree is complete."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import git

from lumo_hydra.errors import LumoValueError
from lumo_hydra.record.gitsnap import (
    GitError,
    delete_ref,
    diff,
    find_repo,
    list_refs,
    remove_worktree,
    snapshot,
    worktree,
)


def _show(repo: Path, commit: str, path: str) -> str:
    return git(repo, "show", f"{commit}:{path}")


def _tree_paths(repo: Path, commit: str) -> dict[str, str]:
    out = subprocess.run(["git", "ls-tree", "-r", "-z", commit], cwd=repo, check=True, capture_output=True).stdout
    res = {}
    for rec in out.split(b"\0"):
        if rec:
            meta, _, p = rec.partition(b"\t")
            res[os.fsdecode(p)] = meta.decode()
    return res


def _user_state(repo: Path) -> dict:
    idx = repo / ".git" / "index"
    st = idx.stat()
    state = {"index": idx.read_bytes(), "index_mtime": st.st_mtime_ns}  # read before anything else
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")

    def run(*a: str) -> bytes:
        return subprocess.run(["git", *a], cwd=repo, env=env, check=True, capture_output=True).stdout

    state["head"] = run("rev-parse", "HEAD")
    state["symbolic"] = run("symbolic-ref", "-q", "HEAD")
    state["branches"] = run("for-each-ref", "refs/heads", "refs/tags", "refs/stash", "refs/remotes")
    state["stash"] = run("stash", "list")
    state["status"] = run("status", "--porcelain", "-uall")
    state["files"] = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*")
                      if p.is_file() and ".git" not in p.relative_to(repo).parts}
    assert idx.read_bytes() == state["index"]
    return state


def _dirty_repo(repo: Path) -> None:
    """Staged change, unstaged edit, untracked file, a stash entry, a second branch."""
    (repo / "lib.py").write_text("A = 1\n")
    git(repo, "add", "lib.py")
    git(repo, "commit", "-q", "-m", "lib")
    git(repo, "branch", "feature")
    (repo / "lib.py").write_text("A = 2\n")
    git(repo, "stash", "-q")
    (repo / "lib.py").write_text("A = 3  # staged\n")
    git(repo, "add", "lib.py")
    (repo / "lib.py").write_text("A = 4  # unstaged on top of staged\n")
    (repo / "train.py").write_text("print('edited, unstaged')\n")
    (repo / "new_dir").mkdir()
    (repo / "new_dir" / "new.py").write_text("NEW = True\n")
    (repo / "run.log").write_text("ignored\n")


def test_user_state_identical_after_50_snapshots(git_repo: Path) -> None:
    _dirty_repo(git_repo)
    before = _user_state(git_repo)
    refs, commits = set(), set()
    for i in range(50):
        r = snapshot(git_repo)
        assert r["commit"], r["msg"]
        refs.add(r["ref"])
        commits.add(r["commit"])
        if i == 25:  # the user keeps working between snapshots
            assert _user_state(git_repo) == before
    assert len(refs) == 50
    after = _user_state(git_repo)
    assert after == before
    # the snapshots live only under their own namespace
    assert len(git(git_repo, "for-each-ref", "refs/lumo/snapshots").splitlines()) == 50
    # and contain the working tree (unstaged on top of staged), not the index or the stash
    assert _show(git_repo, r["commit"], "lib.py") == "A = 4  # unstaged on top of staged\n"
    assert _show(git_repo, r["commit"], "new_dir/new.py") == "NEW = True\n"
    assert git(git_repo, "rev-parse", f"{r['commit']}^").strip() == before["head"].decode().strip()


def test_tree_contents_ignored_and_oversized(git_repo: Path) -> None:
    big_tracked = git_repo / "data.bin"
    big_tracked.write_bytes(b"small\n")
    (git_repo / "gone.py").write_text("x\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "data")
    head = git(git_repo, "rev-parse", "HEAD").strip()

    (git_repo / "train.py").write_text("print('unstaged edit')\n")
    (git_repo / "pkg" / "deep").mkdir(parents=True)
    (git_repo / "pkg" / "deep" / "mod.py").write_text("NEW = 1\n")
    (git_repo / "debug.log").write_text("ignored by .gitignore\n")
    (git_repo / "gone.py").unlink()
    (git_repo / "huge new.bin").write_bytes(b"\0" * 2048)
    big_tracked.write_bytes(b"1" * 4096)  # a tracked file that grew over the limit
    (git_repo / "ok.bin").write_bytes(b"2" * 1000)

    r = snapshot(git_repo, max_file_size=1024)
    assert r["commit"] and r["dirty"] is True and r["base"] == head and r["branch"] == "main"
    assert r["repo"] == str(git_repo) and r["ref"].startswith("refs/lumo/snapshots/")
    assert sorted(r["skipped"], key=lambda s: s["path"]) == [
        {"path": "data.bin", "size": 4096}, {"path": "huge new.bin", "size": 2048}]
    paths = _tree_paths(git_repo, r["commit"])
    assert _show(git_repo, r["commit"], "train.py") == "print('unstaged edit')\n"
    assert _show(git_repo, r["commit"], "pkg/deep/mod.py") == "NEW = 1\n"
    assert "debug.log" not in paths and "gone.py" not in paths and "huge new.bin" not in paths
    assert _show(git_repo, r["commit"], "data.bin") == "small\n"  # the HEAD version stays
    assert "ok.bin" in paths
    json.dumps(r)
    assert pickle.loads(pickle.dumps(r)) == r

    # the warm index must not remember skipped content: grow under the limit again, then over it
    big_tracked.write_bytes(b"3" * 100)
    r2 = snapshot(git_repo, max_file_size=1024)
    assert _show(git_repo, r2["commit"], "data.bin") == "3" * 100
    big_tracked.write_bytes(b"4" * 5000)
    r3 = snapshot(git_repo, max_file_size=1024)
    assert _show(git_repo, r3["commit"], "data.bin") == "small\n"
    assert {"path": "data.bin", "size": 5000} in r3["skipped"]


def test_clean_repo_is_not_dirty(git_repo: Path) -> None:
    r = snapshot(git_repo / "train.py")  # a file inside the repository works too
    assert r["commit"] and r["dirty"] is False and r["skipped"] == []
    assert git(git_repo, "rev-parse", f"{r['commit']}^{{tree}}") == git(git_repo, "rev-parse", "HEAD^{tree}")
    (git_repo / "new.py").write_text("x = 1\n")
    assert snapshot(git_repo)["dirty"] is True
    (git_repo / "new.py").unlink()
    assert snapshot(git_repo)["dirty"] is False


def test_same_size_edit_in_the_same_second_is_seen(git_repo: Path) -> None:
    """Racy-git: the warm index must not trust stale stat data."""
    f = git_repo / "train.py"
    for i in range(10):
        f.write_text(f"v = {i}\n")
        r = snapshot(git_repo)
        assert _show(git_repo, r["commit"], "train.py") == f"v = {i}\n"


def test_no_repository_and_missing_path(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    r = snapshot(d)
    assert r["commit"] is None and r["repo"] is None and "not inside a git repository" in r["msg"]
    assert find_repo(d) is None
    r = snapshot(tmp_path / "missing")
    assert r["commit"] is None and "does not exist" in r["msg"]
    json.dumps(r)


def test_no_commits_yet(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q")
    empty = snapshot(repo)
    assert empty["commit"] and empty["base"] is None and empty["dirty"] is False
    (repo / "a.py").write_text("A = 1\n")
    r = snapshot(repo)
    assert r["commit"] and r["base"] is None and r["branch"] == "main" and r["dirty"] is True
    assert git(repo, "rev-list", "--parents", "-n1", r["commit"]).split() == [r["commit"]]  # no parent
    assert _show(repo, r["commit"], "a.py") == "A = 1\n"
    assert not (repo / ".git" / "index").exists()  # the user's index was never created
    assert git(repo, "status", "--porcelain") == "?? a.py\n"
    (repo / "a.py").unlink()
    assert snapshot(repo)["dirty"] is False


def test_detached_head(git_repo: Path) -> None:
    head = git(git_repo, "rev-parse", "HEAD").strip()
    git(git_repo, "checkout", "-q", "--detach")
    r = snapshot(git_repo)
    assert r["commit"] and r["branch"] is None and r["base"] == head
    assert git(git_repo, "rev-parse", "HEAD").strip() == head


def test_submodule_recorded_as_gitlink(git_repo: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q")
    (lib / "lib.py").write_text("L = 1\n")
    git(lib, "add", "-A")
    git(lib, "commit", "-q", "-m", "lib")
    git(git_repo, "submodule", "add", "-q", str(lib), "ext/lib")
    git(git_repo, "commit", "-q", "-m", "add submodule")
    sub = git_repo / "ext" / "lib"
    (sub / "lib.py").write_text("L = 2\n")
    git(sub, "commit", "-q", "-am", "move the submodule")
    (sub / "untracked_in_sub.py").write_text("no\n")
    sub_head = git(sub, "rev-parse", "HEAD").strip()
    before = _user_state(git_repo)
    r = snapshot(git_repo)
    assert r["commit"], r["msg"]
    paths = _tree_paths(git_repo, r["commit"])
    assert paths["ext/lib"] == f"160000 commit {sub_head}"
    assert not any(p.startswith("ext/lib/") for p in paths)
    assert _user_state(git_repo) == before


def test_embedded_repository_without_commits_is_left_out(git_repo: Path) -> None:
    inner = git_repo / "inner"
    inner.mkdir()
    git(inner, "init", "-q")
    (inner / "x.py").write_text("x\n")
    (git_repo / "other.py").write_text("o\n")
    r = snapshot(git_repo)
    assert r["commit"], r["msg"]
    paths = _tree_paths(git_repo, r["commit"])
    assert "other.py" in paths and not any(p.startswith("inner") for p in paths)


def test_names_with_spaces_non_ascii_and_glob_characters(git_repo: Path) -> None:
    names = ["with space.py", "données/été 2024.py", "日本語.txt", "[abc]*?.py", "tab\tname.py", "-dash.py"]
    for n in names:
        p = git_repo / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"# {n}\n")
    (git_repo / "gros fichier é.bin").write_bytes(b"x" * 3000)
    git(git_repo, "add", "with space.py")
    git(git_repo, "commit", "-q", "-m", "space")
    (git_repo / "with space.py").write_text("# edited\n")
    r = snapshot(git_repo, max_file_size=2000)
    assert r["commit"], r["msg"]
    paths = _tree_paths(git_repo, r["commit"])
    for n in names:
        assert n in paths, n
    assert _show(git_repo, r["commit"], "with space.py") == "# edited\n"
    assert r["skipped"] == [{"path": "gros fichier é.bin", "size": 3000}]


def test_repository_path_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    repo = tmp_path / "mon dépôt"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a")
    (repo / "a.py").write_text("b\n")
    r = snapshot(repo)
    assert r["repo"] == str(repo) and _show(repo, r["commit"], "a.py") == "b\n"
    assert find_repo(repo / "a.py") == str(repo)


def test_git_not_installed(git_repo: Path, tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import json
        from lumo_hydra.record.gitsnap import snapshot, find_repo
        print(json.dumps([snapshot({str(git_repo)!r}), find_repo({str(git_repo)!r})]))
    """)
    empty = tmp_path / "emptybin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    r, top = json.loads(out.stdout)
    assert r["commit"] is None and "no git executable" in r["msg"] and top is None
    assert set(r) == {"commit", "base", "branch", "dirty", "repo", "ref", "skipped", "msg"}


def test_git_not_installed_diff_raises(git_repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GitError, match="no git"):
        diff(git_repo, "HEAD", "HEAD")


def test_concurrent_snapshots_from_8_processes(git_repo: Path) -> None:
    (git_repo / "train.py").write_text("print('dirty')\n")
    (git_repo / "new.py").write_text("N = 1\n")
    before = _user_state(git_repo)
    code = ("import json,sys\nfrom lumo_hydra.record.gitsnap import snapshot\n"
            "print(json.dumps(snapshot(sys.argv[1])))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(git_repo)], stdout=subprocess.PIPE, text=True)
             for _ in range(8)]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        results.append(json.loads(out))
    assert all(r["commit"] for r in results), [r["msg"] for r in results]
    assert len({r["ref"] for r in results}) == 8
    for r in results:
        assert git(git_repo, "rev-parse", r["ref"]).strip() == r["commit"]
        assert _show(git_repo, r["commit"], "new.py") == "N = 1\n"
        assert _show(git_repo, r["commit"], "train.py") == "print('dirty')\n"
    # identical trees: all saw the same working tree
    assert len({git(git_repo, "rev-parse", f"{r['commit']}^{{tree}}") for r in results}) == 1
    assert _user_state(git_repo) == before
    assert not [p for p in (git_repo / ".git" / "lumo").iterdir() if p.name not in ("index", "index.clean", "ident")]  # no temp left


def test_named_ref_is_never_overwritten(git_repo: Path) -> None:
    r1 = snapshot(git_repo, name="sweep-1", message="my message")
    assert r1["ref"] == "refs/lumo/snapshots/sweep-1"
    assert git(git_repo, "log", "-1", "--format=%s", r1["ref"]).strip() == "my message"
    (git_repo / "train.py").write_text("changed\n")
    r2 = snapshot(git_repo, name="sweep-1")
    assert r2["commit"] is None and "snapshot failed" in r2["msg"]
    assert git(git_repo, "rev-parse", "refs/lumo/snapshots/sweep-1").strip() == r1["commit"]
    r3 = snapshot(git_repo, ref_prefix="refs/lumo/sweeps", name="s2")
    assert r3["ref"] == "refs/lumo/sweeps/s2" and r3["commit"]


@pytest.mark.parametrize("kw", [{"name": "has space"}, {"name": "a..b"}, {"name": "x.lock"}, {"name": ""},
                                {"ref_prefix": "lumo/x"}, {"name": "a~1"}])
def test_invalid_ref_names_raise_value_error(git_repo: Path, kw: dict) -> None:
    with pytest.raises(LumoValueError, match="invalid") as ei:
        snapshot(git_repo, **kw)
    assert isinstance(ei.value, ValueError)


def test_no_identity_no_hooks_no_signing(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty_cfg = tmp_path / "empty-gitconfig"
    empty_cfg.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty_cfg))
    for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(k, raising=False)
    marker = tmp_path / "hook-ran"
    hooks = git_repo / ".git" / "hooks"
    for h in ("reference-transaction", "post-commit", "pre-commit", "post-index-change"):
        (hooks / h).write_text(f"#!/bin/sh\necho {h} >> '{marker}'\n")
        (hooks / h).chmod(0o755)
    git(git_repo, "config", "commit.gpgSign", "true")
    git(git_repo, "config", "gpg.program", str(tmp_path / "no-such-gpg"))
    (git_repo / "train.py").write_text("x\n")
    r = snapshot(git_repo)
    assert r["commit"], r["msg"]
    assert git(git_repo, "log", "-1", "--format=%an <%ae>|%cn", r["commit"]).strip() == \
        "lumo-hydra <lumo-hydra@localhost>|lumo-hydra"
    assert not marker.exists()


def test_user_identity_is_used_when_configured(git_repo: Path) -> None:
    r = snapshot(git_repo)
    assert git(git_repo, "log", "-1", "--format=%an", r["commit"]).strip() == "lumo test"


def test_unmerged_index_falls_back(git_repo: Path) -> None:
    git(git_repo, "checkout", "-q", "-b", "other")
    (git_repo / "train.py").write_text("other\n")
    git(git_repo, "commit", "-q", "-am", "other")
    git(git_repo, "checkout", "-q", "main")
    (git_repo / "train.py").write_text("main\n")
    git(git_repo, "commit", "-q", "-am", "main")
    subprocess.run(["git", "merge", "-q", "other"], cwd=git_repo, capture_output=True)
    before = _user_state(git_repo)
    assert "UU train.py" in before["status"].decode()
    r = snapshot(git_repo)
    assert r["commit"], r["msg"]
    assert "<<<<<<<" in _show(git_repo, r["commit"], "train.py")
    assert _user_state(git_repo) == before


def test_diff_and_worktree(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / "train.py").write_text("print('version A')\n")
    a = snapshot(git_repo)["commit"]
    (git_repo / "train.py").write_text("print('version B')\n")
    (git_repo / "extra.py").write_text("E = 1\n")
    b = snapshot(git_repo)["commit"]
    d = diff(git_repo, a, b)
    assert "-print('version A')" in d and "+print('version B')" in d and "+++ b/extra.py" in d
    assert diff(git_repo, a, a) == ""
    with pytest.raises(GitError, match="deadbeef") as ei:
        diff(git_repo, "deadbeef", b)
    assert isinstance(ei.value, ValueError)

    head = git(git_repo, "rev-parse", "HEAD")
    dest = tmp_path / "checkout of run"
    worktree(git_repo, a, dest)
    assert (dest / "train.py").read_text() == "print('version A')\n"
    assert not (dest / "extra.py").exists()
    assert git(dest, "rev-parse", "HEAD").strip() == a
    assert git(git_repo, "rev-parse", "HEAD") == head
    assert (git_repo / "train.py").read_text() == "print('version B')\n"
    with pytest.raises(GitError, match="exists"):
        worktree(git_repo, a, dest)
    with pytest.raises(GitError):
        worktree(git_repo, "0" * 40, tmp_path / "other")


def test_racy_edit_right_after_git_add_is_seen(git_repo: Path) -> None:
    """The private index is seeded from the user's index with its timestamp kept (racy-git safety)."""
    f = git_repo / "train.py"
    for i in range(10):
        warm = git_repo / ".git" / "lumo" / "index"
        if warm.exists():
            warm.unlink()
        f.write_text(f"a = {i}\n")
        git(git_repo, "add", "train.py")
        f.write_text(f"b = {i}\n")  # same size, same second as the index write
        r = snapshot(git_repo)
        assert _show(git_repo, r["commit"], "train.py") == f"b = {i}\n"


def test_private_index_gets_refreshed_stat_data(git_repo: Path) -> None:
    """A file touched without a content change is hashed once, then trusted (no re-hash every time)."""
    f = git_repo / "train.py"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))  # same content, other mtime
    r = snapshot(git_repo)
    assert r["dirty"] is False
    env = dict(os.environ, GIT_INDEX_FILE=str(git_repo / ".git" / "lumo" / "index"))
    debug = subprocess.run(["git", "ls-files", "--debug", "train.py"], cwd=git_repo, env=env, check=True,
                           capture_output=True, text=True).stdout
    mtime = f.stat().st_mtime_ns
    assert f"mtime: {mtime // 1_000_000_000}:" in debug
    # the user's index still has the old stat data: it was not refreshed
    user = git(git_repo, "ls-files", "--debug", "train.py")
    assert f"mtime: {mtime // 1_000_000_000}:" not in user


def test_fallback_tree_with_git_add(git_repo: Path, tmp_path: Path) -> None:
    """The `git add -A` path used when the fast path's write-tree fails honours ignores and exclusions."""
    from lumo_hydra.record import gitsnap

    (git_repo / "big [1].bin").write_bytes(b"x" * 100)
    (git_repo / "new file.py").write_text("n\n")
    (git_repo / "x.log").write_text("ignored\n")
    git_exe = gitsnap._git_exe()
    assert git_exe
    info = {"repo": str(git_repo), "gitdir": str(git_repo / ".git"),
            "base": git(git_repo, "rev-parse", "HEAD").strip()}
    tmp = str(tmp_path / "idx")
    tree = gitsnap._fallback_tree(git_exe, info, gitsnap._env(tmp), tmp, [b"big [1].bin"])
    names = git(git_repo, "ls-tree", "--name-only", tree).split("\n")
    assert "new file.py" in names and "train.py" in names
    assert "big [1].bin" not in names and "x.log" not in names


def test_linked_worktree_and_git_dir_env(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = snapshot(git_repo)["commit"]
    wt = tmp_path / "linked wt"
    worktree(git_repo, base, wt)
    (wt / "train.py").write_text("print('in the linked worktree')\n")
    wt_index = git(wt, "rev-parse", "--git-path", "index").strip()
    before = (wt / wt_index).read_bytes() if not os.path.isabs(wt_index) else Path(wt_index).read_bytes()
    r = snapshot(wt)
    assert r["commit"] and r["repo"] == str(wt) and r["branch"] is None and r["base"] == base
    assert _show(git_repo, r["commit"], "train.py") == "print('in the linked worktree')\n"  # refs are shared
    after = (wt / wt_index).read_bytes() if not os.path.isabs(wt_index) else Path(wt_index).read_bytes()
    assert after == before
    # GIT_DIR / GIT_WORK_TREE set by the user: no guessing, git decides
    monkeypatch.setenv("GIT_DIR", str(git_repo / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(git_repo))
    (git_repo / "env.py").write_text("E = 1\n")
    r2 = snapshot(tmp_path)
    assert r2["commit"] and r2["repo"] == str(git_repo), r2
    assert _show(git_repo, r2["commit"], "env.py") == "E = 1\n"


def test_stale_private_index_files_are_removed(git_repo: Path) -> None:
    snapshot(git_repo)
    lumo = git_repo / ".git" / "lumo"
    old = lumo / f"index.{int(time.time()) - 7200}.killed.tmp"
    fresh = lumo / f"index.{int(time.time()) - 60}.running.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    assert snapshot(git_repo)["commit"]
    assert not old.exists() and fresh.exists()


# -- the readers and ref/worktree operations the command line uses ----------------------------------
def test_default_ref_prefix_is_the_layouts() -> None:
    from lumo_hydra.record.gitsnap import DEFAULT_REF_PREFIX
    from lumo_hydra.store.layout import SNAPSHOT_REF_PREFIX

    assert DEFAULT_REF_PREFIX == SNAPSHOT_REF_PREFIX == "refs/lumo/snapshots"
    assert snapshot.__kwdefaults__["ref_prefix"] == SNAPSHOT_REF_PREFIX


def test_list_refs(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lumo_hydra.store.layout import REF_NAMESPACE

    a = snapshot(git_repo, name="exp/a")
    b = snapshot(git_repo, name="exp/b")
    s = snapshot(git_repo, ref_prefix="refs/lumo/sweeps", name="s1")
    head = git(git_repo, "rev-parse", "HEAD").strip()
    git(git_repo, "update-ref", "refs/lumo/snapshots-other/x", head)  # a sibling, not under the prefix
    git(git_repo, "update-ref", "refs/heads/side", head)
    assert list_refs(git_repo) == [(a["commit"], "refs/lumo/snapshots/exp/a"),
                                   (b["commit"], "refs/lumo/snapshots/exp/b")]
    assert list_refs(git_repo, "refs/lumo/snapshots/") == list_refs(git_repo)
    assert list_refs(git_repo, REF_NAMESPACE) == [  # sorted as git sorts: '-' before '/'
        (head, "refs/lumo/snapshots-other/x"), (a["commit"], "refs/lumo/snapshots/exp/a"),
        (b["commit"], "refs/lumo/snapshots/exp/b"), (s["commit"], "refs/lumo/sweeps/s1")]
    assert list_refs(git_repo / "train.py") == [] and list_refs(tmp_path / "missing") == []
    plain = tmp_path / "plain"
    plain.mkdir()
    assert list_refs(plain) == []
    for bad in ("lumo/snapshots", "refs/lumo/*", "refs/a b", ""):
        with pytest.raises(LumoValueError, match="invalid prefix") as ei:
            list_refs(git_repo, bad)
        assert isinstance(ei.value, ValueError) and repr(bad) in str(ei.value)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert list_refs(git_repo) == []


def test_delete_ref(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = snapshot(git_repo, name="exp/a")
    b = snapshot(git_repo, name="exp/b")
    delete_ref(git_repo, a["ref"])
    assert [r for _, r in list_refs(git_repo)] == [b["ref"]]
    assert git(git_repo, "cat-file", "-t", a["commit"]).strip() == "commit"  # only the ref goes
    delete_ref(git_repo, a["ref"])  # already gone: no error
    with pytest.raises(GitError, match="refs/lumo/snapshots/exp/b") as ei:
        delete_ref(git_repo, b["ref"], a["commit"])  # it points elsewhere now: kept
    assert isinstance(ei.value, ValueError)
    assert list_refs(git_repo) == [(b["commit"], b["ref"])]
    delete_ref(git_repo, b["ref"], b["commit"])
    assert list_refs(git_repo) == []
    head = git(git_repo, "rev-parse", "HEAD").strip()
    for bad in ("refs/heads/main", "HEAD", "refs/lumo/../heads/main", "refs/lumo/a b", "-d", None):
        with pytest.raises(GitError, match="invalid ref") as ei:
            delete_ref(git_repo, bad)  # type: ignore[arg-type]
        assert repr(bad) in str(ei.value)
    assert git(git_repo, "rev-parse", "refs/heads/main").strip() == head
    with pytest.raises(GitError, match="does not exist"):
        delete_ref(tmp_path / "missing", "refs/lumo/snapshots/x")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GitError, match="no git"):
        delete_ref(git_repo, "refs/lumo/snapshots/x")


def test_remove_worktree(git_repo: Path, tmp_path: Path) -> None:
    base = snapshot(git_repo)["commit"]
    dest = tmp_path / "wt one"
    worktree(git_repo, base, dest)
    (dest / "scratch.txt").write_text("untracked in the worktree\n")  # --force: removed too
    remove_worktree(git_repo, dest)
    assert not dest.exists() and str(dest) not in git(git_repo, "worktree", "list")
    remove_worktree(git_repo, dest)  # already removed: no error
    # a folder deleted by hand: git's record of it is pruned
    worktree(git_repo, base, dest)
    import shutil

    shutil.rmtree(dest)
    assert str(dest) in git(git_repo, "worktree", "list")
    remove_worktree(git_repo, dest)
    assert str(dest) not in git(git_repo, "worktree", "list")
    remove_worktree(tmp_path / "no repo", tmp_path / "no folder")  # nothing left to do: no error
    plain = tmp_path / "not a worktree"
    plain.mkdir()
    with pytest.raises(GitError, match="not a worktree") as ei:
        remove_worktree(git_repo, plain)
    assert isinstance(ei.value, ValueError) and plain.exists()
    assert git(git_repo, "rev-parse", "HEAD").strip() == git(git_repo, "rev-parse", "main").strip()


def test_snapshot_files_and_read_snapshot_file(git_repo: Path, tmp_path: Path) -> None:
    from lumo_hydra.record.gitsnap import read_snapshot_file, snapshot_files

    (git_repo / "pkg" / "sub").mkdir(parents=True)
    (git_repo / "pkg" / "sub" / "mod.py").write_text("M = 1\n")
    (git_repo / "données été.txt").write_text("é\n", encoding="utf-8")
    (git_repo / "blob.bin").write_bytes(bytes(range(256)))
    (git_repo / "link").symlink_to("train.py")
    (git_repo / "train.py").write_text("print('unstaged')\n")
    (git_repo / "x.log").write_text("ignored\n")
    inner = git_repo / "inner"  # an embedded repository with a commit: a gitlink, not a file
    inner.mkdir()
    git(inner, "init", "-q")
    (inner / "i.py").write_text("i\n")
    git(inner, "add", "-A")
    git(inner, "commit", "-q", "-m", "i")
    r = snapshot(git_repo)
    assert r["commit"], r["msg"]
    files = snapshot_files(git_repo, r["commit"])
    assert files == sorted([".gitignore", "blob.bin", "données été.txt", "link", "pkg/sub/mod.py", "train.py"])
    assert snapshot_files(git_repo / "pkg", r["ref"]) == files  # a subfolder of the repository, a ref
    assert read_snapshot_file(git_repo, r["commit"], "train.py") == b"print('unstaged')\n"
    assert read_snapshot_file(git_repo, r["commit"], "pkg/sub/mod.py") == b"M = 1\n"
    assert read_snapshot_file(git_repo, r["commit"], "données été.txt") == "é\n".encode()
    assert read_snapshot_file(git_repo, r["commit"], "blob.bin") == bytes(range(256))
    assert read_snapshot_file(git_repo, r["commit"], "link") == b"train.py"
    base = git(git_repo, "rev-parse", "HEAD").strip()
    assert read_snapshot_file(git_repo, base, "train.py") == b"print('hello')\n"
    for missing in ("nope.py", "pkg/sub", "pkg/sub/mod.py/x", "inner"):
        with pytest.raises(GitError, match="no file") as ei:
            read_snapshot_file(git_repo, r["commit"], missing)
        assert isinstance(ei.value, ValueError)
        assert repr(missing) in str(ei.value) and r["commit"] in str(ei.value)
    for bad in ("deadbeef", "0" * 40, f"{base}^{{tree}}"):
        with pytest.raises(GitError, match="no commit") as ei:
            snapshot_files(git_repo, bad)
        assert repr(bad) in str(ei.value)
        with pytest.raises(GitError, match="no commit"):
            read_snapshot_file(git_repo, bad, "train.py")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not inside a git repository"):
        snapshot_files(plain, "HEAD")
    with pytest.raises(GitError, match="does not exist"):
        read_snapshot_file(tmp_path / "missing", "HEAD", "train.py")


def test_readers_without_git(git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lumo_hydra.record.gitsnap import read_snapshot_file, snapshot_files

    monkeypatch.setenv("PATH", str(tmp_path))
    for call in (lambda: snapshot_files(git_repo, "HEAD"), lambda: read_snapshot_file(git_repo, "HEAD", "a"),
                 lambda: worktree(git_repo, "HEAD", tmp_path / "wt"), lambda: remove_worktree(git_repo, git_repo)):
        with pytest.raises(GitError, match="no git executable"):
            call()


def test_hydra_output_dirs_read_a_plain_fixed_part_without_resolving(tmp_path, monkeypatch):
    """Hydra's default patterns give their fixed folders from the text alone (no ``${now:}`` resolver is
    registered here, so resolving would fail); a pattern whose fixed part holds the launch folder or an
    interpolation is still resolved (and, unresolvable here, left out)."""
    from omegaconf import OmegaConf
    from omegaconf.basecontainer import BaseContainer

    from lumo_hydra._hydra.outdirs import hydra_output_dirs

    monkeypatch.chdir(tmp_path)
    # an earlier test of the session may have registered Hydra's ``now`` resolver: not here
    monkeypatch.setattr(BaseContainer, "_resolvers", {k: v for k, v in BaseContainer._resolvers.items() if k != "now"})

    def dirs(run: str) -> list[str]:
        return hydra_output_dirs(OmegaConf.create({"hydra": {"run": {"dir": run},
                                                            "sweep": {"dir": "multirun/${now:%Y-%m-%d}/x"}}}))

    assert dirs("outputs/${now:%Y-%m-%d}/${now:%H-%M-%S}") == ["outputs", "multirun"]
    assert dirs("/elsewhere/out/${now:%H}") == ["/elsewhere/out", "multirun"]
    assert dirs("plain/dir") == ["plain/dir", "multirun"]
    assert dirs("./${now:%H}") == ["multirun"]
    assert dirs(str(tmp_path.parent) + "/${now:%H}") == ["multirun"]  # it holds the launch folder
