"""Issue 11 (writes that never fail user code): regression tests with real processes and a real full disk."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent('''
    import os, sys
    from lumo_hydra.record.experiment import Experiment
    exp = Experiment("full", hooks=[]) if "hooks" in Experiment.__init__.__code__.co_varnames else Experiment("full")
    exp.start()
    print(exp.info_dir, flush=True)
    # fill the disk: the run is started, every later write meets ENOSPC
    with open(os.path.join(sys.argv[1], "filler"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 65536)
                f.flush()
        except OSError:
            pass
    for i in range(5000):
        exp.dump_metric("loss", float(i), cmp="min")
        if i % 1000 == 0:
            exp.flush()
    if sys.argv[2] == "free":
        os.unlink(os.path.join(sys.argv[1], "filler"))
    exp.end()  # must not raise
    print("USER-CODE-DONE", flush=True)
''')


def _tmpfs(tmp_path: Path, size: str) -> Path:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.decode().strip()}")
    return mnt


@pytest.mark.parametrize("free", ["free", "full"])
def test_11_2_full_disk_after_start_never_raises_and_loses_no_point(tmp_path: Path, free: str) -> None:
    mnt = _tmpfs(tmp_path, "2m")
    try:
        env = dict(os.environ, LUMO_HOME=str(mnt / "home"))
        script = tmp_path / "s.py"
        script.write_text(SCRIPT)
        r = subprocess.run([sys.executable, str(script), str(mnt), free], capture_output=True, text=True, env=env,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        assert "USER-CODE-DONE" in r.stdout
        assert r.stderr.count("lumo-hydra: cannot write") == 1, r.stderr  # warned once
        info = Path(r.stdout.splitlines()[0])
        rec = json.loads((info / "run.json").read_text())
        if free == "free":  # room again before end(): the retry at end() writes everything and says so
            assert rec["status"] == "finished"
            assert rec["store_errors"]["count"] >= 1 and rec["store_errors"]["dropped_points"] == 0
            pts = (info / "history.jsonl").read_bytes().splitlines()
            assert len(pts) == 5000  # points lost on a full disk: 0
            assert json.loads((info / "metrics.json").read_text())["loss"]["count"] == 5000  # agrees with history
        lines = (info / "history.jsonl").read_bytes().split(b"\n") if (info / "history.jsonl").exists() else [b""]
        assert lines[-1] == b""  # never a partial last line
        for ln in lines[:-1]:
            json.loads(ln)  # never glued
        if (info / "metrics.json").exists():  # metrics.json never counts points the history does not hold
            assert json.loads((info / "metrics.json").read_text())["loss"]["count"] <= len(lines) - 1
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_11_2_full_disk_points_kept_in_memory_and_written_at_retry(tmp_path: Path) -> None:
    mnt = _tmpfs(tmp_path, "2m")
    try:
        os.environ["LUMO_HOME_TEST"] = "1"
        from lumo_hydra.store.writer import RunWriter

        info = mnt / "run"
        info.mkdir()
        w = RunWriter(info, {"status": "running", "progress": {}})
        w.write_record()
        w.start_heartbeat(0)
        filler = mnt / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"x" * 65536)
                    f.flush()
            except OSError:
                pass
        for i in range(20000):
            w.dump_metric("loss", float(i), cmp="min")
        w.flush()  # fails: nothing raised, points kept
        assert len(w._buf) == 20000
        hist = info / "history.jsonl"
        assert not hist.exists() or hist.read_bytes().count(b"\n") * 0 == 0
        if hist.exists():
            data = hist.read_bytes()
            assert data == b"" or data.endswith(b"\n")
        filler.unlink()
        w.flush()  # the retry writes every point
        pts = [json.loads(x) for x in hist.read_bytes().splitlines()]
        assert len(pts) == 20000 and w.dropped == 0  # points lost: 0
        assert [p["v"] for p in pts] == [float(i) for i in range(20000)]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_11_2_start_on_a_full_disk_raises_store_error_and_leaves_no_folder(tmp_path: Path) -> None:
    mnt = _tmpfs(tmp_path, "1m")
    try:
        code = textwrap.dedent('''
            import os, sys
            from lumo_hydra.errors import StoreError
            from lumo_hydra.record.experiment import Experiment
            Experiment("x").start().end()
            with open(os.path.join(sys.argv[1], "filler"), "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"x" * 4096)
                        f.flush()
                except OSError:
                    pass
            try:
                Experiment("x").start()
            except StoreError as e:
                print("STORE-ERROR", e)
            else:
                print("TASK-RAN")
        ''')
        env = dict(os.environ, LUMO_HOME=str(mnt / "home"))
        r = subprocess.run([sys.executable, "-c", code, str(mnt)], capture_output=True, text=True, env=env,
                           timeout=120)
        assert "STORE-ERROR" in r.stdout, (r.stdout, r.stderr)
        runs = list((mnt / "home" / "experiments" / "x").iterdir())
        assert len(runs) == 1 and (runs[0] / "run.json").exists()  # no empty claimed folder
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_11_14_dump_metric_refuses_what_is_not_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from lumo_hydra.record.experiment import Experiment

    monkeypatch.setenv("LUMO_HOME", str(tmp_path / "home"))
    exp = Experiment("m").start()
    try:
        for ok in (1, 2.5, True, np.float32(1.5), np.int64(3), np.array(4.0), np.array([3.0]), float("nan")):
            exp.dump_metric("ok", ok)
        for bad, tname in (("1.5", "str"), ("nan", "str"), (b"1", "bytes"), (np.array([1.0, 2.0]), "ndarray"),
                           (None, "NoneType"), ([1.0], "list"), (np.array([[3.0]]), "ndarray")):
            with pytest.raises(TypeError, match=rf"'acc' \(type .*{tname}(, shape .*)?\)"):
                exp.dump_metric("acc", bad)
        assert "acc" not in exp.metrics  # nothing half-recorded
    finally:
        exp.end()


ND_SCRIPT = textwrap.dedent('''
    import numpy as np, torch
    from lumo_hydra.record.experiment import Experiment
    exp = Experiment("nd", hooks=[]).start()
    exp.dump_metric("acc", np.array([0.5]))  # shape (1,): one element, 1-d: accepted
    exp.dump_metric("loss", torch.tensor([0.25]))
    for key, bad in (("acc", np.array([[3.0]])), ("loss", torch.tensor([[[1.0]]]))):
        try:
            exp.dump_metric(key, bad)
        except TypeError as e:
            print("REFUSED", e)
    exp.end()
    print(exp.info_dir)
''')


def test_11_14_dump_metric_refuses_a_2d_one_element_array_naming_key_and_shape(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    env = dict(os.environ, LUMO_HOME=str(tmp_path / "home"))
    r = subprocess.run([sys.executable, "-c", ND_SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    refused = [ln for ln in r.stdout.splitlines() if ln.startswith("REFUSED")]
    assert len(refused) == 2, r.stdout
    assert "'acc'" in refused[0] and "numpy.ndarray" in refused[0] and "shape (1, 1)" in refused[0]
    assert "'loss'" in refused[1] and "torch.Tensor" in refused[1] and "shape (1, 1, 1)" in refused[1]
    assert all("allowed: a number" in x and "shape () or (1,)" in x and "float(x.mean())" in x for x in refused)
    info = Path(r.stdout.splitlines()[-1])
    metrics = json.loads((info / "metrics.json").read_text())
    assert metrics["acc"]["count"] == 1 and metrics["acc"]["last"] == 0.5  # nothing half-recorded
    assert metrics["loss"]["count"] == 1 and metrics["loss"]["last"] == 0.25


SLOW_HOOK_SCRIPT = textwrap.dedent('''
    import os, sys
    from lumo_hydra.record.experiment import Experiment
    from lumo_hydra.record.hooks import Diary, ExpHook

    def fill(mnt):
        with open(os.path.join(mnt, "filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"x" * 4096)
            except OSError:
                pass

    class SlowHook(ExpHook):  # not quick: start() writes the record before it, and again after it
        quick = False
        def on_start(self, exp):
            if sys.argv[2] == "fill-in-hook":
                fill(sys.argv[1])

    mnt, mode = sys.argv[1], sys.argv[2]
    Experiment("d", hooks=[Diary()]).start().end()  # today's diary file exists, with room in its last page
    exp = Experiment("d", hooks=[SlowHook(), Diary()])
    exp.start()  # must not raise once the run exists (the disk fills during the slow hook)
    print(exp.info_dir, flush=True)
    print("TASK-RUNS", flush=True)
    if mode == "fill-after-start":
        fill(mnt)
    for i in range(300):
        exp.dump_metric("loss", float(i))
    if os.environ.get("FREE_BEFORE_END"):
        os.unlink(os.path.join(mnt, "filler"))
    exp.end()
    print("USER-CODE-DONE", flush=True)
''')


def _diary_statuses(home: Path) -> dict[str, str]:
    out = {}
    for f in (home / "diary").glob("*.log"):
        for ln in f.read_text().splitlines():
            fields = ln.split("\t")
            out[fields[2]] = fields[3]
    return out


@pytest.mark.parametrize("mode", ["fill-in-hook", "fill-after-start"])
def test_11_2_disk_full_until_exit_diary_and_run_json_never_disagree(tmp_path: Path, mode: str) -> None:
    mnt = _tmpfs(tmp_path, "1m")
    try:
        env = dict(os.environ, LUMO_HOME=str(mnt / "home"))
        r = subprocess.run([sys.executable, "-c", SLOW_HOOK_SCRIPT, str(mnt), mode], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0 and "USER-CODE-DONE" in r.stdout, (r.stdout, r.stderr)
        assert r.stderr.count("lumo-hydra: cannot write") == 1, r.stderr  # warned once, with the path
        info = Path(r.stdout.splitlines()[0])
        assert str(info) in r.stderr and "free space" in r.stderr
        rec = json.loads((info / "run.json").read_text())
        diary = _diary_statuses(mnt / "home")
        assert len(diary) >= 1  # the first run's line
        # run.json could not take the end: it still says running, and the diary does not claim an end
        assert rec["status"] == "running" and rec["progress"]["end"] is None
        assert info.name not in diary, (diary, rec["status"])
        for test_name, status in diary.items():  # every line the diary has agrees with its run.json
            other = json.loads((mnt / "home" / "experiments" / "d" / test_name / "run.json").read_text())
            assert other["status"] == status
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_11_2_run_json_write_after_slow_hooks_on_a_full_disk_is_recorded_and_retried(tmp_path: Path) -> None:
    mnt = _tmpfs(tmp_path, "1m")
    try:
        env = dict(os.environ, LUMO_HOME=str(mnt / "home"), FREE_BEFORE_END="1")
        r = subprocess.run([sys.executable, "-c", SLOW_HOOK_SCRIPT, str(mnt), "fill-in-hook"], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr and "TASK-RUNS" in r.stdout and "USER-CODE-DONE" in r.stdout
        assert r.stderr.count("lumo-hydra: cannot write") == 1, r.stderr
        info = Path(r.stdout.splitlines()[0])
        rec = json.loads((info / "run.json").read_text())
        # the write after the hooks failed, was recorded, and the end (room again) wrote everything
        assert rec["status"] == "finished" and rec["store_errors"]["count"] >= 1
        assert "run.json" in rec["store_errors"]["last"] or "heartbeat" in rec["store_errors"]["last"]
        assert rec["hooks"]["SlowHook"]["loaded"] is True and rec["hooks"]["Diary"]["loaded"] is True
        assert _diary_statuses(mnt / "home")[info.name] == "finished"
        assert len((info / "history.jsonl").read_bytes().splitlines()) == 300  # no point lost
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
