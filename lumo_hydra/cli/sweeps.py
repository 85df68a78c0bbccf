"""Sweeps on the command line: ``lumo-hydra sweeps`` (one row per sweep) and ``lumo-hydra show SWEEP``
(one row per job: the swept values, the metrics, best first).

The objective a sweep is ranked by (:mod:`lumo_hydra.cli.sweeprank`, shared with the board's Sweep tab):
the jobs' return value when the sweeper optimizes it (Optuna's ``direction``, Nevergrad's
``optim.maximize``, Ax's ``experiment.minimize``, read from the sweep record or Hydra's ``multirun.yaml``),
else the first metric with a cmp, best first.
"""
from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from lumo_hydra._hydra.facts import sweeper_direction
from lumo_hydra.cli.columns import main_metrics
from lumo_hydra.cli.common import load, watcher
from lumo_hydra.cli.render import console, dump_json, print_runs_table, to_json_records
from lumo_hydra.cli.sweeprank import job_numbers, ranked, score, swept
from lumo_hydra.store.reader import read_json_object_or_none

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from lumo_hydra.watcher import Watcher

__all__ = ["cmd_sweeps", "show_sweep", "sweeper_direction"]

_BAD = ("failed", "crashed", "killed", "interrupted")


def _sweep_ids(w: Watcher, df: pd.DataFrame) -> list[str]:
    ids: set[str] = set()
    try:
        ids.update(e.name for e in os.scandir(w.layout.sweeps_dir) if e.is_dir())
    except OSError:
        pass
    if "sweep" in df.columns:
        ids.update(str(x) for x in df["sweep"].dropna().tolist() if x)
    return sorted(ids, reverse=True)


def _sweep_row(w: Watcher, sid: str, jobs: pd.DataFrame) -> dict[str, Any]:  # long: one field per column
    rec = read_json_object_or_none(w.layout.sweep_record(sid), "sweep record")
    try:
        markers = len(os.listdir(w.layout.sweep_jobs_dir(sid)))
    except OSError:
        markers = 0
    st = jobs["status"].tolist() if len(jobs) else []
    done, bad, running = st.count("finished"), sum(st.count(s) for s in _BAD), st.count("running")
    total = max(markers, len(jobs))
    status = ("running" if running else "finished" if total and done == total else
              "failed" if total and done == 0 else "partial" if total else "empty")
    best = best_job = ""
    if len(jobs):
        top, col, _ = ranked(jobs, rec)
        if col is not None:
            v = score(top.head(1), col).iloc[0]
            if v == v:
                best, best_job = f"{col.removeprefix('metrics.')}={v:.6g}", str(top["test_name"].iloc[0])
    exp = (rec or {}).get("exp_name") or (jobs["exp_name"].iloc[0] if len(jobs) else "")
    start = (rec or {}).get("start") or (str(jobs["start"].min()) if len(jobs) else "")
    return {"sweep": sid, "exp_name": exp, "command": (rec or {}).get("command") or "",
            "start": str(start)[:16].replace("T", " "), "jobs": f"{done}/{bad}/{total}", "status": status,
            "best": best, "best job": best_job}


def cmd_sweeps(args: argparse.Namespace) -> int:
    """``lumo-hydra sweeps``: one row per sweep, newest first."""
    import pandas as pd

    w = watcher(args)
    df = load(args)
    ids = _sweep_ids(w, df)
    rows = []
    for sid in ids:
        jobs = df[df["sweep"] == sid] if "sweep" in df.columns else df.iloc[0:0]
        if args.exp and not len(jobs):
            continue
        rows.append(_sweep_row(w, sid, jobs.reset_index(drop=True)))
    if args.limit is not None:
        rows = rows[: args.limit]
    if args.json:
        dump_json(rows, __import__("sys").stdout)
        return 0
    con = console()
    if not rows:
        con.print(f"no sweeps in {w.root}")
        return 0
    table = pd.DataFrame(rows)
    print_runs_table(con, table, ["sweep", "exp_name", "status", "start", "jobs", "best", "best job", "command"],
                     what="sweep", hint="see --json, or a wider terminal")
    con.print("jobs: done/failed/total", style="dim")
    return 0


def show_sweep(args: argparse.Namespace, w: Watcher, sid: str) -> int:
    """``lumo-hydra show SWEEP``: one row per job, best first (the swept values, the metrics)."""
    import sys


    jobs = w.sweep(sid, flatten=True)
    rec = jobs.attrs.get("sweep")
    jobs, col, direction = ranked(swept(jobs), rec)
    if args.json:
        dump_json({"sweep": rec, "objective": col, "jobs": to_json_records(jobs)}, sys.stdout)
        return 0
    con = console()
    con.print(f"[bold]sweep {sid}[/]  {(rec or {}).get('exp_name') or ''}  "
              + (f"ranked by {col}" + (f" ({direction})" if col == "return_value" and direction else "")
                 if col else "no objective: in job order"), markup=True)
    if rec and rec.get("command"):
        con.print("  " + str(rec["command"]), markup=False)
    if not len(jobs):
        con.print("no jobs recorded")
        return 0
    job_numbers(jobs)
    cols = [c for c in ("job", "test_name", "status") if c in jobs.columns]
    cols += [c for c in jobs.columns if c.startswith("swept.")]
    dup = {"metrics.return_value"} if col == "return_value" else set()
    cols += [c for c in ([col] if col else []) + main_metrics(jobs) if c not in cols and c in jobs.columns
             and c not in dup]
    cols += ["duration"]
    print_runs_table(con, jobs.rename(columns=lambda c: c), cols, what="job")
    return 0
