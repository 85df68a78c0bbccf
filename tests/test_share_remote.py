"""push/pull to fsspec URLs (lumo_hydra/share/remote.py, docs/share.md): file:// and memory:// always,
S3 through s3fs against moto's server on 127.0.0.1, sftp against a local sshd when there is one."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lumo_hydra.cli.app import main
from lumo_hydra.errors import LumoValueError
from lumo_hydra.share.remote import open_url, pull, push
from lumo_hydra.watcher import Watcher

SCRIPT = """
from lumo_hydra import SimpleExperiment
for i in range({n}):
    exp = SimpleExperiment("far", heartbeat_interval=0)
    exp.start()
    exp.dump_params({{"i": i}})
    exp.dump_metric("acc", i / 10, cmp="max")
    exp.end()
    print(exp.test_name)
"""


@pytest.fixture
def runs(tmp_path: Path, lumo_home: Path) -> list[str]:
    r = subprocess.run([sys.executable, "-c", SCRIPT.format(n=3)], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "LUMO_HOME": str(lumo_home)}, timeout=120)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.split() if re.fullmatch(r"\d{6}\.\d{3,}\.\w\wt", w)]


def _frame(root: Path) -> list[tuple[str, int, float]]:
    df = Watcher(root=str(root)).load(flatten=True)
    return sorted(zip(df["test_name"], df["params.i"], df["metrics.acc"]))


def _roundtrip(url: str, lumo_home: Path, runs: list[str], tmp_path: Path, listing: Any,
               options: dict[str, Any] | None = None) -> None:
    first = push(lumo_home, runs, url, storage_options=options)
    assert sorted(first.sent) == sorted(f"far/{t}" for t in runs) and first.bytes > 0
    names = listing()
    assert sorted(n for n in names if n.endswith(".tar.gz")) == sorted(f"far/{t}.tar.gz" for t in runs)
    assert sorted(n for n in names if n.endswith(".sha256")) == sorted(f"far/{t}.tar.gz.sha256" for t in runs)
    assert not [n for n in names if ".tmp-" in n]
    again = push(lumo_home, runs, url, storage_options=options)  # unchanged: nothing packed, nothing sent
    assert again.sent == [] and len(again.skipped) == 3
    second = tmp_path / "second"
    got = pull(url, second, storage_options=options)
    assert sorted(got.added) == sorted(f"far/{t}" for t in runs)
    assert _frame(second) == _frame(lumo_home)
    assert pull(url, second, storage_options=options).skipped == sorted(f"far/{t}" for t in runs)
    # one run changed: only it is sent again
    assert main(["note", runs[0], "changed", "--root", str(lumo_home)]) == 0
    third = push(lumo_home, runs, url, storage_options=options)
    assert third.sent == [f"far/{runs[0]}"] and len(third.skipped) == 2
    # pull one run by id into a third store
    one = pull(url, tmp_path / "third", [runs[1]], storage_options=options)
    assert one.added == [f"far/{runs[1]}"]


def test_push_pull_file_url(tmp_path: Path, lumo_home: Path, runs: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "nfs" / "runs"
    _roundtrip(f"file://{dest}", lumo_home, runs, tmp_path,
               lambda: [p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()])
    archive = dest / "far" / f"{runs[1]}.tar.gz"
    r = subprocess.run(["sha256sum", "-c", archive.name + ".sha256"], cwd=archive.parent, capture_output=True, text=True)
    assert r.returncode == 0 and "OK" in r.stdout  # the .sha256 is sha256sum's format
    # packs are reproducible: without the local cache, an unchanged run is still recognised and skipped
    monkeypatch.setenv("LUMO_CACHE_DIR", str(tmp_path / "fresh-cache"))
    assert push(lumo_home, runs[1:], f"file://{dest}").sent == []


def test_push_pull_memory_url(tmp_path: Path, lumo_home: Path, runs: list[str]) -> None:
    import fsspec

    name = f"lumo-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    _roundtrip(f"memory://{name}/lab", lumo_home, runs, tmp_path,
               lambda: [p.split(f"/{name}/lab/", 1)[1] for p in fs.find(f"/{name}/lab")])


def test_an_interrupted_push_leaves_nothing_at_the_destination(tmp_path: Path, lumo_home: Path, runs: list[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.implementations.local import LocalFileSystem

    def broken_mv(self: Any, *a: Any, **kw: Any) -> None:
        raise OSError("connection lost")

    monkeypatch.setattr(LocalFileSystem, "mv", broken_mv)
    dest = tmp_path / "dest"
    with pytest.raises(OSError, match="connection lost"):
        push(lumo_home, runs[:1], f"file://{dest}")
    assert [p for p in dest.rglob("*") if p.is_file()] == []  # no final name, no temporary file left


def test_cli_push_pull_json(tmp_path: Path, lumo_home: Path, runs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    import json

    url = f"file://{tmp_path / 'd'}"
    assert main(["push", *runs, url, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["sent"]) == 3
    assert main(["pull", url, "--root", str(tmp_path / "s2"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["added"]) == 3
    assert main(["pull", url, "nope", "--root", str(tmp_path / "s2")]) == 1
    assert "not at the destination" in capsys.readouterr().err


def test_a_missing_backend_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec.core

    def no_backend(url: str, **kw: Any) -> Any:
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec.core, "url_to_fs", no_backend)
    with pytest.raises(LumoValueError, match=r"pip install 'lumo-hydra\[s3\]'"):
        open_url("s3://bucket/runs")
    with pytest.raises(LumoValueError, match=r"pip install 'lumo-hydra\[sftp\]'"):
        open_url("sftp://lab/runs")
    with pytest.raises(LumoValueError, match="is not a URL"):
        open_url("/just/a/path")


# -- S3: moto's server on 127.0.0.1 ----------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_push_pull_s3(tmp_path: Path, lumo_home: Path, runs: list[str], s3_endpoint: str,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    options = {"endpoint_url": s3_endpoint, "skip_instance_cache": True}
    fs = s3fs.S3FileSystem(**options)
    bucket = f"lab-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    _roundtrip(f"s3://{bucket}/runs", lumo_home, runs, tmp_path,
               lambda: [p.split("/runs/", 1)[1] for p in s3fs.S3FileSystem(**options).find(f"{bucket}/runs")],
               options)


# -- sftp: a real sshd on 127.0.0.1 when openssh-server is installed -------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return int(sk.getsockname()[1])


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    import socket
    import time

    exe = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(exe) or shutil.which("ssh-keygen") is None:
        pytest.skip("no sshd here (openssh-server is not installed): sftp:// is not tested")
    pytest.importorskip("paramiko", reason="paramiko (the [sftp] extra) is not installed")
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_bytes((d / "client_key.pub").read_bytes())
    os.chmod(d / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
    port = _free_port()
    (d / "config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\n")
    proc = subprocess.Popen([exe, "-D", "-e", "-f", str(d / "config")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.skip(f"sshd did not start here: {proc.stdout.read().decode(errors='replace')[-300:]}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, d / "client_key"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_pull_sftp(tmp_path: Path, lumo_home: Path, runs: list[str], sshd: tuple[int, Path]) -> None:
    import getpass

    port, key = sshd
    dest = tmp_path / "lab-server" / "runs"
    options = {"key_filename": str(key), "look_for_keys": False, "allow_agent": False, "skip_instance_cache": True}
    _roundtrip(f"sftp://{getpass.getuser()}@127.0.0.1:{port}{dest}", lumo_home, runs, tmp_path,
               lambda: [p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()], options)


def test_progress_bars_only_for_more_than_a_few_runs_on_a_terminal(tmp_path: Path, lumo_home: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import lumo_hydra.cli.share as cli_share

    r = subprocess.run([sys.executable, "-c", SCRIPT.format(n=7)], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "LUMO_HOME": str(lumo_home)}, timeout=120)
    ids = [w for w in r.stdout.split() if re.fullmatch(r"\d{6}\.\d{3,}\.\w\wt", w)]
    assert len(ids) == 7 > cli_share.FEW
    shown: list[tuple[str, int, int]] = []

    class FakeProgress:  # rich's Progress, recorded
        def __init__(self, **kw: Any) -> None:
            pass

        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

        def add_task(self, label: str, total: int) -> str:
            shown.append((label, 0, total))
            return label

        def update(self, task: str, completed: int) -> None:
            shown.append((task, completed, shown[-1][2]))

    import rich.progress

    monkeypatch.setattr(rich.progress, "Progress", FakeProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["push", *ids, f"file://{tmp_path / 'd'}"]) == 0
    assert shown[0] == ("pushing", 0, 7) and shown[-1] == ("pushing", 7, 7)
    shown.clear()
    assert main(["push", *ids[:3], f"file://{tmp_path / 'd2'}"]) == 0  # a few runs: no bar
    assert main(["push", *ids, f"file://{tmp_path / 'd3'}", "--json"]) == 0  # --json: no bar
    assert shown == []
    capsys.readouterr()


def test_cli_a_backend_failure_is_one_line_naming_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("s3fs")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    assert main(["pull", "s3://no-such-bucket/runs", "--root", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert "pull from s3://no-such-bucket/runs:" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_a_no_op_push_trusts_the_ledger_and_verify_resends_a_run_deleted_there(
        tmp_path: Path, lumo_home: Path, runs: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import fsspec.core

    dest = tmp_path / "lab"
    url = f"file://{dest}"
    assert push(lumo_home, runs, url).sent == [f"far/{t}" for t in runs]
    gone = dest / "far" / f"{runs[0]}.tar.gz"
    gone.unlink()  # deleted at the destination behind this machine's back

    def no_backend(*a: Any, **kw: Any) -> Any:
        raise AssertionError("a trusted no-op push must not open the destination")

    with monkeypatch.context() as m:
        m.setattr(fsspec.core, "url_to_fs", no_backend)
        again = push(lumo_home, runs, url)  # trusted: seen there within the hour, unchanged
        assert again.trusted and again.sent == [] and len(again.skipped) == 3
        assert main(["push", *runs, url, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["trusted"] is True
    assert main(["push", *runs, url, "--verify", "--json"]) == 0  # looks: the deleted run is sent again
    out = json.loads(capsys.readouterr().out)
    assert out["sent"] == [f"far/{runs[0]}"] and not out["trusted"] and gone.is_file()
    gone.unlink()
    late = push(lumo_home, runs, url, verify_after=0)  # the ledger is too old to trust: the destination is listed
    assert late.sent == [f"far/{runs[0]}"] and not late.trusted
    # a changed run is never trusted; another endpoint (storage options, AWS_ENDPOINT_URL) is another destination
    assert main(["note", runs[1], "changed", "--root", str(lumo_home)]) == 0
    assert push(lumo_home, runs, url).sent == [f"far/{runs[1]}"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert not push(lumo_home, runs, url).trusted
