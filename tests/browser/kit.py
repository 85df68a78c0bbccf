"""What the browser tests share: Debian's Chromium driven by Playwright, stores with realistic runs
(generated through the API, and recorded by a real Hydra sweep), a `lumo-hydra board` subprocess, and
pages that fail the test on any failed request or console error.

Chromium comes from apt (`playwright install` cannot download browsers here, /work/shared/BROWSER-TESTS.md);
where it is missing every browser test skips with the reason (.ci/run exports LUMO_TEST_NO_CHROMIUM when
its apt-get failed), never passes silently. Machines are loaded: every wait is bounded, 60 s by default.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
TIMEOUT = 60.0  # seconds, for every wait (servers, pages, files)
VIEWPORT = {"width": 1280, "height": 800}
ROOT = Path(__file__).resolve().parents[2]
DOCS_IMG = ROOT / "docs" / "img"
SERVING = re.compile(r"^lumo-hydra board: serving (http://127\.0\.0\.1:\d+/)\s*$")
RUN_ID = re.compile(r"\d{6}\.\d{3,}\.[a-z0-9]{2}t")


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    if os.environ.get("LUMO_TEST_NO_CHROMIUM"):
        return f"Chromium not available: {os.environ['LUMO_TEST_NO_CHROMIUM']}"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium not installed at {CHROMIUM} (apt-get install chromium; .ci/run does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"playwright is not installed ({e}); pip install -r requirements-dev.txt"
    return None


def wait_until(what: str, check: Callable[[], Any], timeout: float = TIMEOUT, every: float = 0.2) -> Any:
    """Poll ``check()`` until it returns something truthy (returned), at most ``timeout`` seconds."""
    end = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(every)


def sub_env(lumo_home: Path) -> dict[str, str]:
    """The environment of a subprocess: the store at ``lumo_home`` (never the real home)."""
    env = dict(os.environ)
    env.update(LUMO_HOME=str(lumo_home), PYTHONUNBUFFERED="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_py(code: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120) -> str:
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r.stdout


# ---- stores ------------------------------------------------------------------------------------------

GEN = r'''
import json, os, random, signal, sys, time
from lumo_hydra import Experiment
root, status = sys.argv[1], sys.argv[2]
rnd = random.Random(sys.argv[3])
HEARTBEAT_S = 0.5
# the running run heartbeats fast (every heartbeat changes the store's change token: the board's live
# check must not redraw the table for it, which would close an open note editor); the others every 10 s
exp = Experiment(sys.argv[4] if len(sys.argv) > 4 else "cls", home=root,
                 heartbeat_interval=HEARTBEAT_S if status == "running" else 10.0)
exp.start()
lr = float(sys.argv[3]) / 10
exp.dump_params({"lr": lr, "optim": {"name": rnd.choice(["sgd", "adam"]), "momentum": 0.9},
                 "model": {"name": "resnet18", "depth": rnd.choice([18, 34])}, "seed": int(sys.argv[3]) % 2})
steps = 30
for s in range(steps):
    exp.dump_metric("acc", 0.5 + 0.4 * (1 - 1 / (1 + s * lr)) + rnd.random() * 0.02, cmp="max", step=s)
    exp.dump_metric("loss", 1.0 / (1 + s * lr) + rnd.random() * 0.02, cmp="min", step=s)
exp.add_tags(rnd.choice(["baseline", "ablation"]))
exp.flush()
print(exp.test_name, flush=True)
if status == "running":
    exp.dump_progress(0.4)
    sys.stdin.read()  # until the test closes our stdin
    exp.end()
elif status == "crashed":
    os.kill(os.getpid(), signal.SIGKILL)  # no end record: the reader judges the run crashed
elif status == "failed":
    try:
        raise RuntimeError(f"diverged at lr={lr}")
    except RuntimeError as e:
        exp.end(1, exception=e)
else:
    exp.end(status=status, end_code={"finished": 0, "interrupted": -2, "killed": -15}[status])
'''

HYDRA_APP = '''
import hydra
import lumo_hydra

@hydra.main(version_base="1.3", config_path=None, config_name="config")
def main(cfg):
    exp = lumo_hydra.current_experiment()
    for s in range(20):
        exp.dump_metric("acc", 0.6 + 0.01 * s * cfg.lr, cmp="max", step=s)
        exp.dump_metric("loss", 1.0 / (1 + s * cfg.lr), cmp="min", step=s)
    return {"acc": 0.6 + 0.2 * cfg.lr}

if __name__ == "__main__":
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="config", node={"lr": 0.1, "batch": 32})
    main()
'''


def new_run(root: Path, status: str, seed: int, env: dict[str, str], exp_name: str = "cls") -> str:
    """One run with ``status`` written by the real API in its own process; returns its test_name."""
    p = subprocess.run([sys.executable, "-c", GEN, str(root), status, str(seed), exp_name], env=env,
                       capture_output=True, text=True, timeout=120)
    if status != "crashed":
        assert p.returncode == 0, p.stderr[-3000:]
    name = p.stdout.strip().splitlines()[-1]
    assert RUN_ID.fullmatch(name), p.stdout + p.stderr
    return name


@dataclass
class Store:
    """A store of realistic runs: ``runs`` maps test_name to its status (as the reader judges it)."""

    root: Path
    env: dict[str, str]
    runs: dict[str, str] = field(default_factory=dict)
    hydra_runs: list[str] = field(default_factory=list)
    sweep: str = ""
    running: subprocess.Popen | None = None  # the process of the running run (closed at teardown)

    def info_dir(self, test_name: str) -> Path:
        return next((self.root / "experiments").glob(f"*/{test_name}"))

    def record(self, test_name: str) -> dict[str, Any]:
        return json.loads((self.info_dir(test_name) / "run.json").read_text())

    def history_points(self, test_name: str, metric: str) -> int:
        lines = (self.info_dir(test_name) / "history.jsonl").read_text().splitlines()
        return sum(1 for line in lines if line and json.loads(line)["k"] == metric)

    def by_status(self, status: str) -> list[str]:
        return [n for n, s in self.runs.items() if s == status]


def hydra_sweep(root: Path, work: Path, env: dict[str, str]) -> tuple[list[str], str]:
    """A real Hydra multirun (3 jobs, hydra/callbacks=lumo) in a real git repository, recorded into ``root``."""
    repo = work / "hydra-project"
    repo.mkdir()
    (repo / "app.py").write_text(HYDRA_APP)
    (repo / ".gitignore").write_text("multirun/\noutputs/\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "app"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env, timeout=60)
    r = subprocess.run([sys.executable, "app.py", "-m", "hydra/callbacks=lumo", "lr=0.1,0.5,1.0",
                        f"hydra.sweep.dir={work}/multirun"], cwd=repo, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    names, sweeps = [], set()
    for p in sorted((root / "experiments").glob("*/*/run.json")):
        rec = json.loads(p.read_text())
        if rec.get("sweep"):
            names.append(rec["test_name"])
            sweeps.add(rec["sweep"])
    assert len(names) == 3 and len(sweeps) == 1, (names, sweeps)
    return names, sweeps.pop()


def make_store(work: Path, *, with_running: bool = True) -> Store:
    """Runs of every status (finished x3, failed, interrupted, killed, crashed, running) through the API,
    and a real Hydra sweep of 3 jobs, in ``work/store``."""
    root = work / "store"
    env = sub_env(root)
    st = Store(root, env)
    for seed, status in enumerate(["finished", "finished", "failed", "interrupted", "killed", "crashed",
                                   "finished"], start=1):
        st.runs[new_run(root, status, seed, env)] = status
    st.hydra_runs, st.sweep = hydra_sweep(root, work, env)
    st.runs.update(dict.fromkeys(st.hydra_runs, "finished"))
    if with_running:
        p = subprocess.Popen([sys.executable, "-c", GEN, str(root), "running", "8", "gan"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        st.running = p
        assert p.stdout is not None
        line = wait_until("the running run's id", p.stdout.readline)
        st.runs[line.strip()] = "running"
    return st


def stop_store(st: Store) -> None:
    p = st.running
    if p is not None and p.poll() is None:
        assert p.stdin is not None
        p.stdin.close()
        try:
            p.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(TIMEOUT)


# ---- the board server --------------------------------------------------------------------------------


class Board:
    """A `lumo-hydra board --root DIR --port 0` subprocess; :meth:`stop` stops it by its pid (SIGINT)."""

    def __init__(self, root: Path, env: dict[str, str], *extra: str) -> None:
        self.argv = [sys.executable, "-m", "lumo_hydra", "board", "--root", str(root), "--port", "0", *extra]
        self.proc = subprocess.Popen(self.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._drain, args=(stream, sink), daemon=True).start()
        try:
            self.url = wait_until("the serving line", self._serving)
        except AssertionError:
            self.stop(check=False)
            raise AssertionError(f"{' '.join(self.argv)} printed no serving line: stdout {''.join(self.out)!r} "
                                 f"stderr {''.join(self.err)[-3000:]}") from None

    @staticmethod
    def _drain(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    def _serving(self) -> str | None:
        for line in self.out:
            m = SERVING.match(line)
            if m:
                return m.group(1)
        if self.proc.poll() is not None:
            raise AssertionError(f"the board exited with {self.proc.returncode}: {''.join(self.err)[-3000:]}")
        return None

    def stop(self, check: bool = True) -> int:
        """SIGINT by pid, then wait (bounded); returns the exit code (asserted 0 when ``check``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
                if check:
                    raise AssertionError("the board did not stop within 60 s of SIGINT") from None
        code = self.proc.returncode
        if check:
            assert code == 0, f"the board exited with {code} on SIGINT: {''.join(self.err)[-3000:]}"
        return code


# ---- the browser -------------------------------------------------------------------------------------


@dataclass
class Problems:
    """Everything that went wrong in the pages of one test: failed requests, console errors, uncaught page
    errors and requests to any host but 127.0.0.1/localhost (offline: a CDN asset is a defect)."""

    failed: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)

    def request(self, url: str) -> None:
        u = urllib.parse.urlparse(url)
        if u.scheme in ("http", "https", "ws", "wss") and u.hostname not in ("127.0.0.1", "localhost"):
            self.offsite.append(url)

    def check(self) -> None:
        assert not self.failed, f"requests failed: {self.failed}"
        assert not self.console, f"console errors: {self.console}"
        assert not self.offsite, f"requests to other hosts than 127.0.0.1: {self.offsite}"


def shot(page: Any, name: str, tmp_dir: Path) -> Path:
    """A 1280x800 screenshot; copied (palette-quantized, small) to docs/img/<name> when LUMO_SCREENSHOTS=1."""
    path = tmp_dir / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 1000
    if os.environ.get("LUMO_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        try:
            from PIL import Image

            with Image.open(path) as im:
                im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(
                    DOCS_IMG / name, optimize=True)
        except ImportError:
            shutil.copyfile(path, DOCS_IMG / name)
    return path


def dedent(s: str) -> str:
    return textwrap.dedent(s).strip() + "\n"


_DEEP_TEXT = """e => {
  const f = n => (n.shadowRoot ? f(n.shadowRoot) : '') + [...n.childNodes].map(
      c => c.nodeType === 3 ? c.textContent : (c.nodeType === 1 ? f(c) : '')).join(' ');
  return f(e).replace(/\\s+/g, ' ').trim();
}"""


def deep_text(locator: Any) -> str:
    """The text of an element and of the shadow roots below it (Panel renders its panes in open shadow
    roots, which ``inner_text`` does not enter)."""
    return str(locator.evaluate(_DEEP_TEXT))
