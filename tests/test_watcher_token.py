"""``Watcher.change_token()``: changes with anything ``load()`` shows (a new or removed run, a note or tag
edit, a running run's metrics, a run going quiet), stays equal while nothing changes."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from test_watcher_fake import write_run

from lumo_hydra import Experiment, Watcher
from lumo_hydra.store.reader import edit_record
from lumo_hydra.watcher import token as _token


def age(root: Path, seconds: float = 30.0) -> None:
    """Backdate every folder of the store (as if the last change was ``seconds`` ago)."""
    t = time.time() - seconds
    for dp, _dirs, files in os.walk(root / "experiments"):
        for f in files:
            os.utime(os.path.join(dp, f), (t, t))
        os.utime(dp, (t, t))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # no "maybe changed" window: a token then differs only when a folder time did
    monkeypatch.setattr(_token, "_RACY_NS", 0)
    root = tmp_path / "store"
    now = time.time()
    for i in range(4):
        write_run(root, "a" if i % 2 else "b", counter=i, start=now - 1000 + i, metrics={"acc": (0.5, "max")})
    age(root)
    return root


def test_unchanged_store_keeps_its_token(store: Path) -> None:
    w = Watcher(store)
    t0 = w.change_token()
    assert isinstance(t0, str) and t0
    w.load()
    assert w.change_token() == t0 == Watcher(store).change_token()


def test_note_edit_through_edit_record_changes_it(store: Path) -> None:
    w = Watcher(store)
    w.load()
    t0 = w.change_token()
    d = w.load()["info_dir"].iloc[0]
    edit_record(d, lambda rec: rec.update(note="looked at it"))  # a rename inside the run folder only
    t1 = w.change_token()
    assert t1 != t0
    assert w.change_token() == t1  # stable again until the next change
    assert w.load()["note"].iloc[0] == "looked at it"


def test_new_and_removed_runs_change_it(store: Path) -> None:
    w = Watcher(store)
    t0 = w.change_token()
    d = write_run(store, "a", counter=7)
    t1 = w.change_token()
    assert t1 != t0
    shutil.rmtree(d)
    assert w.change_token() not in (t0, t1)
    write_run(store, "c", counter=8)  # a new experiment
    assert w.change_token() != t1


def test_running_run_metrics_change_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_token, "_RACY_NS", 0)
    root = tmp_path / "store"
    exp = Experiment("live", home=str(root), heartbeat_interval=0)
    exp.start()
    try:
        exp.dump_metric("loss", 1.0, step=0)
        exp.flush()
        age(root)
        w = Watcher(root)
        assert w.load()["status"].tolist() == ["running"]
        t0 = w.change_token()
        fresh = Watcher(root)  # has loaded nothing: knows no unfinished run, sees only the marks
        f0 = fresh.change_token()
        assert w.change_token() == t0 and fresh.change_token() == f0
        exp.dump_metric("loss", 0.5, step=1)
        exp.flush()  # metrics.json replaced: the writer marks the experiment folder
        t1 = w.change_token()
        assert t1 != t0 and fresh.change_token() != f0
        assert w.load()["metrics"].iloc[0]["loss"] == 0.5
    finally:
        exp.end()
    assert w.change_token() != t1  # ended: run.json rewritten


def test_unmarked_write_of_a_live_run_is_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that does not mark (an older version): the folders of unfinished runs are stat'ed too."""
    monkeypatch.setattr(_token, "_RACY_NS", 0)
    root = tmp_path / "store"
    d = write_run(root, "a", status="running", heartbeat=time.time())
    age(root, 5)
    w = Watcher(root, stale_after=3600)
    w.load()
    t0 = w.change_token()
    exp_dir = d.parent
    before = os.stat(exp_dir).st_mtime_ns
    (d / "metrics.json.tmp").write_text("{}")
    os.replace(d / "metrics.json.tmp", d / "metrics.json")
    assert os.stat(exp_dir).st_mtime_ns == before  # nothing marked the experiment folder
    assert w.change_token() != t0


def test_a_run_going_quiet_changes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an end record and with a stale heartbeat, a run turns crashed though no file changes."""
    monkeypatch.setattr(_token, "_RACY_NS", 0)
    root = tmp_path / "store"
    write_run(root, "a", status="running", heartbeat=time.time() - 2, host="elsewhere")
    age(root, 2)
    w = Watcher(root, stale_after=3.0)
    t0 = w.change_token()
    assert w.load()["status"].tolist() == ["running"]
    time.sleep(1.5)
    assert w.change_token() != t0
    assert w.load()["status"].tolist() == ["crashed"]


def test_recent_change_is_maybe_changed(store: Path) -> None:
    """Within the racy window (folder times are coarse) the token is new at every call."""
    w = Watcher(store)
    _token._RACY_NS = 3_000_000_000  # restored by monkeypatch
    write_run(store, "a", counter=9)
    assert w.change_token() != w.change_token()


def test_missing_store(tmp_path: Path) -> None:
    w = Watcher(tmp_path / "nothing")
    assert w.change_token() == w.change_token()
