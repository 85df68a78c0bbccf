"""Log 100,000 metric points: lumo-hydra ``dump_metric`` against the anchor MLflow ``log_metric`` /
``log_batch`` (SQLite store). Target (ANCHORS.md): at least 10x faster.

MLflow runs in its own virtual environment (it is not a project dependency), with a local SQLite store:

    python -m venv /tmp/venv-mlflow && /tmp/venv-mlflow/bin/pip install mlflow
    env -u PYTHONDONTWRITEBYTECODE python benchmarks/bench_metrics.py [--points 100000] [--rounds 3]
        [--mlflow-python /tmp/venv-mlflow/bin/python]

MLflow's ``log_metric`` costs milliseconds per call (one SQLite transaction each), so 100,000 calls would
take many minutes: it is timed on ``--mlflow-sample`` calls and reported per call and scaled to ``n``
(labelled as such). ``log_batch`` is timed on all ``n`` points (in batches of 1,000, MLflow's limit).
Ours is timed for all ``n`` calls plus the final flush at ``end()`` (everything on disk), in a fresh
process per round. The sides alternate round by round; medians with their min-max spread are printed,
with the load average at the start and the end.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from _benchlib import load_average, work_folder
from _benchlib import spread as _spread

MLFLOW_CODE = r"""
import json, sys, time, os
n, sample, root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
mlflow.set_tracking_uri("sqlite:///" + os.path.join(root, "mlflow.db"))
mlflow.set_experiment("bench")
out = {"version": mlflow.__version__}
with mlflow.start_run() as run:
    mlflow.log_metric("warm", 0.0, step=0)
    t = time.perf_counter()
    for i in range(sample):
        mlflow.log_metric("acc", i / sample, step=i)
    out["log_metric_per_call"] = (time.perf_counter() - t) / sample
with mlflow.start_run() as run:
    client = MlflowClient()
    mlflow.log_metric("warm", 0.0, step=0)
    t = time.perf_counter()
    ts = int(time.time() * 1000)
    for start in range(0, n, 1000):
        client.log_batch(run.info.run_id, metrics=[Metric("acc", i / n, ts, i) for i in range(start, min(n, start + 1000))])
    out["log_batch_total"] = time.perf_counter() - t
print(json.dumps(out))
"""

OURS_CODE = r"""
import json, sys, time
from pathlib import Path
n, home = int(sys.argv[1]), sys.argv[2]
from lumo_hydra.record.experiment import Experiment
exp = Experiment("bench_metrics", home=home, heartbeat_interval=10).start()
exp.dump_metric("warm", 0.0)
t = time.perf_counter()
for i in range(n):
    exp.dump_metric("acc", i / n, cmp="max")
t_calls = time.perf_counter() - t
exp.end()
t_total = time.perf_counter() - t
with open(Path(exp.info_dir) / "history.jsonl", "rb") as f:
    lines = sum(1 for _ in f)
assert lines == n + 1, lines
print(json.dumps({"calls": t_calls, "total": t_total}))
"""
OLD_MLFLOW = ("/tmp/venv-mlflow/bin/python", "/tmp/watcher-bench-mlflow/bin/python")



def spread(xs: list[float], scale: float = 1.0, digits: int = 3) -> str:
    """'median (min-max)' of ``xs`` times ``scale``."""
    return _spread(xs, scale=scale, digits=digits)


def last_json(cmd: list[str], env: dict[str, str]) -> dict | None:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"{cmd[0]} failed:\n" + r.stderr[-2000:])
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Log N metric points: lumo-hydra Experiment.dump_metric (+ final flush) against the "
                    "anchor MLflow log_metric / log_batch on a SQLite store. Target: at least 10x faster.",
        epilog="Create the MLflow venv: python -m venv /tmp/venv-mlflow && /tmp/venv-mlflow/bin/pip install "
               "mlflow. Run with PYTHONDONTWRITEBYTECODE unset.")
    ap.add_argument("--points", "--n", dest="n", type=int, default=100_000,
                    help="metric points logged per round (default 100000)")
    ap.add_argument("--mlflow-sample", type=int, default=1_000,
                    help="log_metric calls timed, then scaled to --points (default 1000)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    default_ml = os.environ.get("MLFLOW_PYTHON") or next((p for p in OLD_MLFLOW if os.path.exists(p)), None)
    ap.add_argument("--mlflow-python", default=default_ml,
                    help=f"the MLflow venv's python (default $MLFLOW_PYTHON, else {' or '.join(OLD_MLFLOW)} "
                         "if it exists; none: the anchor is skipped)")
    ap.add_argument("--work", help="folder for the stores (default: a fresh temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    with work_folder(a) as work:
        run(a, work)


def run(a: argparse.Namespace, work: Path) -> None:
    print(f"# metric logging, {a.n} points, {a.rounds} alternating rounds, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cores; load average at start {load_average()}")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(LUMO_HOME=str(work / "lumo-home"), LUMO_CACHE_DIR=str(work / "cache"))
    anchor = a.mlflow_python if a.mlflow_python and os.path.exists(a.mlflow_python) else None
    if not anchor:
        print(f"MLflow anchor skipped: no interpreter at {a.mlflow_python or '(none given)'} "
              "(python -m venv /tmp/venv-mlflow && /tmp/venv-mlflow/bin/pip install mlflow; then --mlflow-python)")
    ours: list[dict] = []
    mls: list[dict] = []
    for i in range(a.rounds):
        o = last_json([sys.executable, "-c", OURS_CODE, str(a.n), str(work / f"lumo-{i}")], env)
        if o is None:
            raise SystemExit(1)
        ours.append(o)
        if anchor:
            (work / f"mlflow-{i}").mkdir()
            m = last_json([anchor, "-c", textwrap.dedent(MLFLOW_CODE), str(a.n), str(a.mlflow_sample),
                           str(work / f"mlflow-{i}")], env)
            if m is None:
                anchor = None
            else:
                mls.append(m)
    calls, total = [o["calls"] for o in ours], [o["total"] for o in ours]
    print(f"lumo-hydra dump_metric, {a.n} calls: {spread(calls)} s ({statistics.median(calls) / a.n * 1e6:.2f} us/call); "
          f"with the final flush to disk {spread(total)} s  [median (min-max) over {len(ours)} rounds]")
    if not mls:
        print("ratio to the anchor: n/a (MLflow anchor skipped)")
    else:
        per = [m["log_metric_per_call"] for m in mls]
        batch = [m["log_batch_total"] for m in mls]
        v = mls[0]["version"]
        print(f"MLflow {v} log_metric (SQLite): {spread(per, 1e6, 0)} us/call on {a.mlflow_sample} calls "
              f"-> {statistics.median(per) * a.n:.1f} s scaled to {a.n}")
        print(f"MLflow {v} log_batch (SQLite, 1000 per batch): {a.n} points {spread(batch)} s")
        r_m = [p * a.n / o for p, o in zip(per, total)]
        r_b = [b / o for b, o in zip(batch, total)]
        med = statistics.median
        print(f"ratio log_metric / dump_metric (per call scaled, incl. our final flush): {med(r_m):.0f}x "
              f"(per round {min(r_m):.0f}-{max(r_m):.0f}x)")
        print(f"ratio log_batch / dump_metric (incl. our final flush): {med(r_b):.1f}x "
              f"(per round {min(r_b):.1f}-{max(r_b):.1f}x); target >= 10x {'met' if min(med(r_m), med(r_b)) >= 10 else 'MISSED'}")
    print(f"load average at end {load_average()}")


if __name__ == "__main__":
    main()
