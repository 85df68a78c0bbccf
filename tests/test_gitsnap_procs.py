"""How many git processes a snapshot starts (issue 18), and that the shortcuts behind the count keep what
the snapshot guarantees: a clean-marked warm index is trusted only for the very file it names, and the
identity fallback still applies when the git config lacks one."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import git

from lumo_hydra.record.gitsnap import finish_steps, snapshot, snapshot_steps


def _count(log: Path, fn: object) -> collections.Counter[str]:
    log.write_text("")
    fn()  # type: ignore[operator]
    return collections.Counter(log.read_text().split())


def test_a_warm_snapshot_starts_three_git_processes(git_repo: Path, tmp_path: Path, counted: Path) -> None:
    store = tmp_path / "store"
    f = git_repo / "train.py"
    f.write_text("x = 0\n")
    first = _count(counted, lambda: snapshot(git_repo, store=store, skip_dirs=["outputs"]))
    assert first["ls-files"] == 1 and first["config"] == 0  # the seed (the user's index) is checked
    for i in range(2):
        f.write_text(f"x = {i + 1}\n")
        res: dict = {}
        n = _count(counted, lambda: res.update(snapshot(git_repo, store=store, skip_dirs=["outputs"])))  # noqa: B023
        assert res["commit"] and not res["reused"]
        # status, update-index, write-tree: the commit and its ref are written from Python
        assert sum(n.values()) == 3, n
        assert n["status"] == n["update-index"] == n["write-tree"] == 1, n
        git(git_repo, "fsck", "--strict", "--no-progress", res["commit"])
    # an unchanged tree: status alone (the warm index's tree is in its mark), the reused snapshot's ref read
    n = _count(counted, lambda: res.update(snapshot(git_repo, store=store, skip_dirs=["outputs"])))
    assert res["reused"] and sum(n.values()) == 1 and n["status"] == 1, n
    # other secret patterns: the mark does not hold for them, the warm index is checked again
    n = _count(counted, lambda: snapshot(git_repo, store=store, secret_files=["*.py"]))
    assert n["ls-files"] >= 1


def _git_tree(repo: Path, tmp_path: Path) -> str:
    """What ``git add -A && git write-tree`` gives (in a scratch index): the tree a snapshot must record."""
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "scratch-index")}
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    return subprocess.run(["git", "write-tree"], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_the_tree_remembered_for_the_warm_index_is_the_tree_of_the_files(git_repo: Path, tmp_path: Path,
                                                                          counted: Path) -> None:
    """Skipping ``write-tree`` for an unchanged index never records a stale tree: after a change the tree
    is written again, and a mark naming another file (the warm index replaced, e.g. copied) is not trusted."""
    f = git_repo / "train.py"
    lumo = git_repo / ".git" / "lumo"
    trees, warm_files = [], []
    for text in ("x = 1\n", "x = 1\n", "x = 2\n", "x = 2\n", "x = 2\n"):
        f.write_text(text)
        for p in (git_repo, f, git_repo / ".gitignore"):  # not racily clean: status has nothing to refresh
            os.utime(p, (time.time() - 10, time.time() - 10))
        n = _count(counted, lambda: trees.append(snapshot(git_repo)["commit"]))  # noqa: B023
        tree = git(git_repo, "rev-parse", trees[-1] + "^{tree}").strip()
        assert tree == _git_tree(git_repo, tmp_path), text
        warm_files.append((lumo / "index").stat().st_ino)
    assert n["write-tree"] == 0 and n["status"] == 1, n  # the last one: unchanged since the one before
    # git rewrites the index it scans only to refresh it (once at most here): then it stays as it is
    assert warm_files[4] == warm_files[3] and sorted(p.name for p in lumo.glob("index*")) == ["index", "index.clean"]
    warm = (lumo / "index").read_bytes()
    (lumo / "index").unlink()
    (lumo / "index").write_bytes(warm)  # same bytes, another file: its mark no longer vouches for it
    n = _count(counted, lambda: snapshot(git_repo))
    assert n["write-tree"] == 1, n


def test_a_clean_mark_vouches_only_for_the_file_it_names(git_repo: Path) -> None:
    """A warm index replaced after its mark was written (another snapshot, a copy) is checked again: an
    untracked secret-looking file in it is left out, not recorded because the index already holds it."""
    (git_repo / "train.py").write_text("x = 1\n")
    assert snapshot(git_repo)["commit"]
    lumo = git_repo / ".git" / "lumo"
    assert (lumo / "index.clean").exists()
    (git_repo / ".env").write_text("TOKEN=hunter2\n")
    forged = git_repo.parent / "forged-index"
    env = dict(os.environ, GIT_INDEX_FILE=str(forged))
    subprocess.run(["git", "read-tree", "HEAD"], cwd=git_repo, env=env, check=True)
    subprocess.run(["git", "add", "-f", ".env", "train.py"], cwd=git_repo, env=env, check=True)
    os.replace(forged, lumo / "index")  # the mark still names the old file
    (git_repo / "train.py").write_text("x = 2\n")
    r = snapshot(git_repo)
    assert r["commit"]
    assert ".env" not in git(git_repo, "ls-tree", "-r", "--name-only", r["commit"]).split()
    assert ".env" in {s["path"] for s in r["skipped"]}


def test_an_untracked_secret_is_dropped_after_the_user_untracks_it(git_repo: Path) -> None:
    (git_repo / ".env").write_text("A=1\n")
    git(git_repo, "add", "-f", ".env")
    git(git_repo, "commit", "-q", "-m", "track it")
    r1 = snapshot(git_repo)
    assert ".env" in git(git_repo, "ls-tree", "-r", "--name-only", r1["commit"]).split()
    r2 = snapshot(git_repo)  # the warm index holds a secret-looking entry: it is not marked clean
    assert ".env" in git(git_repo, "ls-tree", "-r", "--name-only", r2["commit"]).split()
    git(git_repo, "rm", "-q", "--cached", ".env")
    r3 = snapshot(git_repo)
    assert ".env" not in git(git_repo, "ls-tree", "-r", "--name-only", r3["commit"]).split()


def test_identity_fallback_then_the_configured_identity(git_repo: Path, tmp_path: Path, counted: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    empty_cfg = tmp_path / "empty-gitconfig"
    empty_cfg.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty_cfg))
    for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(k, raising=False)
    for key in ("user.name", "user.email"):
        subprocess.run(["git", "config", "--unset", key], cwd=git_repo, check=False)
    who = "%an <%ae>|%cn <%ce>"
    # the first snapshot learns that the repository lacks an identity; the next ones write the commit from
    # Python with the identity git gave it
    for i, (tries, cfg) in enumerate(((2, 1), (0, 0))):
        (git_repo / "train.py").write_text(f"x = {i}\n")
        res: dict = {}
        n = _count(counted, lambda: res.update(snapshot(git_repo)))  # noqa: B023
        assert git(git_repo, "log", "-1", f"--format={who}", res["commit"]).strip() == \
            "lumo-hydra <lumo-hydra@localhost>|lumo-hydra <lumo-hydra@localhost>"
        assert n["commit-tree"] == tries and n["config"] == cfg, n
    # a repository that lacked an identity and whose ident cache is gone reads the config side by side
    (git_repo / ".git" / "lumo" / "ident").unlink()
    (git_repo / "train.py").write_text("x = 5\n")
    n = _count(counted, lambda: res.update(snapshot(git_repo)))
    assert n["commit-tree"] == 1 and n["config"] == 1, n
    git(git_repo, "config", "user.name", "Ada")
    git(git_repo, "config", "user.email", "ada@example.org")
    (git_repo / "train.py").write_text("x = 9\n")
    r = snapshot(git_repo)
    assert git(git_repo, "log", "-1", f"--format={who}", r["commit"]).strip() == \
        "Ada <ada@example.org>|Ada <ada@example.org>"


def test_head_and_branch_without_rev_parse_match_git(git_repo: Path, counted: Path) -> None:
    """HEAD, its tree and the branch come from the scan's headers and the loose commit (or one
    rev-parse when it is packed, remembered after); detached and unborn HEADs as rev-parse says."""
    head = git(git_repo, "rev-parse", "HEAD").strip()
    (git_repo / "train.py").write_text("x = 1\n")
    r = snapshot(git_repo)
    assert (r["base"], r["branch"], r["dirty"]) == (head, git(git_repo, "branch", "--show-current").strip(), True)
    git(git_repo, "gc", "-q")  # HEAD's commit is packed now
    (git_repo / ".git" / "lumo" / "head-tree").unlink(missing_ok=True)
    git(git_repo, "checkout", "-q", "--detach")
    git(git_repo, "checkout", "-q", "--", "train.py")
    res: dict = {}
    n = _count(counted, lambda: res.update(snapshot(git_repo)))
    assert n["rev-parse"] == 1, n  # the packed commit's tree, asked once
    assert (res["base"], res["branch"], res["dirty"]) == (head, None, False)
    n = _count(counted, lambda: res.update(snapshot(git_repo)))
    assert n["rev-parse"] == 0 and res["dirty"] is False, n  # remembered
    git(git_repo, "checkout", "-q", "--orphan", "fresh")
    git(git_repo, "rm", "-rq", "--cached", ".")
    r = snapshot(git_repo)
    assert (r["base"], r["branch"], r["dirty"]) == (None, "fresh", True) and r["commit"]


def test_an_odd_repository_is_asked_with_rev_parse(git_repo: Path, counted: Path) -> None:
    """An empty ``.git`` folder in a subfolder is no repository for git, which goes on to the one above:
    the guess is not trusted, rev-parse decides, and the snapshot is of the repository above."""
    sub = git_repo / "pkg"
    (sub / ".git").mkdir(parents=True)
    (sub / "mod.py").write_text("M = 1\n")
    res: dict = {}
    n = _count(counted, lambda: res.update(snapshot(sub)))
    assert n["rev-parse"] == 1 and res["commit"], (n, res["msg"])
    assert os.path.realpath(res["repo"]) == os.path.realpath(git_repo)
    assert git(git_repo, "show", f"{res['commit']}:pkg/mod.py") == "M = 1\n"


def test_a_snapshot_in_two_steps_is_the_same_snapshot(git_repo: Path, tmp_path: Path) -> None:
    """The launching process starts the scan (first step), works, then finishes: the same result."""
    (git_repo / "train.py").write_text("x = 3\n")
    steps = snapshot_steps(git_repo, store=tmp_path / "store")
    next(steps)  # git's scan runs now
    res = finish_steps(steps)
    assert res["commit"] and res["msg"] == "ok" and not res["reused"]
    again = snapshot(git_repo, store=tmp_path / "store")
    assert again["reused"] and again["commit"] == res["commit"]
    assert git(git_repo, "rev-parse", res["commit"] + "^{tree}").strip() == _git_tree(git_repo, tmp_path)


def test_the_seed_is_a_hard_link_and_the_warm_index_is_never_written_in_place(git_repo: Path) -> None:
    """The private index starts as a hard link to the warm one (no copy); git replaces it through a lock
    file when it writes, so the warm file's own bytes never change, whatever the snapshot does."""
    f = git_repo / "train.py"
    f.write_text("x = 1\n")
    assert snapshot(git_repo)["commit"]
    warm = git_repo / ".git" / "lumo" / "index"
    from lumo_hydra.record.snapplan import prepare_index

    tmp, _, _, tree = prepare_index(str(warm.parent.parent), str(git_repo / ".git" / "index"))
    assert os.stat(tmp).st_ino == warm.stat().st_ino and tree  # linked, and its tree known from its mark
    os.unlink(tmp)
    with open(warm, "rb") as old:
        before = old.read()
        steps = snapshot_steps(git_repo)
        next(steps)  # the scan runs on the seed
        f.write_text("x = 2\n")  # (the scan may or may not see it: either way a valid snapshot)
        assert finish_steps(steps)["commit"]
        f.write_text("x = 3\n")
        assert snapshot(git_repo)["commit"]
        old.seek(0)
        assert old.read() == before
    assert not list(warm.parent.glob("index.*.tmp"))


def test_a_new_mark_for_an_unchanged_seed_leaves_no_private_index_behind(git_repo: Path) -> None:
    """The seed (a hard link to the warm index) git did not rewrite, whose mark changes (here: no tree in
    the mark yet, as written by an older version): renaming it onto the warm index does nothing, so it is
    removed."""
    for p in (git_repo, git_repo / "train.py", git_repo / ".gitignore"):  # nothing for status to refresh
        os.utime(p, (time.time() - 10, time.time() - 10))
    assert snapshot(git_repo)["commit"]
    assert snapshot(git_repo)["commit"]  # (the first one's index may still be refreshed once)
    lumo = git_repo / ".git" / "lumo"
    mark = json.loads((lumo / "index.clean").read_text())
    (lumo / "index.clean").write_text(json.dumps({**mark, "tree": None}))
    assert snapshot(git_repo)["commit"]
    assert json.loads((lumo / "index.clean").read_text())["tree"]
    assert sorted(p.name for p in lumo.glob("index*")) == ["index", "index.clean"]
