"""Benchmark: issue 17's Watcher load rows only (cold + floor side by side, warm, after N changed, flat warm,
peak RSS), each in a fresh process, on stores made by ``bench_watcher.py --direct`` (its generator).

Usage: env -u PYTHONDONTWRITEBYTECODE python benchmarks/bench_watcher_load.py --work DIR [--runs 10000 100000]
    [--rounds 3] [--changed 10]
``DIR/store-N`` is generated once (kept); caches go to ``DIR/cache-N``. Wall and CPU seconds, medians
(min-max), load average at start and end.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import bench_watcher as bw
from _benchlib import load_average, py

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

RSS = r"""
import resource, sys, json
from lumo_hydra import Watcher
import pandas
w = Watcher(sys.argv[1])
if sys.argv[2] == "cold":
    w.clear_cache()
df = w.load()
print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}))
"""


def one(code: str, *args: str, env: dict) -> dict:
    return json.loads(py(code, *args, env=env).strip().splitlines()[-1])


def sp(res: list[dict], key: str) -> str:
    xs = [r[key] for r in res]
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, nargs="+", default=[10000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--changed", type=int, default=10)
    ap.add_argument("--skip-cold", action="store_true", help="no cold loads (they take a minute at 100k)")
    a = ap.parse_args()
    work = Path(a.work)
    here = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(here)
    print(f"# Watcher load benchmark {time.strftime('%Y-%m-%d %H:%M')}, load average {load_average()}")
    for n in a.runs:
        root = str(work / f"store-{n}")
        if not os.path.isdir(os.path.join(root, "experiments")):
            sys.exit(f"no store {root}: make it with bench_watcher.py --direct --work {work} --keep --runs {n}")
        env.update(LUMO_HOME=root, LUMO_CACHE_DIR=str(work / f"cache-{n}"))
        cold, floor = [], []
        if not a.skip_cold:
            for _ in range(a.rounds):
                cold.append(one(bw.LOAD, root, "cold", env=env))
                floor.append(one(bw.FLOOR, root, env=env))
        one(bw.LOAD, root, "warm", env=env)  # caches current
        warm = [one(bw.LOAD, root, "warm", env=env) for _ in range(a.rounds)]
        flat = [one(FLAT, root, env=env) for _ in range(a.rounds)]
        changed = []
        for _ in range(a.rounds):
            py(bw.TOUCH, root, str(a.changed), env=env)
            time.sleep(2.1)
            changed.append(one(bw.LOAD, root, "warm", env=env))
        rss = one(RSS, root, "warm", env=env)
        print(f"\n## {n} runs, {a.rounds} rounds, wall s / CPU s, medians (min-max); load {load_average()}")
        if cold:
            print(f"cold          wall {sp(cold, 't')}  cpu {sp(cold, 'cpu')}  rss {sp(cold, 'rss_mb')} MB")
            ratio = statistics.median(r["t"] for r in cold) / statistics.median(r["t"] for r in floor)
            print(f"floor         wall {sp(floor, 't')}  cold/floor {ratio:.2f}x")
        print(f"warm          wall {sp(warm, 't')}  cpu {sp(warm, 'cpu')}")
        print(f"after {a.changed:<3d}     wall {sp(changed, 't')}  cpu {sp(changed, 'cpu')}  ({changed[0]['stats']})")
        print(f"flat warm     wall {sp(flat, 't')}  cpu {sp(flat, 'cpu')}  rss {sp(flat, 'rss_mb')} MB")
        print(f"warm load peak rss {rss['rss_mb']:.0f} MB")
    print(f"\n(load average at the end: {load_average()})")


if __name__ == "__main__":
    main()
