"""The Sweep tab of the board: one row per job of a sweep with its swept values and metrics, best first.

The ranking is that of ``lumo-hydra show SWEEP``, from the same module :mod:`lumo_hydra.cli.sweeprank`:
the jobs' return value in the direction of an optimizing sweeper (Optuna's ``direction``, Nevergrad's
``optim.maximize``, Ax's ``minimize``, from the sweep record or Hydra's ``multirun.yaml``), else the first
metric with a cmp. It is imported from there, not from ``lumo_hydra.cli.sweeps``, which reaches the
Watcher's module, which imports the board lazily (``Watcher.panel()``): an import cycle
(docs/architecture.md).
"""
from __future__ import annotations

import html
from typing import Any

import panel as pn

from lumo_hydra.board.views_common import error_pane, fmt, rows_table
from lumo_hydra.cli.render import fmt_duration
from lumo_hydra.errors import LumoValueError

__all__ = ["sweep_view", "sweep_jobs"]


def sweep_jobs(ctx: Any, sweep_id: str) -> tuple[Any, dict[str, Any]]:
    """The jobs of sweep ``sweep_id`` (flat frame, best first, with ``swept.*`` columns) and what the page
    says about it: ``{"sweep_id", "record", "status", "objective", "descending", "direction", "columns"}``."""
    from lumo_hydra.cli.sweeprank import best_first, job_numbers, objective, swept

    w = ctx.watcher
    sid = w.resolve_sweep(sweep_id)
    jobs = w.sweep(sid, flatten=True)
    rec = jobs.attrs.get("sweep")
    status = jobs.attrs.get("sweep_status")
    jobs = swept(jobs)
    col, desc, direction = objective(jobs, rec) if len(jobs) else (None, False, None)
    if col is not None:
        jobs = best_first(jobs, col, desc)
    job_numbers(jobs)
    cols = [c for c in ("job", "test_name", "status") if c in jobs.columns]
    cols += [c for c in jobs.columns if str(c).startswith("swept.")]
    metric_cols = [c for c in jobs.columns if str(c).startswith("metrics.") and not str(c).endswith(".last")]
    dup = {"metrics.return_value"} if col == "return_value" else set()
    cols += [c for c in ([col] if col else []) + metric_cols if c not in dup]
    cols += [c for c in ("duration",) if c in jobs.columns]
    cols = list(dict.fromkeys(cols))  # the objective is also one of the metrics: shown once
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
    rows = [[fmt(jobs[c].iloc[i]) if c != "duration" else fmt_duration(jobs[c].iloc[i]) for c in cols]
            for i in range(len(jobs))]
    heads = [("★ " + c if c == best else c) for c in cols]
    parts.append(rows_table(heads, rows))
    if len(jobs) >= 2:
        from lumo_hydra.board.compare import parallel_view

        parts += [pn.pane.Markdown("#### params and metrics of the jobs"), parallel_view(ctx, jobs)]
    return pn.Column(*parts, css_classes=["lumo-sweep"], sizing_mode="stretch_width")

