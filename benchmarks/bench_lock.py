"""The dependency lock (``collect_lock``), cold and cached, in fresh processes, against the anchor
``pip freeze --all`` (and a naive ``importlib.metadata`` loop). Target (ANCHORS.md): under 50 ms cold,
under 5 ms cached.

Every round runs all sides once, one after the other (alternating rounds), each in a fresh interpreter
(``sys.executable``, so a virtual environment's own packages are what is locked). Printed: medians
with their min-max spread over the rounds, the load average at the start and the end, the ratios.

    env -u PYTHONDONTWRITEBYTECODE python benchmarks/bench_lock.py [--rounds 7] [--memo-calls 100]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _benchlib import load_average, work_folder
from _benchlib import spread as _spread


def spread(xs: list[float], scale: float = 1000.0, digits: int = 2) -> str:
    """'median (min-max)' of ``xs`` times ``scale``."""
    return _spread(xs, scale=scale, digits=digits)


def in_fresh_process(code: str, env: dict[str, str]) -> float:
    """Seconds spent in `code` inside a fresh interpreter (import costs of what it uses included)."""
    pre, _, code = code.rpartition("\0")
    wrapper = (pre + "import time, sys\nt = time.perf_counter()\n" + code +
               "\nsys.stdout.write(repr(time.perf_counter() - t))\n")
    out = subprocess.run([sys.executable, "-c", wrapper], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Dependency lock (lumo_hydra.record.lockfile.collect_lock) cold, cached and memoised, "
                    "against the anchor `pip freeze --all` and a naive importlib.metadata loop. "
                    "Targets: < 50 ms cold, < 5 ms cached.",
        epilog="Run with PYTHONDONTWRITEBYTECODE unset (env -u PYTHONDONTWRITEBYTECODE python ...).")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "7")),
                    help="alternating rounds, each a fresh process per side (default 7)")
    ap.add_argument("--memo-calls", type=int, default=100,
                    help="calls timed in one process for the memoised case (default 100)")
    ap.add_argument("--work", help="folder for caches and stores (default: a fresh temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    with work_folder(a) as work:
        run(a, work)


def run(a: argparse.Namespace, work: Path) -> None:
    print(f"# dependency lock, {time.strftime('%Y-%m-%d %H:%M')}, python {sys.version.split()[0]} "
          f"({sys.executable}), {os.cpu_count()} cores, {a.rounds} alternating rounds; "
          f"load average at start {load_average()}")
    # the job has imported lumo_hydra already; the import is measured separately below
    ours = "lock = collect_lock()"
    pre = "from lumo_hydra.record.lockfile import collect_lock\n"
    naive = ("import importlib.metadata as md\n"
             "lock = {d.metadata['Name']: d.version for d in md.distributions()}")
    base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base_env["LUMO_HOME"] = str(work / "home")
    cold, cached, meta, pip, imp = [], [], [], [], []
    for i in range(a.rounds):
        env = dict(base_env, LUMO_CACHE_DIR=str(work / f"cache-{i}"))  # an empty cache folder per round
        imp.append(in_fresh_process("from lumo_hydra.record.lockfile import collect_lock", env))
        cold.append(in_fresh_process(pre + "\0" + ours, env))     # no cache file yet
        cached.append(in_fresh_process(pre + "\0" + ours, env))   # cache file written by the previous process
        meta.append(in_fresh_process(naive, env))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], env=env, capture_output=True, check=True)
        pip.append(time.perf_counter() - t)
    # in-process: a second call in the same job (memo)
    os.environ["LUMO_CACHE_DIR"] = str(work / "cache-memo")
    from lumo_hydra.record import lockfile

    n = len(lockfile.collect_lock()["packages"])
    t = time.perf_counter()
    for _ in range(a.memo_calls):
        lockfile.collect_lock()
    memo = (time.perf_counter() - t) / max(a.memo_calls, 1)
    med = statistics.median
    print(f"{n} distributions installed; times in ms, median (min-max) over {a.rounds} rounds")
    print(f"import lumo_hydra.record.lockfile (fresh process):   {spread(imp)}")
    print(f"ours cold   (fresh process, no cache file):          {spread(cold)}")
    print(f"ours cached (fresh process, cache file):             {spread(cached)}")
    print(f"ours again in the same process (memo):               {memo * 1000:.3f} (mean of {a.memo_calls})")
    print(f"importlib.metadata loop, incl. its import (fresh):   {spread(meta)}")
    print(f"pip freeze --all (whole subprocess, the anchor):     {spread(pip)}")
    per_cold = [p / c for p, c in zip(pip, cold)]
    per_cached = [p / c for p, c in zip(pip, cached)]
    print(f"ratio to the anchor (medians; per round min-max): pip/ours-cold {med(pip) / med(cold):.0f}x "
          f"({min(per_cold):.0f}-{max(per_cold):.0f}), pip/ours-cached {med(pip) / med(cached):.0f}x "
          f"({min(per_cached):.0f}-{max(per_cached):.0f}), importlib-loop/ours-cold {med(meta) / med(cold):.1f}x")
    cold_ok, cached_ok = med(cold) < 0.050, med(cached) < 0.005
    print(f"targets: cold < 50 ms {'met' if cold_ok else 'MISSED'}, cached < 5 ms {'met' if cached_ok else 'MISSED'}"
          f" (medians); load average at end {load_average()}")


if __name__ == "__main__":
    main()
