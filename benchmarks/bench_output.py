"""Cost of recording a run's console output (``output.log``): a job printing 100,000 lines, recorded vs bare.

Each round runs the same script as a fresh process twice, the order alternating between rounds: ``bare``
starts an ``Experiment`` without hooks, ``recorded`` one with only the ``ConsoleOutput`` hook (stdout and
stderr through the recording pipe and thread into ``output.log``), so the difference is the recording
alone. The child prints ``--lines`` lines (every 10th to stderr) to a file, as a redirected run does;
``--flush`` flushes after every line (what a terminal or ``python -u`` does: one write per line, the
worst case for the pipe). Reported: the child's own time for the printing loop and the whole-process
wall time, medians with min-max, and recorded/bare ratios. Target (issue 12): at most 1.10x.

    python benchmarks/bench_output.py [--lines 100000] [--rounds 7] [--flush] [--work DIR] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchlib import load_average, work_folder  # noqa: E402

APP = '''
import json, sys, time
from lumo_hydra.record.experiment import Experiment
from lumo_hydra.record.console import ConsoleOutput
lines, flush, variant, out = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3], sys.argv[4]
exp = Experiment("bench_output", hooks=[ConsoleOutput()] if variant == "recorded" else [])
exp.start()
t = time.perf_counter()
for i in range(lines):
    print(f"step {i:7d} loss={1.0 / (i + 1):.6f} some more text to make a typical log line", flush=flush,
          file=sys.stderr if i % 10 == 0 else sys.stdout)
sys.stdout.flush()
loop = time.perf_counter() - t
exp.end(0)
with open(out, "w") as f:
    json.dump({"loop": loop, "log": exp.info_dir}, f)
'''


def run_once(work: Path, variant: str, a: argparse.Namespace, env: dict[str, str]) -> tuple[float, float]:
    """(printing-loop seconds, whole-process wall seconds) of one child."""
    res = work / "result.json"
    cmd = [sys.executable, str(work / "app.py"), str(a.lines), "1" if a.flush else "0", variant, str(res)]
    t = time.perf_counter()
    with open(work / "console.txt", "wb") as out:
        subprocess.run(cmd, stdout=out, stderr=out, env=env, check=True)
    wall = time.perf_counter() - t
    data = json.loads(res.read_text())
    if variant == "recorded":
        size = os.path.getsize(Path(data["log"]) / "output.log")
        assert size >= os.path.getsize(work / "console.txt") * 0.99 or size > 5_000_000, "output.log incomplete"
    return data["loop"], wall


def summary(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:8.1f} ms ({min(xs) * 1000:.1f}-{max(xs) * 1000:.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=100_000, help="lines the job prints (default 100000)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    ap.add_argument("--flush", action="store_true", help="flush after every line (one write per line)")
    ap.add_argument("--work", help="work folder (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    print(f"load average at start: {load_average()}")
    with work_folder(a, "lumo-bench-output-") as work:
        (work / "app.py").write_text(APP)
        env = {**os.environ, "LUMO_HOME": str(work / "store"), "LUMO_QUIET": "1"}
        times: dict[str, dict[str, list[float]]] = {v: {"loop": [], "wall": []} for v in ("bare", "recorded")}
        for r in range(a.rounds):
            for variant in (("bare", "recorded") if r % 2 == 0 else ("recorded", "bare")):
                loop, wall = run_once(work, variant, a, env)
                times[variant]["loop"].append(loop)
                times[variant]["wall"].append(wall)
        print(f"{a.lines} lines, {'flush per line' if a.flush else 'buffered'}, {a.rounds} rounds, median (min-max)")
        print(f"{'':10} {'printing loop':>30} {'whole process':>30}")
        for v in ("bare", "recorded"):
            print(f"{v:10} {summary(times[v]['loop']):>30} {summary(times[v]['wall']):>30}")
        for k in ("loop", "wall"):
            ratio = statistics.median(times["recorded"][k]) / statistics.median(times["bare"][k])
            print(f"ratio recorded/bare ({'printing loop' if k == 'loop' else 'whole process'}): {ratio:.2f}x "
                  f"(target <= 1.10x)")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
