"""Log 100,000 metric points: lumo-hydra ``dump_metric`` against MLflow ``log_metric`` / ``log_batch``.

MLflow runs in its own virtual environment (it is not a project dependency), with a local SQLite store:

    python -m venv /tmp/venv-mlflow && /tmp/venv-mlflow/bin/pip install mlflow
    python benchmarks/bench_metrics.py [--n 100000] [--mlflow-python /tmp/venv-mlflow/bin/python]

MLflow's ``log_metric`` costs milliseconds per call (one SQLite transaction each), so 100,000 calls would
take many minutes: it is timed on ``--mlflow-sample`` calls and reported per call and scaled to ``n``
(labelled as such). ``log_batch`` is timed on all ``n`` points (in batches of 1,000, MLflow's limit).
Ours is timed for all ``n`` calls plus the final flush at ``end()`` (everything on disk).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

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


def bench_ours(n: int, home: Path) -> dict[str, float]:
    os.environ["LUMO_HOME"] = str(home)
    from lumo_hydra.record.experiment import Experiment

    exp = Experiment("bench_metrics", heartbeat_interval=10).start()
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
    return {"calls": t_calls, "total": t_total}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--mlflow-sample", type=int, default=1_000)
    ap.add_argument("--mlflow-python", default=os.environ.get("MLFLOW_PYTHON", "/tmp/venv-mlflow/bin/python"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours = bench_ours(a.n, Path(tmp) / "lumo")
        print(f"lumo-hydra dump_metric: {a.n} calls {ours['calls']:.3f} s ({ours['calls'] / a.n * 1e6:.2f} us/call); "
              f"with the final flush to disk {ours['total']:.3f} s")
        if not os.path.exists(a.mlflow_python):
            print(f"MLflow anchor skipped: no interpreter at {a.mlflow_python} "
                  "(python -m venv /tmp/venv-mlflow && /tmp/venv-mlflow/bin/pip install mlflow)")
            return
        r = subprocess.run([a.mlflow_python, "-c", textwrap.dedent(MLFLOW_CODE), str(a.n), str(a.mlflow_sample), tmp],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("MLflow anchor failed:\n" + r.stderr[-2000:])
            return
        ml = json.loads(r.stdout.strip().splitlines()[-1])
        per = ml["log_metric_per_call"]
        scaled = per * a.n
        print(f"MLflow {ml['version']} log_metric (SQLite): {per * 1e6:.0f} us/call on {a.mlflow_sample} calls "
              f"-> {scaled:.1f} s scaled to {a.n}")
        print(f"MLflow {ml['version']} log_batch (SQLite, 1000 per batch): {a.n} points {ml['log_batch_total']:.3f} s")
        print(f"ratio log_metric / dump_metric (per call, incl. our final flush): {scaled / ours['total']:.0f}x")
        print(f"ratio log_batch / dump_metric (incl. our final flush): {ml['log_batch_total'] / ours['total']:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
