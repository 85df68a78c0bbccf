"""Backups (lumo_hydra/share/backup.py): ``exp.backup('local', ...)`` + ``Experiment.from_disk`` on the
unpacked folders, and ``exp.backup('github', ...)`` against a local HTTP server that implements GitHub's
create/get/update issue endpoints, checks the token header and the body size."""
from __future__ import annotations

import json
import os
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lumo_hydra import SimpleExperiment
from lumo_hydra.cli.app import main
from lumo_hydra.errors import LumoValueError
from lumo_hydra.record.experiment import Experiment
from lumo_hydra.store.reader import read_record

TOKEN = "ghp_TEST" + "x7" * 18


class FakeGitHub(BaseHTTPRequestHandler):
    """POST /repos/o/n/issues, GET/PATCH /repos/o/n/issues/<n>; 401 without the right token."""

    issues: dict[int, dict[str, Any]] = {}
    calls: list[tuple[str, str]] = []
    bodies: list[int] = []

    def log_message(self, *a: Any) -> None:
        pass

    def _reply(self, code: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        self.calls.append((self.command, self.path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(401, {"message": "Bad credentials"})
        if not self.path.startswith("/api/v3/repos/owner/name/issues"):
            return self._reply(404, {"message": "Not Found"})
        n = int(self.path.rsplit("/", 1)[1]) if self.path.rstrip("/").split("/")[-1].isdigit() else None
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if "body" in body:
            self.bodies.append(len(body["body"]))
            if len(body["body"]) > 65536:
                return self._reply(422, {"message": "body is too long (maximum is 65536 characters)"})
        if self.command == "POST" and n is None:
            n = len(self.issues) + 1
            self.issues[n] = {"number": n, "state": "open", **body}
            return self._reply(201, self.issues[n])
        if n not in self.issues:
            return self._reply(404, {"message": "Not Found"})
        if self.command == "PATCH":
            self.issues[n].update(body)
        return self._reply(200, self.issues[n])

    do_GET = do_POST = do_PATCH = _handle


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs are recorded in this process: outside the project's own repository (no snapshot refs there)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    FakeGitHub.issues, FakeGitHub.calls, FakeGitHub.bodies = {}, [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    api = f"http://127.0.0.1:{server.server_address[1]}/api/v3"
    monkeypatch.setenv("LUMO_GITHUB_API", api)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def _a_run(big: bool = False) -> SimpleExperiment:
    exp = SimpleExperiment("bk", heartbeat_interval=0)
    exp.start()
    exp.dump_params({"lr": 0.1, "data": os.path.expanduser("~/data/train.csv"),
                     "notes": "n" * (200_000 if big else 10)})
    exp.dump_metric("acc", 0.93, cmp="max")
    with open(exp.mk_bpath("model.bin"), "wb") as f:
        f.write(b"weights")
    exp.end()
    return exp


def _store_text(*roots: Path) -> str:
    out = []
    for root in roots:
        for p in root.rglob("*") if root.exists() else []:
            if p.is_file():
                out.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(out)


def test_backup_github_creates_closes_and_updates_one_issue(github: str, lumo_home: Path) -> None:
    exp = _a_run(big=True)
    n = exp.backup("github", repo="owner/name", access_token=TOKEN, labels=["lumo", "ok"])
    issue = FakeGitHub.issues[n]
    assert issue["state"] == "closed" and issue["labels"] == ["lumo", "ok"]
    assert exp.test_name in issue["title"]
    body = issue["body"]
    assert len(body) < 65536 and "cut here" in body and body.rstrip().endswith("</details>")
    assert "| acc | 0.93 |" in body and "~/data/train.csv" in body and os.path.expanduser("~/") not in body
    assert "$LUMO_HOME/experiments/bk/" in body and str(lumo_home) not in body
    rec = read_record(exp.info_dir)
    (entry,) = rec["backup"].values()
    assert entry == {"backend": "github", "number": n, "repo": "owner/name"}
    # update=True: the same issue is edited, no new one
    posts = [c for c in FakeGitHub.calls if c[0] == "POST"]
    assert exp.backup("github", repo="owner/name", access_token=TOKEN) == n
    assert [c for c in FakeGitHub.calls if c[0] == "POST"] == posts and len(FakeGitHub.issues) == 1
    # update=False: a new issue
    assert exp.backup("github", repo="owner/name", access_token=TOKEN, update=False) == n + 1
    assert max(FakeGitHub.bodies) < 65536
    assert TOKEN not in _store_text(lumo_home, Path(os.environ["LUMO_CACHE_DIR"]))


def test_backup_github_errors_never_show_the_token(github: str, lumo_home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    exp = _a_run()
    with pytest.raises(LumoValueError, match="needs a token"):
        exp.backup("github", repo="owner/name")
    with pytest.raises(LumoValueError, match="HTTP 401: Bad credentials") as ei:
        exp.backup("github", repo="owner/name", access_token="wrong-" + TOKEN)
    assert TOKEN not in str(ei.value)
    with pytest.raises(LumoValueError, match="not a GitHub repository"):
        exp.backup("github", repo="no-slash")
    monkeypatch.setenv("GH_TOKEN", TOKEN)  # the token from the environment
    assert exp.backup("github", repo="owner/name") == 1
    assert "backup" in read_record(exp.info_dir)


def test_cli_backup_github_with_filters(github: str, lumo_home: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _a_run(), _a_run()
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    assert main(["backup", "--exp", "bk", "--github", "owner/name", "--labels", "x,y", "--json"]) == 0
    out = capsys.readouterr()
    done = json.loads(out.out)["backups"]
    assert sorted(d["number"] for d in done) == [1, 2] and TOKEN not in out.out + out.err
    assert all(i["labels"] == ["x", "y"] for i in FakeGitHub.issues.values())
    assert main(["backup", a.test_name, "--github", "owner/name"]) == 0  # updates its issue
    assert len(FakeGitHub.issues) == 2 and b.test_name
    assert main(["backup", a.test_name]) == 1
    assert "--github" in capsys.readouterr().err


def test_backup_local_and_from_disk(tmp_path: Path, lumo_home: Path) -> None:
    exp = _a_run()
    path = exp.backup("local", tmp_path / "backups", with_blob=True)
    assert path.endswith(f"bk-{exp.test_name}.tar.gz") and os.path.isfile(path)
    out = tmp_path / "x"
    with tarfile.open(path) as tar:
        tar.extractall(out, filter="data")
    info = out / "experiments" / "bk" / exp.test_name
    back = Experiment.from_disk(info, blob_dir=out / "blob" / "bk" / exp.test_name)
    assert back.record["params"]["lr"] == 0.1 and back.test_name == exp.test_name
    assert Path(back.mk_bpath("model.bin")).read_bytes() == b"weights"
    rec = read_record(exp.info_dir)
    (entry,) = rec["backup"].values()
    assert entry["backend"] == "local" and entry["path"] == path
    with pytest.raises(LumoValueError, match="allowed: 'local', 'github'"):
        exp.backup("dropbox")
