"""The dependency lock, cold and cached, against `pip freeze` (and a naive importlib.metadata loop).
Run: python benchmarks/bench_lock.py"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))


def in_fresh_process(code: str, env: dict[str, str]) -> float:
    """Seconds spent in `code` inside a fresh interpreter (import costs of what it uses included)."""
    pre, _, code = code.rpartition("\0")
    wrapper = (pre + "import time, sys\nt = time.perf_counter()\n" + code +
               "\nsys.stdout.write(repr(time.perf_counter() - t))\n")
    out = subprocess.run([sys.executable, "-c", wrapper], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    # the job has imported lumo_hydra already; the import is measured separately below
    ours = "lock = collect_lock()"
    pre = "from lumo_hydra.record.lockfile import collect_lock\n"
    naive = ("import importlib.metadata as md\n"
             "lock = {d.metadata['Name']: d.version for d in md.distributions()}")
    cold, cached, meta, pip, imp = [], [], [], [], []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, LUMO_CACHE_DIR=d)
            imp.append(in_fresh_process("from lumo_hydra.record.lockfile import collect_lock", env))
            cold.append(in_fresh_process(pre + "\0" + ours, env))     # no cache file yet
            cached.append(in_fresh_process(pre + "\0" + ours, env))   # cache file written by the previous process
            meta.append(in_fresh_process(naive, env))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True, check=True)
        pip.append(time.perf_counter() - t)
    # in-process: a second call in the same job (memo) and the scan alone
    from lumo_hydra.record import lockfile

    n = len(lockfile.collect_lock()["packages"])
    t = time.perf_counter()
    for _ in range(100):
        lockfile.collect_lock()
    memo = (time.perf_counter() - t) / 100
    med = statistics.median
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {n} distributions installed")
    print(f"import lumo_hydra.record.lockfile (fresh process):          {med(imp) * 1000:7.2f} ms")
    print(f"ours cold   (fresh process, no cache file):          {med(cold) * 1000:7.2f} ms")
    print(f"ours cached (fresh process, cache file):             {med(cached) * 1000:7.2f} ms")
    print(f"ours again in the same process (memo):               {memo * 1000:7.3f} ms")
    print(f"importlib.metadata loop, incl. its import (fresh):   {med(meta) * 1000:7.2f} ms")
    print(f"pip freeze --all (whole subprocess):                 {med(pip) * 1000:7.2f} ms")
    print(f"ratios: pip/ours-cold {med(pip) / med(cold):.0f}x, pip/ours-cached {med(pip) / med(cached):.0f}x, "
          f"importlib-loop/ours-cold {med(meta) / med(cold):.1f}x (targets: < 50 ms cold, < 5 ms cached)")


if __name__ == "__main__":
    main()
