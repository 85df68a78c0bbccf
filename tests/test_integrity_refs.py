"""Issue 11 (points 1, 4, 8) and issue 12 (points 3, 4): snapshot refs owned by a store, gc and rm only
inside what the store owns, secrets and Hydra's output folders left out of snapshots, one snapshot for
runs of an unchanged tree. Real git repositories, real runs and the real CLI as subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import git
from test_watcher_fake import write_run

TRAIN = """
from lumo_hydra import SimpleExperiment
VALUE = {value}
exp = SimpleExperiment("tr", heartbeat_interval=0)
exp.start()
exp.dump_metric("v", VALUE)
exp.end()
"""

APP = """
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name="config")
def main(cfg):
    return 0.5

if __name__ == "__main__":
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="config", node={"x": 1})
    main()
"""


def cli(*args: str, root: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, COLUMNS="250", **(env or {}))
    return subprocess.run([sys.executable, "-m", "lumo_hydra", "--root", str(root), *args], capture_output=True,
                          text=True, cwd=cwd, env=e, timeout=120)


def run_train(repo: Path, store: Path, value: int, env: dict[str, str] | None = None) -> None:
    """One real run of train.py (with VALUE = value) recorded in ``store``."""
    (repo / "train.py").write_text(TRAIN.format(value=value))
    p = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, LUMO_HOME=str(store), **(env or {})))
    assert p.returncode == 0, p.stderr


def records(store: Path) -> list[dict[str, Any]]:
    recs = [json.loads(p.read_text()) for p in (store / "experiments").glob("*/*/run.json")]
    return sorted(recs, key=lambda r: r["test_name"])


def refs(repo: Path, prefix: str = "refs/lumo/") -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", prefix).split()


def tree_files(repo: Path, commit: str) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", commit).split("\n")[:-1]


# -- 11.1: gc and a shared repository ----------------------------------------------------------------
def test_11_1_gc_keeps_other_stores_refs(git_repo: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "store-a", tmp_path / "store-b"
    for i in range(3):  # the two stores take turns on one repository, the code changes every run
        run_train(git_repo, a, 10 + i)
        run_train(git_repo, b, 20 + i)
    ra, rb = records(a), records(b)
    ida, idb = (a / "store-id").read_text().strip(), (b / "store-id").read_text().strip()
    assert ida != idb
    assert all(r["git"]["ref"].startswith(f"refs/lumo/snapshots/{ida}/") for r in ra)
    assert all(r["git"]["ref"].startswith(f"refs/lumo/snapshots/{idb}/") for r in rb)
    msg = git(git_repo, "log", "-1", "--format=%B", ra[0]["git"]["commit"])
    assert f"Lumo-Store: {ida}" in msg and f"Lumo-Owner: experiments/tr/{ra[0]['test_name']}" in msg
    b_refs = refs(git_repo, f"refs/lumo/snapshots/{idb}")
    assert len(b_refs) == 3
    # every run of A removed, then gc on A
    assert cli("rm", *[r["test_name"] for r in ra], "--yes", root=a).returncode == 0
    r = cli("gc", "--yes", root=a)
    assert r.returncode == 0, r.stderr
    left_a = refs(git_repo, f"refs/lumo/snapshots/{ida}")
    assert left_a == [ra[-1]["git"]["ref"]]  # only A's last snapshot (a next run may reuse it)
    assert refs(git_repo, f"refs/lumo/snapshots/{idb}") == b_refs  # refs deleted in B's namespace: 0
    git(git_repo, "gc", "-q", "--prune=now")
    for rec in rb:  # every run of B still checks out, with its own code
        dest = tmp_path / f"co-{rec['test_name']}"
        r = cli("checkout", rec["test_name"], str(dest), root=b)
        assert r.returncode == 0, r.stderr
        value = 20 + rb.index(rec)
        assert f"VALUE = {value}" in (dest / "train.py").read_text()
    # gc on B removes nothing: all its runs need their refs
    r = cli("gc", "--yes", root=b)
    assert "nothing to collect" in r.stdout and refs(git_repo, f"refs/lumo/snapshots/{idb}") == b_refs


def test_11_1_gc_leaves_a_repository_named_only_by_a_crafted_record_alone(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run_train(git_repo, store, 1)
    sid = (store / "store-id").read_text().strip()
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    (other / "f.txt").write_text("x\n")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "x")
    head = git(other, "rev-parse", "HEAD").strip()
    forged = [f"refs/lumo/snapshots/{sid}/tr/forged", "refs/lumo/snapshots/tr/old", "refs/lumo/x"]
    for ref in forged:  # even a ref in this store's namespace: this store never wrote in that repository
        git(other, "update-ref", ref, head)
    write_run(store, "tr", test_name="261101.001.aat",
              git={"commit": "0" * 40, "repo": str(other), "ref": "refs/lumo/snapshots/zz", "base": head})
    r = cli("gc", "--yes", "--repo", str(other), root=store)
    assert r.returncode == 0, r.stderr
    assert "left alone" in r.stdout
    assert refs(other) == sorted(forged)


def test_11_1_gc_never_removes_refs_without_this_stores_id_and_trailer(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run_train(git_repo, store, 1)
    run_train(git_repo, store, 2)
    sid = (store / "store-id").read_text().strip()
    head = git(git_repo, "rev-parse", "HEAD").strip()
    legacy = "refs/lumo/snapshots/tr/261101.001.old"  # written by an older lumo-hydra: no store id
    no_trailer = f"refs/lumo/snapshots/{sid}/tr/by-hand"  # this store's namespace, not lumo-hydra's commit
    other_store = "refs/lumo/snapshots/" + "ab" * 16 + "/tr/x"
    for ref in (legacy, no_trailer, other_store):
        git(git_repo, "update-ref", ref, head)
    first = records(store)[0]
    assert cli("rm", first["test_name"], "--yes", root=store).returncode == 0
    r = cli("gc", "--yes", root=store)
    assert r.returncode == 0, r.stderr
    assert "will remove 1 snapshot ref(s)" in r.stdout and first["git"]["ref"] in r.stdout
    left = refs(git_repo)
    assert first["git"]["ref"] not in left
    assert {legacy, no_trailer, other_store, records(store)[0]["git"]["ref"]} == set(left)


def test_11_1_gc_keeps_a_ref_whose_run_folder_exists_before_its_record_names_it(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run_train(git_repo, store, 1)
    rec = records(store)[0]
    run_json = store / "experiments" / "tr" / rec["test_name"] / "run.json"
    run_json.write_text(json.dumps({**rec, "git": {"msg": "being written"}}))  # a run still starting
    run_train(git_repo, store, 2)
    r = cli("gc", "--yes", root=store)
    assert rec["git"]["ref"] in refs(git_repo), r.stdout


# -- 11.4: every path inside the store ---------------------------------------------------------------
def test_11_4_rm_of_a_folder_outside_the_store_refuses(tmp_path: Path) -> None:
    store = tmp_path / "store"
    inside = write_run(store, "cls", test_name="261101.001.aat")
    outside = tmp_path / "elsewhere" / "cls" / "261101.001.aat"  # same names as a run of the store
    outside.mkdir(parents=True)
    (outside / "run.json").write_text((inside / "run.json").read_text())
    r = cli("rm", str(outside), "--yes", root=store)
    assert r.returncode != 0 and "not a run folder of the store" in (r.stderr + r.stdout)
    assert (inside / "run.json").exists() and (outside / "run.json").exists()


@pytest.mark.parametrize("sweep", ["/outside", "../../outside", "ok/../../../outside"])
def test_11_4_rm_with_a_crafted_sweep_deletes_nothing_outside(tmp_path: Path, sweep: str) -> None:
    store = tmp_path / "store"
    victim = tmp_path / "outside" / "jobs"
    victim.mkdir(parents=True)
    (victim / "0.261101.001.aat").write_text("keep me")
    sweep_value = str(tmp_path / "outside") if sweep == "/outside" else sweep
    info = write_run(store, "cls", test_name="261101.001.aat", extra={"sweep": sweep_value})
    (store / "sweeps" / "ok").mkdir(parents=True)  # a store that has had sweeps
    assert json.loads((info / "run.json").read_text())["sweep"] == sweep_value
    r = cli("rm", "261101.001.aat", "--yes", root=store)
    assert r.returncode == 0, r.stderr
    assert not info.exists()
    assert (victim / "0.261101.001.aat").read_text() == "keep me"


def test_11_4_rm_and_gc_unlink_symlinks_and_never_follow_them(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_run(store, "cls", test_name="261101.001.aat")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep")
    (store / "blob" / "cls").mkdir(parents=True)
    os.symlink(victim, store / "blob" / "cls" / "261101.001.aat")  # the run's blob folder links outside
    os.symlink(victim, store / "blob" / "cls" / "261101.009.gone")  # an 'orphan' linking outside
    assert cli("rm", "261101.001.aat", "--yes", root=store).returncode == 0
    assert not os.path.lexists(store / "blob" / "cls" / "261101.001.aat")
    r = cli("gc", "--yes", root=store)
    assert r.returncode == 0, r.stderr
    assert (victim / "precious.txt").read_text() == "keep"


def test_11_4_gc_ignores_an_owner_trailer_pointing_outside_the_store(git_repo: Path, tmp_path: Path) -> None:
    from lumo_hydra.cli.maintenance import _owner_exists
    from lumo_hydra.store.layout import StoreLayout

    layout = StoreLayout(tmp_path / "store")
    (tmp_path / "store" / "experiments" / "e" / "t").mkdir(parents=True)
    assert _owner_exists(layout, "experiments/e/t") and not _owner_exists(layout, "experiments/e/gone")
    for crafted in ("../../x", "/abs/x", "experiments/../..", ".hidden/x"):  # not trusted to free a ref
        assert _owner_exists(layout, crafted)


# -- 11.8: secret-looking files ----------------------------------------------------------------------
SECRETS = [".env", ".env.local", "config/.env.prod", "certs/server.pem", "tls.key", "home/.ssh/id_rsa",
           ".netrc", "cert.p12", "credentials.json", "gcp/credentials", "UPPER/SERVER.PEM"]


def test_11_8_untracked_secret_files_are_left_out_and_listed(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (git_repo / "deploy.key").write_text("public test key, tracked on purpose\n")
    (git_repo / "Tracked.KEY").write_text("tracked, any case\n")
    git(git_repo, "add", "deploy.key", "Tracked.KEY")
    git(git_repo, "commit", "-q", "-m", "tracked key")
    (git_repo / "staged.pem").write_text("staged: the user added it\n")
    git(git_repo, "add", "staged.pem")
    for rel in SECRETS:
        (git_repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (git_repo / rel).write_text("hunter2\n")
    (git_repo / "notes.txt").write_text("not a secret\n")
    run_train(git_repo, store, 1)
    g = records(store)[0]["git"]
    files = tree_files(git_repo, g["commit"])
    assert not set(SECRETS) & set(files), files
    assert {"deploy.key", "Tracked.KEY", "staged.pem", "notes.txt", "train.py"} <= set(files)
    skipped = {s["path"]: s["reason"] for s in g["skipped"]}
    assert set(skipped) == set(SECRETS)
    assert "looks like a secret" in skipped[".env"] and "'.env'" in skipped[".env"]
    blobs = git(git_repo, "ls-tree", "-r", g["commit"])
    assert "hunter2" not in "".join(git(git_repo, "cat-file", "-p", ln.split()[2]) for ln in blobs.splitlines())


def test_11_8_secret_list_is_configurable_and_the_warm_index_forgets(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (git_repo / ".env").write_text("A=1\n")
    (git_repo / "db.secret").write_text("pw\n")
    run_train(git_repo, store, 1, env={"LUMO_SECRET_FILES": ""})  # no patterns: everything recorded
    run_train(git_repo, store, 2, env={"LUMO_SECRET_FILES": "+*.secret"})  # the default list and one more
    first, second = records(store)
    assert {".env", "db.secret"} <= set(tree_files(git_repo, first["git"]["commit"]))
    files = tree_files(git_repo, second["git"]["commit"])
    assert ".env" not in files and "db.secret" not in files  # also gone from the warm index
    assert {s["path"] for s in second["git"]["skipped"]} == {".env", "db.secret"}


# -- 12.3: Hydra's output folders ----------------------------------------------------------------------
def _hydra_run(repo: Path, store: Path, *args: str) -> None:
    p = subprocess.run([sys.executable, "app.py", *args, "hydra/callbacks=lumo"], cwd=repo, capture_output=True,
                       text=True, timeout=180, env=dict(os.environ, LUMO_HOME=str(store)))
    assert p.returncode == 0, p.stderr


def test_12_3_hydra_output_folders_are_left_out_of_snapshots(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (git_repo / "app.py").write_text(APP)
    git(git_repo, "add", "app.py")
    git(git_repo, "commit", "-q", "-m", "app")  # no .gitignore entry for Hydra's folders
    _hydra_run(git_repo, store)
    _hydra_run(git_repo, store, "-m", "x=1,2")
    _hydra_run(git_repo, store, "hydra.run.dir=runs/${now:%H-%M-%S}")
    _hydra_run(git_repo, store, "x=3")
    recs = sorted(records(store), key=lambda r: r["progress"]["start"])
    assert len(recs) == 5
    last = recs[-1]["git"]
    files = tree_files(git_repo, last["commit"])
    assert not [f for f in files if f.startswith(("outputs/", "multirun/", "runs/"))], files
    assert last["dirty"] is False
    # runs/ is the fixed part of the custom run dir's pattern, remembered from that run
    assert {s["path"] for s in last["skipped"]} == {"outputs/", "multirun/", "runs/"}
    assert all(s["reason"] == "Hydra output folder" for s in last["skipped"])
    # a plain (non-Hydra) run in the same repository leaves them out too: they hold .hydra/ folders
    run_train(git_repo, store, 1)
    plain = [r for r in records(store) if r["exp_name"] == "tr"][0]["git"]
    assert {s["path"] for s in plain["skipped"]} == {"outputs/", "multirun/", "runs/"}
    assert not [f for f in tree_files(git_repo, plain["commit"]) if f.startswith(("outputs/", "multirun/", "runs/"))]


def test_12_3_an_outputs_folder_without_hydra_files_is_code(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (git_repo / "outputs").mkdir()
    (git_repo / "outputs" / "format.py").write_text("X = 1\n")
    run_train(git_repo, store, 1)
    g = records(store)[0]["git"]
    assert "outputs/format.py" in tree_files(git_repo, g["commit"])
    assert not g["skipped"]


# -- 12.4: one snapshot for an unchanged tree ----------------------------------------------------------
def test_12_4_runs_of_an_unchanged_tree_share_one_snapshot_and_gc_keeps_it(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    for _ in range(3):
        run_train(git_repo, store, 1)
    recs = records(store)
    assert len({r["git"]["ref"] for r in recs}) == 1 and len({r["git"]["commit"] for r in recs}) == 1
    assert [r["git"]["reused"] for r in recs] == [False, True, True]
    shared = recs[0]["git"]["ref"]
    run_train(git_repo, store, 2)  # the code changes: a new snapshot
    new = records(store)[-1]["git"]
    assert new["ref"] != shared and new["reused"] is False
    assert len(refs(git_repo)) == 2
    # the shared ref names the first run: removing it keeps the ref while the others need it
    assert cli("rm", recs[0]["test_name"], "--yes", root=store).returncode == 0
    r = cli("gc", "--yes", root=store)
    assert shared in refs(git_repo), r.stdout
    for rec in recs[1:]:
        dest = tmp_path / f"co-{rec['test_name']}"
        assert cli("checkout", rec["test_name"], str(dest), root=store).returncode == 0
        assert "VALUE = 1" in (dest / "train.py").read_text()
    assert cli("rm", *[r["test_name"] for r in recs[1:]], "--yes", root=store).returncode == 0
    r = cli("gc", "--yes", root=store)
    assert r.returncode == 0 and refs(git_repo) == [new["ref"]], r.stdout
    # the last snapshot is reused again; once its ref is gone (deleted by hand), a new one is made
    run_train(git_repo, store, 2)
    assert records(store)[-1]["git"]["ref"] == new["ref"] and records(store)[-1]["git"]["reused"] is True
    git(git_repo, "update-ref", "-d", new["ref"])
    run_train(git_repo, store, 2)
    again = records(store)[-1]["git"]
    assert again["reused"] is False and again["ref"] != new["ref"] and again["commit"] != new["commit"]
    assert git(git_repo, "rev-parse", again["ref"]).strip() == again["commit"]


def test_11_4_checkout_and_rerun_refuse_a_commit_no_lumo_ref_of_the_recorded_repository_names(
        git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run_train(git_repo, store, 1)
    good = records(store)[0]
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    (other / "train.py").write_text("print('not yours')\n")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "x")
    head = git(other, "rev-parse", "HEAD").strip()
    crafted = [{"commit": head, "repo": str(other), "ref": good["git"]["ref"]},   # a ref it does not have
               {"commit": head, "repo": str(other)},                               # no ref at all
               {"commit": head, "repo": str(other), "ref": "refs/heads/main"},     # not lumo-hydra's
               {"commit": head, "repo": str(tmp_path / "link" / "..") + "/link"}]       # a symlink to it
    (tmp_path / "link").symlink_to(other)
    for i, g in enumerate(crafted):
        write_run(store, "tr", test_name=f"261101.00{i}.cct", git=g,
                  extra={"execute": {"cwd": str(other), "exec_bin": sys.executable, "exec_argv": ["train.py"]}})
    for i in range(len(crafted)):
        for cmd in (["checkout", f"261101.00{i}.cct", str(tmp_path / f"co{i}")], ["rerun", f"261101.00{i}.cct"]):
            r = cli(*cmd, root=store)
            assert r.returncode != 0 and "cannot" in r.stderr, (cmd, r.stdout, r.stderr)
            assert "not yours" not in r.stdout
    assert git(other, "worktree", "list").count("\n") == 1  # nothing checked out in the other repository
    r = cli("checkout", good["test_name"], str(tmp_path / "co-good"), root=store)
    assert r.returncode == 0, r.stderr


def test_11_1_a_sweeps_snapshot_is_kept_while_it_has_jobs_or_is_being_launched(git_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (git_repo / "app.py").write_text(APP)
    _hydra_run(git_repo, store, "-m", "x=1,2")
    jobs = records(store)
    [ref] = {r["git"]["ref"] for r in jobs}
    sid = jobs[0]["sweep"]
    assert f"Lumo-Owner: sweeps/{sid}" in git(git_repo, "log", "-1", "--format=%B", ref)
    run_train(git_repo, store, 5)  # another snapshot becomes the last one
    assert cli("rm", jobs[0]["test_name"], "--yes", root=store).returncode == 0
    cli("gc", "--yes", root=store)
    assert ref in refs(git_repo)  # one job left
    assert cli("rm", jobs[1]["test_name"], "--yes", root=store).returncode == 0
    cli("gc", "--yes", root=store)
    assert ref in refs(git_repo)  # no job left, but the sweep record is young: it may still be launching
    old = (store / "sweeps" / sid / "sweep.json").stat().st_mtime - 7200
    os.utime(store / "sweeps" / sid / "sweep.json", (old, old))
    r = cli("gc", "--yes", root=store)
    assert ref not in refs(git_repo), r.stdout
    assert len(refs(git_repo)) == 1  # the plain run's


def test_11_4_rm_honours_a_store_whose_blob_folder_links_to_another_disk(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_run(store, "cls", test_name="261101.001.aat")
    disk = tmp_path / "big-disk"
    (disk / "cls" / "261101.001.aat").mkdir(parents=True)
    (disk / "cls" / "261101.001.aat" / "ckpt.pt").write_text("weights")
    (disk / "cls" / "other").mkdir()
    os.symlink(disk, store / "blob")  # the user's own layout: blob/ on another disk
    assert cli("rm", "261101.001.aat", "--yes", root=store).returncode == 0
    assert not (store / "experiments" / "cls" / "261101.001.aat").exists()
    assert not (disk / "cls" / "261101.001.aat").exists() and (disk / "cls" / "other").exists()
