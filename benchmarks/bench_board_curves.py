"""The board's curves, server side: opening the curves of 20 runs with 10,000 points each (issue 13,
target under 1 s), cold (per-file cache cleared) and again (cached), beside the floor of reading the same
files with the store's own reader (``read_history``: one ``json.loads`` per line). Runs are recorded by
the real writer (``Experiment.dump_metric``); every figure is a median of ``--rounds`` with wall and CPU."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from _benchlib import load_average, spread, work_folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Run with PYTHONDONTWRITEBYTECODE unset.")
    ap.add_argument("--runs", type=int, default=20, help="runs whose curves are opened (default 20)")
    ap.add_argument("--points", type=int, default=10_000, help="points of the metric per run (default 10000)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each measure (default 5)")
    ap.add_argument("--work", help="folder for the store (default: a fresh temporary folder; reused if filled)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return ap.parse_args(argv)


def record(home: Path, runs: int, points: int) -> None:
    """``runs`` runs of experiment ``curves``, each with ``points`` points of ``loss`` and of ``acc``."""
    from lumo_hydra.record.experiment import Experiment

    for r in range(runs):
        exp = Experiment("curves", home=str(home), heartbeat_interval=60).start()
        for i in range(points):
            exp.dump_metric("loss", 1.0 / (i + 1) + r * 1e-3, cmp="min")
            exp.dump_metric("acc", i / points, cmp="max")
        exp.end()


def timed(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    with work_folder(a, "lumo-bench-curves-") as work:
        home = work / "home"
        os.environ["LUMO_HOME"] = str(home)
        os.environ.setdefault("LUMO_CACHE_DIR", str(work / "cache"))
        from lumo_hydra.board import curves as C
        from lumo_hydra.board.context import BoardContext
        from lumo_hydra.store.reader import read_history
        from lumo_hydra.watcher import Watcher

        w = Watcher(str(home))
        if len(w.load()) < a.runs:
            t = time.perf_counter()
            record(home, a.runs, a.points)
            print(f"recorded {a.runs} runs x {a.points} points of 2 metrics in {time.perf_counter() - t:.1f} s")
        df = w.load()
        ids = list(df["test_name"])[: a.runs]
        dirs = [w.resolve(i).info_dir for i in ids]
        ctx = BoardContext(w)
        res: dict[str, list[tuple[float, float]]] = {"cold": [], "cached": [], "smooth": [], "floor": []}
        for _ in range(a.rounds):
            C._CACHE.clear()
            res["cold"].append(timed(lambda: C.curves_data(ctx, ids, "loss")))
            res["cached"].append(timed(lambda: C.curves_data(ctx, ids, "loss")))
            res["smooth"].append(timed(lambda: C.curves_data(ctx, ids, "loss", x="time", smooth=0.9)))
            res["floor"].append(timed(lambda: [read_history(d, "loss") for d in dirs]))
        shown = sum(c["shown"] for c in C.curves_data(ctx, ids, "loss")["curves"])
        print(f"{a.runs} runs x {a.points} points of 'loss' ({shown} drawn), {a.rounds} rounds, "
              f"load {load_average()}, Python {sys.version.split()[0]}")
        out = {}
        for k, label in (("cold", "curves_data, cold (cache cleared)"), ("cached", "again (cached)"),
                         ("smooth", "smoothing 0.9, x = time (cached)"),
                         ("floor", "floor: read_history of the same files")):
            walls, cpus = [x[0] for x in res[k]], [x[1] for x in res[k]]
            out[k] = statistics.median(walls)
            print(f"  {label:40s} wall {spread(walls, unit=' ms')}  CPU {spread(cpus, unit=' ms')}")
        verdict = "met" if out["cold"] < 1.0 else "MISSED"
        print(f"target: cold under 1 s server side: {verdict} ({out['cold']:.3f} s); "
              f"cold / floor {out['cold'] / out['floor']:.2f}x")
        print(json.dumps({k: round(v, 4) for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
