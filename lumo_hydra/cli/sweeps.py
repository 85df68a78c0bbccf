"""Sweeps on the command line: ``lumo-hydra sweeps`` (one row per sweep) and ``lumo-hydra show SWEEP``
(one row per job: the swept values, the metrics, best first).

The objective a sweep is ranked by: the jobs' return value when the sweeper optimizes it (Optuna's
``direction``, Nevergrad's ``optim.maximize``, Ax's ``experiment.minimize``, read from the sweep record
or Hydra's ``multirun.yaml``), else the first metric with a cmp, best first.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lumo_hydra._hydra.facts import sweeper_direction
from lumo_hydra.cli.columns import differing, main_metrics, metric_cmps
from lumo_hydra.cli.common import load, watcher
from lumo_hydra.cli.render import console, dump_json, print_runs_table, to_json_records
from lumo_hydra.store.reader import read_json_object_or_none

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from lumo_hydra.watcher import Watcher

__all__ = ["cmd_sweeps", "show_sweep", "sweeper_direction"]

_BAD = ("failed", "crashed", "killed", "interrupted")


def _multirun_yaml_direction(dirs: list[str]) -> str | None:
    """The direction in the first ``multirun.yaml`` found in ``dirs`` or their parents (two levels)."""
    import yaml

    for d in dirs:
        for cand in (d, os.path.dirname(d), os.path.dirname(os.path.dirname(d))):
            path = os.path.join(cand, "multirun.yaml")
            if os.path.isfile(path):
                try:
                    with open(path, encoding="utf-8") as f:
                        cfg = yaml.safe_load(f)
                except (OSError, yaml.YAMLError):
                    return None
                hydra = cfg.get("hydra") if isinstance(cfg, dict) else None
                return sweeper_direction(hydra.get("sweeper") if isinstance(hydra, dict) else None)
    return None


def direction_of(rec: Mapping[str, Any] | None, jobs: pd.DataFrame) -> str | None:
    """The direction of sweep record ``rec`` (``direction`` or ``sweeper`` config), else Hydra's
    ``multirun.yaml`` of the sweep dir or of the jobs' output folders."""
    rec = rec or {}
    d = rec.get("direction")
    if isinstance(d, str) and d in ("minimize", "maximize"):
        return d
    d = sweeper_direction(rec.get("sweeper"))
    if d:
        return d
    dirs = [str(rec["dir"])] if rec.get("dir") else []
    if "hydra.output_dir" in jobs.columns:
        dirs += [str(x) for x in jobs["hydra.output_dir"].dropna().tolist()[:3]]
    return _multirun_yaml_direction(dirs)


def objective(jobs: pd.DataFrame, rec: Mapping[str, Any] | None) -> tuple[str | None, bool]:
    """``(column, descending)`` the jobs are ranked by: the return value with the sweeper's direction,
    else the first metric with a cmp; ``(None, False)`` without either."""
    d = direction_of(rec, jobs)
    if d and "return_value" in jobs.columns:
        return "return_value", d == "maximize"
    for c, cmp in metric_cmps(jobs).items():
        if cmp:
            return c, cmp == "max"
    return None, False


def _score(jobs: pd.DataFrame, col: str) -> pd.Series:
    import pandas as pd

    vals = jobs[col].map(lambda v: v[0] if isinstance(v, (list, tuple)) and v else v)
    return pd.to_numeric(vals, errors="coerce")


def ranked(jobs: pd.DataFrame, rec: Mapping[str, Any] | None) -> tuple[pd.DataFrame, str | None]:
    """The jobs best first by :func:`objective` (missing values last) and the objective column."""
    col, desc = objective(jobs, rec)
    if col is None or not len(jobs):
        return jobs, col
    score = _score(jobs, col)
    order = score.sort_values(ascending=not desc, na_position="last", kind="stable").index
    return jobs.loc[order].reset_index(drop=True), col


def swept(jobs: pd.DataFrame) -> pd.DataFrame:
    """``jobs`` with a ``swept.<key>`` column for each override whose value differs among the jobs
    (the params that differ when no job recorded its overrides)."""
    ov = jobs["hydra.overrides"].tolist() if "hydra.overrides" in jobs.columns else []
    parsed = []
    for o in ov:
        d: dict[str, str] = {}
        for item in o if isinstance(o, list) else []:
            k, sep, v = str(item).partition("=")
            if sep:
                d[k.lstrip("+~")] = v
        parsed.append(d)
    keys = sorted({k for d in parsed for k in d})
    keys = [k for k in keys if len({d.get(k) for d in parsed}) > 1]
    jobs = jobs.copy()
    if not keys:
        for c in differing(jobs):
            jobs["swept." + c[len("params."):]] = jobs[c]
        return jobs
    for k in keys:
        jobs["swept." + k] = [d.get(k) for d in parsed]
    return jobs


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
        top, col = ranked(jobs, rec)
        if col is not None:
            v = _score(top.head(1), col).iloc[0]
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
    jobs, col = ranked(swept(jobs), rec)
    if args.json:
        dump_json({"sweep": rec, "objective": col, "jobs": to_json_records(jobs)}, sys.stdout)
        return 0
    con = console()
    direction = direction_of(rec, jobs)
    con.print(f"[bold]sweep {sid}[/]  {(rec or {}).get('exp_name') or ''}  "
              + (f"ranked by {col}" + (f" ({direction})" if col == "return_value" and direction else "")
                 if col else "no objective: in job order"), markup=True)
    if rec and rec.get("command"):
        con.print("  " + str(rec["command"]), markup=False)
    if not len(jobs):
        con.print("no jobs recorded")
        return 0
    if "hydra.job_num" in jobs.columns:
        jobs["job"] = jobs["hydra.job_num"].map(lambda v: "" if v != v or v is None else str(int(v)))
    cols = [c for c in ("job", "test_name", "status") if c in jobs.columns]
    cols += [c for c in jobs.columns if c.startswith("swept.")]
    dup = {"metrics.return_value"} if col == "return_value" else set()
    cols += [c for c in ([col] if col else []) + main_metrics(jobs) if c not in cols and c in jobs.columns
             and c not in dup]
    cols += ["duration"]
    print_runs_table(con, jobs.rename(columns=lambda c: c), cols, what="job")
    return 0
