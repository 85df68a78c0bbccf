"""Benchmark: `lumo-hydra board` in a headless Chromium against the MLflow UI, and its scaling.

Measured in one run, the same headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright),
a fresh browser context (empty cache) per page load:

1. time from opening the page to the first table row showing a run id, on the same N runs (default
   1,000): ours (``lumo-hydra board``; the first page of rows comes in the page's HTML, and the time to
   the interactive table, its own rows shown and the HTML's removed, is reported beside it) vs the MLflow
   UI (``mlflow server`` on a SQLite store holding the
   same runs: params, last metric values, tags, the run id as the run name). Rounds alternate. Target:
   ours/MLflow <= 0.5.
2. the same for ours on 10,000 runs vs ours on 100 runs. Target: <= 1.5x.
3. server side (the board's own functions, on the 10,000-run store's cached frame): a filter
   (``--where``), a sort and a page of the table; and in the browser, a click on a column header
   until the first row changes. Target: < 0.3 s server side.
4. the change check on an unchanged 10,000-run store (``BoardContext.changed()``, and
   ``Watcher.change_token()`` when it exists). Target: < 20 ms.

MLflow lives in a venv of its own (never a project dependency), given by ``--mlflow-python``:

    python -m venv /tmp/venv-mlflow && /tmp/venv-mlflow/bin/pip install mlflow

Usage: env -u PYTHONDONTWRITEBYTECODE python benchmarks/bench_board.py [--runs 1000] [--small 100]
    [--large 10000] [--rounds 5] [--mlflow-python VENV/bin/python] [--work DIR --keep]
Stores are generated through our API (``Experiment``, no hooks; 3 metrics with 20-step histories) in
the work folder (``--work DIR --keep`` reuses them: 10,000 runs take a few minutes to generate).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from _benchlib import load_average, py, work_folder

DEFAULT_MLFLOW_PY = "/tmp/venv-mlflow/bin/python"
CHROMIUM = "/usr/bin/chromium"
RUN_ID = re.compile(r"\d{6}\.\d{3,}\.[a-z0-9]{2}t")  # a run id (test_name): both tables show it

GEN = r"""
import random, sys
from lumo_hydra import Experiment
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(0)
for i in range(n):
    exp = Experiment(f"exp{i % 5}", home=root, heartbeat_interval=0)
    exp.start()
    exp.dump_params({"opt": {"lr": round(rnd.random(), 4), "name": rnd.choice(["sgd", "adam"])},
                     "model": {"name": rnd.choice(["resnet18", "vit"]), "depth": rnd.choice([18, 34, 50])},
                     "seed": i % 3, "epochs": 20})
    for s in range(20):
        exp.dump_metric("acc", rnd.random(), cmp="max", step=s)
        exp.dump_metric("loss", rnd.random(), cmp="min", step=s)
        exp.dump_metric("lr_now", 0.1 / (1 + s), step=s)
    exp.add_tags(*rnd.sample(["baseline", "ablation", "best", "draft"], 2))
    exp.end(status=rnd.choice(["finished"] * 8 + ["failed", "interrupted"]))
"""

EXPORT = r"""
import json, sys
from lumo_hydra import Watcher
df = Watcher(sys.argv[1]).load(flatten=True)
out = []
for _, r in df.iterrows():
    out.append({"test_name": r["test_name"], "status": r["status"],
                "params": {k[7:]: str(v) for k, v in r.items() if k.startswith("params.")},
                "metrics": {k[8:]: float(v) for k, v in r.items() if k.startswith("metrics.") and v == v},
                "tags": list(r["tags"] or [])})
json.dump(out, open(sys.argv[2], "w"))
"""

MLFLOW_LOG = r"""
import json, sys, time, logging
logging.disable(logging.WARNING)
import mlflow
from mlflow.entities import Metric, Param, RunTag
db, runs_file, art = sys.argv[1], sys.argv[2], sys.argv[3]
mlflow.set_tracking_uri("sqlite:///" + db)
client = mlflow.tracking.MlflowClient()
exp_id = client.create_experiment("bench", artifact_location=art)
status = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
now = int(time.time() * 1000)
for r in json.load(open(runs_file)):
    run = client.create_run(exp_id, tags={"mlflow.runName": r["test_name"]})
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, now, 19) for k, v in r["metrics"].items()],
                     params=[Param(k, v) for k, v in r["params"].items()],
                     tags=[RunTag(t, "1") for t in r["tags"]])
    client.set_terminated(run.info.run_id, status=status.get(r["status"], "FINISHED"))
print(exp_id)
"""

SERVER_SIDE = r"""
import json, os, statistics, sys, time
from lumo_hydra import Watcher
from lumo_hydra.board.context import BoardContext
from lumo_hydra.board import frames
root, rounds = sys.argv[1], int(sys.argv[2])
w = Watcher(root)
ctx = BoardContext(w)
df = ctx.frame()
ctx.changed()
def timed(f, n):
    xs = []
    for _ in range(n):
        t = time.perf_counter(); f(); xs.append(time.perf_counter() - t)
    return xs
cols = frames.default_columns(df)
def page(d, start=0, size=20):
    return frames.table_frame(d.iloc[start:start + size], cols)
out = {"rows": len(df)}
out["filter"] = timed(lambda: page(frames.apply_where(df, "params.opt.lr > 0.5 and status == 'finished'")), rounds)
out["sort"] = timed(lambda: page(frames.sort_frame(df, frames.parse_sort("-metrics.acc,params.opt.lr"))), rounds)
out["page"] = timed(lambda: page(df, start=len(df) // 2), rounds)
out["default_columns"] = timed(lambda: frames.default_columns(df), rounds)
out["changed"] = timed(ctx.changed, max(rounds, 20))
if hasattr(w, "change_token"):
    out["change_token"] = timed(w.change_token, max(rounds, 20))
print(json.dumps(out))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess in its own process group, stopped by its pid (SIGINT, then SIGKILL)."""

    def __init__(self, argv: list[str], env: dict, cwd: Path, log: Path) -> None:
        self.log = log
        self._out = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=self._out,
                                     text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in list(self.lines):
                m = pattern.search(line)
                if m:
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"no line matching {pattern.pattern!r} within {timeout:.0f} s; stdout: "
                           f"{''.join(self.lines)[-1000:]!r}; stderr: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        self._out.close()


def start_board(root: Path, env: dict, work: Path, timeout: float) -> tuple[Server, str]:
    s = Server([sys.executable, "-m", "lumo_hydra", "board", "--root", str(root), "--port", "0"], env, work,
               work / f"board-{root.name}.log")
    m = s.wait_line(re.compile(r"serving (http://127\.0\.0\.1:\d+/?)"), timeout)
    return s, m.group(1)


def start_mlflow(python: str, db: Path, work: Path, env: dict, timeout: float) -> tuple[Server, str]:
    port = free_port()
    menv = dict(env, HOME=str(work / "mlflow-home"), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    s = Server([python, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
                "--default-artifact-root", str(work / "mlflow-art"), "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1"], menv, work, work / "mlflow-server.log")
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as r:
                if r.status == 200:
                    return s, base
        except OSError:
            pass
        if s.proc.poll() is not None:
            break
        time.sleep(0.5)
    s.stop()
    raise RuntimeError(f"mlflow server did not answer within {timeout:.0f} s: {s.log.read_text()[-2000:]}")


#: ours: the interactive Tabulator's rows (not the first page sent in the HTML, ``lumo-first-page``)
INTERACTIVE = ".lumo-runs:not(.lumo-first-page-table) .tabulator-row"
FIRST_PAGE = "#lumo-first-page"


def first_row(browser: Any, url: str, selector: str, timeout: float) -> tuple[float, float | None]:
    """Seconds from opening ``url`` in a fresh context to the first ``selector`` row showing a run id
    (for ours that is the first page of rows in the HTML, or the interactive table's when there is none);
    and, for ours, to the interactive table: its own rows visible and the HTML's rows gone (clicks reach
    it; the header sort of :func:`browser_changes` is timed from there). ``None`` for MLflow."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        t = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=timeout * 1000)
        page.locator(selector).filter(has_text=RUN_ID).first.wait_for(state="visible", timeout=timeout * 1000)
        first = time.perf_counter() - t
        if not selector.startswith(".lumo-runs"):
            return first, None
        page.locator(INTERACTIVE).filter(has_text=RUN_ID).first.wait_for(state="visible", timeout=timeout * 1000)
        page.locator(FIRST_PAGE).wait_for(state="detached", timeout=timeout * 1000)
        return first, time.perf_counter() - t
    finally:
        ctx.close()


def alternate(browser: Any, targets: dict[str, tuple[str, str]], rounds: int, timeout: float) -> dict[str, list[float]]:
    """One untimed warm-up load of each target, then ``rounds`` alternating timed loads; ``<name>`` holds
    the first-row times, ``<name>:interactive`` ours' interactive-table times."""
    for url, sel in targets.values():
        first_row(browser, url, sel, timeout)
    out: dict[str, list[float]] = {k: [] for k in targets}
    for i in range(rounds):
        names = list(targets) if i % 2 == 0 else list(reversed(targets))
        for k in names:
            first, ready = first_row(browser, *targets[k], timeout)
            out[k].append(first)
            if ready is not None:
                out.setdefault(f"{k}:interactive", []).append(ready)
    return out


def browser_changes(browser: Any, url: str, timeout: float, rounds: int) -> dict[str, list[float]]:
    """In the page: a click on the ``test_name`` header (ascending, descending: the first row changes each
    time) and on the next-page button, each timed until the first row's text changes (the websocket round
    trip and the browser's rendering included). Clicks with no change within ``timeout`` are not counted."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    out: dict[str, list[float]] = {"sort": [], "page": []}
    try:
        page = ctx.new_page()
        page.goto(url, timeout=timeout * 1000)
        rows = page.locator(INTERACTIVE).filter(has_text=RUN_ID)
        rows.first.wait_for(state="visible", timeout=timeout * 1000)
        page.locator(FIRST_PAGE).wait_for(state="detached", timeout=timeout * 1000)
        header = ".lumo-runs .tabulator-col[tabulator-field='test_name'] .tabulator-col-title"
        clicks = {"sort": page.locator(header).first,
                  "page": page.locator(".lumo-runs .tabulator-page[data-page='next']").first}
        for _ in range(rounds):
            for what, target in clicks.items():
                if what == "page" and page.locator(".lumo-runs .tabulator-page.active").first.inner_text() != "1":
                    target = page.locator(".lumo-runs .tabulator-page[data-page='prev']").first  # (a sort may reset it)
                if not target.is_enabled():
                    continue  # one page only
                before = rows.first.inner_text()
                t = time.perf_counter()
                target.click()
                end = time.monotonic() + timeout
                while rows.first.inner_text() == before and time.monotonic() < end:
                    page.wait_for_timeout(5)
                if time.monotonic() < end:
                    out[what].append(time.perf_counter() - t)
    finally:
        ctx.close()
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], unit: float = 1.0, fmt: str = ".3f", name: str = "s") -> str:
    return f"{med(xs) * unit:{fmt}} {name} ({min(xs) * unit:{fmt}}-{max(xs) * unit:{fmt}})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Time from opening the page to the first table row in a headless Chromium: lumo-hydra board "
                    "vs the MLflow UI on the same runs, ours on --large vs --small runs, server-side sort/filter/"
                    "page and the change check. Targets: ours/MLflow <= 0.5, large/small <= 1.5, server side "
                    "< 0.3 s, change check < 20 ms.",
        epilog="Needs Debian's chromium (apt-get install chromium) and playwright (pip). Create the MLflow venv: "
               "python -m venv /tmp/venv-mlflow && /tmp/venv-mlflow/bin/pip install mlflow. Run with "
               "PYTHONDONTWRITEBYTECODE unset.")
    ap.add_argument("--runs", type=int, default=1000, help="runs for ours vs MLflow (default 1000; 0: skip)")
    ap.add_argument("--small", type=int, default=100, help="the small store of the scaling ratio (default 100)")
    ap.add_argument("--large", type=int, default=10000,
                    help="the large store of the scaling ratio and the server-side timings (default 10000; 0: skip)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating timed page loads per target (default 5)")
    ap.add_argument("--server-rounds", type=int, default=10, help="rounds of each server-side timing (default 10)")
    ap.add_argument("--mlflow-python", default=os.environ.get("MLFLOW_PYTHON") or
                    (DEFAULT_MLFLOW_PY if os.path.exists(DEFAULT_MLFLOW_PY) else None),
                    help=f"the MLflow venv's python (default $MLFLOW_PYTHON, else {DEFAULT_MLFLOW_PY} if it exists; "
                         "empty: skip MLflow)")
    ap.add_argument("--chromium", default=CHROMIUM, help=f"the Chromium executable (default {CHROMIUM})")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds for a server start or a page (default 120)")
    ap.add_argument("--work", help="folder for the stores and logs (default: a fresh temporary folder; an existing "
                    "one's stores are reused)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with work_folder(args, prefix="lumo-bench-board-") as work:
        run_all(args, work)


def store(work: Path, n: int, env: dict) -> Path:
    root = work / f"store-{n}"
    if not (root / "experiments").exists():
        t = time.perf_counter()
        py(GEN, str(root), str(n), env=env)
        print(f"generated {n} runs through the API in {time.perf_counter() - t:.1f} s", flush=True)
    return root


def mlflow_db(args: argparse.Namespace, work: Path, root: Path, n: int, env: dict) -> tuple[Path, str]:
    db = work / f"mlflow-{n}.db"
    meta = work / f"mlflow-{n}.json"
    if not meta.exists():
        db.unlink(missing_ok=True)
        runs = work / f"runs-{n}.json"
        py(EXPORT, str(root), str(runs), env=env)
        t = time.perf_counter()
        exp_id = py(MLFLOW_LOG, str(db), str(runs), str(work / "mlflow-art"), python=args.mlflow_python,
                    env=dict(env, MLFLOW_DISABLE_TELEMETRY="true")).strip().splitlines()[-1]
        print(f"logged {n} runs to MLflow (SQLite) in {time.perf_counter() - t:.1f} s", flush=True)
        meta.write_text(json.dumps({"exp_id": exp_id}))
    return db, json.loads(meta.read_text())["exp_id"]


def run_all(args: argparse.Namespace, work: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(LUMO_HOME=str(work / "lumo-home"), LUMO_CACHE_DIR=str(work / "cache"), PYTHONUNBUFFERED="1")
    print(f"# board benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}, load average at start {load_average()}", flush=True)
    from playwright.sync_api import sync_playwright

    servers: list[Server] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium)
        print(f"Chromium {browser.version} (headless), a fresh context per page load, {args.rounds} rounds")
        try:
            if args.runs:
                versus_mlflow(args, work, env, browser, servers)
            if args.large:
                scaling(args, work, env, browser, servers)
        finally:
            for s in servers:
                s.stop()
            browser.close()
    print(f"load average at end {load_average()}")


def versus_mlflow(args: argparse.Namespace, work: Path, env: dict, browser: Any, servers: list[Server]) -> None:
    n = args.runs
    root = store(work, n, env)
    board, url = start_board(root, env, work, args.timeout)
    servers.append(board)
    targets = {"ours": (url, ".lumo-runs .tabulator-row")}
    if args.mlflow_python:
        db, exp_id = mlflow_db(args, work, root, n, env)
        ml, base = start_mlflow(args.mlflow_python, db, work, env, args.timeout)
        servers.append(ml)
        targets["mlflow"] = (f"{base}/#/experiments/{exp_id}/runs", ".ag-row")
    else:
        print("MLflow skipped: no --mlflow-python")
    res = alternate(browser, targets, args.rounds, args.timeout)
    print(f"first table row, {n} runs (ours: the first page of rows sent in the HTML; ours:interactive: the "
          "Tabulator's own rows, the HTML's gone):")
    for k, xs in res.items():
        print(f"  {k:17s} {spread(xs)}   rounds: {' '.join(f'{x:.2f}' for x in xs)}")
    if "mlflow" in res:
        for k, what in (("ours", "first row"), ("ours:interactive", "interactive table")):
            ratios = [a / b for a, b in zip(res[k], res["mlflow"])]
            print(f"ratio ours/MLflow {what}, {n} runs: {med(res[k]) / med(res['mlflow']):.2f} "
                  f"(per round {' '.join(f'{r:.2f}' for r in ratios)}; median {med(ratios):.2f}; target <= 0.5)")
    for s in servers[:]:
        s.stop()
        servers.remove(s)


def scaling(args: argparse.Namespace, work: Path, env: dict, browser: Any, servers: list[Server]) -> None:
    small, large = store(work, args.small, env), store(work, args.large, env)
    b1, u1 = start_board(small, env, work, args.timeout)
    servers.append(b1)
    b2, u2 = start_board(large, env, work, args.timeout)
    servers.append(b2)
    rows = ".lumo-runs .tabulator-row"
    res = alternate(browser, {"small": (u1, rows), "large": (u2, rows)}, args.rounds, args.timeout)
    for k, what in (("", "first row"), (":interactive", "interactive table")):
        sm, lg = res[f"small{k}"], res[f"large{k}"]
        print(f"{what}, ours: {args.small} runs {spread(sm)}, {args.large} runs {spread(lg)}")
        print(f"ratio ours {args.large}/{args.small} runs {what}: {med(lg) / med(sm):.2f} (target <= 1.5)")
    try:
        ch = browser_changes(browser, u2, args.timeout, args.rounds)
        for what, label in (("sort", "header click (sort)"), ("page", "next/previous page")):
            xs = ch[what]
            print(f"in the browser, {args.large} runs: {label} to a changed first row "
                  + (spread(xs) if xs else "not measured") + f" ({len(xs)} of {args.rounds} clicks changed it; "
                  "round trip over the websocket and rendering included)")
    except Exception as e:  # the page's markup is the board's business: report, go on
        print(f"in the browser: not measured ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    try:
        out = json.loads(py(SERVER_SIDE, str(large), str(args.server_rounds), env=env).strip().splitlines()[-1])
    except RuntimeError as e:
        print(f"server side: not measured ({str(e)[-500:]})")
        return
    print(f"server side, {out['rows']} runs (cached frame, a 20-row page of the table):")
    for k in ("filter", "sort", "page", "default_columns"):
        print(f"  {k:16s} {spread(out[k], 1000, '.1f', 'ms')}")
    worst = max(med(out[k]) for k in ("filter", "sort", "page"))
    print(f"ratio worst of filter/sort/page to the 0.3 s target: {worst / 0.3:.2f} (target <= 1)")
    print(f"change check, unchanged {out['rows']}-run store: BoardContext.changed() "
          f"{spread(out['changed'], 1000, '.2f', 'ms')}" +
          (f", Watcher.change_token() {spread(out['change_token'], 1000, '.2f', 'ms')}" if "change_token" in out
           else ", Watcher.change_token(): not there (fallback token)"))
    print(f"ratio change check to the 20 ms target: {med(out['changed']) / 0.020:.2f} (target <= 1)")


if __name__ == "__main__":
    main()
