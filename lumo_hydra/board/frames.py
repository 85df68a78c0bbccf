"""The runs table's server side, without Panel: filter, sort, default columns, grouping with mean ± std.

Every function takes and returns ``pandas`` frames (the flat frame of :meth:`BoardContext.frame`), so the
browser never receives more than one page and these are testable (and timed) on their own.

View state as text (the URL keys of docs/board.md): ``where`` a ``--where`` expression; ``sort`` columns
separated by commas, a leading ``-`` for descending (``-metrics.acc,params.lr``); ``group`` one column;
``cols`` columns separated by commas; ``sel`` run ids (``test_name``) separated by commas.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lumo_hydra.errors import LumoValueError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["FIXED", "EDITABLE", "GROUP_KEY", "apply_where", "parse_sort", "format_sort", "sort_frame", "default_columns",
           "column_groups", "pickable_columns", "needed_columns", "where_mask", "group_summary", "group_labels", "table_frame",
           "split_list", "metric_columns", "display_columns", "changed_cells", "page_html"]

# Always shown, in this order, before the chosen columns; then the editable ones.
FIXED = ["test_name", "exp_name", "status", "progress", "start", "duration"]
EDITABLE = ["note", "tags"]
#: the table's hidden column holding each row's group header (:func:`group_labels`) when grouped
GROUP_KEY = "_group"
# Never offered in the column picker (paths and internals; info_dir is the table's hidden row key).
_HIDDEN_PREFIXES = ("paths.", "pinfo.", "hooks.", "execute.exec_", "progress.last_edit")


def split_list(text: str | Sequence[str] | None) -> list[str]:
    """``"a,b , c"`` -> ``["a", "b", "c"]`` (a list is returned cleaned)."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    return [s.strip() for s in items if s and s.strip()]


def where_mask(df: pd.DataFrame, where: str | None) -> Any:
    """The boolean mask of the rows of ``df`` that the ``--where`` expression keeps (``None``: all of them,
    for an empty expression); raises :class:`~lumo_hydra.watcher.where.WhereError` (a ``ValueError``)
    pointing at a bad token."""
    if not where or not where.strip():
        return None
    from lumo_hydra.watcher.where import parse_where

    cond = parse_where(where)
    return cond(df) if len(df) else None


def apply_where(df: pd.DataFrame, where: str | None) -> pd.DataFrame:
    """The rows of ``df`` that the ``--where`` expression keeps (all for an empty one)."""
    mask = where_mask(df, where)
    return df if mask is None else df[mask].reset_index(drop=True)


def parse_sort(text: str | None) -> list[tuple[str, bool]]:
    """``"-metrics.acc,params.lr"`` -> ``[("metrics.acc", False), ("params.lr", True)]`` (name, ascending)."""
    out = []
    for item in split_list(text):
        asc = not item.startswith("-")
        name = item.lstrip("+-").strip()
        if name:
            out.append((name, asc))
    return out


def format_sort(sort: Sequence[tuple[str, bool]]) -> str:
    """The inverse of :func:`parse_sort`."""
    return ",".join(("" if asc else "-") + name for name, asc in sort)


def sort_frame(df: pd.DataFrame, sort: Sequence[tuple[str, bool]]) -> pd.DataFrame:
    """``df`` sorted by the columns of ``sort`` (stable; missing values last); unknown columns are a
    :class:`LumoValueError` naming the column and the known ones."""
    if not sort or not len(df):
        return df
    unknown = [n for n, _ in sort if n not in df.columns]
    if unknown:
        raise LumoValueError(f"invalid sort column {unknown[0]!r}; allowed: a column of the table, e.g. "
                             f"{', '.join(list(df.columns)[:8])}")
    names = [n for n, _ in sort]
    return df.sort_values(names, ascending=[a for _, a in sort], kind="stable", na_position="last",
                          key=_sortable).reset_index(drop=True)


def _sortable(col: pd.Series) -> pd.Series:
    """Lists (tags) sort by their text; mixed object columns by their text, numbers kept numeric."""
    if col.dtype == object:
        import pandas as pd

        num = pd.to_numeric(col, errors="coerce")
        if num.notna().sum() == col.notna().sum():
            return num
        return col.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else
                       (", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)))
    return col


def metric_columns(df: pd.DataFrame, *, last: bool = False) -> list[str]:
    """The ``metrics.<name>`` columns (best values), or the ``metrics.<name>.last`` ones."""
    cols = [c for c in df.columns if str(c).startswith("metrics.")]
    return [c for c in cols if str(c).endswith(".last") == last]


def _differs(col: pd.Series) -> bool:
    vals = col.dropna()
    if not len(vals):
        return False
    if vals.dtype == object:
        vals = vals.map(repr)
    return bool(vals.nunique() > 1 or len(vals) < len(col))


def default_columns(df: pd.DataFrame) -> list[str]:
    """The params that differ among the runs of ``df`` and the best value of each metric (docs/board.md)."""
    params = [c for c in df.columns if str(c).startswith("params.") and _differs(df[c])]
    return params + metric_columns(df)


def pickable_columns(df: pd.DataFrame | Sequence[str]) -> list[str]:
    """Every column the picker offers (not the fixed, editable and internal ones) of a frame or a list."""
    skip = set(FIXED) | set(EDITABLE) | {"info_dir"}
    cols = list(getattr(df, "columns", df))
    return [str(c) for c in cols if c not in skip and not str(c).startswith(_HIDDEN_PREFIXES)]


def needed_columns(df: pd.DataFrame, extra: Sequence[str] = ()) -> list[str]:
    """The columns of ``df`` the table can need: the fixed and editable ones' sources, ``params.*``,
    ``metrics.*`` and ``extra`` (chosen and group columns); the rest is not filtered along."""
    base = {"test_name", "exp_name", "status", "progress.ratio", "start", "duration", "note", "tags",
            "info_dir", "sweep", "host", *extra}
    return [c for c in df.columns if c in base or str(c).startswith(("params.", "metrics."))]


def column_groups(cols: Sequence[str]) -> dict[str, list[str]]:
    """Columns grouped by dotted prefix: ``params.optim.lr`` under ``params.optim``, ``metrics.acc`` under
    ``metrics``, ``sweep`` under ``run``; groups in first-seen order."""
    out: dict[str, list[str]] = {}
    for c in cols:
        head, dot, _ = c.rpartition(".")
        if c.startswith("metrics."):
            head = "metrics"
        out.setdefault(head if dot else "run", []).append(c)
    return out


def group_summary(df: pd.DataFrame, by: str, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per value of ``by``: ``runs`` (how many), and for each metric column ``<m>.mean``,
    ``<m>.std`` (sample std, 0 for one run) and ``<m>`` as text ``"mean ± std"``. Groups sorted by value."""
    import pandas as pd

    if by not in df.columns:
        raise LumoValueError(f"invalid group column {by!r}; allowed: a column of the table, e.g. exp_name, "
                             "sweep or a params.* column")
    metrics = list(metrics) if metrics is not None else metric_columns(df) + metric_columns(df, last=True)
    metrics = [m for m in metrics if m in df.columns and pd.api.types.is_numeric_dtype(df[m])]
    g = df.assign(_key=_group_key(df, by)).groupby("_key", sort=True, dropna=False)
    out = pd.DataFrame({by: list(g.groups), "runs": g.size().to_numpy()})
    for m in metrics:
        mean = g[m].mean().to_numpy()
        std = g[m].std(ddof=1).fillna(0.0).to_numpy()
        out[m] = [_pm(a, b) for a, b in zip(mean, std)]
        out[m + ".mean"] = mean
        out[m + ".std"] = std
    return out


def _group_key(df: pd.DataFrame, by: str) -> pd.Series:
    """The group of each row: the value of ``by``, ``"(none)"`` when missing, a list as ``"a, b"``."""
    return df[by].map(lambda v: "(none)" if v is None or (isinstance(v, float) and math.isnan(v)) else
                      (", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v))


def group_labels(df: pd.DataFrame, by: str, metrics: Sequence[str] = ()) -> list[str]:
    """For each row of ``df``: the header of its group, computed over EVERY row of ``df`` (all the runs
    the filter matches, not one page): ``"params.lr = 0.1 · 3 runs · metrics.acc 0.61 ± 0.01"`` for the
    ``metrics`` columns given, HTML-escaped (the table's group header is HTML)."""
    from html import escape

    summary = group_summary(df, by, list(metrics))
    shown = [m for m in metrics if m in summary.columns]
    text = {}
    for i, key in enumerate(summary[by]):
        n = int(summary["runs"].iloc[i])
        parts = [f"{by} = {_shown_text(key)}", f"{n} run{'s' if n != 1 else ''}"]
        parts += [f"{m} {summary[m].iloc[i]}" for m in shown if summary[m].iloc[i]]
        text[key] = escape(" · ".join(parts))
    return [text[k] for k in _group_key(df, by)]


def _pm(mean: float, std: float) -> str:
    if mean != mean:
        return ""
    return f"{_num(mean)} ± {_num(std)}"


def _num(x: float) -> str:
    return f"{x:.4g}"


def table_frame(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """The frame the Tabulator shows: :data:`FIXED`, ``cols`` (the known ones), :data:`EDITABLE` and the
    hidden row key ``info_dir``; ``progress`` in percent, times as local text, tags as ``"a, b"``."""
    import pandas as pd

    n = len(df)
    out = pd.DataFrame(index=range(n))
    for c in ["test_name", "exp_name", "status"]:
        out[c] = df[c].to_numpy() if c in df else [""] * n
    ratio = df["progress.ratio"] if "progress.ratio" in df else pd.Series([float("nan")] * n)
    out["progress"] = (pd.to_numeric(ratio, errors="coerce").fillna(0.0) * 100).round(1).to_numpy()
    if "_start_text" in df:
        out["start"] = df["_start_text"].to_numpy()
    else:
        out["start"] = _local_text(df["start"]) if "start" in df else [""] * n
    out["duration"] = df["duration"].round(1).to_numpy() if "duration" in df else [float("nan")] * n
    for c in cols:
        if c in df.columns and c not in out.columns:
            out[c] = [_cell(v) for v in df[c]] if df[c].dtype == object else df[c].to_numpy()
    out["note"] = df["note"].fillna("").astype(str).to_numpy() if "note" in df else [""] * n
    if "_tags_text" in df:
        out["tags"] = df["_tags_text"].to_numpy()
    else:
        out["tags"] = [_cell(v) or "" for v in df["tags"]] if "tags" in df else [""] * n
    out["info_dir"] = df["info_dir"].to_numpy() if "info_dir" in df else [""] * n
    return out


def changed_cells(old: pd.DataFrame, new: pd.DataFrame) -> dict[str, list[tuple[int, Any]]]:
    """The cells of ``new`` that differ from ``old`` (same columns and length; NaN equals NaN), as a
    Tabulator patch: ``{column: [(row position, new value), ...]}``."""
    import numpy as np

    out: dict[str, list[tuple[int, Any]]] = {}
    for c in new.columns:
        a, b = old[c].reset_index(drop=True), new[c].reset_index(drop=True)
        same = (a == b) | (a.isna() & b.isna())
        rows = np.flatnonzero(~same.to_numpy(dtype=bool))
        if len(rows):
            out[c] = [(int(i), _plain(b.iloc[i])) for i in rows]
    return out


def _plain(v: Any) -> Any:
    """A cell value as plain Python (numpy scalars unwrapped, NaN/NaT as ``None``)."""
    import pandas as pd

    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return v
    return v.item() if hasattr(v, "item") else v


def display_columns(df: pd.DataFrame) -> dict[str, Any]:
    """``_start_text`` and ``_tags_text``: the two slow conversions of :func:`table_frame`, done once per
    frame (the board caches them and filters them along with the rows)."""
    n = len(df)
    return {"_start_text": _local_text(df["start"]) if "start" in df else [""] * n,
            "_tags_text": [_cell(v) or "" for v in df["tags"]] if "tags" in df else [""] * n}


def _local_text(col: pd.Series) -> Any:
    import datetime

    try:
        if col.dt.tz is not None:
            col = col.dt.tz_convert(datetime.datetime.now().astimezone().tzinfo)
        return col.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("").to_numpy()
    except (AttributeError, TypeError):
        return col.astype(str).to_numpy()


def _cell(v: Any) -> Any:
    """A list shown as ``"a, b"``, a dict as its repr, everything else as is."""
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    if isinstance(v, dict):
        return repr(v)
    return v


def _shown_text(v: Any) -> str:
    """A cell as the Tabulator shows it: floats as ``0,0.0[00000]`` (Panel's number format), integers
    with thousands separators, missing values empty."""
    import numbers

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}"
    if isinstance(v, numbers.Real):
        text = f"{float(v):,.6f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    return str(_cell(v))


def page_html(df: pd.DataFrame, *, hidden: Sequence[str] = ("info_dir",), colours: dict[str, str] | None = None,
              title: str = "", count: str = "") -> str:
    """The rows of ``df`` (one page of :func:`table_frame`) as a plain HTML table with the Tabulator's row
    and cell classes (``tabulator-row``, ``tabulator-cell[tabulator-field=...]``), the status as the same
    coloured badge and progress as a bar: the board's first page, sent in the page's HTML so the rows show
    before the interactive table is built (``lumo-first-page``; docs/board.md)."""
    from html import escape

    colours = colours or {}
    cols = [c for c in df.columns if c not in hidden]
    head = "".join(f"<th>{escape(str(c))}</th>" for c in cols)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, row):
            if c in hidden:
                continue
            if c == "status":
                s = escape(str(v))
                inner = (f'<span class="lumo-badge lumo-status-{s}" style="background:{colours.get(str(v), "#757575")};'
                         f'color:#fff;padding:1px 7px;border-radius:9px;font-size:90%">{s}</span>')
            elif c == "progress":
                pct = 0.0 if v is None or v != v else max(0.0, min(100.0, float(v)))
                inner = (f'<span class="lumo-bar" style="display:inline-block;width:60px;height:10px;'
                         f'background:#eee;vertical-align:middle"><span style="display:block;height:100%;'
                         f'width:{pct:.0f}%;background:#90caf9"></span></span> {pct:g}')
            else:
                inner = escape(_shown_text(v))
            cells.append(f'<td class="tabulator-cell" tabulator-field="{escape(str(c))}">{inner}</td>')
        body.append('<tr class="tabulator-row" role="row"><td></td>' + "".join(cells) + "</tr>")
    return (f'<div class="lumo-first-page-head"><b>{escape(title)}</b> <span>{escape(count)}</span> '
            '<i>(loading the interactive table...)</i></div>'
            f'<table class="lumo-runs lumo-first-page-table"><thead><tr><th></th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')
