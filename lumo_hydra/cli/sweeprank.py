"""The ranking of a sweep's jobs, shared by ``lumo-hydra sweeps``/``show SWEEP`` (:mod:`lumo_hydra.cli.sweeps`)
and the board's Sweep tab (:mod:`lumo_hydra.board.sweeppage`).

The objective: the jobs' return value in the direction of an optimizing sweeper (Optuna's ``direction``,
Nevergrad's ``optim.maximize``, Ax's ``experiment.minimize``, read from the sweep record or Hydra's
``multirun.yaml``), else the first metric with a cmp; best first, missing values last. Pure functions of
the jobs' flat frame and the sweep record: nothing here reaches the Watcher (whose module imports the
board lazily), so the board imports this module without an import cycle.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lumo_hydra._hydra.facts import sweeper_direction
from lumo_hydra.cli.columns import differing, metric_cmps

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["direction_of", "objective", "score", "best_first", "ranked", "swept", "job_numbers"]


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
    """``minimize``/``maximize`` of sweep record ``rec`` (its ``direction`` or ``sweeper`` config), else of
    Hydra's ``multirun.yaml`` of the sweep dir or of the jobs' output folders; ``None`` when not optimizing."""
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


def objective(jobs: pd.DataFrame, rec: Mapping[str, Any] | None) -> tuple[str | None, bool, str | None]:
    """``(column, descending, direction)`` the jobs are ranked by: the return value with the sweeper's
    direction, else the first metric with a cmp (its direction); ``(None, False, sweeper's direction)``
    without either."""
    d = direction_of(rec, jobs)
    if d and "return_value" in jobs.columns:
        return "return_value", d == "maximize", d
    for c, cmp in metric_cmps(jobs).items():
        if cmp:
            return c, cmp == "max", "maximize" if cmp == "max" else "minimize"
    return None, False, d


def score(jobs: pd.DataFrame, col: str) -> pd.Series:
    """The numeric values of column ``col`` (the first of a list, NaN for what is not a number)."""
    import pandas as pd

    vals = jobs[col].map(lambda v: v[0] if isinstance(v, (list, tuple)) and v else v)
    return pd.to_numeric(vals, errors="coerce")


def best_first(jobs: pd.DataFrame, col: str, descending: bool) -> pd.DataFrame:
    """``jobs`` sorted by :func:`score` of ``col`` (stable, missing values last), with a fresh index."""
    order = score(jobs, col).sort_values(ascending=not descending, na_position="last", kind="stable").index
    return jobs.loc[order].reset_index(drop=True)


def ranked(jobs: pd.DataFrame, rec: Mapping[str, Any] | None) -> tuple[pd.DataFrame, str | None, str | None]:
    """The jobs best first by :func:`objective`, the objective column and its direction."""
    col, desc, direction = objective(jobs, rec)
    if col is None or not len(jobs):
        return jobs, col, direction
    return best_first(jobs, col, desc), col, direction


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


def job_numbers(jobs: pd.DataFrame) -> None:
    """Adds the column ``job`` (Hydra's job number as text, empty when unknown) to ``jobs`` when it has
    ``hydra.job_num``."""
    if "hydra.job_num" in jobs.columns:
        jobs["job"] = jobs["hydra.job_num"].map(lambda v: "" if v is None or v != v else str(int(v)))
