"""`Watcher().panel()` in a real JupyterLab, offline: the page may reach 127.0.0.1 only (every other request
is aborted, and any failed request fails the test), a notebook cell runs the panel and the runs table's
rows appear in the cell's output area. Also lumo's own snippet `w = Watcher(); df = w.load(); w.panel(df)`
with only the import changed.

JupyterLab runs as a subprocess on a free port of 127.0.0.1, token off, its config/data/runtime folders
and HOME in a temporary folder; the kernel's LUMO_HOME is a generated store.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .kit import RUN_ID, TIMEOUT, new_run, sub_env, wait_until

SNIPPETS = {
    "watcher_panel": "from lumo_hydra import Watcher\nWatcher().panel()",
    "lumo_snippet": "from lumo_hydra import Watcher\nw = Watcher()\ndf = w.load()\nw.panel(df)",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def notebook(code: str) -> dict[str, Any]:
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                       "source": code}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


class Lab:
    """A JupyterLab server subprocess on 127.0.0.1, stopped by its pid."""

    def __init__(self, work: Path, store: Path) -> None:
        import subprocess

        self.dir = work / "notebooks"
        self.dir.mkdir()
        env = sub_env(store)
        home = work / "home"
        env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
                   JUPYTER_DATA_DIR=str(home / "jupyter-data"), JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
                   IPYTHONDIR=str(home / "ipython"), JUPYTER_PLATFORM_DIRS="1", JUPYTERLAB_SETTINGS_DIR=str(
                       home / "lab-settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "lab-workspaces"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = work / "jupyterlab.log"
        self._log = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={self.port}", "--no-browser",
             "--allow-root", "--IdentityProvider.token=", "--ServerApp.password=", f"--notebook-dir={self.dir}",
             "--ServerApp.port_retries=0", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=env, cwd=self.dir, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_until("JupyterLab's /api/status", self._up, timeout=2 * TIMEOUT, every=0.5)
        except AssertionError:
            self.stop()
            raise AssertionError(f"JupyterLab did not start: {self.log.read_text()[-3000:]}") from None

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(self.base + "/api/status", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
        self._log.close()


@pytest.fixture(scope="module")
def lab_store(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> tuple[Path, dict[str, str]]:
    """A small store: finished, failed and interrupted runs written by the API."""
    root = tmp_path_factory.mktemp("lab-store") / "store"
    env = sub_env(root)
    runs = {new_run(root, s, i, env): s for i, s in enumerate(["finished", "failed", "interrupted"], start=1)}
    return root, runs


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, lab_store: tuple[Path, dict[str, str]]) -> Iterator[Lab]:
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed (pip install -r requirements-dev.txt)")
    lb = Lab(tmp_path_factory.mktemp("lab"), lab_store[0])
    try:
        yield lb
    finally:
        lb.stop()


def offline(route: Any) -> None:
    """Let the page reach 127.0.0.1 only: anything else is aborted (and so fails the test)."""
    host = urllib.parse.urlparse(route.request.url).hostname
    if host in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort("internetdisconnected")


def dismiss_dialogs(page: Any) -> None:
    """Accept a JupyterLab dialog that covers the notebook (a kernel choice or a kernel restart notice seen
    on a loaded machine): the default answer is the notebook's Python kernel."""
    dialog = page.locator(".jp-Dialog")
    for _ in range(3):
        if not dialog.count() or not dialog.first.is_visible():
            return
        accept = dialog.first.locator(".jp-mod-accept")
        if accept.count():
            accept.first.click()
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(500)


def run_first_cell(page: Any, tries: int = 4) -> None:
    """Shift+Enter in the first cell until its prompt shows an execution count ``[n]`` or ``[*]``. JupyterLab
    may replace the notebook's first kernel right after opening it; a cell sent to that one is lost (its
    prompt goes back to ``[ ]``), so it is sent again."""
    prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for _ in range(tries):
        dismiss_dialogs(page)
        page.locator(".jp-CodeCell .cm-content >> visible=true").first.click(timeout=TIMEOUT * 1000 / 2)
        page.keyboard.press("Shift+Enter")
        try:
            wait_until("the cell to run", lambda: any(c.isdigit() or c == "*" for c in prompt.inner_text()),
                       timeout=20)
        except AssertionError:
            continue
        if wait_until("the cell to finish or be lost", lambda: (t := prompt.inner_text()) and
                      ("*" not in t) and t, timeout=2 * TIMEOUT) and any(c.isdigit() for c in prompt.inner_text()):
            return
    raise AssertionError(f"the first cell did not run in {tries} tries (prompt {prompt.inner_text()!r})")


def open_notebook(page: Any, lab: Lab, name: str) -> None:
    page.context.route("**/*", offline)
    page.goto(f"{lab.base}/lab/tree/{name}.ipynb?reset")
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        state="attached", timeout=2 * TIMEOUT * 1000)


def wait_for_rows(page: Any, timeout: float = 4 * TIMEOUT) -> None:
    """Until a run row shows in the cell's output; else fail saying what the output area holds."""
    out = page.locator(".jp-OutputArea .tabulator-row").filter(has_text=RUN_ID)
    try:  # the first cell of a fresh kernel imports Panel and the board: slow on a loaded CI machine
        out.first.wait_for(state="visible", timeout=timeout * 1000)
    except Exception as e:
        text = page.locator(".jp-OutputArea").first.inner_text() if page.locator(".jp-OutputArea").count() else ""
        raise AssertionError(f"no run row in the cell's output; the output area says: {text[-2000:]!r}") from e


@pytest.mark.parametrize("name", list(SNIPPETS))
def test_panel_rows_appear_in_a_jupyterlab_cell_offline(name: str, lab: Lab, lab_store: tuple[Path, dict[str, str]],
                                                         open_page: Any) -> None:
    root, runs = lab_store
    (lab.dir / f"{name}.ipynb").write_text(json.dumps(notebook(SNIPPETS[name])))
    page = open_page()
    open_notebook(page, lab, name)
    run_first_cell(page)
    wait_for_rows(page)
    names = wait_until("every run of the store in the output", lambda: (
        {t.strip() for t in page.locator(".jp-OutputArea .tabulator-cell[tabulator-field='test_name']")
         .all_inner_texts()} == set(runs)))
    assert names
    for test_name, status in runs.items():
        badge = (page.locator(".jp-OutputArea .tabulator-row").filter(has_text=test_name)
                 .locator(".tabulator-cell[tabulator-field='status'] .lumo-badge"))
        assert badge.inner_text().strip() == status
    # no error output in the cell (a traceback would be a .jp-RenderedText[data-mime-type*=error])
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    assert os.environ.get("LUMO_HOME") != str(root)  # the kernel got the store, this process did not


def test_panel_rows_appear_again_when_the_cell_is_rerun_after_a_page_reload(
        lab: Lab, lab_store: tuple[Path, dict[str, str]], open_page: Any) -> None:
    """The cell run again in the same kernel, in a page that never ran the first output's scripts (a
    reload; the same as JupyterLab running a cell twice and clearing the first output before the browser
    rendered it, seen on a loaded machine): its output must carry the JavaScript again. It used to be sent
    once per kernel, so this output showed nothing ("Bokeh or Panel library is missing")."""
    name = "rerun"
    (lab.dir / f"{name}.ipynb").write_text(json.dumps(notebook(SNIPPETS["watcher_panel"])))
    page = open_page()
    open_notebook(page, lab, name)
    run_first_cell(page)
    wait_for_rows(page)
    prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    first = prompt.inner_text()
    page.reload()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        state="attached", timeout=2 * TIMEOUT * 1000)
    run_first_cell(page)
    assert prompt.inner_text() != first  # run again (a higher execution count: the same kernel)
    wait_for_rows(page, TIMEOUT)
    # JupyterLab swaps its favicon while the kernel is busy: one in flight when the page reloads is aborted
    fails = page.lumo_problems.failed
    fails[:] = [f for f in fails if not ("/static/favicons/" in f and "ERR_ABORTED" in f)]
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
