"""Cost of recording Hydra jobs: a sweep of N trivial jobs with and without ``hydra/callbacks=lumo``.

Runs both side by side (alternating, several repeats, best time kept) in a temporary git repository
and prints the ratio and the time added per job. Target (ANCHORS.md): at most 5% slower overall for 20
jobs, under 50 ms added per job.

    python benchmarks/bench_sweep.py [--jobs 20] [--repeats 3] [--launcher basic]
"""
from __future__ import annotations

import argparse
import os
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


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


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
        env = dict(os.environ, LUMO_HOME=str(tmp_p / "store"), LUMO_CACHE_DIR=str(tmp_p / "cache"),
                   GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
        for c in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
            subprocess.run(["git", *c], cwd=repo, env=env, check=True)
        (repo / "module_0.py").write_text("X = 'changed'\n")  # a dirty tree, as in real work

        sweep = "+x=" + ",".join(str(i) for i in range(a.jobs))
        base = [sys.executable, "app.py", "-m", sweep, f"hydra/launcher={a.launcher}",
                f"hydra.sweep.dir={tmp_p}/multirun/${{now:%H%M%S%f}}"]
        bare: list[float] = []
        ours: list[float] = []
        run(base, repo, env)  # warm caches (imports, dependency lock)
        run(base + ["hydra/callbacks=lumo"], repo, env)
        for _ in range(a.repeats):
            bare.append(run(base, repo, env))
            ours.append(run(base + ["hydra/callbacks=lumo"], repo, env))
        b, o = min(bare), min(ours)
        print(f"sweep of {a.jobs} trivial jobs, launcher={a.launcher}, best of {a.repeats}")
        print(f"  bare Hydra:             {b:7.3f} s")
        print(f"  hydra/callbacks=lumo:   {o:7.3f} s")
        print(f"  ratio ours/bare:        {o / b:7.3f}   (target <= 1.05)")
        print(f"  added per job:          {(o - b) / a.jobs * 1000:7.1f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
