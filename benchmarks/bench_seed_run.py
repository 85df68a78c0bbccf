"""One seed-style run (Params, start, one metric, end) with lumo-hydra against lumo 1.1.0's SimpleExperiment.

Both run the seed snippet (only the import differs) in the same temporary git repository (60 files),
with every standard hook (git snapshot, dependency lock, command, abort handling, diary, final report).
lumo runs in its own virtual environment (it is not a project dependency):

    python -m venv --system-site-packages /tmp/venv-lumo
    /tmp/venv-lumo/bin/pip install lumo==1.1.0 fire joblib accelerate pytz six dbrecord
    python benchmarks/bench_seed_run.py [--repeat 5] [--lumo-python /tmp/venv-lumo/bin/python]

Measured: (1) a whole process, cold (``python seed.py``: import, record, exit), median of ``--repeat``;
(2) warm, in one process: ``--warm`` runs after the first, time per run (start + metric + end);
(3) ours only: the path a Hydra job takes (snapshot and command given by the launching process).
HOME, LUMO_HOME and the git configuration point into the temporary folder (nothing touches the real home).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warm", type=int, default=10)
    ap.add_argument("--lumo-python", default=os.environ.get("LUMO_PYTHON", "/tmp/venv-lumo/bin/python"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "home").mkdir()
        (root / "gitconfig").write_text("[user]\n\tname = bench\n\temail = bench@example.com\n")
        env = {**os.environ, "HOME": str(root / "home"), "LUMO_HOME": str(root / "lumo-hydra-store"),
               "LUMO_CACHE_DIR": str(root / "cache"), "XDG_CACHE_HOME": str(root / "xdg"),
               "GIT_CONFIG_GLOBAL": str(root / "gitconfig"), "GIT_CONFIG_NOSYSTEM": "1", "LUMO_QUIET": "1"}
        repo = make_repo(root, env)
        sides = {"lumo-hydra": (sys.executable, "seed_lumo_hydra.py")}
        if os.path.exists(a.lumo_python):
            sides["lumo 1.1.0"] = (a.lumo_python, "seed_lumo.py")
        else:
            print(f"lumo anchor skipped: no interpreter at {a.lumo_python} (see this file's docstring)")
        res: dict[str, dict[str, float]] = {}
        for name, (py, script) in sides.items():
            run(py, script, repo, env, 0)  # warm the OS caches and our dependency-lock cache
            cold = [run(py, script, repo, env, 0) for _ in range(a.repeat)]
            warm = run(py, script, repo, env, a.warm)
            res[name] = {"wall": statistics.median(c["wall"] for c in cold),
                         "import": statistics.median(c["import"] for c in cold),
                         "first": statistics.median(c["first"] for c in cold), "warm": warm["warm"]}
            r = res[name]
            print(f"{name:11s} whole process {r['wall'] * 1000:7.1f} ms | import {r['import'] * 1000:6.1f} ms | "
                  f"first run {r['first'] * 1000:6.1f} ms | later runs {r['warm'] * 1000:6.1f} ms/run")
        if len(res) == 2:
            o, lu = res["lumo-hydra"], res["lumo 1.1.0"]
            print(f"ratio lumo / lumo-hydra: whole process {lu['wall'] / o['wall']:.2f}x, import {lu['import'] / o['import']:.2f}x, "
                  f"first run {lu['first'] / o['first']:.2f}x, later runs {lu['warm'] / o['warm']:.2f}x")
        hydra_path = subprocess.run([sys.executable, "-c", HYDRA_PATH], cwd=repo, env=env, capture_output=True,
                                    text=True, check=True).stdout.strip()
        print(f"lumo-hydra, the Hydra job path (sweep snapshot and command given; lock, diary, report): "
              f"{float(hydra_path) * 1000:.1f} ms per job (start + metric + end)")
        st = subprocess.run(["git", "status", "--porcelain"], cwd=repo, env=env, capture_output=True, text=True).stdout
        print("git status of the project after all runs:", st.strip().replace("\n", "; "))


if __name__ == "__main__":
    main()
