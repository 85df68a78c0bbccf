"""Exports of the board: the current view as CSV, and a self-contained static HTML page of a filtered view
(``lumo-hydra board --export report.html [--where EXPR]``) for a paper's lab notes.

The HTML page is Bokeh's ``file_html`` with INLINE resources: BokehJS is written into the page, so it opens
offline, from a file, years later; it holds the runs table, the curves of each main metric and the
parallel coordinates of the runs. :func:`external_assets` lists any ``src``/``href`` of a ``<script>`` or
``<link>`` that points to the network (the export checks it finds none).
"""
from __future__ import annotations

import datetime
import html
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from lumo_hydra.board.frames import FIXED, apply_where, default_columns, metric_columns
from lumo_hydra.board.views_common import fmt
from lumo_hydra.errors import LumoValueError

__all__ = ["frame_csv", "export_html", "external_assets", "MAX_EXPORT_RUNS", "MAX_EXPORT_METRICS"]

#: the curves of at most this many runs per metric (the newest of the view), and of this many metrics
MAX_EXPORT_RUNS = 20
MAX_EXPORT_METRICS = 6
#: the table of the page lists at most this many runs
MAX_TABLE_ROWS = 5000


def frame_csv(df: Any) -> bytes:
    """``df`` as CSV (UTF-8): list and dict cells as JSON, times to the millisecond, no index."""
    import pandas as pd

    out = df.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_datetime64_any_dtype(col):
            out[c] = col.dt.round("ms")
        elif col.dtype == object:
            out[c] = col.map(lambda v: json.dumps(v, default=str) if isinstance(v, (list, dict, tuple)) else v)
    return str(out.to_csv(index=False)).encode("utf-8")


_ASSET = re.compile(r"<(script|link)\b[^>]*?\b(src|href)\s*=\s*[\"']?\s*((?:https?:)?//[^\"'\s>]*)", re.I)


def external_assets(text: str) -> list[str]:
    """The URLs of ``<script src>`` and ``<link href>`` in ``text`` that point to the network."""
    return [m.group(3) for m in _ASSET.finditer(text)]


def _table_html(df: Any, cols: list[str]) -> str:
    head = "".join(f"<th{_CELL}>{html.escape(c)}</th>" for c in cols)
    rows = []
    for i in range(min(len(df), MAX_TABLE_ROWS)):
        cells = []
        for c in cols:
            v = df[c].iloc[i]
            text = fmt(v) if c != "duration" else _dur(v)
            cells.append(f"<td{_CELL}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = (f"<p>{len(df) - MAX_TABLE_ROWS} more runs not listed.</p>" if len(df) > MAX_TABLE_ROWS else "")
    return ('<table class="lumo-export-table" style="border-collapse:collapse;font-size:12px">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}")


def _dur(v: Any) -> str:
    try:
        s = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(s) else f"{s:.1f}s"


_CELL = ' style="border:1px solid #ddd;padding:2px 6px;text-align:left;white-space:nowrap"'


def _summary(ctx: Any, where: str | None, n: int, total: int) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return (f"<h2>lumo-hydra runs</h2><p>store <code>{html.escape(str(ctx.watcher.root))}</code> · "
            + (f"where <code>{html.escape(where)}</code> · " if where else "")
            + f"{n} of {total} runs · written {html.escape(now)}</p>")


def _curve_figures(ctx: Any, df: Any) -> list[Any]:
    """One figure per main metric: the curves of the newest :data:`MAX_EXPORT_RUNS` runs of ``df``."""
    from lumo_hydra.board.compare import curves_figure
    from lumo_hydra.board.curves import curves_data

    if "info_dir" not in df.columns or not len(df):
        return []
    ids = [str(d) for d in df["info_dir"].tolist()[-MAX_EXPORT_RUNS:]]
    figs = []
    for col in metric_columns(df)[:MAX_EXPORT_METRICS]:
        data = curves_data(ctx, ids, col[len("metrics."):])
        if any(c["shown"] for c in data["curves"]):
            fig = curves_figure(data)
            fig.sizing_mode = "stretch_width"
            figs.append(fig)
    return figs


def _parallel_figure(df: Any) -> Any:
    from lumo_hydra.board.compare import MAX_AXES, _columns, parallel_figure

    if len(df) < 2:
        return None
    params, metrics = _columns(df)
    axes = (params + metrics)[:MAX_AXES]
    if not axes:
        return None
    return parallel_figure(df, axes, (metrics or params)[0])


def export_html(ctx: Any, where: str | None, path: str | os.PathLike[str]) -> Path:
    """Write a self-contained static HTML page of the runs ``where`` keeps (a ``--where`` expression, or
    ``None`` for all): their table, the curves of each main metric and their parallel coordinates.
    No asset is fetched from the network (BokehJS is inline). Returns the path written."""
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models.widgets.markups import Div
    from bokeh.resources import Resources

    class _BokehOnly(Resources):
        # Bokeh adds the __css__/__javascript__ of every model class imported in this process: once a
        # Panel Tabulator has been shown (a notebook, the board's tests) that is a CDN stylesheet. The page
        # uses Bokeh's own models only, whose code is in the inline BokehJS.
        def _collect_external_resources(self, resource_attr: Any) -> list[str]:
            return []

        def clone(self, *, components: Any = None) -> Resources:  # file_html bundles a clone
            out = super().clone(components=components)
            out.__class__ = _BokehOnly
            return out


    out = Path(path)
    if out.is_dir():
        raise LumoValueError(f"invalid value for the export path: {str(out)!r} is a folder; allowed: a file name "
                             "such as report.html")
    every = ctx.frame()
    df = apply_where(every, where)
    cols = [c for c in FIXED if c in df.columns and c != "progress"] + [c for c in default_columns(df)
                                                                       if c in df.columns]
    blocks: list[Any] = [Div(text=_summary(ctx, where, len(df), len(every)), sizing_mode="stretch_width")]
    blocks.append(Div(text=_table_html(df, cols) if len(df) else "<p>No run matches.</p>",
                      sizing_mode="stretch_width"))
    figs = _curve_figures(ctx, df)
    if figs:
        blocks.append(Div(text=f"<h3>curves</h3><p>the newest {min(len(df), MAX_EXPORT_RUNS)} runs</p>"))
        blocks += figs
    par = _parallel_figure(df)
    if par is not None:
        blocks += [Div(text="<h3>parallel coordinates</h3>"), par]
    page = file_html(column(*blocks, sizing_mode="stretch_width"), _BokehOnly(mode="inline"),
                     title="lumo-hydra runs")
    bad = external_assets(page)
    if bad:  # pragma: no cover - INLINE resources never link out; kept as the promise's check
        raise LumoValueError(f"the export would load assets from the network ({', '.join(bad[:3])}); not written")
    from lumo_hydra.store.files import atomic_write_text

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    return out
