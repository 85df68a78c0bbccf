"""Issue 12: console output recorded (output.log, Hydra files), `logs`, launch-time option checks, CLI
errors (did-you-mean, unusable store) and the run report line. Real Hydra apps and scripts as
subprocesses; a real pseudo-terminal where the terminal matters."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lumo_hydra.cli.app import main as cli

HYDRA_APP = textwrap.dedent('''
    import logging, subprocess, sys
    import lumo_hydra
    log = logging.getLogger(__name__)

    @lumo_hydra.main(config_path=None, config_name=None, version_base=None)
    def my_app(cfg):
        print("printed line", cfg.get("x"))
        log.info("logged line")
        print("stderr line", file=sys.stderr)
        subprocess.run([sys.executable, "-c", "print('child line')"])
        if cfg.get("fail"):
            raise RuntimeError("boom in the task")
        return {"final_acc": 0.75, "train_seconds": 4.5}

    if __name__ == "__main__":
        my_app()
''')

PLAIN = textwrap.dedent('''
    import sys, lumo_hydra
    exp = lumo_hydra.SimpleExperiment("plain_exp")
    with exp:
        print("plain stdout", flush=True)
        print("plain stderr", file=sys.stderr, flush=True)
        print("tty", sys.stdout.isatty(), sys.stderr.isatty(), flush=True)
        for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 0):
            print("filler line number", i)
''')


def _run(tmp_path: Path, home: Path, src: str, *args: str, env: dict[str, str] | None = None,
         name: str = "my_app.py") -> subprocess.CompletedProcess[str]:
    (tmp_path / name).write_text(src)
    e = {**os.environ, "LUMO_HOME": str(home), **(env or {})}
    e.pop("LUMO_QUIET", None)
    return subprocess.run([sys.executable, name, *args], cwd=tmp_path, env=e, capture_output=True, text=True,
                          timeout=120)


def _runs(home: Path, exp: str) -> list[Path]:
    return sorted((home / "experiments" / exp).iterdir())


def test_hydra_job_output_recorded_and_hydra_files_copied(tmp_path: Path) -> None:
    home = tmp_path / "store"
    p = _run(tmp_path, home, HYDRA_APP, "+x=7")
    assert p.returncode == 0, p.stderr
    (info,) = _runs(home, "my_app")
    log = (info / "output.log").read_text()
    for line in ("printed line 7", "logged line", "stderr line", "child line", "returned: final_acc=0.75"):
        assert line in log, line
    # the terminal saw the same (unchanged): prints on stdout, stderr on stderr
    assert "printed line 7" in p.stdout and "child line" in p.stdout and "stderr line" in p.stderr
    names = sorted(f.name for f in (info / "hydra").iterdir())
    assert names == ["config.yaml", "hydra.yaml", "my_app.log", "overrides.yaml"]
    assert "x=7" in (info / "hydra" / "overrides.yaml").read_text()
    assert "logged line" in (info / "hydra" / "my_app.log").read_text()


def test_failed_job_log_has_traceback(tmp_path: Path) -> None:
    home = tmp_path / "store"
    p = _run(tmp_path, home, HYDRA_APP, "+fail=true")
    assert p.returncode == 1
    (info,) = _runs(home, "my_app")
    log = (info / "output.log").read_text()
    assert "printed line" in log and "RuntimeError: boom in the task" in log


def test_report_line_names_experiment_and_returned_values(tmp_path: Path) -> None:
    home = tmp_path / "store"
    p = _run(tmp_path, home, HYDRA_APP)
    report = p.stdout[p.stdout.index("lumo-hydra run"):]
    assert "experiment: my_app (choose it with +hydra.callbacks.lumo.exp_name=NAME)" in report
    assert "returned: final_acc=0.75 train_seconds=4.5" in report
    assert "best:" not in report  # returned values are not best metrics


def test_plain_script_output_and_size_limit(tmp_path: Path) -> None:
    home = tmp_path / "store"
    p = _run(tmp_path, home, PLAIN, "5000", env={"LUMO_OUTPUT_LIMIT": "20000"}, name="plain.py")
    assert p.returncode == 0, p.stderr
    (info,) = _runs(home, "plain_exp")
    log = (info / "output.log").read_text()
    # two pipes here: one channel each; a channel keeps its order (stderr may land in the cut middle)
    lines = log.splitlines()
    assert lines.index("plain stdout") < lines.index("tty False False") \
        < lines.index("filler line number 0")
    assert "bytes of output not recorded here (limit 20000 bytes, LUMO_OUTPUT_LIMIT)" in log
    assert "filler line number 4999" in log and "filler line number 2500\n" not in log
    assert len(log.encode()) < 20000 + 300
    assert "filler line number 2500\n" in p.stdout  # the terminal got everything


@pytest.mark.skipif(sys.platform == "win32", reason="pty")
def test_terminal_stays_a_terminal(tmp_path: Path) -> None:
    import pty

    home = tmp_path / "store"
    (tmp_path / "plain.py").write_text(PLAIN)
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover (child)
        os.chdir(tmp_path)
        os.environ["LUMO_HOME"] = str(home)
        os.execv(sys.executable, [sys.executable, "plain.py"])
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"tty True True\r\n" in seen  # isatty unchanged, one newline translation (the terminal's)
    (info,) = _runs(home, "plain_exp")
    log = (info / "output.log").read_bytes()
    assert b"plain stdout\nplain stderr\ntty True True\n" in log and b"\r" not in log


def test_output_switch_off(tmp_path: Path) -> None:
    home = tmp_path / "store"
    p = _run(tmp_path, home, HYDRA_APP, "+hydra.callbacks.lumo.output=false")
    assert p.returncode == 0, p.stderr
    (info,) = _runs(home, "my_app")
    assert not (info / "output.log").exists()
    assert json.loads((info / "run.json").read_text())["hooks"]["ConsoleOutput"]["msg"] == "disabled"


def test_logs_and_show_paths(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "store"
    assert _run(tmp_path, home, HYDRA_APP, "+x=3").returncode == 0
    (info,) = _runs(home, "my_app")
    capfd.readouterr()
    assert cli(["--root", str(home), "logs", info.name]) == 0
    out = capfd.readouterr().out
    assert "printed line 3" in out and "child line" in out
    assert cli(["--root", str(home), "logs", "-f", info.name]) == 0  # finished run: -f ends
    assert cli(["--root", str(home), "show", info.name]) == 0
    out = capfd.readouterr().out
    assert str(info / "output.log") in out and str(info / "hydra" / "my_app.log") in out


@pytest.mark.parametrize("option,message", [
    ("exp_name=bad/name", "invalid option hydra.callbacks.lumo.exp_name='bad/name'"),
    ("heartbeat_interval=-1", "invalid option hydra.callbacks.lumo.heartbeat_interval=-1"),
    ("git=maybe", "invalid option hydra.callbacks.lumo.git='maybe'; allowed: true or false"),
    ("gti=false", "unknown option hydra.callbacks.lumo.gti=False; did you mean 'git'?"),
])
@pytest.mark.parametrize("multirun", [False, True])
def test_bad_callback_option_stops_before_any_job(tmp_path: Path, option: str, message: str,
                                                  multirun: bool) -> None:
    home = tmp_path / "store"
    args = ["-m", "+x=1,2"] if multirun else []
    p = _run(tmp_path, home, HYDRA_APP, *args, f"+hydra.callbacks.lumo.{option}")
    assert p.returncode == 1
    assert message in p.stderr
    assert "printed line" not in p.stdout  # no job ran
    assert not (home / "experiments").exists() or not any((home / "experiments").iterdir())


@pytest.mark.parametrize("argv,expected", [
    (["lsit"], "did you mean 'list'?"),
    (["list", "--staus", "running"], "did you mean '--status'?"),
    (["show", "--jsn", "x"], "did you mean '--json'?"),
])
def test_did_you_mean(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    if argv[0] != "lsit":  # a flag error shows the subcommand's usage
        assert f"usage: lumo-hydra {argv[0]} " in err


@pytest.mark.parametrize("cmd", [["list"], ["show", "x"], ["logs", "x"], ["note", "x", "hi"], ["tag", "x", "+a"]])
def test_store_is_a_file(tmp_path: Path, cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "notadir"
    f.write_text("")
    assert cli(["--root", str(f), *cmd]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(f) in err and "Traceback" not in err
    assert "must be a folder" in err or "no run" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_store_read_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "store"
    assert _run(tmp_path, home, HYDRA_APP).returncode == 0
    (info,) = _runs(home, "my_app")
    for p in [home, *home.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        assert cli(["--root", str(home), "note", info.name, "hi"]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "Permission denied" in err and "write access" in err
    finally:
        for p in [home, *home.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)


def _ro_bind(src: Path, dst: Path) -> bool:
    """A read-only bind mount of ``src`` at ``dst`` (root, where mounting is allowed)."""
    dst.mkdir()
    if os.geteuid() != 0:
        return False
    ok = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], capture_output=True).returncode:
        subprocess.run(["umount", str(dst)], capture_output=True)
        return False
    return ok


@pytest.mark.parametrize("cmd", [["note", "RUN", "hi"], ["tag", "RUN", "t1"], ["rm", "--yes", "RUN"]])
def test_store_on_a_read_only_file_system(tmp_path: Path, cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "store"
    assert _run(tmp_path, home, HYDRA_APP).returncode == 0
    (info,) = _runs(home, "my_app")
    ro = tmp_path / "ro"
    if not _ro_bind(home, ro):
        pytest.skip("needs root and permission to mount (a read-only bind mount)")
    try:
        code = cli(["--root", str(ro), *[info.name if c == "RUN" else c for c in cmd]])
        err = capsys.readouterr().err.strip()
        assert code == 1, err
        assert "\n" not in err and "Traceback" not in err and "Read-only file system" in err and str(ro) in err
        assert (info / "run.json").is_file()  # nothing removed
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


def test_watcher_on_a_store_that_is_a_file_names_it(tmp_path: Path) -> None:
    from lumo_hydra.errors import StoreError
    from lumo_hydra.watcher import Watcher

    f = tmp_path / "notadir"
    f.write_text("")
    for call in (lambda w: w.load(), lambda w: w.load(flatten=True), lambda w: w.select(limit=3)):
        with pytest.raises(StoreError, match="must be a folder") as e:
            call(Watcher(str(f)))
        assert str(f) in str(e.value)


def test_watcher_load_takes_a_where_expression(tmp_path: Path) -> None:
    from lumo_hydra.watcher import Watcher

    home = tmp_path / "store"
    for x in ("1", "7"):
        assert _run(tmp_path, home, HYDRA_APP, f"+x={x}").returncode == 0
    w = Watcher(str(home))
    assert len(w.load()) == 2
    df = w.load(flatten=True, where="params.x > 3")
    assert df["params.x"].tolist() == [7]


def test_rerun_outputs_go_where_the_original_went(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=proj, check=True)
    (proj / "my_app.py").write_text(HYDRA_APP)
    subprocess.run(["git", "add", "my_app.py"], cwd=proj, check=True)
    subprocess.run(["git", "commit", "-qm", "app"], cwd=proj, check=True)
    home = tmp_path / "store"
    p = _run(proj, home, HYDRA_APP, "+x=5", "hydra.run.dir=outs/${now:%H%M%S%f}")
    assert p.returncode == 0, p.stderr
    (orig,) = _runs(home, "my_app")
    capfd.readouterr()
    assert cli(["--root", str(home), "rerun", "--dry-run", orig.name]) == 0
    out, err = capfd.readouterr()
    assert out.startswith(f"cd {proj} && ") and "+x=5" in out and "hydra.run.dir=" in out
    assert "lumo-rerun-" not in out  # no path that never exists
    assert cli(["--root", str(home), "rerun", orig.name]) == 0
    rerun = next(r for r in _runs(home, "my_app") if r != orig)
    rec = json.loads((rerun / "run.json").read_text())
    assert rec["rerun_of"] == orig.name
    assert rec["execute"]["cwd"] == str(proj) and rec["execute"]["repo"] == str(proj)
    assert rec["rerun"]["snapshot"] == json.loads((orig / "run.json").read_text())["git"]["commit"]
    out_dir = Path(rec["hydra"]["output_dir"])
    assert out_dir.is_dir() and out_dir.parent == proj / "outs"  # still there after the rerun
    assert "printed line 5" in (rerun / "output.log").read_text()


def test_logs_follow_a_running_run(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import time

    home = tmp_path / "store"
    (tmp_path / "slow.py").write_text(textwrap.dedent('''
        import time, lumo_hydra
        with lumo_hydra.SimpleExperiment("slow_exp", heartbeat_interval=1):
            for i in range(5):
                print("tick", i, flush=True)
                time.sleep(0.4)
    '''))
    proc = subprocess.Popen([sys.executable, "slow.py"], cwd=tmp_path, env={**os.environ, "LUMO_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if (home / "experiments" / "slow_exp").is_dir() and any((home / "experiments" / "slow_exp").iterdir()):
                break
            time.sleep(0.05)
        (info,) = _runs(home, "slow_exp")
        capfd.readouterr()
        assert cli(["--root", str(home), "logs", "-f", "--interval", "0.1", info.name]) == 0
        out = capfd.readouterr().out
        assert proc.wait(30) == 0
        assert "tick 4" in out and "finished" in out  # followed to the end, not just what was there
    finally:
        proc.kill()
