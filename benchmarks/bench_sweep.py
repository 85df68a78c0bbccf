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

The sweeps run with ``sys.executable`` as it is (in a virtual environment: the venv's python, which sees
the venv's hydra and lumo-hydra). Printed: medians with their min-max spread over the rounds, the ratio
to bare Hydra (of the medians, and its range over the rounds), the load average at the start and the end.

    env -u PYTHONDONTWRITEBYTECODE python benchmarks/bench_sweep.py [--jobs 20] [--repeats 5] [--launcher basic] [--instructions]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _benchlib import load_average, run_child, work_folder
from _benchlib import spread as _spread

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



def spread(xs: list[float]) -> str:
    return _spread(xs, scale=1.0, digits=3)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Cost of recording Hydra jobs: a sweep of N trivial jobs with hydra/callbacks=lumo against "
                    "the anchor, bare Hydra (and a no-op callback), side by side in rotating rounds. Target: at "
                    "most 5% slower for 20 jobs, under 50 ms added per job.",
        epilog="Run with PYTHONDONTWRITEBYTECODE unset. --instructions needs valgrind.")
    ap.add_argument("--jobs", type=int, default=20, help="jobs in the sweep (default 20)")
    ap.add_argument("--repeats", "--rounds", dest="repeats", type=int, default=5,
                    help="rotating rounds, each sweep once per variant (default 5)")
    ap.add_argument("--launcher", default="basic", help="hydra/launcher option (default basic)")
    ap.add_argument("--instructions", action="store_true", help="also count instructions with callgrind (slow)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter running the sweeps (default: this one, sys.executable as is)")
    ap.add_argument("--work", help="folder for the repository and stores (default: a fresh temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return ap.parse_args(argv)


def make_repo(tmp_p: Path, env: dict[str, str]) -> Path:
    repo = tmp_p / "repo"
    repo.mkdir()
    (repo / "app.py").write_text(APP)
    (repo / "conf" / "hydra" / "callbacks").mkdir(parents=True)
    (repo / "conf" / "config.yaml").write_text("x: 0\n")
    (repo / "conf" / "hydra" / "callbacks" / "noop.yaml").write_text(
        "noop:\n  _target_: hydra.experimental.callback.Callback\n")
    for i in range(50):
        (repo / f"module_{i}.py").write_text(f"X = {i}\n")
    for c in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *c], cwd=repo, env=env, check=True)
    (repo / "module_0.py").write_text("X = 'changed'\n")  # a dirty tree, as in real work
    return repo


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    with work_folder(a) as work:
        run_all(a, work)


def check_python(python: str) -> str:
    """The interpreter's ``sys.prefix`` (a venv's own folder for a venv's python); exits if it cannot
    import hydra and lumo_hydra."""
    r = subprocess.run([python, "-c", "import sys, hydra, lumo_hydra; print(sys.prefix)"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{python} cannot import hydra and lumo_hydra (install the project there):\n"
                         + r.stderr[-1000:])
    return r.stdout.strip()


def run_all(a: argparse.Namespace, tmp_p: Path) -> None:
    load0 = load_average()
    prefix = check_python(a.python)
    env = dict(os.environ)
    # Users' Pythons cache bytecode; without it every start recompiles our modules (Hydra's come
    # precompiled from its wheel), which would not be a fair comparison.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(LUMO_HOME=str(tmp_p / "store"), LUMO_CACHE_DIR=str(tmp_p / "cache"),
               GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@x")
    repo = make_repo(tmp_p, env)
    sweep = "x=" + ",".join(str(i) for i in range(a.jobs))
    # sys.executable as is: a venv's python is a symlink to the base interpreter, and resolving it would
    # leave the venv (no hydra there); valgrind follows the symlink and still sees the interpreter.
    base = [a.python, "app.py", "-m", sweep, f"hydra/launcher={a.launcher}",
            f"hydra.sweep.dir={tmp_p}/multirun/${{now:%H%M%S%f}}"]
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in VARIANTS}
    for extra in VARIANTS.values():  # warm caches (bytecode, dependency lock)
        run_child(base + extra, repo, env)
    names = list(VARIANTS)
    for i in range(a.repeats):  # alternate, rotating the order: every variant sees the same load and
        for name in names[i % len(names):] + names[:i % len(names)]:  # runs first, second, third alike
            times[name].append(run_child(base + VARIANTS[name], repo, env))
    print(f"sweep of {a.jobs} trivial jobs, launcher={a.launcher}, {a.repeats} rotating repeats, python "
          f"{a.python} (sys.prefix {prefix}); load average at start {load0}, after the timed rounds {load_average()}")
    counts: dict[str, int] = {}
    if a.instructions and shutil.which("valgrind"):
        counts = instructions({name: base + extra for name, extra in VARIANTS.items()}, repo, env)
    elif a.instructions:
        print("  --instructions: valgrind not found, skipped")
    med = statistics.median
    bare_w = [x[0] for x in times["bare"]]
    bare_c = [x[1] for x in times["bare"]]
    print(f"  {'variant':14s} {'wall s, median (min-max)':>26s} {'CPU s, median (min-max)':>26s} {'instructions':>15s}"
          f"   ratios to bare: wall (per round) / CPU / instr")
    for name in VARIANTS:
        w = [x[0] for x in times[name]]
        c = [x[1] for x in times[name]]
        per = [x / y for x, y in zip(w, bare_w)]
        n = counts.get(name)
        ratio_n = f"{n / counts['bare']:.3f}" if n else "-"
        print(f"  {name:14s} {spread(w):>26s} {spread(c):>26s} {n or '-':>15}   "
              f"{med(w) / med(bare_w):.3f} ({min(per):.3f}-{max(per):.3f}) / {med(c) / med(bare_c):.3f} / {ratio_n}")
    lumo_w = [x[0] for x in times["lumo"]]
    added = [(x - y) / a.jobs * 1000 for x, y in zip(lumo_w, bare_w)]
    print(f"  ratio to the anchor (lumo / bare, medians): wall {med(lumo_w) / med(bare_w):.3f}, CPU "
          f"{med(x[1] for x in times['lumo']) / med(bare_c):.3f}")
    print(f"  lumo added per job (wall): {(med(lumo_w) - med(bare_w)) / a.jobs * 1000:.1f} ms of the medians "
          f"(per round {min(added):.1f} to {max(added):.1f} ms; target < 50 ms)")
    if counts:
        print(f"  lumo / noop callback (instructions): {counts['lumo'] / counts['noop callback']:.3f}  "
              f"(lumo-hydra's own work, less what its cached option file saves over the no-op's file)")
        print(f"  overall (instructions): +{(counts['lumo'] / counts['bare'] - 1) * 100:.1f}% (target: at most +5%)")
    print(f"  load average at end {load_average()}")


if __name__ == "__main__":
    main()
