"""Cost of recording Hydra jobs: a sweep of N trivial jobs with and without ``hydra/callbacks=lumo``.

Runs both side by side (alternating, several repeats, best time kept) in a temporary git repository
and prints the ratio and the time added per job. Target (ANCHORS.md): at most 5% slower overall for 20
jobs, under 50 ms added per job.

    python benchmarks/bench_sweep.py [--jobs 20] [--repeats 3] [--launcher basic]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = '''
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    return {"acc": 0.5 + 0.01 * int(cfg.x)}

if __name__ == "__main__":
    main()
'''


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children: steadier on a shared machine)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--launcher", default="basic")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp_p = Path(tmp)
        repo = tmp_p / "repo"
        repo.mkdir()
        (repo / "app.py").write_text(APP)
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

        sweep = "+x=" + ",".join(str(i) for i in range(a.jobs))
        base = [sys.executable, "app.py", "-m", sweep, f"hydra/launcher={a.launcher}",
                f"hydra.sweep.dir={tmp_p}/multirun/${{now:%H%M%S%f}}"]
        bare: list[tuple[float, float]] = []
        ours: list[tuple[float, float]] = []
        run(base, repo, env)  # warm caches (bytecode, dependency lock)
        run(base + ["hydra/callbacks=lumo"], repo, env)
        for _ in range(a.repeats):  # alternate, so both see the same machine load
            bare.append(run(base, repo, env))
            ours.append(run(base + ["hydra/callbacks=lumo"], repo, env))
        print(f"sweep of {a.jobs} trivial jobs, launcher={a.launcher}, {a.repeats} alternating repeats; "
              f"load average {os.getloadavg()[0]:.1f}")
        for i, what in ((0, "wall (min)"), (1, "CPU (median)")):
            pick = min if i == 0 else statistics.median
            b, o = pick(x[i] for x in bare), pick(x[i] for x in ours)
            print(f"  {what:13s} bare Hydra {b:6.3f} s | hydra/callbacks=lumo {o:6.3f} s | "
                  f"ratio {o / b:5.3f} (target <= 1.05) | added per job {(o - b) / a.jobs * 1000:6.1f} ms (target < 50)")


if __name__ == "__main__":
    main()
