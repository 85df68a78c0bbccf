"""The Sweep tab of the board: one row per job of a sweep with its swept values and metrics, best first.

The ranking is that of ``lumo-hydra show SWEEP`` (:mod:`lumo_hydra.cli.sweeps`): the jobs' return value in
the direction of an optimizing sweeper (Optuna's ``direction``, Nevergrad's ``optim.maximize``, Ax's
``minimize``, from the sweep record or Hydra's ``multirun.yaml``), else the first metric with a cmp. The
few helpers are restated here rather than imported: ``lumo_hydra.cli.sweeps`` reaches the Watcher's
module, which imports the board lazily (``Watcher.panel()``): an import cycle (docs/architecture.md).
"""
from __future__ import annotations

import html
import os
from collections.abc import Mapping
from typing import Any

import panel as pn

from lumo_hydra._hydra.facts import sweeper_direction
from lumo_hydra.board.views_common import error_pane, fmt, rows_table
from lumo_hydra.errors import LumoValueError

__all__ = ["sweep_view", "sweep_jobs", "direction_of", "objective"]


def _multirun_yaml_direction(dirs: list[str]) -> str | None:
    """The sweeper direction in the first ``multirun.yaml`` in ``dirs`` or their two parents."""
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


def direction_of(rec: Mapping[str, Any] | None, jobs: Any) -> str | None:
    """``minimize``/``maximize`` of the sweep: its record's ``direction`` or ``sweeper``, else ``multirun.yaml``."""
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


def objective(jobs: Any, rec: Mapping[str, Any] | None) -> tuple[str | None, bool, str | None]:
    """``(column, descending, direction)`` the jobs are ranked by; ``(None, False, None)`` without one."""
    from lumo_hydra.cli.columns import metric_cmps

    d = direction_of(rec, jobs)
    if d and "return_value" in jobs.columns:
        return "return_value", d == "maximize", d
    for c, cmp in metric_cmps(jobs).items():
        if cmp:
            return c, cmp == "max", "maximize" if cmp == "max" else "minimize"
    return None, False, d


def _swept(jobs: Any) -> Any:
    """``jobs`` with a ``swept.<key>`` column per override that differs among the jobs (else the params
    that differ)."""
    from lumo_hydra.cli.columns import differing

    ov = jobs["hydra.overrides"].tolist() if "hydra.overrides" in jobs.columns else []
    parsed = []
    for o in ov:
        d: dict[str, str] = {}
        for item in o if isinstance(o, list) else []:
            k, sep, v = str(item).partition("=")
            if sep:
                d[k.lstrip("+~")] = v
        parsed.append(d)
    keys = [k for k in sorted({k for d in parsed for k in d}) if len({d.get(k) for d in parsed}) > 1]
    jobs = jobs.copy()
    if not keys:
        for c in differing(jobs):
            jobs["swept." + c[len("params."):]] = jobs[c]
    for k in keys:
        jobs["swept." + k] = [d.get(k) for d in parsed]
    return jobs


def sweep_jobs(ctx: Any, sweep_id: str) -> tuple[Any, dict[str, Any]]:
    """The jobs of sweep ``sweep_id`` (flat frame, best first, with ``swept.*`` columns) and what the page
    says about it: ``{"sweep_id", "record", "status", "objective", "descending", "direction", "columns"}``."""
    import pandas as pd

    w = ctx.watcher
    sid = w.resolve_sweep(sweep_id)
    jobs = w.sweep(sid, flatten=True)
    rec = jobs.attrs.get("sweep")
    status = jobs.attrs.get("sweep_status")
    jobs = _swept(jobs)
    col, desc, direction = objective(jobs, rec) if len(jobs) else (None, False, None)
    if col is not None:
        vals = jobs[col].map(lambda v: v[0] if isinstance(v, (list, tuple)) and v else v)
        score = pd.to_numeric(vals, errors="coerce")
        jobs = jobs.loc[score.sort_values(ascending=not desc, na_position="last", kind="stable").index]
        jobs = jobs.reset_index(drop=True)
    if "hydra.job_num" in jobs.columns:
        jobs["job"] = jobs["hydra.job_num"].map(lambda v: "" if v is None or v != v else str(int(v)))
    cols = [c for c in ("job", "test_name", "status") if c in jobs.columns]
    cols += [c for c in jobs.columns if str(c).startswith("swept.")]
    metric_cols = [c for c in jobs.columns if str(c).startswith("metrics.") and not str(c).endswith(".last")]
    dup = {"metrics.return_value"} if col == "return_value" else set()
    cols += [c for c in ([col] if col else []) + metric_cols if c not in cols and c not in dup]
    cols += [c for c in ("duration",) if c in jobs.columns]
    return jobs, {"sweep_id": sid, "record": rec, "status": status, "objective": col, "descending": desc,
                  "direction": direction, "columns": cols}


def _header(info: dict[str, Any], n: int) -> pn.pane.HTML:
    rec = info["record"] or {}
    col = info["objective"]
    rank = (f"ranked by <b>{html.escape(col)}</b>, best first ({html.escape(info['direction'] or '')})"
            if col else "no objective: in job order")
    lines = [f"<h3 style='margin:4px 0'>sweep {html.escape(info['sweep_id'])} "
             f"<small>{html.escape(str(rec.get('exp_name') or ''))}</small></h3>",
             f"<div>{n} job{'s' if n != 1 else ''} · status {html.escape(str(info['status'] or '?'))} · {rank}</div>"]
    if rec.get("sweeper"):
        sw = rec["sweeper"]
        name = sw.get("_target_") if isinstance(sw, dict) else sw
        lines.append(f"<div>sweeper {html.escape(str(name))}</div>")
    if rec.get("command"):
        lines.append(f"<pre style='font-size:12px'>{html.escape(str(rec['command']))}</pre>")
    return pn.pane.HTML("\n".join(lines), sizing_mode="stretch_width")


def sweep_view(ctx: Any, sweep_id: str) -> pn.viewable.Viewable:
    """The page of sweep ``sweep_id`` (an id or unambiguous prefix; root css class ``lumo-sweep``): one row
    per job with the swept values and metrics, best first, and the jobs' params and metrics plotted."""
    try:
        jobs, info = sweep_jobs(ctx, sweep_id)
    except LumoValueError as e:
        return error_pane(str(e), "lumo-sweep")
    parts: list[Any] = [_header(info, len(jobs))]
    if not len(jobs):
        parts.append(pn.pane.Markdown("No job of this sweep recorded a run yet."))
        return pn.Column(*parts, css_classes=["lumo-sweep"], sizing_mode="stretch_width")
    cols = info["columns"]
    best = info["objective"]
    rows = [[fmt(jobs[c].iloc[i]) if c != "duration" else _dur(jobs[c].iloc[i]) for c in cols]
            for i in range(len(jobs))]
    heads = [("★ " + c if c == best else c) for c in cols]
    parts.append(rows_table(heads, rows))
    if len(jobs) >= 2:
        from lumo_hydra.board.compare import parallel_view

        parts += [pn.pane.Markdown("#### params and metrics of the jobs"), parallel_view(ctx, jobs)]
    return pn.Column(*parts, css_classes=["lumo-sweep"], sizing_mode="stretch_width")


def _dur(v: Any) -> str:
    try:
        s = float(v)
    except (TypeError, ValueError):
        return ""
    if s != s:
        return ""
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
