"""One seed-style run (Params, start, one metric, end) with lumo-hydra against lumo 1.1.0's SimpleExperiment.

Both run the seed snippet (only the import differs) in the same temporary git repository (60 files),
with every standard hook (git snapshot, dependency lock, command, abort handling, diary, final report).
lumo runs in its own virtual environment (it is not a project dependency):

    python -m venv --system-site-packages /tmp/venv-lumo
    /tmp/venv-lumo/bin/pip install lumo==1.1.0 fire psutil joblib accelerate pytz six dbrecord
    env -u PYTHONDONTWRITEBYTECODE python benchmarks/bench_seed_run.py [--repeat 5] [--lumo-python /tmp/venv-lumo/bin/python]

Measured: (1) a whole process, cold (``python seed.py``: import, record, exit), median of ``--repeat``;
(2) warm, in one process: ``--warm`` runs after the first, time per run (start + metric + end);
(3) ours only: the path a Hydra job takes (snapshot and command given by the launching process).
HOME, LUMO_HOME and the git configuration point into the work folder (nothing touches the real home).
The two sides alternate round by round; medians with their min-max spread, the ratios and the load
average at the start and the end are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from _benchlib import load_average, work_folder

SEED = """
import json, sys, time
t0 = time.perf_counter()
from {pkg} import Params, SimpleExperiment
t_import = time.perf_counter() - t0
def one():
    params = Params(); params.alpha = params.arange(default=1, left=0, right=10)
    exp = SimpleExperiment(exp_name='my_exp_a')
    exp.start()
    params.to_json(exp.mk_ipath('params.json'))
    exp.dump_metric('Acc', 0.1, cmp='max')
    exp.end()
    return exp
t1 = time.perf_counter()
one()
t_first = time.perf_counter() - t1
warm = int(sys.argv[1])
t2 = time.perf_counter()
for _ in range(warm):
    one()
t_warm = (time.perf_counter() - t2) / max(warm, 1)
print(json.dumps({{"import": t_import, "first": t_first, "warm": t_warm}}))
"""


HYDRA_PATH = """
import time
from lumo_hydra.record.experiment import Experiment
from lumo_hydra.record.hooks import Diary, FinalReport, GitCommit, LastCmd, LockFile, RecordAbort
def job():
    hooks = [GitCommit(result={"commit": "0" * 40, "msg": ""}), LastCmd(command="python app.py -m x=1,2"),
             LockFile(), RecordAbort(), Diary(), FinalReport()]
    exp = Experiment("hydra_path", hooks=hooks).start(sweep="261128.000.aat", hydra={"job_num": 0})
    exp.dump_metric("acc", 0.5, cmp="max")
    exp.end(return_value=0.5)
job()
n = 20
t = time.perf_counter()
for _ in range(n):
    job()
print((time.perf_counter() - t) / n)
"""


def make_repo(root: Path, env: dict[str, str]) -> Path:
    repo = root / "project"
    (repo / "pkg").mkdir(parents=True)
    for i in range(60):
        (repo / "pkg" / f"mod{i}.py").write_text(f"X = {i}\n" * 50)
    (repo / ".gitignore").write_text("*.log\n")
    for pkg in ("lumo_hydra", "lumo"):
        (repo / f"seed_{pkg}.py").write_text(textwrap.dedent(SEED.format(pkg=pkg)))
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=repo, env=env, check=True)
    (repo / "pkg" / "mod0.py").write_text("X = 'changed'\n")  # a dirty working tree, as usual
    return repo


def run(python: str, script: str, repo: Path, env: dict[str, str], warm: int) -> dict[str, float]:
    t = time.perf_counter()
    r = subprocess.run([python, script, str(warm)], cwd=repo, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{python} {script} failed:\n{r.stderr[-3000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["wall"] = wall
    return out



def spread(xs: list[float]) -> str:
    """'median (min-max)' in ms."""
    return f"{statistics.median(xs) * 1000:.1f} ({min(xs) * 1000:.1f}-{max(xs) * 1000:.1f})"


OLD_LUMO = "/tmp/venv-lumo/bin/python"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="One seed-style run (Params, start, one metric, end, every standard hook) with lumo-hydra "
                    "against the anchor, lumo 1.1.0's SimpleExperiment (own venv): whole process, import, first "
                    "and later runs; plus the Hydra job path of lumo-hydra alone.",
        epilog="Create the lumo venv: python -m venv --system-site-packages /tmp/venv-lumo && /tmp/venv-lumo/bin/pip "
               "install lumo==1.1.0 fire psutil joblib accelerate pytz six dbrecord. Run with "
               "PYTHONDONTWRITEBYTECODE unset.")
    ap.add_argument("--repeat", "--rounds", dest="repeat", type=int, default=5,
                    help="alternating rounds of a whole cold process per side (default 5)")
    ap.add_argument("--warm", type=int, default=10, help="later runs timed in one process (default 10)")
    ap.add_argument("--jobs", type=int, default=20, help="jobs timed on the Hydra job path (default 20)")
    default_lumo = os.environ.get("LUMO_PYTHON") or (OLD_LUMO if os.path.exists(OLD_LUMO) else None)
    ap.add_argument("--lumo-python", default=default_lumo,
                    help=f"lumo 1.1.0's venv python (default $LUMO_PYTHON, else {OLD_LUMO} if it exists; "
                         "none: the anchor is skipped)")
    ap.add_argument("--work", help="folder for the repository, homes and stores (default: a fresh temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    with work_folder(a) as work:
        run_all(a, work)


def run_all(a: argparse.Namespace, root: Path) -> None:
    print(f"# seed-style run, {time.strftime('%Y-%m-%d %H:%M')}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores, {a.repeat} alternating rounds; load average at start {load_average()}")
    (root / "home").mkdir(exist_ok=True)
    (root / "gitconfig").write_text("[user]\n\tname = bench\n\temail = bench@example.com\n")
    env = {**os.environ, "HOME": str(root / "home"), "LUMO_HOME": str(root / "lumo-hydra-store"),
           "LUMO_CACHE_DIR": str(root / "cache"), "XDG_CACHE_HOME": str(root / "xdg"),
           "GIT_CONFIG_GLOBAL": str(root / "gitconfig"), "GIT_CONFIG_NOSYSTEM": "1", "LUMO_QUIET": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    repo = make_repo(root, env)
    sides = {"lumo-hydra": (sys.executable, "seed_lumo_hydra.py")}
    if a.lumo_python and os.path.exists(a.lumo_python):
        sides["lumo 1.1.0"] = (a.lumo_python, "seed_lumo.py")
    else:
        print(f"lumo anchor skipped: no interpreter at {a.lumo_python or '(none given)'} (see --help)")
    for py, script in sides.values():
        run(py, script, repo, env, 0)  # warm the OS caches and our dependency-lock cache
    cold: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for _ in range(a.repeat):
        for name, (py, script) in sides.items():
            cold[name].append(run(py, script, repo, env, 0))
    res: dict[str, dict[str, float]] = {}
    for name, (py, script) in sides.items():
        warm = run(py, script, repo, env, a.warm)
        c = cold[name]
        res[name] = {k: statistics.median(x[k] for x in c) for k in ("wall", "import", "first")}
        res[name]["warm"] = warm["warm"]
        print(f"{name:11s} ms, median (min-max): whole process {spread([x['wall'] for x in c])} | import "
              f"{spread([x['import'] for x in c])} | first run {spread([x['first'] for x in c])} | "
              f"later runs {warm['warm'] * 1000:.1f}/run")
    if len(res) == 2:
        o, lu = res["lumo-hydra"], res["lumo 1.1.0"]
        print(f"ratio lumo / lumo-hydra (medians): whole process {lu['wall'] / o['wall']:.2f}x, import "
              f"{lu['import'] / o['import']:.2f}x, first run {lu['first'] / o['first']:.2f}x, "
              f"later runs {lu['warm'] / o['warm']:.2f}x")
    else:
        print("ratio to the anchor: n/a (lumo 1.1.0 anchor skipped)")
    hydra_path = subprocess.run([sys.executable, "-c", HYDRA_PATH.replace("n = 20", f"n = {a.jobs}")], cwd=repo,
                                env=env, capture_output=True, text=True, check=True).stdout.strip()
    print(f"lumo-hydra, the Hydra job path (sweep snapshot and command given; lock, diary, report): "
          f"{float(hydra_path) * 1000:.1f} ms per job (mean of {a.jobs}; start + metric + end)")
    st = subprocess.run(["git", "status", "--porcelain"], cwd=repo, env=env, capture_output=True, text=True).stdout
    print("git status of the project after all runs:", st.strip().replace("\n", "; "))
    print(f"load average at end {load_average()}")


if __name__ == "__main__":
    main()
