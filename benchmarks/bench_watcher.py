"""Benchmark: load N recorded runs into a DataFrame (Watcher) vs MLflow search_runs vs lumo 1.1.0's Watcher.

Runs are generated through our own API (``Experiment`` with the GitCommit(shared sweep snapshot),
LockFile and LastCmd hooks): 20 parameters, 5 metrics with 100-step histories, a few tags. The
same runs (params, final/best metrics, tags) are logged to MLflow in a local SQLite store, and to a
lumo 1.1.0 store, each in its own venv (never a project dependency), given by ``--mlflow-python`` and
``--lumo-python``:

    python -m venv /tmp/watcher-bench-mlflow && /tmp/watcher-bench-mlflow/bin/pip install mlflow
    python -m venv --system-site-packages /tmp/watcher-bench-lumo && \\
        /tmp/watcher-bench-lumo/bin/pip install lumo==1.1.0 fire psutil joblib accelerate pytz six dbrecord

Usage: env -u PYTHONDONTWRITEBYTECODE python benchmarks/bench_watcher.py [--runs 1000 10000 100000]
    [--direct] [--mlflow-runs N] [--lumo-runs N] [--rounds 3] [--anchor-rounds 5] [--work DIR --keep]
``--direct`` writes the stores' files directly (one run through the API, cloned): 100,000 runs in
minutes. ``--parts loads``: cold loads side by side with the floor (the same files read and parsed
with ``json.loads`` in one process, right after each cold load), warm, after ``--changed`` runs changed,
the flat load warm and after ``--changed`` runs changed, each with wall and CPU seconds (a forked
reader's CPU included), peak RSS and the reader used (orjson or json, one or two processes; ``--one-process`` for one); ``--skip-cold``.
``--parts scale``: lookups by id (``record``, ``history``) and ``lumo-hydra list`` in a fresh process.
Every load runs in a fresh subprocess (import time excluded), so each number is what a new Python
session or CLI call pays; medians with their min-max spread over the rounds are printed, with the
load average at the start and the end. Against MLflow, ours (cold, warm) and ``search_runs`` alternate
round by round. Stores are generated in the work folder (``--work DIR --keep`` reuses them).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _benchlib import load_average, py, work_folder

HERE = Path(__file__).resolve().parent
OLD_MLFLOW_PY = "/tmp/watcher-bench-mlflow/bin/python"  # defaults only if they exist
OLD_LUMO_PY = "/tmp/watcher-bench-lumo/bin/python"

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
import os, sys, time, json, resource
sys.setrecursionlimit(10000)
root, mode = sys.argv[1], sys.argv[2]
import pandas
from lumo_hydra import Watcher
from lumo_hydra.store.reader import reader_name
import lumo_hydra.watcher.parallel as par
forks = []
real_start = par.start
def start(fn, arg):  # counted: whether a slice was read by a second process
    forks.append(len(arg[0]) if isinstance(arg, tuple) else len(arg))
    return real_start(fn, arg)
par.start = start
w = Watcher(root)
if mode == "cold":
    w.clear_cache()
def cpu():  # this process and the children it reaped (a forked reader)
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime
c = cpu()
t = time.perf_counter()
df = w.load()
dt = time.perf_counter() - t
cpu_s = cpu() - c
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
stats = dict(w.stats)
t = time.perf_counter()
w._index.wait_writes()  # a cold load's detached cache writer (watcher/behind.py): not the next measurement's
dt_writer = time.perf_counter() - t
cpu_writer = getattr(w._index._writer, "cpu", None) or 0.0
t = time.perf_counter()
df2 = w.load()
dt2 = time.perf_counter() - t
t = time.perf_counter()
flat = w.load(flatten=True)
dtf = time.perf_counter() - t
print(json.dumps({"t": dt, "cpu": cpu_s, "t_writer": dt_writer, "cpu_writer": cpu_writer, "t_second": dt2,
                  "t_second_flat": dtf, "rows": len(df), "stats": stats,
                  "rss_mb": peak, "reader": reader_name() + (f", 2 processes (child read {forks[0]} runs)" if forks
                                                             else ", 1 process")}))
"""

FLAT = r"""
import sys, time, json, resource
from lumo_hydra import Watcher
import pandas
w = Watcher(sys.argv[1])
c = time.process_time(); t = time.perf_counter()
df = w.load(flatten=True)
print(json.dumps({"t": time.perf_counter() - t, "cpu": time.process_time() - c, "rows": len(df),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}))
"""

DIRECT = r"""
# n runs cloned from one template run written through the API (its run.json and metrics.json layout),
# by writing the files directly: 100,000 runs in minutes instead of hours
import json, os, random, sys, time
from lumo_hydra.store.files import atomic_write_bytes
root, n, tmpl = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rec0 = json.load(open(os.path.join(tmpl, "run.json")))
# the store root the template run was recorded in
troot = os.path.dirname(os.path.dirname(os.path.dirname(rec0.get("paths", {}).get("info_dir") or os.path.abspath(tmpl))))
met0 = json.load(open(os.path.join(tmpl, "metrics.json")))
rnd = random.Random(0)
t0 = time.time() - 86400 * 400
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + ".000000"
for i in range(n):
    exp = f"exp{i % 5}"
    start = t0 + i * 300
    name = time.strftime("%y%m%d", time.localtime(start)) + f".{i % 1000:03d}.{i % 36:x}t"
    d = os.path.join(root, "experiments", exp, name)
    os.makedirs(d)
    rec = dict(rec0, exp_name=exp, test_name=name)
    # the paths of a run written in this store (not the template's store: every run would look moved there)
    rec["paths"] = {k: (v.replace(rec0["exp_name"] + "/" + rec0["test_name"], exp + "/" + name).replace(
                        troot + "/", os.path.abspath(root) + "/") if isinstance(v, str) else v)
                    for k, v in rec0.get("paths", {}).items()}
    rec["params"] = {"opt": {"lr": rnd.random(), "wd": rnd.choice([0, 1e-4, 5e-4]), "name": rnd.choice(["sgd", "adam"])},
                     "model": {"name": rnd.choice(["resnet18", "vit"]), "depth": rnd.choice([18, 34, 50])},
                     **{f"p{j}": rnd.random() for j in range(5)}}
    rec["progress"] = dict(rec0.get("progress") or {}, start=iso(start), end=iso(start + 60), last_edit_time=iso(start + 60))
    rec["tags"] = rnd.sample(["baseline", "ablation", "best", "draft"], 2)
    met = {}
    lines = []
    for k in range(5):
        vals = [rnd.random() for _ in range(100)]
        m = dict(met0.get(f"m{k}") or {}, last=vals[-1], best=max(vals) if k < 3 else min(vals), count=100)
        met[f"m{k}"] = m
        lines += [f'{{"k": "m{k}", "v": {v!r}, "s": {s}, "t": {start + s}}}' for s, v in enumerate(vals)]
    atomic_write_bytes(os.path.join(d, "run.json"), json.dumps(rec).encode())
    atomic_write_bytes(os.path.join(d, "metrics.json"), json.dumps(met).encode())
    with open(os.path.join(d, "history.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")
past = time.time() - 60
for dp, _, fs in os.walk(os.path.join(root, "experiments")):
    for f in fs:
        os.utime(os.path.join(dp, f), (past, past))  # past the index's racy window
"""

FLOOR = r"""
# the floor: read every run.json and metrics.json of the store and json.loads them, in one process
import json, os, sys, time
root = sys.argv[1]
t = time.perf_counter()
c = time.process_time()
exps = os.path.join(root, "experiments")
n = 0
for e in os.scandir(exps):
    for r in os.scandir(e.path):
        for f in ("run.json", "metrics.json"):
            try:
                with open(os.path.join(r.path, f), "rb") as fh:
                    json.loads(fh.read())
            except OSError:
                pass
        n += 1
print(json.dumps({"t": time.perf_counter() - t, "cpu": time.process_time() - c, "rows": n}))
"""

SCALE = r"""
# warm reads at scale (the index exists): load flat, a lookup by id, history, the list view
import io, json, os, resource, sys, time, contextlib
root = sys.argv[1]
os.environ["LUMO_HOME"] = root
from lumo_hydra import Watcher
import pandas
w = Watcher(root)
out = {}
t = time.perf_counter(); df = w.load(flatten=True); out["flat"] = time.perf_counter() - t
name = df["test_name"].iloc[len(df) // 2]
w2 = Watcher(root)
t = time.perf_counter(); w2.record(name); out["show"] = time.perf_counter() - t
t = time.perf_counter(); w2.history(name, "m0"); out["history"] = time.perf_counter() - t
w3 = Watcher(root)
t = time.perf_counter(); w3.select(limit=20); out["select20"] = time.perf_counter() - t
from lumo_hydra.cli.app import main
for key, argv in (("list20", ["list", "--limit", "20"]), ("list_all", ["list"])):
    buf = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        try:
            main(argv)
        except SystemExit:
            pass
    out[key] = time.perf_counter() - t
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
import subprocess  # the whole command, as typed: Python's start and the imports (no pandas, no rich) counted
for key, argv in (("list40_cmd", ["list", "--limit", "40"]), ("list0_cmd", ["list", "--limit", "0"])):
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lumo_hydra", "--root", root, *argv], check=True, stdout=subprocess.DEVNULL)
    out[key] = time.perf_counter() - t
    ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out[key + "_cpu"] = ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime
import fcntl, pty, struct, termios  # the default view: `lumo-hydra list` on a terminal of 50 x 200
master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
t = time.perf_counter()
import tempfile
err = tempfile.TemporaryFile()
p = subprocess.Popen([sys.executable, "-m", "lumo_hydra", "--root", root, "list"], stdin=subprocess.DEVNULL,
                     stdout=slave, stderr=err, env=env)
os.close(slave)
lines = 0
while True:
    try:
        data = os.read(master, 65536)
    except OSError:  # EIO: the command closed the terminal
        break
    if not data:
        break
    lines += data.count(b"\n")
os.close(master)
if p.wait() != 0:
    err.seek(0)
    raise SystemExit("lumo-hydra list on a terminal failed: " + err.read().decode(errors="replace")[-2000:])
out["list_tty"] = time.perf_counter() - t
ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
out["list_tty_cpu"] = ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime
out["list_tty_lines"] = lines
print(json.dumps(out))
"""

TOUCH = r"""
# k notes edited as `lumo-hydra note` does (edit_record: an atomic rewrite, then the experiment folder marked)
import os, sys
from lumo_hydra.store.reader import edit_record
root, k = sys.argv[1], int(sys.argv[2])
exp = os.path.join(root, "experiments", "exp0")
names = [d for d in sorted(os.listdir(exp)) if not d.startswith(".") and os.path.exists(os.path.join(exp, d, "run.json"))]
for name in names[:k]:
    edit_record(os.path.join(exp, name), lambda rec: rec.update(note="changed"))
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
# runs[start:stop] of the JSON file logged through MLflow's client into the SQLite store (several of these
# run side by side on slices; stop 0: only create the store's schema and its experiment)
import json, sys, time, os, logging
logging.disable(logging.WARNING)
import mlflow
from mlflow.entities import Metric, Param, RunTag
db, runs_file, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mlflow.set_tracking_uri("sqlite:///" + db)
client = mlflow.tracking.MlflowClient()
def retry(f, *a, **kw):  # SQLite allows one writer at a time: a busy store is waited for
    for i in range(50):
        try:
            return f(*a, **kw)
        except Exception as e:
            if "locked" not in str(e) or i == 49:
                raise
            time.sleep(0.05 * (i + 1))
exp = client.get_experiment_by_name("bench")
exp_id = exp.experiment_id if exp else client.create_experiment("bench")
runs = json.load(open(runs_file))[start:stop] if stop else []
for r in runs:
    run = retry(client.create_run, exp_id, tags={"mlflow.runName": r["test_name"]})
    ms = []
    for name, hist in r["history"].items():  # search_runs reads the latest values only: log those
        s, v, t = hist[-1]
        ms.append(Metric(name, v, int(t * 1000), s))
    retry(client.log_batch, run.info.run_id, metrics=ms[:1000],
          params=[Param(k, str(v)) for k, v in r["params"].items()], tags=[RunTag(t, "1") for t in r["tags"]])
    for i in range(1000, len(ms), 1000):
        retry(client.log_batch, run.info.run_id, metrics=ms[i:i + 1000])
    retry(client.set_terminated, run.info.run_id)
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


def rounds_of(code: str, *args: str, n: int = 3, **kw) -> list[dict]:
    """``n`` fresh-process results of ``code`` (one JSON line each)."""
    return [json.loads(py(code, *args, **kw).strip().splitlines()[-1]) for _ in range(n)]



def spread(res: list[dict], key: str = "t") -> str:
    xs = [r[key] for r in res]
    return f"{statistics.median(xs):.3f} s ({min(xs):.3f}-{max(xs):.3f})"


def mb(res: list[dict], key: str = "rss_mb") -> str:
    xs = [r[key] for r in res]
    return f"{statistics.median(xs):.0f} MB ({min(xs):.0f}-{max(xs):.0f})"


def med(res: list[dict], key: str = "t") -> float:
    return statistics.median(r[key] for r in res)


def export_runs(root: str, limit: int | None, path: str, last_only: bool = False) -> None:
    """The runs (params, histories, tags) as plain JSON, to log the same runs to the anchors; with
    ``last_only`` each history keeps its last point (all MLflow's ``search_runs`` reads)."""
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
        if last_only:
            hist = {k: v[-1:] for k, v in hist.items()}
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


def default_cache() -> str:
    """Where logged MLflow stores are kept between benchmark runs: ``$LUMO_BENCH_CACHE``, else the user's
    cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``) ``/lumo-hydra-bench``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("LUMO_BENCH_CACHE") or os.path.join(base, "lumo-hydra-bench")


def mlflow_store(args: argparse.Namespace, root: Path, m: int, runs_json: Path, env: dict) -> Path:
    """The MLflow SQLite store of ``m`` runs like ``root``'s, from ``--mlflow-cache`` (logged there once,
    through MLflow's client in ``--mlflow-procs`` processes, under a temporary name until complete)."""
    cache = Path(args.mlflow_cache)
    cache.mkdir(parents=True, exist_ok=True)
    db = cache / f"mlflow-{m}-{'direct' if args.direct else 'api'}-v1.db"
    if db.exists():
        print(f"(MLflow store of {m} runs reused from {db})")
        return db
    part = db.with_name(db.name + f".{os.getpid()}.partial")
    part.unlink(missing_ok=True)
    runs_json = runs_json.with_name(runs_json.stem + "-last.json")
    export_runs(str(root), m, str(runs_json), last_only=True)
    t = time.perf_counter()
    py(MLFLOW_LOG, str(part), str(runs_json), "0", "0", python=args.mlflow_python, env=env)  # schema, experiment
    k = max(1, args.mlflow_procs)
    script = cache / f"mlflow-log.{os.getpid()}.py"
    script.write_text(MLFLOW_LOG)
    try:
        procs = [subprocess.Popen([args.mlflow_python, str(script), str(part), str(runs_json),
                                   str(i * m // k), str((i + 1) * m // k)], env=env, stderr=subprocess.PIPE)
                 for i in range(k)]
        errs = [p.communicate()[1] for p in procs]
    finally:
        script.unlink(missing_ok=True)
    if any(p.returncode for p in procs):
        part.unlink(missing_ok=True)
        raise RuntimeError("logging to MLflow failed:\n" + b"".join(errs).decode(errors="replace")[-3000:])
    os.replace(part, db)
    print(f"(logged {m} runs to MLflow/SQLite in {time.perf_counter() - t:.1f} s, {k} processes: {db})")
    return db


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Load N recorded runs into a DataFrame with lumo-hydra's Watcher (cold, warm, after changes) "
                    "against the anchors MLflow search_runs (SQLite store) and lumo 1.1.0's Watcher, each in its "
                    "own venv. Targets: 10,000 runs cold < 2 s, warm < 0.3 s, >= 20x faster than MLflow.",
        epilog="Create the anchor venvs: python -m venv /tmp/watcher-bench-mlflow && /tmp/watcher-bench-mlflow/bin/pip "
               "install mlflow; python -m venv --system-site-packages /tmp/watcher-bench-lumo && "
               "/tmp/watcher-bench-lumo/bin/pip install lumo==1.1.0 fire psutil joblib accelerate pytz six dbrecord. "
               "Run with PYTHONDONTWRITEBYTECODE unset.")
    ap.add_argument("--runs", type=int, nargs="+", default=[1000, 10000], help="store sizes (default 1000 10000)")
    ap.add_argument("--mlflow-runs", type=int, default=1000,
                    help="runs logged to MLflow (params, tags, last metric values; default 1000, 0: skip)")
    ap.add_argument("--lumo-runs", type=int, default=1000, help="runs written with lumo 1.1.0 (default 1000, 0: skip)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh-process rounds of each of our loads (default 3)")
    ap.add_argument("--anchor-rounds", type=int, default=5,
                    help="alternating rounds against MLflow, and rounds of lumo's load (default 5)")
    ap.add_argument("--parts", nargs="+", choices=("loads", "scale", "mlflow", "lumo"),
                    default=["loads", "scale", "mlflow", "lumo"],
                    help="what to measure (default all): our loads (cold, warm, changed, floor), our lookups and "
                         "list on a warm index, the MLflow ratio, lumo 1.1.0's")
    ap.add_argument("--changed", type=int, default=10, help="runs rewritten before the 'after changed' load (default 10)")
    ap.add_argument("--skip-cold", action="store_true", help="--parts loads without the cold loads and the floor "
                    "(a minute each at 100,000 runs)")
    ap.add_argument("--one-process", action="store_true", help="our loads read in one process (LUMO_WATCHER_FORK=0): "
                    "the cold load without the second reader process")
    ap.add_argument("--mlflow-python", default=os.environ.get("MLFLOW_PYTHON") or
                    (OLD_MLFLOW_PY if os.path.exists(OLD_MLFLOW_PY) else None),
                    help=f"the MLflow venv's python (default $MLFLOW_PYTHON, else {OLD_MLFLOW_PY} if it exists)")
    ap.add_argument("--mlflow-cache", default=default_cache(),
                    help="folder keeping the MLflow SQLite stores once logged, reused by later runs of the "
                         "benchmark (default $LUMO_BENCH_CACHE, else $XDG_CACHE_HOME or ~/.cache, "
                         "/lumo-hydra-bench; the stores are logged there, not in the work folder)")
    ap.add_argument("--mlflow-procs", type=int, default=4,
                    help="processes logging slices of the runs to MLflow side by side (default 4; the client "
                         "takes ~30-50 ms a run: 10,000 runs in one process take ~8 min)")
    ap.add_argument("--lumo-python", default=os.environ.get("LUMO_PYTHON") or
                    (OLD_LUMO_PY if os.path.exists(OLD_LUMO_PY) else None),
                    help=f"lumo 1.1.0's venv python (default $LUMO_PYTHON, else {OLD_LUMO_PY} if it exists)")
    ap.add_argument("--work", help="folder for the stores, caches and the repository (default: a fresh temporary "
                    "folder; an existing one's stores are reused)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    ap.add_argument("--direct", action="store_true",
                    help="generate the stores by cloning one API-written run's files directly (fast: use it for "
                         "100000 runs) instead of running every run through the API")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with work_folder(args) as work:
        run_all(args, work)


def run_all(args: argparse.Namespace, work: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(LUMO_HOME=str(work / "lumo-home"), LUMO_CACHE_DIR=str(work / "cache"))
    repo = work / "repo"
    if not repo.exists():
        repo.mkdir()
        (repo / "train.py").write_text("print('train')\n")
        for c in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "i"]):
            subprocess.run(["git", *c], cwd=repo, check=True, env=env)
    print(f"# Watcher benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}, load average at start {load_average()}")
    for n in args.runs:
        root = work / f"store-{n}"
        if not (root / "experiments").exists():
            t = time.perf_counter()
            if args.direct:
                tmpl = work / "template"
                if not (tmpl / "experiments").exists():
                    py(GEN, str(tmpl), "1", str(repo), env=env)
                one = next((tmpl / "experiments").glob("*/*/run.json")).parent
                py(DIRECT, str(root), str(n), str(one), env=env)
                print(f"generated {n} runs by writing their files directly in {time.perf_counter() - t:.1f} s")
            else:
                py(GEN, str(root), str(n), str(repo), env=env)
                print(f"generated {n} runs through the API in {time.perf_counter() - t:.1f} s")
        ours_cold = ours_loads(args, work, root, n, env) if "loads" in args.parts else []
        if "scale" in args.parts:
            ours_scale(args, work, root, n, env)
        m = min(n, args.mlflow_runs)
        runs_json = work / f"runs-{n}-{m}.json"
        if "mlflow" in args.parts:
            mlflow_anchor(args, work, root, m, runs_json, env)
        if "lumo" in args.parts:
            lumo_anchor(args, work, root, n, min(n, args.lumo_runs), m, runs_json, ours_cold, env)
        print(f"(load average at the end: {load_average()})")


def ours_loads(args: argparse.Namespace, work: Path, root: Path, n: int, env: dict) -> list[dict]:
    """Cold loads and the floor side by side, warm, after ``--changed`` runs changed, the flat load warm
    and the memory, each in a fresh process: wall and CPU seconds, peak RSS, the reader used."""
    env["LUMO_CACHE_DIR"] = str(work / f"cache-{n}")
    if args.one_process:
        env["LUMO_WATCHER_FORK"] = "0"
    cold, floor = [], []
    if not args.skip_cold:
        for _ in range(args.rounds):  # side by side: the floor right after each cold load
            cold += rounds_of(LOAD, str(root), "cold", n=1, env=env)
            floor += rounds_of(FLOOR, str(root), n=1, env=env)
    py(LOAD, str(root), "warm", env=env)  # the caches current
    warm = rounds_of(LOAD, str(root), "warm", n=args.rounds, env=env)
    flat = rounds_of(FLAT, str(root), n=args.rounds, env=env)
    def after_changes(code: str, *a: str) -> list[dict]:  # each round: --changed runs edited, then one load
        res = []
        for _ in range(args.rounds):
            py(TOUCH, str(root), str(args.changed), env=env)
            time.sleep(2.1)  # past the racy window, as in normal use
            res += rounds_of(code, str(root), *a, n=1, env=env)
        return res

    changed = after_changes(LOAD, "warm")
    flat_changed = after_changes(FLAT)  # what a board pays for its table after a change: the flat frame rebuilt
    mem = json.loads(py(MEM, str(root), env=env).strip())
    print(f"\n## {n} runs (medians (min-max) of {args.rounds} fresh processes; wall / CPU s; load {load_average()})")
    if cold:
        ratio = med(cold) / med(floor)
        print(f"cold load            {spread(cold)} / CPU {spread(cold, 'cpu')}   (rows {cold[0]['rows']}, peak rss "
              f"{mb(cold)}; reader {cold[0]['reader']}; target < 1 GB at 100,000)")
        print(f"floor (json.loads)   {spread(floor)} / CPU {spread(floor, 'cpu')}   (run.json + metrics.json of every "
              f"run, one process, right after each cold load; cold / floor {ratio:.2f}x wall, "
              f"{med(cold, 'cpu') / med(floor, 'cpu'):.2f}x CPU, target <= 2x)")
        print(f"cache writer         {spread(cold, 't_writer')} / CPU {spread(cold, 'cpu_writer')}   (after the cold load "
              f"returned: its detached process writing the index and frame cache, CPU not counted above; 0 when written "
              f"before returning)")
    print(f"warm load            {spread(warm)} / CPU {spread(warm, 'cpu')}   (peak rss {med(warm, 'rss_mb'):.0f} MB; "
          f"stats {warm[0]['stats']}; target < 0.5 s at 100,000)")
    print(f"after {args.changed} changed     {spread(changed)} / CPU {spread(changed, 'cpu')}   (stats "
          f"{changed[0]['stats']}; target < 1 s at 100,000)")
    print(f"flat load, warm      {spread(flat)} / CPU {spread(flat, 'cpu')}   (new process, peak rss "
          f"{med(flat, 'rss_mb'):.0f} MB; target < 1 s at 100,000)")
    print(f"flat, after {args.changed} changed {spread(flat_changed)} / CPU {spread(flat_changed, 'cpu')}   (new process: "
          f"the index brought up to date, the flat frame rebuilt)")
    print(f"second load          {spread(warm, 't_second')}   (same process, nothing changed)")
    print(f"second load, flat    {spread(warm, 't_second_flat')}   (same process, flatten=True)")
    print(f"DataFrame memory     {mem['df_mb']:.0f} MB (heap kept alive by the frame)")
    return cold


def ours_scale(args: argparse.Namespace, work: Path, root: Path, n: int, env: dict) -> None:
    """Lookups by id and ``list`` on a warm index, each round in a fresh process."""
    env["LUMO_CACHE_DIR"] = str(work / f"cache-{n}")
    py("import runpy, sys; sys.argv = ['lumo_hydra', '--root', sys.argv[1], 'list', '--limit', '1']; "
       "runpy.run_module('lumo_hydra', run_name='__main__')", str(root), env=env)  # the index warm
    scale = rounds_of(SCALE, str(root), n=args.rounds, env=env)
    print(f"\n## {n} runs, warm index (medians (min-max) of {args.rounds} fresh processes, load {load_average()})")
    print(f"load(flatten) warm   {spread(scale, 'flat')}   (new process; target < 1 s at 100,000)")
    print(f"record (show) by id  {spread(scale, 'show')}   (target < 50 ms)")
    print(f"history(run, m0)     {spread(scale, 'history')}   (target < 50 ms)")
    print(f"select(limit=20)     {spread(scale, 'select20')}   (new process: the index, judged, sorted, 20 rows framed)")
    print(f"list --limit 20      {spread(scale, 'list20')}   (in-process, stdout captured; target < 0.5 s)")
    print(f"list (all rows)      {spread(scale, 'list_all')}   (peak rss {med(scale, 'rss_mb'):.0f} MB)")
    print(f"list --limit 40 cmd  {spread(scale, 'list40_cmd')}   (whole command, new process; CPU "
          f"{spread(scale, 'list40_cmd_cpu')}; target < 0.5 s at 100,000)")
    print(f"list on a terminal   {spread(scale, 'list_tty')}   (the default view, 50 x 200 pseudo-terminal, "
          f"{scale[0]['list_tty_lines']} lines; CPU {spread(scale, 'list_tty_cpu')}; target < 0.5 s at 100,000)")
    print(f"list --limit 0 cmd   {spread(scale, 'list0_cmd')}   (every row streamed, new process; CPU "
          f"{spread(scale, 'list0_cmd_cpu')}; target < 2 s at 10,000)")


def mlflow_anchor(args: argparse.Namespace, work: Path, root: Path, m: int, runs_json: Path, env: dict) -> None:
    mlpy = args.mlflow_python
    if m == 0:
        print("MLflow: --mlflow-runs 0, skipped")
        return
    if not mlpy or not os.path.exists(mlpy):
        print(f"MLflow: no interpreter at {mlpy or '(none given)'}, skipped (see --help to create its venv, "
              "then --mlflow-python)")
        return
    db = mlflow_store(args, root, m, runs_json, env)
    if not (work / f"store-{m}" / "experiments").exists():
        py(GEN, str(work / f"store-{m}"), str(m), str(work / "repo"), env=env)
    # side by side: ours (cold, then warm) and MLflow alternately, so a burst of load from other
    # processes on the shared machine hits both sides alike; medians and the per-round spread
    mls, oc, ow, fl = [], [], [], []
    env_m = dict(env, LUMO_CACHE_DIR=str(work / f"cache-{m}"))
    for _ in range(args.anchor_rounds):
        oc.append(json.loads(py(LOAD, str(work / f"store-{m}"), "cold", env=env_m).strip()))
        ow.append(json.loads(py(LOAD, str(work / f"store-{m}"), "warm", env=env_m).strip()))
        mls.append(json.loads(py(MLFLOW_SEARCH, str(db), python=mlpy, env=env).strip().splitlines()[-1]))
        fl.append(json.loads(py(FLOOR, str(work / f"store-{m}"), env=env).strip()))
    ratios = [a["t"] / b["t"] for a, b in zip(mls, oc)]
    r = med(mls) / med(oc)
    print(f"MLflow search_runs   {spread(mls)}   over {mls[0]['rows']} runs; ours cold {spread(oc)} (CPU "
          f"{spread(oc, 'cpu')}, reader {oc[0]['reader']}; then its detached cache writer {spread(oc, 't_writer')} / CPU "
          f"{spread(oc, 'cpu_writer')}), "
          f"warm {spread(ow)} ({args.anchor_rounds} alternating rounds)")
    print(f"ratio MLflow / ours cold: {r:.1f}x (per round median {statistics.median(ratios):.1f}x, "
          f"{min(ratios):.1f}-{max(ratios):.1f}x, CPU time "
          f"{med(mls, 'cpu') / med(oc, 'cpu'):.1f}x); MLflow / ours warm {med(mls) / med(ow):.1f}x; "
          f"target >= 20x {'met' if r >= 20 else 'MISSED'}")
    print(f"floor (json.loads)   {spread(fl)}   (run.json + metrics.json of every run: MLflow / floor "
          f"{med(mls) / med(fl):.1f}x, the most any cold reader of the files could reach)")


def lumo_anchor(args: argparse.Namespace, work: Path, root: Path, n: int, k: int, m: int, runs_json: Path,
                ours_cold: list[dict], env: dict) -> None:
    lpy = args.lumo_python
    if k == 0:
        print("lumo 1.1.0: --lumo-runs 0, skipped")
        return
    if not lpy or not os.path.exists(lpy):
        print(f"lumo 1.1.0: no interpreter at {lpy or '(none given)'}, skipped (see --help to create its venv, "
              "then --lumo-python)")
        return
    lroot = work / f"lumo-{k}"  # lumo 1.1 ignores LUMO_HOME: its store is $HOME/.lumo (.lumorc.json)
    lenv = dict(env, HOME=str(lroot))
    if not (lroot / ".lumo").exists():
        lroot.mkdir(exist_ok=True)
        if not runs_json.exists() or k != m:
            runs_json = work / f"runs-{n}-{k}.json"
            export_runs(str(root), k, str(runs_json))
        t = time.perf_counter()
        py(LUMO_WRITE, str(lroot), str(runs_json), python=lpy, env=lenv)
        print(f"(wrote {k} runs with lumo 1.1.0 in {time.perf_counter() - t:.1f} s)")
    lu = rounds_of(LUMO_LOAD, str(lroot), n=args.anchor_rounds, python=lpy, env=lenv)
    if k != n or not ours_cold:
        if not (work / f"store-{k}" / "experiments").exists():
            py(GEN, str(work / f"store-{k}"), str(k), str(work / "repo"), env=env)
        ours_cold = rounds_of(LOAD, str(work / f"store-{k}"), "cold", n=args.rounds,
                              env=dict(env, LUMO_CACHE_DIR=str(work / f"cache-{k}")))
    print(f"lumo 1.1.0 Watcher   {spread(lu)}   over {lu[0]['rows']} runs; ours cold {spread(ours_cold)}")
    print(f"ratio lumo 1.1.0 / ours cold: {med(lu) / med(ours_cold):.1f}x (medians)")


if __name__ == "__main__":
    main()
