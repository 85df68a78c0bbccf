"""The lumo-hydra command line, run as a subprocess (``python -m lumo_hydra``), output checked."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import git
from test_watcher_fake import this_host, write_run


def cli(*args: str, root: Path | None = None, cwd: Path | None = None, input: str | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ, COLUMNS="250")
    if env:
        e.update(env)
    cmd = [sys.executable, "-m", "lumo_hydra"]
    if root is not None:
        cmd += ["--root", str(root)]
    cmd += list(args)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=e, input=input, timeout=120)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    now = time.time()
    write_run(root, "cls", test_name="261101.001.aat", params={"lr": 0.1}, metrics={"Acc": (0.70, "max")},
              tags=["base"], start=now - 3000)
    write_run(root, "cls", test_name="261101.002.bbt", params={"lr": 0.3}, metrics={"Acc": (0.90, "max")},
              start=now - 2000, sweep="261101.000.swt", job_num=0)
    write_run(root, "cls", test_name="261101.003.cct", status="failed", params={"lr": 1.0},
              metrics={"Acc": (0.20, "max")}, start=now - 1000)
    write_run(root, "gan", test_name="261102.001.ddt", status="running", host=this_host(), pid=os.getpid(),
              pstart=psutil.Process().create_time(), start=now - 10)
    return root


def test_list_table_filters_sort_limit(store: Path) -> None:
    r = cli("list", root=store)
    assert r.returncode == 0, r.stderr
    for name in ("261101.001.aat", "261101.002.bbt", "261101.003.cct", "261102.001.ddt", "Acc", "failed"):
        assert name in r.stdout
    assert "4 runs" in r.stdout
    r = cli("list", "--exp", "cls", "--status", "finished", "--sort", "metrics.Acc", "--desc", "--limit", "1",
            root=store)
    assert r.returncode == 0 and "261101.002.bbt" in r.stdout and "261101.001.aat" not in r.stdout
    r = cli("list", "--tag", "base", "--csv", "--columns", "test_name,params.lr,metrics.Acc", root=store)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows == [{"test_name": "261101.001.aat", "params.lr": "0.1", "metrics.Acc": "0.7"}]
    r = cli("list", "--sweep", "261101.000", "--json", root=store)
    data = json.loads(r.stdout)
    assert [d["test_name"] for d in data] == ["261101.002.bbt"] and data[0]["params.lr"] == 0.3
    r = cli("list", "--since", "30m", "--sort", "start", "--asc", "--json", root=store)
    assert [d["test_name"] for d in json.loads(r.stdout)] == ["261101.003.cct", "261102.001.ddt"]


def test_usage_and_errors_exit_codes(store: Path) -> None:
    assert cli("list", "--bogus", root=store).returncode == 2
    assert cli("list", "--status", "done", root=store).returncode == 2
    r = cli("list", "--status", "runing", root=store)
    assert r.returncode == 2 and "did you mean 'running'?" in r.stderr and "crashed" in r.stderr
    r = cli("list", "--sort", "metrics.acc", root=store)
    assert r.returncode == 1 and "did you mean metrics.Acc" in r.stderr
    r = cli("list", "--since", "yesterday", root=store)
    assert r.returncode == 1 and "since" in r.stderr
    r = cli("show", "261101.004.aat", root=store)
    assert r.returncode == 1 and "did you mean" in r.stderr and "261101.001.aat" in r.stderr
    r = cli("show", "2611", root=store)
    assert r.returncode == 1 and "ambiguous" in r.stderr
    assert cli("--version").returncode == 0
    r = cli("list", root=store.parent / "empty")
    assert r.returncode == 0 and "no runs" in r.stdout


def test_show_and_diff(store: Path) -> None:
    r = cli("show", "261101.003", root=store)  # an unambiguous prefix
    assert r.returncode == 0, r.stderr
    for s in ("cls/261101.003.cct", "failed", "RuntimeError", "boom", "python train.py", "lr", "Acc",
              str(store / "experiments" / "cls" / "261101.003.cct")):
        assert s in r.stdout, s
    r = cli("show", "cls/261101.001.aat", "--json", root=store)
    assert json.loads(r.stdout)["params"] == {"lr": 0.1}
    r = cli("diff", "261101.001", "261101.002", "--json", root=store)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["params"] == {"lr": [0.1, 0.3]} and d["metrics"] == {"Acc": [0.7, 0.9]}
    r = cli("diff", "261101.001", "261101.002", root=store)
    assert "lr" in r.stdout and "0.3" in r.stdout and "no snapshot" in r.stdout


def test_note_and_tag_edit_atomically_but_not_running_runs(store: Path) -> None:
    r = cli("note", "261101.001", "a", "good", "run", root=store)
    assert r.returncode == 0, r.stderr
    r = cli("tag", "261101.001", "+best", "-base", "new", root=store)
    assert r.returncode == 0, r.stderr
    rec = json.loads((store / "experiments/cls/261101.001.aat/run.json").read_text())
    assert rec["note"] == "a good run" and rec["tags"] == ["best", "new"] and rec["params"] == {"lr": 0.1}
    r = cli("list", "--tag", "best", "--json", root=store)
    assert [d["note"] for d in json.loads(r.stdout)] == ["a good run"]
    r = cli("note", "261102.001", "x", root=store)
    assert r.returncode == 1 and "still running" in r.stderr and "--force" in r.stderr
    assert cli("tag", "261102", "+x", root=store).returncode == 1
    r = cli("tag", "--force", "261102", "+x", root=store)
    assert r.returncode == 0, r.stderr
    r = cli("tag", "261102", "+x", "--force", "--root", str(store))  # options after the tags work too
    assert r.returncode == 0, r.stderr
    assert json.loads((store / "experiments/gan/261102.001.ddt/run.json").read_text())["tags"] == ["x"]
    assert cli("tag", "261101.001", root=store).returncode == 1


def test_export_formats(store: Path, tmp_path: Path) -> None:
    r = cli("export", "--format", "json", root=store)
    assert len(json.loads(r.stdout)) == 4
    out = tmp_path / "runs.parquet"
    r = cli("export", "--format", "parquet", "-o", str(out), "--exp", "cls", root=store)
    assert r.returncode == 0, r.stderr
    import pandas as pd

    df = pd.read_parquet(out)
    assert len(df) == 3 and "params.lr" in df.columns and "metrics.Acc" in df.columns
    assert cli("export", "--format", "parquet", root=store).returncode == 1
    r = cli("export", "--format", "csv", root=store)
    assert len(list(csv.DictReader(io.StringIO(r.stdout)))) == 4


def test_rm_asks_and_removes_all_folders(store: Path) -> None:
    blob = store / "blob" / "cls" / "261101.003.cct"
    blob.mkdir(parents=True)
    (blob / "ckpt.pt").write_text("x")
    r = cli("rm", "261101.003", root=store, input="")
    assert r.returncode == 1 and "--yes" in r.stderr and (store / "experiments/cls/261101.003.cct").exists()
    r = cli("rm", "261102.001", "--yes", root=store)
    assert r.returncode == 1 and "still running" in r.stderr
    r = cli("rm", "261101.003", "--yes", root=store)
    assert r.returncode == 0, r.stderr
    assert "will remove 1 run" in r.stdout and str(blob) in r.stdout
    assert not (store / "experiments/cls/261101.003.cct").exists() and not blob.exists()
    assert "261101.003" not in cli("list", root=store).stdout


TRAIN = """
import sys
from lumo_hydra import SimpleExperiment
VALUE = {value}
exp = SimpleExperiment("rr", heartbeat_interval=0)
exp.start()
exp.dump_params({{"args": sys.argv[1:], "value": VALUE}})
exp.dump_metric("v", VALUE)
exp.end()
"""


def _runs(store: Path) -> list[dict]:
    return json.loads(cli("export", "--format", "json", "--nested", "--sort", "start", "--asc", root=store).stdout)


def test_rerun_checkout_and_gc_on_a_real_repo(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    env = {"LUMO_HOME": str(store)}
    (git_repo / "train.py").write_text(TRAIN.format(value=1))
    p = subprocess.run([sys.executable, "train.py", "x=1"], cwd=git_repo, env=dict(os.environ, **env),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    first = _runs(store)[0]
    assert first["git"]["commit"] and first["params"]["value"] == 1
    # the working tree moves on (uncommitted edit): a rerun must run the snapshot's code
    (git_repo / "train.py").write_text(TRAIN.format(value=2))
    r = cli("rerun", first["test_name"], "y=2", root=store, cwd=tmp_path)
    assert r.returncode == 0, r.stderr + r.stdout
    runs = _runs(store)
    assert len(runs) == 2
    new = runs[1]
    assert new["params"] == {"args": ["x=1", "y=2"], "value": 1}
    assert new["rerun_of"] == first["test_name"]
    assert "VALUE = 2" in (git_repo / "train.py").read_text()  # the user's tree untouched
    assert git(git_repo, "worktree", "list").count("\n") == 1  # the temporary worktree is gone
    assert git(git_repo, "status", "--porcelain").strip() == "M train.py"
    # checkout
    dest = tmp_path / "co"
    r = cli("checkout", first["test_name"][:12], str(dest), root=store)
    assert r.returncode == 0, r.stderr
    assert "VALUE = 1" in (dest / "train.py").read_text()
    assert cli("checkout", first["test_name"], str(dest), root=store).returncode == 1  # not empty
    git(git_repo, "worktree", "remove", "--force", str(dest))
    # diff shows the code change between the two snapshots (both VALUE = 1: identical code)
    r = cli("diff", first["test_name"], new["test_name"], "--json", root=store)
    d = json.loads(r.stdout)
    assert d["params"] == {"args": [["x=1"], ["x=1", "y=2"]]} and d["packages"] == {}
    # rm + gc: the removed run's snapshot ref is collected, the other's kept
    refs_before = git(git_repo, "for-each-ref", "refs/lumo/").strip().splitlines()
    assert len(refs_before) == 2
    assert cli("rm", first["test_name"], "--yes", root=store).returncode == 0
    r = cli("gc", "--dry-run", root=store)
    assert r.returncode == 0 and "1 snapshot ref" in r.stdout and "dry run" in r.stdout
    assert len(git(git_repo, "for-each-ref", "refs/lumo/").strip().splitlines()) == 2
    r = cli("gc", root=store, input="")
    assert r.returncode == 1 and "--yes" in r.stderr
    r = cli("gc", "--yes", root=store)
    assert r.returncode == 0, r.stderr
    left = git(git_repo, "for-each-ref", "--format=%(refname)", "refs/lumo/").split()
    assert left == [new["git"]["ref"]]
    assert "nothing to collect" in cli("gc", "--yes", root=store).stdout


def _owned_ref(store: Path, repo: Path, name: str, commit: str) -> tuple[str, str]:
    """(ref, commit) of a snapshot of ``commit``'s tree owned by ``store``, as gitsnap writes them
    (store id in the ref name and the commit message, the store's state file in the repository)."""
    from lumo_hydra.record import snapplan
    from lumo_hydra.store.layout import ensure_store_id

    sid = ensure_store_id(store)
    c = git(repo, "commit-tree", commit + "^{tree}", "-p", commit, "-m",
            f"lumo-hydra snapshot\n\n{snapplan.trailers(sid, 'experiments/' + name)}").strip()
    ref = f"refs/lumo/snapshots/{sid}/{name}"
    git(repo, "-c", f"core.hooksPath={os.devnull}", "update-ref", ref, c)
    if snapplan.read_state(str(repo / ".git"), sid) is None:
        snapplan.write_state(str(repo / ".git"), sid, str(store), {})
    return ref, c


def _snapshot_run(store: Path, repo: Path, test_name: str, commit: str, ref: str) -> None:
    """A fake run whose code snapshot is ``commit`` of ``repo`` (its command: ``python train.py``)."""
    git(repo, "update-ref", ref, commit)
    write_run(store, "cls", test_name=test_name, start=time.time() - 100,
              git={"commit": commit, "repo": str(repo), "ref": ref, "base": commit, "branch": "main", "dirty": False},
              extra={"execute": {"cwd": str(repo), "exec_bin": sys.executable, "exec_argv": [str(repo / "train.py")],
                                 "repo": str(repo), "command": "python train.py"}})


def test_gc_collects_only_snapshot_refs_and_skips_unreadable_sweep_records(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    head = git(git_repo, "rev-parse", "HEAD").strip()
    (git_repo / "train.py").write_text("print('two')\n")
    git(git_repo, "commit", "-qam", "two")
    second = git(git_repo, "rev-parse", "HEAD").strip()
    _snapshot_run(store, git_repo, "261101.001.aat", head, "refs/lumo/snapshots/cls/261101.001.aat")
    gone, _ = _owned_ref(store, git_repo, "cls/261101.009.gone", second)  # this store's, its run is gone
    git(git_repo, "update-ref", "refs/lumo/snapshots/cls/261101.009.gone", second)  # no store id: never removed
    git(git_repo, "update-ref", "refs/lumo/other", second)  # not a snapshot: not gc's to remove
    for sid, text in (("s1", "{not json"), ("s2", "[1, 2]"), ("s3", None)):
        (store / "sweeps" / sid).mkdir(parents=True)
        if text is not None:
            (store / "sweeps" / sid / "sweep.json").write_text(text)
    r = cli("gc", "--yes", "--repo", str(git_repo), root=store)
    assert r.returncode == 0, r.stderr
    assert "will remove 1 snapshot ref(s) and 0 orphan folder(s)" in r.stdout
    assert gone in r.stdout and "refs/lumo/other" not in r.stdout
    left = git(git_repo, "for-each-ref", "--format=%(refname)", "refs/lumo/").split()
    assert left == ["refs/lumo/other", "refs/lumo/snapshots/cls/261101.001.aat", "refs/lumo/snapshots/cls/261101.009.gone"]


def test_checkout_rerun_and_gc_run_none_of_the_users_hooks(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    head = git(git_repo, "rev-parse", "HEAD").strip()
    _snapshot_run(store, git_repo, "261101.001.aat", head, "refs/lumo/snapshots/cls/261101.001.aat")
    _snapshot_run(store, git_repo, "261101.002.bbt", head, "refs/lumo/snapshots/cls/261101.002.bbt")
    marker = tmp_path / "hook-ran"
    hooks = git_repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("post-checkout", "reference-transaction"):
        (hooks / name).write_text(f"#!/bin/sh\necho {name} >> '{marker}'\nexit 1\n")
        (hooks / name).chmod(0o755)
    monitor = tmp_path / "monitor.sh"
    monitor.write_text(f"#!/bin/sh\necho fsmonitor >> '{marker}'\nexit 1\n")
    monitor.chmod(0o755)
    git(git_repo, "config", "core.fsmonitor", str(monitor))
    r = cli("checkout", "261101.001", str(tmp_path / "co"), root=store)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "co" / "train.py").read_text() == "print('hello')\n"
    r = cli("rerun", "261101.001", root=store)
    assert r.returncode == 0, r.stderr
    assert "hello" in r.stdout
    assert git(git_repo, "worktree", "list").count("\n") == 2  # the repository and the checkout
    # a removed run's ref sharing a commit with a live run is kept; -d of an unshared one runs no hook
    assert cli("rm", "261101.002", "--yes", root=store).returncode == 0
    x, _ = _owned_ref(store, git_repo, "cls/x", head)
    r = cli("gc", "--yes", root=store)
    assert r.returncode == 0, r.stderr
    assert x in r.stdout and "cls/261101.002.bbt" not in r.stdout
    assert not marker.exists(), marker.read_text()
