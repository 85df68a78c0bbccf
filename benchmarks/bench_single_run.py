"""Cost of recording one Hydra run: a one-job ``@hydra.main`` app, bare against ``hydra/callbacks=lumo``.

Each round runs the same app as a fresh process twice, once bare (Hydra alone, the anchor) and once
with ``hydra/callbacks=lumo`` (every hook on: git snapshot of the app's repository, dependency lock,
command, abort handling, heartbeat, diary, final report), the order alternating between rounds so
both see the same load. The app lives in a temporary git repository of about 50 files with a dirty
working tree, as in real work. Wall time is measured around the child; CPU time is the child's own
user + system time (``os.wait4``, which includes the git processes it waited for).

``--store-runs N`` first fills the store with N runs of today for the app's experiment (empty run
folders named like real ones): what claiming a run id costs in a busy experiment folder.
Target (issue 18): at most +50 ms wall and CPU per run. Besides the difference of the medians, the
median (and quartiles) of each round's own difference is printed: both variants of a round run back to
back, so a load that changes between rounds (other processes on the machine) cancels out of it.

Times of runs of ~0.3-0.6 s move by tens of ms between rounds on a shared VM, so ``--instructions``
also counts the instructions each variant executes (callgrind, the git processes included; the same
every time, whatever the load) and turns lumo's extra instructions into milliseconds at the bare run's
own rate (its median CPU time per instruction): the cost of recording without the machine's noise.

    python benchmarks/bench_single_run.py [--rounds 15] [--store-runs 10000] [--instructions N] [--work DIR] [--keep]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _benchlib import load_average, run_child, spread, work_folder

APP = '''
import hydra

@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    return {"acc": 0.5 + 0.01 * int(cfg.x)}

if __name__ == "__main__":
    main()
'''

VARIANTS = {"bare": [], "lumo": ["hydra/callbacks=lumo"]}


def make_repo(repo: Path, env: dict[str, str], files: int) -> None:
    (repo / "conf").mkdir(parents=True)
    (repo / "app.py").write_text(APP)
    (repo / "conf" / "config.yaml").write_text("x: 0\n")
    for i in range(files):
        (repo / f"module_{i}.py").write_text(f"X = {i}\n")
    for c in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *c], cwd=repo, env=env, check=True)
    (repo / "module_0.py").write_text("X = 'changed'\n")  # a dirty tree


def fill_store(exp_dir: Path, n: int) -> None:
    """``n`` run folders of today, ``YYMMDD.NNN.RRt``, as earlier runs would have left them."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    day = time.strftime("%y%m%d")
    b36 = "0123456789abcdefghijklmnopqrstuvwxyz"
    for i in range(n):
        os.mkdir(exp_dir / f"{day}.{i:03d}.{b36[i % 36]}{b36[i // 36 % 36]}t")


def stats(xs: list[float]) -> str:
    return spread(xs, digits=1, unit=" ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="alternating rounds (default 15)")
    ap.add_argument("--files", type=int, default=50, help="files in the app's git repository (default 50)")
    ap.add_argument("--store-runs", type=int, default=0, metavar="N",
                    help="fill the store with N runs of today for the app's experiment first (default 0)")
    ap.add_argument("--instructions", type=int, default=0, metavar="N",
                    help="also count each variant's instructions in N runs under callgrind (needs valgrind; "
                         "about 30 s a run; default 0: skip)")
    ap.add_argument("--work", help="work folder (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    if a.instructions < 0:
        ap.error(f"--instructions {a.instructions}: allowed: 0 (skip) or a number of runs")

    with work_folder(a, prefix="bench-single-run-") as work:
        bench(a, work)


def bench(a: argparse.Namespace, work: Path) -> None:
    repo = work / "repo"
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users' Pythons cache bytecode
    env.update(LUMO_HOME=str(work / "store"), LUMO_CACHE_DIR=str(work / "cache"), HOME=str(work / "home"),
               GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@x")
    (work / "home").mkdir(exist_ok=True)
    if not repo.exists():
        make_repo(repo, env, a.files)
    if a.store_runs:
        fill_store(work / "store" / "experiments" / "app", a.store_runs)
    base = [sys.executable, "app.py", f"hydra.run.dir={work}/outputs/${{now:%H%M%S%f}}"]
    load0 = load_average()
    for extra in VARIANTS.values():  # warm caches (bytecode, dependency lock, git index)
        run_child(base + extra, repo, env)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in VARIANTS}
    names = list(VARIANTS)
    for i in range(a.rounds):
        for name in (names if i % 2 == 0 else names[::-1]):
            times[name].append(run_child(base + VARIANTS[name], repo, env))
    print(f"one-job Hydra app, {a.files}-file git repository (dirty), {a.rounds} alternating rounds"
          + (f", store holding {a.store_runs} runs of today" if a.store_runs else "")
          + f"; load average at start {load0}, at end {load_average()}")
    print(f"  {'variant':8s} {'wall median (min-max)':>28s} {'CPU median (min-max)':>28s}")
    for name in VARIANTS:
        print(f"  {name:8s} {stats([t[0] for t in times[name]]):>28s} {stats([t[1] for t in times[name]]):>28s}")
    med = {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}
    dw, dc = (med["lumo"][j] - med["bare"][j] for j in (0, 1))
    print(f"  lumo added: wall {dw * 1000:+.1f} ms ({med['lumo'][0] / med['bare'][0]:.3f}x), "
          f"CPU {dc * 1000:+.1f} ms ({med['lumo'][1] / med['bare'][1]:.3f}x)   target: at most +50 ms each")
    # each round ran both back to back: its own difference cancels a load that drifts between rounds
    pw, pc = ([t[j] - b[j] for t, b in zip(times["lumo"], times["bare"])] for j in (0, 1))
    print(f"  per round (lumo - bare, median and quartiles): wall {_quartiles(pw)}, CPU {_quartiles(pc)}")
    if a.instructions and not shutil.which("valgrind"):
        print("  --instructions: valgrind not found, skipped")
    elif a.instructions:
        counts = {name: [instructions(base + extra, repo, env) for _ in range(a.instructions)]
                  for name, extra in VARIANTS.items()}
        med_i = {k: statistics.median(v) for k, v in counts.items()}
        rate = med["bare"][1] / med_i["bare"]  # seconds of CPU per instruction, the bare run's own
        added = (med_i["lumo"] - med_i["bare"]) * rate
        print(f"  instructions (callgrind, git processes included, {a.instructions} runs each): bare "
              f"{med_i['bare'] / 1e6:,.0f} M, lumo {med_i['lumo'] / 1e6:,.0f} M (x{med_i['lumo'] / med_i['bare']:.3f}): "
              f"lumo added {added * 1000:+.1f} ms at the bare run's rate ({1 / rate / 1e9:.2f} G instructions/s)   "
              "target: at most +50 ms")


def instructions(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Instructions executed by ``cmd`` and every process it starts (callgrind, one count per process)."""
    env = {**env, "PYTHONHASHSEED": "0"}
    p = subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes", "--callgrind-out-file=/dev/null",
                        *cmd], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found = [int(n) for n in re.findall(r"Collected : (\d+)", p.stderr)]
    if p.returncode != 0 or not found:
        raise RuntimeError(f"callgrind run of {cmd} failed (exit {p.returncode}): {p.stderr[-2000:]}")
    return sum(found)


def _quartiles(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return f"{q[1] * 1000:+.1f} ms ({q[0] * 1000:+.1f} .. {q[2] * 1000:+.1f})"


if __name__ == "__main__":
    main()
