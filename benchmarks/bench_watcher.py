"""Benchmark: load N recorded runs into a DataFrame (Watcher) vs MLflow search_runs vs lumo 1.1.0's Watcher.

Runs are generated through our own API (``Experiment`` with the GitCommit(shared sweep snapshot),
LockFile and LastCmd hooks): 20 parameters, 5 metrics with 100-step histories, a few tags. The
same runs (params, final/best metrics, tags) are logged to MLflow in a local SQLite store, and to a
lumo 1.1.0 store, each in its own venv under /tmp (never a project dependency):

    python -m venv /tmp/watcher-bench-mlflow && /tmp/watcher-bench-mlflow/bin/pip install mlflow
    python -m venv --system-site-packages /tmp/watcher-bench-lumo && \
        /tmp/watcher-bench-lumo/bin/pip install --no-deps lumo==1.1.0 fire dbrecord tqdm accelerate \
        safetensors huggingface_hub

Usage: python benchmarks/bench_watcher.py [--runs 1000 10000] [--mlflow-runs N] [--lumo-runs N]
Timings are the best of 3 in fresh subprocesses (import time excluded), so each number is what a
new Python session or CLI call pays.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MLFLOW_PY = "/tmp/watcher-bench-mlflow/bin/python"
LUMO_PY = "/tmp/watcher-bench-lumo/bin/python"

GEN = r"""
import os, random, sys, time
from lumo_hydra import Experiment
from lumo_hydra.record.hooks import GitCommit, LockFile, LastCmd
from lumo_hydra.record.gitsnap import snapshot
root, n, repo = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.chdir(repo)
snap = snapshot(repo)  # one snapshot shared by the whole 'sweep', as the Hydra callback does
rnd = random.Random(0)
for i in range(n):
    exp = Experiment(f"exp{i % 5}", home=root, heartbeat_interval=0,
                     hooks=[GitCommit(result=snap), LockFile(), LastCmd()])
    exp.start()
    exp.dump_params({"opt": {"lr": rnd.random(), "wd": rnd.choice([0, 1e-4, 5e-4]),
                             "name": rnd.choice(["sgd", "adam"])},
                     "model": {"name": rnd.choice(["resnet18", "vit"]), "depth": rnd.choice([18, 34, 50])},
                     **{f"p{j}": rnd.random() for j in range(15)}})
    for s in range(100):
        for k in range(5):
            exp.dump_metric(f"m{k}", rnd.random(), cmp="max" if k < 3 else "min", step=s)
    exp.add_tags(*rnd.sample(["baseline", "ablation", "best", "draft"], 2))
    exp.end()
"""

LOAD = r"""
import os, sys, time, json
sys.setrecursionlimit(10000)
root, mode = sys.argv[1], sys.argv[2]
import pandas
from lumo_hydra import Watcher
w = Watcher(root)
if mode == "cold":
    w.clear_cache()
c = time.process_time()
t = time.perf_counter()
df = w.load()
dt = time.perf_counter() - t
cpu = time.process_time() - c
stats = dict(w.stats)
t = time.perf_counter()
df2 = w.load()
dt2 = time.perf_counter() - t
t = time.perf_counter()
flat = w.load(flatten=True)
dtf = time.perf_counter() - t
import psutil
print(json.dumps({"t": dt, "cpu": cpu, "t_second": dt2, "t_second_flat": dtf, "rows": len(df), "stats": stats,
                  "rss_mb": psutil.Process().memory_info().rss / 1e6}))
"""

TOUCH = r"""
import json, os, sys
from lumo_hydra.store.files import atomic_write_json
root, k = sys.argv[1], int(sys.argv[2])
exp = os.path.join(root, "experiments", "exp0")
for name in sorted(os.listdir(exp))[:k]:
    p = os.path.join(exp, name, "run.json")
    rec = json.load(open(p)); rec["note"] = "changed"; atomic_write_json(p, rec)
"""

MEM = r"""
import sys, json, gc, tracemalloc
root = sys.argv[1]
from lumo_hydra import Watcher
import pandas
Watcher(root).load()  # warm the index
tracemalloc.start()
w = Watcher(root)
df = w.load()
w = None
gc.collect()
cur, peak = tracemalloc.get_traced_memory()
# the DataFrame's own memory: everything it keeps alive (nested values included), via the heap
print(json.dumps({"df_mb": cur / 1e6, "peak_mb": peak / 1e6}))
"""

MLFLOW_LOG = r"""
import json, sys, time, os, logging
logging.disable(logging.WARNING)
import mlflow
from mlflow.entities import Metric, Param, RunTag
db, runs_file = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri("sqlite:///" + db)
client = mlflow.tracking.MlflowClient()
exp_id = client.create_experiment("bench")
runs = json.load(open(runs_file))
for r in runs:
    run = client.create_run(exp_id, tags={"mlflow.runName": r["test_name"]})
    ms = []
    for name, hist in r["history"].items():  # search_runs reads the latest values only: log those
        s, v, t = hist[-1]
        ms.append(Metric(name, v, int(t * 1000), s))
    client.log_batch(run.info.run_id, metrics=ms[:1000],
                     params=[Param(k, str(v)) for k, v in r["params"].items()],
                     tags=[RunTag(t, "1") for t in r["tags"]])
    for i in range(1000, len(ms), 1000):
        client.log_batch(run.info.run_id, metrics=ms[i:i + 1000])
    client.set_terminated(run.info.run_id)
"""

MLFLOW_SEARCH = r"""
import sys, time, json, logging
logging.disable(logging.WARNING)
import mlflow
mlflow.set_tracking_uri("sqlite:///" + sys.argv[1])
c = time.process_time()
t = time.perf_counter()
df = mlflow.search_runs(search_all_experiments=True, max_results=100000)
print(json.dumps({"t": time.perf_counter() - t, "cpu": time.process_time() - c, "rows": len(df)}))
"""

LUMO_WRITE = r"""
import json, sys, os
os.environ["LUMO_HOME"] = sys.argv[1]
from lumo import SimpleExperiment
runs = json.load(open(sys.argv[2]))
import lumo
for r in runs:
    exp = lumo.Experiment(r["exp_name"])
    exp.start()
    exp.dump_info("params", r["params"])
    for name, hist in r["history"].items():
        for s, v, t in hist:
            pass
        exp.dump_metric(name, max(v for _, v, _ in hist), cmp="max")
    for t in r["tags"]:
        exp.dump_tags(t) if hasattr(exp, "dump_tags") else None
    exp.end()
"""

LUMO_LOAD = r"""
import sys, time, json, os
os.environ["LUMO_HOME"] = sys.argv[1]
from lumo import Watcher
w = Watcher()
t = time.perf_counter()
df = w.load()
print(json.dumps({"t": time.perf_counter() - t, "rows": len(df)}))
"""


def py(code: str, *args: str, python: str = sys.executable, env: dict | None = None, timeout: float = 3600) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    try:
        p = subprocess.run([python, f.name, *args], capture_output=True, text=True, env=env, timeout=timeout)
    finally:
        os.unlink(f.name)
    if p.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{p.stderr[-3000:]}")
    return p.stdout


def best(code: str, *args: str, n: int = 3, key: str = "t", **kw) -> dict:
    res = [json.loads(py(code, *args, **kw).strip().splitlines()[-1]) for _ in range(n)]
    return min(res, key=lambda r: r[key])


def export_runs(root: str, limit: int | None, path: str) -> None:
    """The runs (params, histories, tags) as plain JSON, to log the same runs to the anchors."""
    from lumo_hydra import Watcher

    w = Watcher(root)
    df = w.load()
    out = []
    for _, r in df.head(limit).iterrows() if limit else df.iterrows():
        hist: dict = {}
        with open(os.path.join(r["info_dir"], "history.jsonl")) as f:
            for line in f:
                d = json.loads(line)
                hist.setdefault(d["k"], []).append((d["s"], d["v"], d["t"]))
        params = {}
        for k, v in r["params"].items():
            if isinstance(v, dict):
                params.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                params[k] = v
        out.append({"exp_name": r["exp_name"], "test_name": r["test_name"], "params": params,
                    "history": hist, "tags": r["tags"]})
    with open(path, "w") as f:
        json.dump(out, f)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--mlflow-runs", type=int, default=1000,
                    help="runs logged to MLflow (params, tags, last metric values)")
    ap.add_argument("--lumo-runs", type=int, default=1000)
    ap.add_argument("--work", default="/tmp/lumo-bench-watcher")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, LUMO_CACHE_DIR=str(work / "cache"))
    repo = work / "repo"
    if not repo.exists():
        repo.mkdir()
        (repo / "train.py").write_text("print('train')\n")
        for c in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "i"]):
            subprocess.run(["git", *c], cwd=repo, check=True)
    print(f"# Watcher benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for n in args.runs:
        root = work / f"store-{n}"
        if not (root / "experiments").exists():
            t = time.perf_counter()
            py(GEN, str(root), str(n), str(repo), env=env)
            print(f"generated {n} runs through the API in {time.perf_counter() - t:.1f} s")
        env["LUMO_CACHE_DIR"] = str(work / f"cache-{n}")
        cold = best(LOAD, str(root), "cold", env=env)
        warm = best(LOAD, str(root), "warm", env=env)
        changed_all = []
        for _ in range(3):
            py(TOUCH, str(root), "10", env=env)
            time.sleep(2.1)  # past the racy window, as in normal use
            changed_all.append(json.loads(py(LOAD, str(root), "warm", env=env).strip()))
        changed_all.sort(key=lambda r: r["t"])
        changed = changed_all[1]  # the median of 3
        mem = json.loads(py(MEM, str(root), env=env).strip())
        print(f"\n## {n} runs")
        print(f"cold load            {cold['t']:.3f} s   (rows {cold['rows']}, rss {cold['rss_mb']:.0f} MB)")
        print(f"warm load            {warm['t']:.3f} s   (stats {warm['stats']})")
        three = ", ".join(f"{c['t']:.3f}" for c in changed_all)
        print(f"after 10 changed     {changed['t']:.3f} s   (median of 3: {three}; stats {changed['stats']})")
        print(f"second load          {warm['t_second']:.3f} s   (same process, nothing changed)")
        print(f"second load, flat    {warm['t_second_flat']:.3f} s   (same process, flatten=True)")
        print(f"DataFrame memory     {mem['df_mb']:.0f} MB (heap kept alive by the frame)")
        # anchors
        m = min(n, args.mlflow_runs)
        runs_json = work / f"runs-{n}-{m}.json"
        if m == 0:
            print("MLflow: --mlflow-runs 0, skipped")
        elif os.path.exists(MLFLOW_PY):
            db = work / f"mlflow-{m}.db"
            if not db.exists():
                export_runs(str(root), m, str(runs_json))
                t = time.perf_counter()
                py(MLFLOW_LOG, str(db), str(runs_json), python=MLFLOW_PY)
                print(f"(logged {m} runs to MLflow/SQLite in {time.perf_counter() - t:.1f} s)")
            # side by side: ours (cold, then warm) and MLflow alternately, 5 rounds, best of each, so a
            # burst of load from other processes on the shared machine hits both sides alike
            mls, oc, ow = [], [], []
            env_m = dict(env, LUMO_CACHE_DIR=str(work / f"cache-{m}"))
            for _ in range(5):
                oc.append(json.loads(py(LOAD, str(work / f"store-{m}"), "cold", env=env_m).strip()))
                ow.append(json.loads(py(LOAD, str(work / f"store-{m}"), "warm", env=env_m).strip()))
                mls.append(json.loads(py(MLFLOW_SEARCH, str(db), python=MLFLOW_PY).strip().splitlines()[-1]))
            ml, ours, ours_w = (min(x, key=lambda r: r["t"]) for x in (mls, oc, ow))
            ratios = sorted(a["t"] / b["t"] for a, b in zip(mls, oc))
            print(f"MLflow search_runs   {ml['t']:.3f} s   over {ml['rows']} runs (ours cold {ours['t']:.3f} s): "
                  f"ours cold {ml['t'] / ours['t']:.1f}x faster (per round {ratios[0]:.1f}x..{ratios[-1]:.1f}x, "
                  f"CPU time {min(r['cpu'] for r in mls) / min(r['cpu'] for r in oc):.1f}x), "
                  f"warm {ml['t'] / ours_w['t']:.1f}x faster")
        else:
            print("MLflow: not installed in /tmp/watcher-bench-mlflow, skipped")
        k = min(n, args.lumo_runs)
        if k == 0:
            print("lumo 1.1.0: --lumo-runs 0, skipped")
        elif os.path.exists(LUMO_PY):
            lroot = work / f"lumo-{k}"  # lumo 1.1 ignores LUMO_HOME: its store is $HOME/.lumo (.lumorc.json)
            if not (lroot / ".lumo").exists():
                lroot.mkdir(exist_ok=True)
                if not runs_json.exists() or k != m:
                    runs_json = work / f"runs-{n}-{k}.json"
                    export_runs(str(root), k, str(runs_json))
                t = time.perf_counter()
                py(LUMO_WRITE, str(lroot), str(runs_json), python=LUMO_PY, env=dict(os.environ, HOME=str(lroot)))
                print(f"(wrote {k} runs with lumo 1.1.0 in {time.perf_counter() - t:.1f} s)")
            lu = best(LUMO_LOAD, str(lroot), python=LUMO_PY, env=dict(os.environ, HOME=str(lroot)))
            ours = cold if k == n else best(LOAD, str(work / f"store-{k}"), "cold", env=env)
            print(f"lumo 1.1.0 Watcher   {lu['t']:.3f} s   over {lu['rows']} runs: "
                  f"ours cold {lu['t'] / ours['t']:.1f}x faster")
        else:
            print("lumo 1.1.0: not installed in /tmp/watcher-bench-lumo, skipped")
        print(f"(load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
