"""The diff of two runs on the board: params, best metrics, packages (their lock files) and the code diff of
their snapshots, the data of ``lumo-hydra diff --json``.

The diff itself is :func:`lumo_hydra.record.rundiff.diff_records`, the one of ``lumo-hydra diff``
(:mod:`lumo_hydra.cli.code`): it takes the records, not the Watcher, so the board imports it without the
import cycle ``lumo_hydra.cli.code`` would close (its ``cli.common`` reaches the Watcher's module, which
imports the board lazily in ``Watcher.panel()``).
"""
from __future__ import annotations

import html
from typing import Any

import panel as pn

from lumo_hydra.board.views_common import ab_table, section
from lumo_hydra.errors import LumoValueError
from lumo_hydra.record.rundiff import diff_records

__all__ = ["run_diff", "diff_view", "code_html"]

#: the characters of a code diff shown on the page (the rest is cut, with a note)
MAX_DIFF_CHARS = 400_000


def run_diff(ctx: Any, run_a: str, run_b: str) -> dict[str, Any]:
    """What differs between runs ``run_a`` and ``run_b``: ``{"a", "b", "a_exp", "b_exp", "params", "metrics",
    "packages", "code", "code_msg"}`` (the keys of ``lumo-hydra diff --json``, the runs' experiments and
    why there is no code diff)."""
    w = ctx.watcher
    a, b = w.record(run_a), w.record(run_b)
    d, code_msg = diff_records(w.root, a, b)
    data: dict[str, Any] = {"a": d.pop("a"), "b": d.pop("b"), "a_exp": a.get("exp_name"),
                            "b_exp": b.get("exp_name")}
    return {**data, **d, "code_msg": code_msg}


def code_html(diff: str) -> str:
    """A unified diff as an HTML ``<pre>`` with added/removed/hunk lines coloured (escaped)."""
    cut = ""
    if len(diff) > MAX_DIFF_CHARS:
        diff, cut = diff[:MAX_DIFF_CHARS], f"\n... (cut at {MAX_DIFF_CHARS:,} characters)"
    out = []
    for line in diff.splitlines():
        style = ""
        if line.startswith(("+++", "---", "diff --git", "index ")):
            style = "font-weight:bold"
        elif line.startswith("+"):
            style = "color:#116611;background:#e6ffe6"
        elif line.startswith("-"):
            style = "color:#991111;background:#ffe6e6"
        elif line.startswith("@@"):
            style = "color:#5555aa"
        text = html.escape(line) or " "
        out.append(f'<span style="{style}">{text}</span>' if style else text)
    return ('<pre class="lumo-code-diff" style="font-size:12px;overflow:auto;max-height:600px">'
            + "\n".join(out) + html.escape(cut) + "</pre>")


def diff_view(ctx: Any, run_a: str, run_b: str) -> pn.viewable.Viewable:
    """The diff of two runs as a page section (root css class ``lumo-diff``)."""
    try:
        d = run_diff(ctx, run_a, run_b)
    except LumoValueError as e:
        return pn.Column(pn.pane.Alert(str(e), alert_type="danger"), css_classes=["lumo-diff"],
                         sizing_mode="stretch_width")
    parts: list[Any] = [pn.pane.Markdown(
        f"**A** `{d['a_exp']}/{d['a']}` &nbsp; **B** `{d['b_exp']}/{d['b']}`")]
    for title, rows in (("params", d["params"]), ("metrics (best)", d["metrics"]),
                        ("packages", d["packages"])):
        if rows is None:
            parts.append(pn.pane.Markdown(f"**{title}**: lock files unavailable"))
        elif not rows:
            parts.append(pn.pane.Markdown(f"**{title}**: identical"))
        else:
            parts.append(section(title, ab_table(rows)))
    code = d["code"]
    if code is None:
        parts.append(pn.pane.Markdown(f"**code**: {html.escape(d['code_msg'])}"))
    elif code == "":
        parts.append(pn.pane.Markdown("**code**: identical snapshots"))
    else:
        parts.append(section("code", pn.pane.HTML(code_html(code), sizing_mode="stretch_width")))
    return pn.Column(*parts, css_classes=["lumo-diff"], sizing_mode="stretch_width")
