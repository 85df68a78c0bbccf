"""The diff of two runs on the board: params, best metrics, packages (their lock files) and the code diff of
their snapshots, the data of ``lumo-hydra diff --json``.

The pieces are those of ``lumo-hydra diff`` (:mod:`lumo_hydra.cli.code`): the flattened params of the
records, the locks read by :func:`lumo_hydra.record.lockfile.read_lock`, the code diff by
:func:`lumo_hydra.record.gitsnap.diff`. They are called here, not through ``lumo_hydra.cli.code``, because
that module reaches the Watcher's module (``cli.common``), which imports the board lazily
(``Watcher.panel()``, then the tabs' views by name): an import cycle (docs/architecture.md), even if the
views' by-name import keeps it out of the graph ``tests/test_architecture.py`` draws. Moving
``cli.code``'s diff helpers into a module below both would let both share them.
"""
from __future__ import annotations

import html
from typing import Any

import panel as pn

from lumo_hydra.board.views_common import ab_table, flat, section
from lumo_hydra.errors import LumoValueError

__all__ = ["run_diff", "diff_view", "code_html"]

#: the characters of a code diff shown on the page (the rest is cut, with a note)
MAX_DIFF_CHARS = 400_000


def _changed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    """``{key: [a's value, b's value]}`` of the keys whose values differ (as ``lumo-hydra diff``)."""
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _lock_packages(root: str, rec: dict[str, Any]) -> dict[str, str] | None:
    """The ``{package: version}`` of the run's lock file, or ``None`` when it has none or it cannot be read."""
    lock = rec.get("lock") or {}
    ref = lock.get("digest") or lock.get("file")
    if not ref:
        return None
    try:
        from lumo_hydra.record.lockfile import read_lock

        return dict((read_lock(root, ref) or {}).get("packages") or {})
    except (LumoValueError, OSError, ValueError):
        return None


def _code_diff(ga: dict[str, Any], gb: dict[str, Any]) -> tuple[str | None, str]:
    """The code diff of two snapshots (``""``: the same commit) and, when there is none, why not."""
    if not (ga.get("commit") and gb.get("commit")):
        return None, "code diff unavailable: " + ("run A" if not ga.get("commit") else "run B") + " has no snapshot"
    if ga["commit"] == gb["commit"]:
        return "", ""
    repo = str(ga.get("repo") or gb.get("repo") or "")
    try:
        from lumo_hydra.record.gitsnap import diff

        return diff(repo, ga["commit"], gb["commit"]), ""
    except (LumoValueError, OSError) as e:
        return None, f"code diff unavailable: {e}"


def run_diff(ctx: Any, run_a: str, run_b: str) -> dict[str, Any]:
    """What differs between runs ``run_a`` and ``run_b``: ``{"a", "b", "params", "metrics", "packages",
    "code", "code_msg"}`` (the keys of ``lumo-hydra diff --json`` plus why there is no code diff)."""
    w = ctx.watcher
    a, b = w.record(run_a), w.record(run_b)
    data: dict[str, Any] = {"a": a.get("test_name"), "b": b.get("test_name"),
                            "a_exp": a.get("exp_name"), "b_exp": b.get("exp_name")}
    data["params"] = _changed(flat(a.get("params") or {}), flat(b.get("params") or {}))
    ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
    data["metrics"] = {k: [(ma.get(k) or {}).get("best"), (mb.get(k) or {}).get("best")]
                       for k in sorted(set(ma) | set(mb))}
    la, lb = _lock_packages(w.root, a), _lock_packages(w.root, b)
    data["packages"] = _changed(la, lb) if la is not None and lb is not None else None
    data["code"], data["code_msg"] = _code_diff(a.get("git") or {}, b.get("git") or {})
    return data


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
