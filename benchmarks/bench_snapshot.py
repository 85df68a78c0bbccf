"""Git snapshot of a generated repository (10,000 files by default) with one changed file, against the floor
`git add -A && git write-tree` with a warm temporary index; alternating rounds, medians with min-max.
Run: python benchmarks/bench_snapshot.py [--files 1000 10000 50000] [--rounds 15] [--work DIR --keep]"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _benchlib import work_folder

from lumo_hydra.record.gitsnap import snapshot

N_FILES = 10000
ROUNDS = 15


def sh(*args: str, cwd: str, env: dict | None = None) -> None:
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)


def make_repo(root: str) -> str:
    repo = os.path.join(root, "repo")
    os.makedirs(repo)
    sh("git", "init", "-q", cwd=repo)
    for i in range(N_FILES):
        d = os.path.join(repo, f"pkg{i % 50}", f"sub{i % 7}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"mod{i}.py"), "w") as f:
            f.write(f"X = {i}\n" * 20)
    with open(os.path.join(repo, ".gitignore"), "w") as f:
        f.write("*.log\n__pycache__/\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@x")
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "init", cwd=repo, env=env)
    return repo


def spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1000:.1f} ms ({min(xs) * 1000:.1f}-{max(xs) * 1000:.1f})"


def one_size(root: str) -> None:
    """One repository of N_FILES files: ROUNDS alternating rounds of ours and the floor."""
    t = time.perf_counter()
    repo = make_repo(root)
    print(f"generated {N_FILES} files in {time.perf_counter() - t:.1f} s: {repo}")
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    changed = os.path.join(repo, "pkg1", "sub1", "mod1.py")
    floor_index = os.path.join(root, "floor-index")
    shutil.copy2(os.path.join(repo, ".git", "index"), floor_index)
    fenv = dict(os.environ, GIT_INDEX_FILE=floor_index)

    def floor() -> None:
        subprocess.run(["git", "add", "-A"], cwd=repo, env=fenv, check=True)
        subprocess.run(["git", "write-tree"], cwd=repo, env=fenv, check=True, stdout=subprocess.DEVNULL)

    with open(changed, "a") as f:
        f.write("# first change\n")
    t = time.perf_counter()
    first = snapshot(repo)
    t_first = time.perf_counter() - t
    assert first["commit"], first
    floor()  # warm both indexes
    ours, base = [], []
    seen = {first["commit"]}
    cpu: dict[str, float] = {"ours": 0.0, "floor": 0.0}

    def cpu_now() -> float:
        c, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
        return c.ru_utime + c.ru_stime + me.ru_utime + me.ru_stime
    for i in range(ROUNDS):
        with open(changed, "a") as f:
            f.write(f"# change {i}\n")
        pair = [("floor", floor), ("ours", lambda: snapshot(repo))]
        if i % 2:
            pair.reverse()
        for name, fn in pair:
            c0 = cpu_now()
            t = time.perf_counter()
            r = fn()
            dt = time.perf_counter() - t
            cpu[name] += cpu_now() - c0
            (ours if name == "ours" else base).append(dt)
            if name == "ours":  # a real snapshot: a new commit of the changed tree, never a reused one
                assert r["commit"] and r["dirty"] and not r.get("reused"), r
                assert r["commit"] not in seen, f"round {i}: snapshot {r['commit']} was not new"
                seen.add(r["commit"])
    mo, mb = statistics.median(ours), statistics.median(base)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, git "
          f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.split()[-1]}")
    print(f"first snapshot (private index seeded from the user's index): {t_first * 1000:.1f} ms")
    print(f"floor  git add -A && git write-tree (warm temp index): {spread(base)}")
    print(f"ours   snapshot() incl. the commit and its ref (warm):     {spread(ours)}")
    print(f"every round made a new snapshot commit ({len(seen) - 1} of {ROUNDS}; none reused)")
    print(f"ratio ours/floor: {mo / mb:.2f}x wall (target <= 1.5x, < 500 ms); CPU time (git processes + "
          f"Python) per snapshot: ours {cpu['ours'] / ROUNDS * 1000:.1f} ms, floor "
          f"{cpu['floor'] / ROUNDS * 1000:.1f} ms, ratio {cpu['ours'] / cpu['floor']:.2f}x")


def main() -> None:
    global N_FILES, ROUNDS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, nargs="+", default=[10000], help="repository sizes (default 10000)")
    ap.add_argument("--rounds", type=int, default=15, help="alternating rounds per size (default 15)")
    ap.add_argument("--work", help="work folder (default: a fresh temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    ROUNDS = args.rounds
    print(f"load average at start: {os.getloadavg()}")
    with work_folder(args, prefix="lumo-bench-snapshot-") as work:  # a given --work is never removed
        try:
            for n in args.files:
                N_FILES = n
                root = tempfile.mkdtemp(prefix=f"files{n}-", dir=work)
                one_size(root)
        finally:
            print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
