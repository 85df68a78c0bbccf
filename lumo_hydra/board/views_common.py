"""Small pieces the board's views share: cell text, key/value and A/B tables as HTML, palettes, sections."""
from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import panel as pn

from lumo_hydra.cli.render import fmt as cell_text
from lumo_hydra.record.rundiff import flat  # the flattening of ``lumo-hydra show``/``diff``

__all__ = ["fmt", "flat", "kv_table", "ab_table", "rows_table", "section", "colors", "is_number", "error_pane", "widget"]


def fmt(v: Any) -> str:
    """One cell: the command line's cell text (:func:`lumo_hydra.cli.render.fmt`: empty for None/NaN/NaT,
    6 significant digits, times to the second), but the items of a list formatted alike and dicts as JSON."""
    if isinstance(v, (list, tuple)):
        return ",".join(fmt(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return cell_text(v)


_TABLE = ('<table class="lumo-table" style="border-collapse:collapse;font-size:13px">'
          '<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
_TD = '<td style="border-top:1px solid #ddd;padding:2px 8px;vertical-align:top;white-space:pre-wrap">{}</td>'
_TH = '<th style="text-align:left;padding:2px 8px">{}</th>'


def rows_table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> pn.pane.HTML:
    """An HTML table of ``rows`` (cells formatted with :func:`fmt`, escaped)."""
    h = "".join(_TH.format(html.escape(str(c))) for c in head)
    body = "".join("<tr>" + "".join(_TD.format(html.escape(fmt(v))) for v in r) + "</tr>" for r in rows)
    return pn.pane.HTML(_TABLE.format(head=h, body=body), sizing_mode="stretch_width")


def kv_table(items: Mapping[str, Any], head: Sequence[str] = ("key", "value")) -> pn.pane.HTML:
    """A two-column ``key | value`` table."""
    return rows_table(head, [(k, v) for k, v in items.items()])


def ab_table(rows: Mapping[str, Sequence[Any]]) -> pn.pane.HTML:
    """A ``key | A | B`` table of differing values (``-`` for a missing one)."""
    return rows_table(("key", "A", "B"), [(k, "-" if x is None else x, "-" if y is None else y)
                                          for k, (x, y) in rows.items()])


def section(title: str, *objs: Any) -> pn.Column:
    """A titled block of a page."""
    return pn.Column(pn.pane.Markdown(f"#### {html.escape(title)}"), *objs, sizing_mode="stretch_width")


def error_pane(text: str, css: str) -> pn.Column:
    """A view that could not be built: the reason, in the view's root (so tests still find it)."""
    return pn.Column(pn.pane.Alert(text, alert_type="warning"), css_classes=[css], sizing_mode="stretch_width")


def colors(n: int) -> list[str]:
    """``n`` distinct line colours (Category10, then Category20, then repeated)."""
    from bokeh.palettes import Category10, Category20

    base = list(Category10[10]) if n <= 10 else list(Category20[20])
    return [base[i % len(base)] for i in range(n)]


def is_number(v: Any) -> bool:
    """Whether ``v`` is a real number (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def widget(cls: Any, label: str, **kw: Any) -> Any:
    """A Panel widget with its ``label`` (Panel 1.9 deprecates ``name`` for it; older 1.x has only ``name``)."""
    return cls(**({"label": label} if "label" in cls.param else {"name": label}), **kw)
