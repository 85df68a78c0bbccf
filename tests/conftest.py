"""Shared test setup: no test touches the real home folder or the user's git configuration."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

_SESSION_TMP: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    # Point every store and cache at a temporary folder, before any test (or subprocess) runs.
    global _SESSION_TMP
    import signal
    import tempfile

    # A job started in the background by a non-interactive shell (`bash .ci/run &`) inherits SIGINT
    # ignored, and so would every app the tests start: their Ctrl-C tests could not interrupt them. A
    # Python handler here is reset to the default in each child at exec, as in a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    _SESSION_TMP = Path(tempfile.mkdtemp(prefix="lumo-hydra-tests-"))
    os.environ["LUMO_HOME"] = str(_SESSION_TMP / "home")
    os.environ["LUMO_CACHE_DIR"] = str(_SESSION_TMP / "cache")
    os.environ["XDG_CACHE_HOME"] = str(_SESSION_TMP / "xdg-cache")
    # Deterministic git identity, no user/system git config.
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ["GIT_CONFIG_GLOBAL"] = str(_SESSION_TMP / "gitconfig")
    (_SESSION_TMP / "gitconfig").write_text(
        "[user]\n\tname = lumo test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n"
        "[protocol \"file\"]\n\tallow = always\n"
    )


@pytest.fixture
def lumo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty store root for one test (also exported as LUMO_HOME for subprocesses)."""
    home = tmp_path / "lumo-home"
    monkeypatch.setenv("LUMO_HOME", str(home))
    return home


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its stdout (raises on failure)."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A real temporary git repository with one commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text("print('hello')\n")
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


PYTHON = sys.executable


# -- no test writes lumo-hydra snapshots into this project's own repository --------------------------
_PROJECT_GIT = Path(__file__).resolve().parent.parent / ".git"


def _project_lumo_paths() -> set[str]:
    """Loose refs under refs/lumo/ and files under .git/lumo/ of this checkout (empty if not a repo)."""
    found: set[str] = set()
    for sub in ("refs/lumo", "lumo"):
        top = _PROJECT_GIT / sub
        if top.is_dir():
            found.update(str(p.relative_to(_PROJECT_GIT)) for p in top.rglob("*") if p.is_file())
    return found


@pytest.fixture(autouse=True)
def _project_repo_untouched():
    """Fail the test that snapshots the project's repository (a subprocess started without ``cwd=``)."""
    before = _project_lumo_paths()
    yield
    added = sorted(_project_lumo_paths() - before)
    assert not added, ("this test wrote lumo-hydra files into the project's own git repository (give its "
                       f"processes a cwd= in a temporary folder): {added[:5]}")


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``git`` first on PATH that logs each subcommand to the returned file, then runs the real git."""
    real = shutil.which("git")
    assert real
    log = tmp_path / "git.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(f"""#!/bin/sh
sub=""; skip=0
for a in "$@"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  case "$a" in -c|-C) skip=1;; -*) ;; *) sub="$a"; break;; esac
done
echo "$sub" >> '{log}'
exec '{real}' "$@"
""")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.fixture
def only_this_tests_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """``threading.active_count()`` counts only the threads this test starts (plus the main thread).

    The second processes of ``pack``/``unpack`` and of cold Watcher loads fork only when no other thread
    runs; earlier tests of the suite leave library threads behind (fsspec's IO loop, a test server), which
    would keep the tests of those forks on the one-process path. Their children only read and write files."""
    import threading

    real = threading.active_count
    others = real() - 1
    monkeypatch.setattr(threading, "active_count", lambda: real() - others)
