"""The Compare tab of the board: metric curves of the selected runs overlaid, the parallel coordinates and a
param-vs-metric scatter of the runs, and the diff of two of them.

Plots are Bokeh figures inside Panel panes; each has Bokeh's SaveTool (the toolbar's save button writes a
PNG). The server-side data of the curves comes from :func:`lumo_hydra.board.curves.curves_data`.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import panel as pn

from lumo_hydra.board.curves import MAX_POINTS, curves_data
from lumo_hydra.board.views_common import colors, error_pane, fmt, is_number, widget
from lumo_hydra.board.views_diff import diff_view
from lumo_hydra.errors import LumoValueError
from lumo_hydra.store.layout import HISTORY_JSONL
from lumo_hydra.store.reader import read_metrics

__all__ = ["compare_view", "parallel_view", "curves_figure", "LiveCurves", "parallel_figure", "scatter_figure", "axis_of",
           "run_metrics", "curves_panel"]

TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
#: the most axes a parallel-coordinates plot draws (params that differ first, then metrics)
MAX_AXES = 24
MISSING_COLOR = "#bbbbbb"


# ---- curves --------------------------------------------------------------------------------------

def curves_figure(data: dict[str, Any], log_y: bool = False) -> Any:
    """A Bokeh figure of the curves of :func:`curves_data` (one line per run, legend entries hide it)."""
    from bokeh.models import HoverTool
    from bokeh.plotting import figure

    p = figure(height=420, sizing_mode="stretch_width", tools=TOOLS, y_axis_type="log" if log_y else "linear",
               x_axis_label="step" if data["x"] == "step" else "seconds since the first point",
               y_axis_label=data["metric"], title=f"{data['metric']}" + (
                   f" (smoothing {data['smooth']:g})" if data["smooth"] else ""))
    drawn = 0
    for c, color in zip(data["curves"], colors(len(data["curves"]))):
        x, y = c["x"], c["y"]
        if log_y:
            keep = y > 0
            x, y = x[keep], y[keep]
        if not len(x):
            continue
        p.line(x, y, line_width=2, color=color, legend_label=c["label"], name=c["run"])
        if len(x) <= 60:  # a few points (one is no line at all): mark each
            p.scatter(x, y, size=5, color=color, legend_label=c["label"], name=c["run"])
        drawn += 1
    p.add_tools(HoverTool(tooltips=[("run", "$name"), ("x", "$x{0.[000]}"), ("y", "$y{0.[0000]}")]))
    if drawn:
        p.legend.click_policy = "hide"
        p.legend.label_text_font_size = "10px"
        if drawn > 6:  # many runs: the legend beside the plot, not over the curves
            p.add_layout(p.legend[0], "right")
        else:
            p.legend.location = "top_left"
    return p


def run_metrics(ctx: Any, run_ids: Sequence[str]) -> list[str]:
    """The metric names of the runs (their ``metrics.json``), in order of first appearance."""
    names: dict[str, None] = {}
    for rid in run_ids:
        try:
            ref = ctx.watcher.resolve(rid)
        except LumoValueError:
            continue
        names.update(dict.fromkeys(read_metrics(ref[2], warn=False)))
    return list(names)


def curves_panel(ctx: Any, ids: list[str], metrics: list[str]) -> pn.Column:
    """The curves of the runs ``ids`` with their controls (metric, x axis, smoothing, log y); the plot pane
    has the css class ``lumo-curves``. The column's ``lumo_live()`` (called by the board's live check)
    adds the points running runs appended since the last draw, see :class:`LiveCurves`."""
    metric = widget(pn.widgets.Select, "metric", options=metrics, value=metrics[0], width=220)
    xaxis = widget(pn.widgets.RadioButtonGroup, "x", options=["step", "time"], value="step")
    smooth = widget(pn.widgets.FloatSlider, "smoothing", start=0.0, end=0.99, step=0.01, value=0.0, width=220)
    logy = widget(pn.widgets.Checkbox, "log y", value=False)
    plot = pn.pane.Bokeh(sizing_mode="stretch_width", css_classes=["lumo-curves"])
    info = pn.pane.Markdown("", css_classes=["lumo-curves-info"])
    live = LiveCurves(ctx, ids, plot, info)

    def draw(*_: Any) -> None:
        live.draw(metric.value, xaxis.value, float(smooth.value or 0.0), bool(logy.value))

    for wdg in (metric, xaxis, logy):
        wdg.param.watch(draw, "value")
    smooth.param.watch(draw, "value_throttled")
    draw()
    col = pn.Column(pn.Row(metric, pn.Column(pn.pane.Markdown("x axis", margin=(0, 5)), xaxis), smooth, logy),
                    plot, info, sizing_mode="stretch_width")
    col.lumo_live = live.update  # type: ignore[attr-defined]
    col._lumo_curves = live  # type: ignore[attr-defined]  # for tests
    return col


class LiveCurves:
    """The drawn curves of some runs and their live update.

    :meth:`draw` builds the figure for the chosen metric, x axis, smoothing and log y. :meth:`update`
    (every live check of the board) looks only at the runs the board's frame shows running, or showed
    running at the previous check (their last points): one ``stat`` of each one's ``history.jsonl``; a
    file that grew is read from where the per-file cache of :mod:`lumo_hydra.board.curves` stopped, and
    its new points are streamed into the line's data source (nothing else is sent; the figure, so the
    user's zoom, and the controls stay). A curve that becomes downsampled or not a prefix of what is shown
    gets its source's data replaced; a run drawing its first point makes the figure be redrawn."""

    def __init__(self, ctx: Any, ids: list[str], plot: Any, info: Any) -> None:
        self.ctx, self.ids, self.plot, self.info = ctx, list(ids), plot, info
        self.choice: tuple[str, str, float, bool] = ("", "step", 0.0, False)
        self._dirs: dict[str, str] = {}
        self._sig: dict[str, tuple[int, int]] = {}
        self._was_running: set[str] = set()
        self.updates = 0  # live updates that changed the plot (for tests)

    def draw(self, metric: str, x: str, smooth: float, log_y: bool) -> None:
        """(Re)build the figure of ``metric`` (a changed control: the view starts afresh)."""
        self.choice = (metric, x, smooth, log_y)
        data = curves_data(self.ctx, self.ids, metric, x=x, smooth=smooth)
        self._note_files(c["run"] for c in data["curves"])
        self.plot.object = curves_figure(data, log_y)
        self._show_info(data)

    def _note_files(self, runs: Any) -> None:
        for run in runs:
            try:
                self._dirs.setdefault(run, str(self.ctx.watcher.resolve(run)[2]))
            except LumoValueError:
                continue
            self._sig[run] = _file_sig(self._dirs[run])

    def _show_info(self, data: dict[str, Any]) -> None:
        metric = data["metric"]
        read = sum(c["points"] for c in data["curves"])
        shown = sum(c["shown"] for c in data["curves"])
        empty = [c["run"] for c in data["curves"] if not c["points"]]
        note = f" · no `{metric}` in {', '.join(empty)}" if empty else ""
        miss = "".join(f" · {m['reason']}" for m in data["missing"])
        self.info.object = (f"{len(data['curves'])} runs · {read:,} points read · {shown:,} drawn (at most "
                            f"{MAX_POINTS:,} per run) · {data['seconds']:.2f} s{note}{miss}")

    def _running(self) -> set[str]:
        df = self.ctx.frame()
        if "status" not in df.columns or "test_name" not in df.columns:
            return set()
        return set(df.loc[df["status"] == "running", "test_name"].astype(str)) & set(self._dirs)

    def update(self) -> bool:
        """Add the points appended since the last draw or update; whether the plot changed."""
        fig = self.plot.object
        if fig is None or not self.choice[0]:
            return False
        running = self._running()
        look, self._was_running = running | self._was_running, running
        grown = [r for r in look if r in self._dirs and _file_sig(self._dirs[r]) != self._sig.get(r)]
        if not grown:
            return False
        metric, x, smooth, log_y = self.choice
        data = curves_data(self.ctx, grown, metric, x=x, smooth=smooth)
        self._note_files(grown)
        redraw = False
        for c in data["curves"]:
            rends = [r for r in fig.renderers if r.name == c["run"]]
            nx, ny = c["x"], c["y"]
            if log_y:
                keep = ny > 0
                nx, ny = nx[keep], ny[keep]
            if not rends:
                redraw = redraw or bool(len(nx))
                continue
            whole = c["shown"] == c["points"] - c["dropped"]  # not downsampled
            for r in rends:
                _refill(r.data_source, nx, ny, whole)
        if redraw:  # a run's first point: it needs its line and legend entry
            self.draw(*self.choice)
        else:
            self._show_info(curves_data(self.ctx, self.ids, metric, x=x, smooth=smooth))  # cached: no reading
        self.updates += 1
        return True


def _file_sig(info_dir: str) -> tuple[int, int]:
    """``(inode, size)`` of a run's history file (``(0, -1)`` when missing): the writer only appends."""
    try:
        st = os.stat(os.path.join(info_dir, HISTORY_JSONL))
    except OSError:
        return (0, -1)
    return (st.st_ino, st.st_size)


def _refill(src: Any, nx: Any, ny: Any, whole: bool) -> None:
    """Bring the source ``src`` (columns ``x``, ``y``) to the points ``nx``, ``ny``: only the new tail is
    streamed when what it holds is their beginning, else its data is replaced."""
    import numpy as np

    ox, oy = np.asarray(src.data.get("x", [])), np.asarray(src.data.get("y", []))
    n = len(ox)
    prefix = whole and len(nx) >= n and (n == 0 or (nx[n - 1] == ox[-1] and ny[n - 1] == oy[-1]))
    if prefix:
        if len(nx) > n:
            src.stream({"x": nx[n:], "y": ny[n:]})
    else:
        src.data = {"x": nx, "y": ny}


def _rows_of(ctx: Any, ids: list[str]) -> Any:
    """The rows of the board's frame for the runs ``ids`` (in that order)."""
    df = ctx.frame()
    names = []
    for rid in ids:
        try:
            names.append(ctx.watcher.resolve(rid)[1])
        except LumoValueError:
            continue
    if "test_name" not in df.columns:
        return df.iloc[0:0]
    sub = df[df["test_name"].isin(names)]
    order = {n: i for i, n in enumerate(names)}
    return sub.iloc[sorted(range(len(sub)), key=lambda i: order.get(sub["test_name"].iloc[i], 0))]


def _diff_panel(ctx: Any, ids: list[str]) -> pn.Column:
    a = widget(pn.widgets.Select, "A", options=ids, value=ids[0], width=260)
    b = widget(pn.widgets.Select, "B", options=ids, value=ids[1], width=260)
    holder = pn.Column(diff_view(ctx, ids[0], ids[1]), sizing_mode="stretch_width")

    def redo(*_: Any) -> None:
        holder.objects = [diff_view(ctx, a.value, b.value)]

    a.param.watch(redo, "value")
    b.param.watch(redo, "value")
    return pn.Column(pn.Row(a, b), holder, sizing_mode="stretch_width")


def compare_view(ctx: Any, run_ids: Sequence[str], filtered: Any = None) -> pn.viewable.Viewable:
    """The Compare tab for the runs ``run_ids``: overlaid curves (metric picker, x = step or time, smoothing,
    log y), parallel coordinates and a scatter, the diff of two of them (root css class ``lumo-compare``;
    the curves pane ``lumo-curves``). The plots of params and metrics show the runs of the flat frame
    ``filtered`` when given (the Runs table's filtered runs, with a switch to the selected ones), else the
    selected runs."""
    ids = [str(r) for r in dict.fromkeys(run_ids)]
    if not ids and filtered is None:
        return error_pane("Select runs in the Runs table to compare them.", "lumo-compare")
    parts: list[Any] = []
    metrics = run_metrics(ctx, ids)
    if metrics:
        parts += [pn.pane.Markdown("### Curves"), curves_panel(ctx, ids, metrics)]
    else:
        parts.append(pn.pane.Markdown("### Curves\n" + ("The selected runs recorded no metric." if ids else
                                                        "Select runs in the Runs table to see their curves.")))
    parts += [pn.pane.Markdown("### Params and metrics"), _params_panel(ctx, ids, filtered)]
    if len(ids) >= 2:
        parts += [pn.pane.Markdown("### Diff"), _diff_panel(ctx, ids)]
    root = pn.Column(*parts, css_classes=["lumo-compare"], sizing_mode="stretch_width")
    live = [f for f in (getattr(p, "lumo_live", None) for p in parts) if f is not None]

    def lumo_live() -> bool:
        """The board's live check: new points of running runs into the curves (see LiveCurves)."""
        return bool(sum(bool(f()) for f in live))

    root.lumo_live = lumo_live  # type: ignore[attr-defined]
    return root


def _params_panel(ctx: Any, ids: list[str], filtered: Any) -> Any:
    """The parallel coordinates and scatter of the selected runs, or of the filtered ones with a switch."""
    if filtered is None:
        return parallel_view(ctx, _rows_of(ctx, ids))
    which = widget(pn.widgets.RadioButtonGroup, "runs", options=[f"filtered ({len(filtered)})",
                                                                  f"selected ({len(ids)})"])
    holder = pn.Column(parallel_view(ctx, filtered), sizing_mode="stretch_width")

    def redo(*_: Any) -> None:
        df = filtered if str(which.value).startswith("filtered") else _rows_of(ctx, ids)
        holder.objects = [parallel_view(ctx, df)]

    which.param.watch(redo, "value")
    return pn.Column(which, holder, sizing_mode="stretch_width")


# ---- parallel coordinates and scatter -------------------------------------------------------------

def axis_of(values: Sequence[Any]) -> tuple[list[float], list[tuple[float, str]], bool]:
    """One axis: the values mapped to [0, 1] (NaN for a missing one), the tick labels ``(position, text)``
    and whether it is numeric. Numbers are scaled linearly (a constant sits at 0.5); any other value is
    a category, placed by its sorted text."""
    vals = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in values]
    present = [v for v in vals if v is not None]
    if present and all(is_number(v) for v in present):
        lo, hi = float(min(present)), float(max(present))
        span = hi - lo
        pos = [math.nan if v is None else (0.5 if span == 0 or not math.isfinite(span) else (float(v) - lo) / span)
               for v in vals]
        ticks = [(0.5, fmt(lo))] if span == 0 else [(0.0, fmt(lo)), (1.0, fmt(hi))]
        return pos, ticks, True
    cats = sorted({fmt(v) for v in present})
    k = len(cats)
    place = {c: (0.5 if k == 1 else i / (k - 1)) for i, c in enumerate(cats)}
    step = max(1, math.ceil(k / 12))  # at most ~12 labels on one axis
    ticks = [(place[c], c[:24]) for i, c in enumerate(cats) if i % step == 0 or i == k - 1]
    return [math.nan if v is None else place[fmt(v)] for v in vals], ticks, False


def _color_by(values: Sequence[Any]) -> tuple[list[str], Any]:
    """A colour per row for column ``values`` and the Bokeh colour mapper to draw a colour bar (numbers)."""
    from bokeh.models import LinearColorMapper
    from bokeh.palettes import Viridis256

    pos, ticks, numeric = axis_of(values)
    if numeric:
        out = [MISSING_COLOR if math.isnan(p) else Viridis256[min(255, int(p * 255))] for p in pos]
        nums = [float(v) for v in values if is_number(v) and not (isinstance(v, float) and math.isnan(v))]
        lo, hi = (min(nums), max(nums)) if nums else (0.0, 1.0)
        return out, LinearColorMapper(palette=Viridis256, low=lo, high=hi if hi > lo else lo + 1)
    cats = sorted({p for p in pos if not math.isnan(p)})
    pal = colors(len(cats))
    idx = {c: i for i, c in enumerate(cats)}
    return [MISSING_COLOR if math.isnan(p) else pal[idx[p]] for p in pos], None


def _columns(df: Any) -> tuple[list[str], list[str]]:
    """The params shown on the axes (those that differ, else all) and the metric columns (best values;
    the jobs' return value first when they have one)."""
    from lumo_hydra.cli.columns import differing, main_metrics

    params = differing(df) or [c for c in df.columns if str(c).startswith("params.")]
    metrics = main_metrics(df)
    if "return_value" in df.columns and df["return_value"].map(is_number).any():
        metrics = ["return_value"] + metrics  # a sweep's objective
    return params, metrics


def parallel_figure(df: Any, axes: Sequence[str], color: str | None) -> Any:
    """Parallel coordinates of the rows of ``df`` over the columns ``axes`` (each scaled to [0, 1];
    categories at sorted positions), one line per run coloured by column ``color``."""
    from bokeh.models import ColumnDataSource, FixedTicker, HoverTool, Range1d
    from bokeh.models.annotations import ColorBar, LabelSet
    from bokeh.plotting import figure

    cols = [axis_of(df[c].tolist()) for c in axes]
    n = len(df)
    xs = [list(range(len(axes)))] * n
    ys = [[cols[j][0][i] for j in range(len(axes))] for i in range(n)]
    line_colors, mapper = _color_by(df[color].tolist()) if color in df.columns else (["#1f77b4"] * n, None)
    names = [str(x) for x in df["test_name"]] if "test_name" in df.columns else [str(i) for i in range(n)]
    src = ColumnDataSource({"xs": xs, "ys": ys, "color": line_colors, "run": names,
                            "value": [fmt(v) for v in (df[color] if color in df.columns else [""] * n)]})
    p = figure(height=380, sizing_mode="stretch_width", tools=TOOLS + ",tap", x_range=Range1d(start=-0.3, end=len(axes) - 0.7),
               y_range=Range1d(start=-0.08, end=1.08), title="parallel coordinates" + (f" (colour: {color})" if color else ""))
    for j in range(len(axes)):
        p.line([j, j], [0, 1], color="#888888", line_width=1)
    r = p.multi_line("xs", "ys", source=src, line_color="color", line_width=2, line_alpha=0.7,
                     hover_line_alpha=1.0, hover_line_width=4)
    p.add_tools(HoverTool(renderers=[r], tooltips=[("run", "@run"), (color or "", "@value")]))
    px = [j for i in range(n) for j in range(len(axes)) if not math.isnan(ys[i][j])]
    py = [ys[i][j] for i in range(n) for j in range(len(axes)) if not math.isnan(ys[i][j])]
    pc = [line_colors[i] for i in range(n) for j in range(len(axes)) if not math.isnan(ys[i][j])]
    p.scatter(px, py, color=pc, size=5)  # a value between two missing ones is seen too
    lx, ly, lt = [], [], []
    for j, (_, ticks, _num) in enumerate(cols):
        for pos, text in ticks:
            lx.append(j)
            ly.append(pos)
            lt.append(text)
    p.add_layout(LabelSet(x="x", y="y", text="text", x_offset=4, text_font_size="10px", text_color="#444444",
                          source=ColumnDataSource({"x": lx, "y": ly, "text": lt})))
    p.xaxis.ticker = FixedTicker(ticks=list(range(len(axes))))
    p.xaxis.major_label_overrides = {j: str(c) for j, c in enumerate(axes)}
    p.xaxis.major_label_orientation = 0.5 if len(axes) > 6 else 0.0
    p.yaxis.visible = False
    p.ygrid.visible = False
    p.xgrid.visible = False
    if mapper is not None:
        p.add_layout(ColorBar(color_mapper=mapper, width=10, title=color), "right")
    return p


def scatter_figure(df: Any, x: str, y: str, color: str | None) -> Any:
    """A scatter of column ``y`` against column ``x`` (categories at their sorted positions, labelled),
    one point per run coloured by column ``color``."""
    from bokeh.models import ColumnDataSource, FixedTicker, HoverTool
    from bokeh.models.annotations import ColorBar
    from bokeh.plotting import figure

    xv, yv = df[x].tolist(), df[y].tolist()
    (xp, xt, xnum), (yp, yt, ynum) = axis_of(xv), axis_of(yv)
    xs = [float(v) if xnum and is_number(v) else p for v, p in zip(xv, xp)]
    ys = [float(v) if ynum and is_number(v) else p for v, p in zip(yv, yp)]
    n = len(df)
    pcolors, mapper = _color_by(df[color].tolist()) if color in df.columns else (["#1f77b4"] * n, None)
    names = [str(v) for v in df["test_name"]] if "test_name" in df.columns else [str(i) for i in range(n)]
    src = ColumnDataSource({"x": xs, "y": ys, "color": pcolors, "run": names, "xv": [fmt(v) for v in xv],
                            "yv": [fmt(v) for v in yv],
                            "cv": [fmt(v) for v in (df[color] if color in df.columns else [""] * n)]})
    p = figure(height=380, sizing_mode="stretch_width", tools=TOOLS, x_axis_label=x, y_axis_label=y,
               title=f"{y} vs {x}" + (f" (colour: {color})" if color else ""))
    r = p.scatter("x", "y", source=src, size=9, color="color", line_color="#333333", alpha=0.85)
    p.add_tools(HoverTool(renderers=[r], tooltips=[("run", "@run"), (x, "@xv"), (y, "@yv"), (color or "", "@cv")]))
    for axis, num, ticks in ((p.xaxis, xnum, xt), (p.yaxis, ynum, yt)):
        if not num and ticks:
            axis.ticker = FixedTicker(ticks=[t[0] for t in ticks])
            axis.major_label_overrides = {t[0]: t[1] for t in ticks}
    if mapper is not None:
        p.add_layout(ColorBar(color_mapper=mapper, width=10, title=color), "right")
    return p


def _scatter_panel(df: Any, params: list[str], metrics: list[str]) -> pn.Column:
    cols = [str(c) for c in df.columns if not str(c).endswith(".last") and df[c].notna().any()
            and not df[c].map(lambda v: isinstance(v, (list, dict))).any()]
    xs = params + [c for c in cols if c not in params]
    ys = metrics + [c for c in cols if c not in metrics]
    x = widget(pn.widgets.Select, "x", options=xs, value=xs[0], width=220)
    y = widget(pn.widgets.Select, "y", options=ys, value=ys[0], width=220)
    color = widget(pn.widgets.Select, "colour by", options=["(none)"] + cols,
                              value=(metrics or ["(none)"])[0], width=220)
    plot = pn.pane.Bokeh(sizing_mode="stretch_width", css_classes=["lumo-scatter"])

    def draw(*_: Any) -> None:
        plot.object = scatter_figure(df, x.value, y.value, None if color.value == "(none)" else color.value)

    for wdg in (x, y, color):
        wdg.param.watch(draw, "value")
    draw()
    return pn.Column(pn.Row(x, y, color), plot, sizing_mode="stretch_width")


def parallel_view(ctx: Any, df: Any) -> pn.viewable.Viewable:
    """Parallel coordinates (css ``lumo-parallel``) and a param-vs-metric scatter (css ``lumo-scatter``) of
    the runs in the flat frame ``df`` (the filtered runs), each coloured by a column of choice."""
    if df is None or not len(df):
        return error_pane("No runs to plot.", "lumo-parallel-view")
    params, metrics = _columns(df)
    axes = (params + metrics)[:MAX_AXES]
    if not axes:
        return error_pane("These runs have no params or metrics to plot.", "lumo-parallel-view")
    choices = ["(none)"] + [str(c) for c in df.columns if not df[c].map(lambda v: isinstance(v, (list, dict))).any()]
    color = widget(pn.widgets.Select, "colour by", options=choices,
                              value=(metrics or params or ["(none)"])[0], width=260)
    plot = pn.pane.Bokeh(sizing_mode="stretch_width", css_classes=["lumo-parallel"])

    def draw(*_: Any) -> None:
        plot.object = parallel_figure(df, axes, None if color.value == "(none)" else color.value)

    color.param.watch(draw, "value")
    draw()
    return pn.Column(color, plot, _scatter_panel(df, params, metrics), css_classes=["lumo-parallel-view"],
                     sizing_mode="stretch_width")

