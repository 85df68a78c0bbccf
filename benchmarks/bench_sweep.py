"""Cost of recording Hydra jobs: a sweep of N trivial jobs with and without ``hydra/callbacks=lumo``.

Three variants of the same sweep, side by side in one run, in a temporary git repository with a dirty
working tree:

- ``bare``: Hydra alone (the anchor);
- ``noop callback``: Hydra with a callback option that does nothing (``hydra/callbacks=noop``, a config
  file in the app's config folder holding only ``_target_: hydra.experimental.callback.Callback``):
  what selecting *any* callback costs in Hydra 1.3 (one more override parsed and one more option
  file loaded and merged in every composition, and Hydra composes each job twice);
- ``lumo``: ``hydra/callbacks=lumo`` with every hook on. Its option file comes through lumo-hydra's
  ``lumo-pkg://`` config source, which parses it once per process, so it loads cheaper than the
  no-op's file: ``lumo`` can cost less than ``noop callback`` plus lumo-hydra's own work.

Wall and CPU time are noisy on a shared 2-core machine, so ``--instructions`` also runs each variant
once under ``valgrind --tool=callgrind`` and compares instruction counts, which repeat to 0.1%.
Target (ANCHORS.md): at most 5% slower overall for 20 jobs, under 50 ms added per job.

    python benchmarks/bench_sweep.py [--jobs 20] [--repeats 5] [--launcher basic] [--instructions]
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = '''
import hydra

@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    return {"acc": 0.5 + 0.01 * int(cfg.x)}

if __name__ == "__main__":
    main()
'''

VARIANTS = {
    "bare": [],
    "noop callback": ["hydra/callbacks=noop"],
    "lumo": ["hydra/callbacks=lumo"],
}


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children: steadier on a shared machine)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def instructions(cmds: dict[str, list[str]], cwd: Path, env: dict[str, str]) -> dict[str, int]:
    """Instructions executed by each Python process (not its git children), counted by callgrind; the
    variants run side by side (counts do not depend on the machine's load)."""
    procs = {name: subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
                                    cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for name, cmd in cmds.items()}
    out = {}
    for name, p in procs.items():
        err = p.communicate()[1]
        m = re.search(r"Collected : (\d+)", err)
        assert p.returncode == 0 and m, err[-2000:]
        out[name] = int(m.group(1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--launcher", default="basic")
    ap.add_argument("--instructions", action="store_true", help="also count instructions with callgrind (slow)")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp_p = Path(tmp)
        repo = tmp_p / "repo"
        repo.mkdir()
        (repo / "app.py").write_text(APP)
        (repo / "conf" / "hydra" / "callbacks").mkdir(parents=True)
        (repo / "conf" / "config.yaml").write_text("x: 0\n")
        (repo / "conf" / "hydra" / "callbacks" / "noop.yaml").write_text(
            "noop:\n  _target_: hydra.experimental.callback.Callback\n")
        for i in range(50):
            (repo / f"module_{i}.py").write_text(f"X = {i}\n")
        env = dict(os.environ)
        # Users' Pythons cache bytecode; without it every start recompiles our modules (Hydra's come
        # precompiled from its wheel), which would not be a fair comparison.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(LUMO_HOME=str(tmp_p / "store"), LUMO_CACHE_DIR=str(tmp_p / "cache"),
                   GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
        for c in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
            subprocess.run(["git", *c], cwd=repo, env=env, check=True)
        (repo / "module_0.py").write_text("X = 'changed'\n")  # a dirty tree, as in real work

        sweep = "x=" + ",".join(str(i) for i in range(a.jobs))
        python = os.path.realpath(sys.executable)  # not a shim: valgrind must see the interpreter itself
        base = [python, "app.py", "-m", sweep, f"hydra/launcher={a.launcher}",
                f"hydra.sweep.dir={tmp_p}/multirun/${{now:%H%M%S%f}}"]
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in VARIANTS}
        for extra in VARIANTS.values():  # warm caches (bytecode, dependency lock)
            run(base + extra, repo, env)
        names = list(VARIANTS)
        for i in range(a.repeats):  # alternate, rotating the order: every variant sees the same load and
            for name in names[i % len(names):] + names[:i % len(names)]:  # runs first, second, third alike
                times[name].append(run(base + VARIANTS[name], repo, env))
        print(f"sweep of {a.jobs} trivial jobs, launcher={a.launcher}, {a.repeats} rotating repeats; "
              f"load average {os.getloadavg()[0]:.1f}")
        counts: dict[str, int] = {}
        if a.instructions and shutil.which("valgrind"):
            counts = instructions({name: base + extra for name, extra in VARIANTS.items()}, repo, env)
        b_wall = min(x[0] for x in times["bare"])
        b_cpu = statistics.median(x[1] for x in times["bare"])
        print(f"  {'variant':14s} {'wall (min)':>11s} {'CPU (median)':>13s} {'instructions':>15s}   ratios to bare (wall / CPU / instr)")
        for name in VARIANTS:
            w = min(x[0] for x in times[name])
            c = statistics.median(x[1] for x in times[name])
            n = counts.get(name)
            ratio_n = f"{n / counts['bare']:.3f}" if n else "-"
            print(f"  {name:14s} {w:10.3f}s {c:12.3f}s {n or '-':>15}   {w / b_wall:.3f} / {c / b_cpu:.3f} / {ratio_n}")
        w_l = min(x[0] for x in times["lumo"])
        print(f"  lumo added per job (wall): {(w_l - b_wall) / a.jobs * 1000:.1f} ms (target < 50 ms)")
        if counts:
            print(f"  lumo / noop callback (instructions): {counts['lumo'] / counts['noop callback']:.3f}  "
                  f"(lumo-hydra's own work, less what its cached option file saves over the no-op's file)")
            print(f"  overall (instructions): +{(counts['lumo'] / counts['bare'] - 1) * 100:.1f}% (target: at most +5%)")


if __name__ == "__main__":
    main()
