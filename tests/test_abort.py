"""How runs end when nobody calls end(): real processes, real signals, real exits."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lumo_hydra.store.status import judge_status, parse_heartbeat

PY = sys.executable

HEADER = """
import os, signal, sys, time
from lumo_hydra.record.experiment import Experiment
from lumo_hydra.record.hooks import RecordAbort, LastCmd
exp = Experiment('abort', hooks=[RecordAbort(), LastCmd()], heartbeat_interval={hb})
exp.start()
exp.dump_metric('step', 1)
"""
WAIT = """
open(os.path.join(os.environ['READY_DIR'], 'ready'), 'w').write(exp.info_dir)
time.sleep(60)
"""


def start(tmp_path: Path, body: str, *, hb: float = 10.0, wait: bool = True) -> subprocess.Popen:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(HEADER.format(hb=hb)) + textwrap.dedent(body) + (textwrap.dedent(WAIT) if wait else ""))
    env = {**os.environ, "READY_DIR": str(tmp_path)}
    return subprocess.Popen([PY, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_ready(tmp_path: Path, proc: subprocess.Popen) -> Path:
    deadline = time.time() + 60
    ready = tmp_path / "ready"
    while time.time() < deadline:
        if ready.exists() and ready.read_text():
            return Path(ready.read_text())
        if proc.poll() is not None:
            raise AssertionError(f"job ended early: {proc.communicate()}")
        time.sleep(0.02)
    raise AssertionError("job never got ready")


def record(info: Path) -> dict:
    return json.loads((info / "run.json").read_text())


def only_run(home: Path) -> Path:
    runs = list((home / "experiments" / "abort").iterdir())
    assert len(runs) == 1
    return runs[0]


def test_sigkill_leaves_running_and_a_stale_heartbeat(tmp_path: Path, lumo_home: Path) -> None:
    proc = start(tmp_path, "", hb=0.2)
    info = wait_ready(tmp_path, proc)
    time.sleep(0.5)
    proc.kill()
    proc.communicate(timeout=30)
    rec = record(info)
    assert rec["status"] == "running" and rec["progress"]["end"] is None
    hb = parse_heartbeat((info / "heartbeat").read_text())
    assert hb is not None and time.time() - hb < 30
    time.sleep(0.6)
    assert parse_heartbeat((info / "heartbeat").read_text()) == hb  # nobody beats any more
    # readers infer crashed: at once from the dead pid on this host, later from the stale heartbeat
    assert judge_status(rec, hb, now=time.time()) == "crashed"
    assert judge_status(rec, hb, now=hb + 1, alive=None) == "running"
    assert judge_status(rec, hb, now=hb + 121, alive=None) == "crashed"


def test_sigterm_records_killed_and_exit_status_stays_sigterm(tmp_path: Path, lumo_home: Path) -> None:
    proc = start(tmp_path, "")
    info = wait_ready(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    rec = record(info)
    assert rec["status"] == "killed" and rec["progress"]["end_code"] == -15
    assert rec["progress"]["end"] is not None
    assert json.loads((info / "metrics.json").read_text())["step"]["count"] == 1  # flushed on the way out


def test_sigterm_chains_to_a_python_handler_installed_before(tmp_path: Path, lumo_home: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys, time
        def graceful(signum, frame):
            print('previous handler called', flush=True)
            sys.exit(7)
        signal.signal(signal.SIGTERM, graceful)
        from lumo_hydra.record.experiment import Experiment
        from lumo_hydra.record.hooks import RecordAbort
        exp = Experiment('abort', hooks=[RecordAbort()]).start()
        open(os.path.join(os.environ['READY_DIR'], 'ready'), 'w').write(exp.info_dir)
        time.sleep(60)
    """))
    proc = subprocess.Popen([PY, str(script)], env={**os.environ, "READY_DIR": str(tmp_path)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info = wait_ready(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert "previous handler called" in out and proc.returncode == 7, err
    assert record(info)["status"] == "killed"


def test_sigint_records_interrupted(tmp_path: Path, lumo_home: Path) -> None:
    proc = start(tmp_path, "")
    info = wait_ready(tmp_path, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    rec = record(info)
    assert rec["status"] == "interrupted" and rec["exception"]["type"] == "KeyboardInterrupt"


def test_sigint_with_default_action_records_interrupted(tmp_path: Path, lumo_home: Path) -> None:
    proc = start(tmp_path, "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
                           "exp2 = Experiment('abort', hooks=[RecordAbort()]).start()\nexp.end(); exp = exp2\n")
    info = wait_ready(tmp_path, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGINT
    assert record(info)["status"] == "interrupted"


def test_exception_records_failed_with_traceback(tmp_path: Path, lumo_home: Path) -> None:
    proc = start(tmp_path, "def train():\n    raise RuntimeError('loss is nan')\ntrain()\n", wait=False)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "RuntimeError: loss is nan" in err  # the previous excepthook still prints
    rec = record(only_run(lumo_home))
    assert rec["status"] == "failed" and rec["progress"]["end_code"] == 1
    exc = rec["exception"]
    assert exc["type"] == "RuntimeError" and exc["msg"] == "loss is nan" and "in train" in exc["traceback"]


@pytest.mark.parametrize("call, code, status", [("sys.exit(3)", 3, "failed"), ("sys.exit(0)", 0, "finished"),
                                                ("exit(4)", 4, "failed"), ("sys.exit('bye')", 1, "failed")])
def test_sys_exit_is_recorded_with_its_code(tmp_path: Path, lumo_home: Path, call: str, code: int, status: str) -> None:
    proc = start(tmp_path, call + "\n", wait=False)
    proc.communicate(timeout=30)
    assert proc.returncode == code
    rec = record(only_run(lumo_home))
    assert rec["status"] == status and rec["progress"]["end_code"] == code
    assert rec["progress"]["ended_by"] == "sys.exit"


def test_script_ending_without_end_is_recorded_at_exit(tmp_path: Path, lumo_home: Path) -> None:
    proc = start(tmp_path, "print('done')\n", wait=False)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "done" in out
    rec = record(only_run(lumo_home))
    assert rec["status"] == "finished" and rec["progress"]["ended_by"] == "atexit"


def test_many_experiments_in_one_process_install_once(tmp_path: Path, lumo_home: Path) -> None:
    """Like Hydra's basic launcher: several jobs in one process; the handlers chain once, not in a loop."""
    proc = start(tmp_path, textwrap.dedent("""
        exp.end()
        for i in range(5):
            e = Experiment('abort2', hooks=[RecordAbort()]).start()
            e.end()
        assert signal.getsignal(signal.SIGTERM).__module__ == 'lumo_hydra.record.abort'
        from lumo_hydra.record import abort
        assert abort._prev_handlers[signal.SIGTERM] is signal.SIG_DFL, abort._prev_handlers
        exp = Experiment('abort', hooks=[RecordAbort()]).start()
    """))
    info = wait_ready(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM, err
    assert record(info)["status"] == "killed"
    statuses = {json.loads((r / "run.json").read_text())["status"] for r in (lumo_home / "experiments" / "abort2").iterdir()}
    assert statuses == {"finished"}


def test_forked_child_does_not_end_the_parents_run(tmp_path: Path, lumo_home: Path) -> None:
    proc = start(tmp_path, textwrap.dedent("""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, b"x")  # ready: Python's signal state is set up in the child
            time.sleep(60)
            os._exit(0)
        os.read(r, 1)
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    """))
    info = wait_ready(tmp_path, proc)
    assert record(info)["status"] == "running"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert record(info)["status"] == "killed"


def test_start_from_a_thread_records_that_signals_are_not_handled(tmp_path: Path, lumo_home: Path) -> None:
    script = tmp_path / "thread.py"
    script.write_text(textwrap.dedent("""
        import json, signal, threading
        from lumo_hydra.record.experiment import Experiment
        from lumo_hydra.record.hooks import RecordAbort
        out = {}
        def job():
            exp = Experiment('abort', hooks=[RecordAbort()], heartbeat_interval=0).start()
            out['msg'] = exp.record['hooks']['RecordAbort']
            exp.end()
        t = threading.Thread(target=job); t.start(); t.join()
        out['sigterm'] = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        print(json.dumps(out))
    """))
    r = subprocess.run([PY, str(script)], capture_output=True, text=True, check=True)
    out = json.loads(r.stdout)
    assert out["sigterm"] is True
    assert out["msg"]["loaded"] is True and "not the main thread" in out["msg"]["msg"]


def test_sigterm_survived_by_a_python_handler_keeps_the_run_open(tmp_path: Path, lumo_home: Path) -> None:
    """Like submitit's handler, which only logs SIGTERM: killed is written, and a normal end overrides it."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import json, os, signal, sys, time
        got = []
        signal.signal(signal.SIGTERM, lambda s, f: got.append(s))
        from lumo_hydra.record.experiment import Experiment
        from lumo_hydra.record.hooks import RecordAbort
        exp = Experiment('abort', hooks=[RecordAbort()]).start()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        seen = json.load(open(os.path.join(exp.info_dir, 'run.json')))['status']
        exp.dump_metric('after', 1)
        exp.end()
        print(json.dumps([got, seen]))
    """))
    r = subprocess.run([PY, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got, seen = json.loads(r.stdout)
    assert got == [signal.SIGTERM] and seen == "killed"
    rec = record(only_run(lumo_home))
    assert rec["status"] == "finished" and "ended_by" not in rec["progress"] and rec["progress"]["end_code"] == 0


CATCH_CTRL_C = """
open(os.path.join(os.environ['READY_DIR'], 'ready'), 'w').write(exp.info_dir)
try:
    time.sleep(60)
except KeyboardInterrupt:  # e.g. a pool's worker loop, or a training loop stopping early
    rec_path = os.path.join(exp.info_dir, 'run.json')
    print('SEEN-AT-ONCE', open(rec_path).read().count('"interrupted"'), flush=True)
    exp.dump_metric('step', 2)
{after}
"""


@pytest.mark.parametrize("after, status", [("", "interrupted"), ("exp.end()", "finished")])
def test_11_10_ctrl_c_writes_interrupted_at_once_even_when_the_keyboardinterrupt_is_caught(
        tmp_path: Path, lumo_home: Path, after: str, status: str) -> None:
    proc = start(tmp_path, textwrap.dedent(CATCH_CTRL_C).format(after=after), wait=False)
    info = wait_ready(tmp_path, proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SEEN-AT-ONCE 1" in out  # the record said interrupted before the program went on
    rec = record(info)
    # caught and left without end(): still interrupted (not "finished" by atexit); an end() that follows
    # writes the real outcome
    assert rec["status"] == status, rec["progress"]
    assert rec["progress"]["end"] is not None
    if status == "interrupted":
        assert rec["progress"]["end_code"] == -2 and rec["progress"]["ended_by"] == "SIGINT"
    assert json.loads((info / "metrics.json").read_text())["step"]["count"] == 2


def test_11_10_a_users_own_sigint_handler_is_not_marked_interrupted(tmp_path: Path, lumo_home: Path) -> None:
    body = """
    import signal as _s
    _s.signal(_s.SIGINT, lambda *a: print('HANDLED', flush=True))
    from lumo_hydra.record import abort
    abort.install()  # our handler goes in front of the user's, and chains to it
    open(os.path.join(os.environ['READY_DIR'], 'ready'), 'w').write(exp.info_dir)
    time.sleep(1.0)
    print('STATUS', exp.status, flush=True)
    exp.end()
    """
    proc = start(tmp_path, body, wait=False)
    wait_ready(tmp_path, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "HANDLED" in out and "STATUS running" in out  # the program goes on: not an interruption
    assert record(only_run(lumo_home))["status"] == "finished"


def test_on_interrupted_runs_before_the_keyboardinterrupt_and_a_second_ctrl_c_cuts_it_short(
        tmp_path: Path, lumo_home: Path) -> None:
    body = """
    from lumo_hydra.record import abort
    def waiting():  # a sweep launcher waiting for its jobs: a second Ctrl-C must not wait again
        print('CALLBACK', exp.status, flush=True)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
        print('WAITED', flush=True)
    abort.on_interrupted(waiting)
    open(os.path.join(os.environ['READY_DIR'], 'ready'), 'w').write(exp.info_dir)
    try:
        time.sleep(30)
    except KeyboardInterrupt:
        print('KEYBOARDINTERRUPT', flush=True)
    """
    proc = start(tmp_path, body, wait=False)
    wait_ready(tmp_path, proc)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 20
    assert "CALLBACK interrupted" in out, err  # the run was marked before the callback ran
    assert "KEYBOARDINTERRUPT" in out and "WAITED" not in out, (out, err)
    assert record(only_run(lumo_home))["status"] == "interrupted"
