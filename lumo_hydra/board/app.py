"""The board's page: tabs Runs, Compare, Run, Sweep over one :class:`BoardContext`, live, state in the URL.

:func:`board_app` builds one page (one per browser session under ``lumo-hydra board``, or one notebook
output for ``Watcher.panel()``); :func:`serve` runs the Bokeh server. The Compare, Run and Sweep views are
:mod:`lumo_hydra.board.compare`, :mod:`~lumo_hydra.board.runpage` and :mod:`~lumo_hydra.board.sweeppage`,
imported when their tab is first shown; until a module exists its tab says so.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import panel as pn
import param

from lumo_hydra.board.context import BoardContext
from lumo_hydra.board.table import RunsTable, optional_view

__all__ = ["board_app", "extension", "TABS", "URL_KEYS", "REFRESH_MS"]

TABS = ("Runs", "Compare", "Run", "Sweep")
#: URL query key -> what it holds (docs/board.md)
URL_KEYS = {"where": "the --where filter", "sort": "sort columns, '-' for descending", "group": "group column",
            "cols": "shown columns", "sel": "selected runs", "tab": "the open tab", "run": "the Run tab's run",
            "sweep": "the Sweep tab's sweep"}
REFRESH_MS = 3000
_EXTENDED = False


def extension(inline: bool = True) -> None:
    """Load Panel's Tabulator, never from a CDN: ``inline`` puts the JavaScript into the output (for
    notebooks, offline); the server instead serves the copies inside the panel wheel from its own
    ``/static`` route (cached by the browser)."""
    global _EXTENDED
    if not _EXTENDED:
        # pandas 3 deprecates `inplace=`, which Panel's and Bokeh's own frame handling still passes: not
        # the user's code, nothing they can change (only warnings raised inside panel/bokeh are ignored)
        warnings.filterwarnings("ignore", message="The inplace keyword", module=r"(panel|bokeh)(\.|$)")
        pn.extension("tabulator", inline=inline)
        _EXTENDED = True


class _PageState(param.Parameterized):
    tab = param.String(default="Runs")
    run = param.String(default="")
    sweep = param.String(default="")


def _placeholder(what: str, module: str) -> pn.viewable.Viewable:
    return pn.pane.Markdown(f"*The {what} view is not available yet (`lumo_hydra.board.{module}` is missing).*",
                            css_classes=[f"lumo-missing-{module}"])


def _error_pane(what: str, err: Exception) -> pn.viewable.Viewable:
    return pn.pane.Alert(f"**{what}**: {err}", alert_type="danger", css_classes=["lumo-message"])


class BoardPage:
    """One page of the board: the runs table and the three other tabs, wired together."""

    def __init__(self, ctx: BoardContext, *, url: bool = True, refresh_ms: int | None = REFRESH_MS,
                 where: str | None = None) -> None:
        self.ctx = ctx
        self.runs = RunsTable(ctx, where=where or "")
        self.state = _PageState()
        self.compare_box = pn.Column(sizing_mode="stretch_width", css_classes=["lumo-compare-tab"])
        self.run_box = pn.Column(sizing_mode="stretch_width", css_classes=["lumo-run-tab"])
        self.sweep_box = pn.Column(sizing_mode="stretch_width", css_classes=["lumo-sweep-tab"])
        self.run_input = pn.widgets.TextInput(label="run", placeholder="run id (test_name)",
                                              css_classes=["lumo-run-id"], width=260)
        self.sweep_select = pn.widgets.Select(label="sweep", options=[""], css_classes=["lumo-sweep-id"], width=260)
        self.tabs = pn.Tabs(("Runs", self.runs.panel()),
                            ("Compare", self.compare_box),
                            ("Run", pn.Column(self.run_input, self.run_box, sizing_mode="stretch_width")),
                            ("Sweep", pn.Column(self.sweep_select, self.sweep_box, sizing_mode="stretch_width")),
                            dynamic=True, sizing_mode="stretch_width", css_classes=["lumo-tabs"])
        self._shown: dict[str, Any] = {}
        self._wire()
        if url:
            self._sync_url()
        if refresh_ms:
            self._periodic = pn.state.add_periodic_callback(self.tick, period=refresh_ms)

    def _wire(self) -> None:
        self.tabs.param.watch(lambda e: setattr(self.state, "tab", TABS[e.new]), "active")
        self.state.param.watch(self._on_tab, "tab")
        self.state.param.watch(lambda e: setattr(self.run_input, "value", e.new), "run")
        self.state.param.watch(lambda e: self._set_sweep(e.new), "sweep")
        self.run_input.param.watch(lambda e: setattr(self.state, "run", e.new or ""), "value")
        self.sweep_select.param.watch(lambda e: setattr(self.state, "sweep", e.new or ""), "value")
        self.runs.on_select(self._on_select)

    def _sync_url(self) -> None:
        loc = pn.state.location
        if loc is None:
            return
        loc.sync(self.runs, {k: k for k in ("where", "sort", "group", "cols", "sel")})
        loc.sync(self.state, {"tab": "tab", "run": "run", "sweep": "sweep"})

    def view(self) -> pn.viewable.Viewable:
        """The page's root (css class ``lumo-board``)."""
        title = pn.pane.Markdown(f"### lumo-hydra board &nbsp; <small>{self._root()}</small>", margin=(0, 10))
        return pn.Column(title, self.tabs, sizing_mode="stretch_width", css_classes=["lumo-board"])

    def _root(self) -> str:
        if self.ctx.df is not None:
            return "(a given DataFrame)"
        return str(getattr(self.ctx.watcher, "root", ""))

    # ---- live ------------------------------------------------------------------------------------

    def tick(self) -> None:
        """The periodic check: the runs table is rebuilt when the store changed (state kept), then the
        Compare and Run tabs' live parts are brought up to date (:meth:`live_views`)."""
        try:
            if self.runs.refresh():
                self._update_sweeps()
        except Exception as e:  # noqa: BLE001 - a damaged store must not stop the page's timer
            self.runs.show_message(f"**refresh failed**: {e}", "danger")
        self.live_views()

    def live_views(self) -> int:
        """Call ``lumo_live()`` of the views in the Compare and Run tabs (built ones, shown or not: a tab
        shown again has no gap): the curves of selected running runs grow by their appended points, the
        Run page of a running run refreshes its status, progress, metrics and console tail. Each updates
        its own panes in place, so zoom, controls and selection stay. Returns how many views changed."""
        changed = 0
        for box in (self.compare_box, self.run_box):
            for view in list(box.objects):
                live = getattr(view, "lumo_live", None)
                if live is None:
                    continue
                try:
                    changed += bool(live())
                except Exception as e:  # noqa: BLE001 - a damaged history must not stop the timer
                    self.runs.show_message(f"**live update failed**: {e}", "danger")
        return changed

    # ---- tabs ------------------------------------------------------------------------------------

    def _on_tab(self, event: Any) -> None:
        name = event.new if event.new in TABS else "Runs"
        idx = TABS.index(name)
        if self.tabs.active != idx:
            self.tabs.active = idx
        self._render(name)

    def _on_select(self, ids: list[str]) -> None:
        if ids and not self.state.run:
            self.run_input.value = ids[0]
        if self.state.tab == "Compare":
            self._render("Compare")

    def _render(self, name: str) -> None:
        if name == "Compare":
            ids = self.runs.selected()
            self._fill(self.compare_box, ("Compare", tuple(ids)), "compare", "compare_view", "Compare",
                       lambda f: f(self.ctx, ids))
        elif name == "Run":
            run = self.state.run or (self.runs.selected() or [""])[0]
            if not run:
                self.run_box[:] = [pn.pane.Markdown("Select a run in the Runs tab, or type its id above.")]
                return
            self._fill(self.run_box, ("Run", run), "runpage", "run_view", "Run", lambda f: f(self.ctx, run))
        elif name == "Sweep":
            self._update_sweeps()
            sid = self.state.sweep or self.sweep_select.value
            if not sid:
                self.sweep_box[:] = [pn.pane.Markdown("No sweep in the store (or none chosen above).")]
                return
            self._fill(self.sweep_box, ("Sweep", sid), "sweeppage", "sweep_view", "Sweep",
                       lambda f: f(self.ctx, sid))

    def _fill(self, box: pn.Column, key: Any, module: str, func: str, what: str,
              call: Callable[[Any], Any]) -> None:
        if self._shown.get(what) == (key, self.ctx.version):
            return
        view = optional_view(module, func)
        if view is None:
            box[:] = [_placeholder(what, module)]
            return
        try:
            box[:] = [call(view)]
        except Exception as e:  # noqa: BLE001 - one bad run must not break the page
            box[:] = [_error_pane(f"{what} view failed", e)]
        self._shown[what] = (key, self.ctx.version)

    def _update_sweeps(self) -> None:
        df = self.ctx.frame()
        sweeps = [""] + sorted({str(s) for s in df.get("sweep", []) if isinstance(s, str) and s}, reverse=True)
        if list(self.sweep_select.options) != sweeps:
            cur = self.sweep_select.value
            self.sweep_select.options = sweeps
            self.sweep_select.value = cur if cur and cur in sweeps else (sweeps[1] if len(sweeps) > 1 else "")

    def _set_sweep(self, sid: str) -> None:
        self._update_sweeps()
        if sid and sid not in self.sweep_select.options:
            self.sweep_select.options = [*self.sweep_select.options, sid]
        if sid:
            self.sweep_select.value = sid
        if self.state.tab == "Sweep":
            self._render("Sweep")


def board_app(ctx: BoardContext, *, url: bool = True, refresh_ms: int | None = REFRESH_MS,
              where: str | None = None, inline: bool = True) -> pn.viewable.Viewable:
    """The board page over ``ctx`` (``url``: keep the view state in the page's URL; ``refresh_ms``: the
    live check's period, ``None`` for none; ``where``: the first filter, unless the URL has one)."""
    extension(inline=inline)
    page = BoardPage(ctx, url=url, refresh_ms=refresh_ms, where=where)
    root = page.view()
    root._lumo_page = page  # type: ignore[attr-defined]  # for tests and Watcher.panel() users
    return root


def free_port(host: str) -> int:
    """A port free on ``host`` now (``--port 0``)."""
    import socket

    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def origins(host: str, port: int) -> list[str]:
    """The websocket origins the server accepts: the loopback names, or any name on a non-loopback host
    (then the page is reachable under whatever name the network gives the machine)."""
    local = [f"127.0.0.1:{port}", f"localhost:{port}"]
    if host in ("127.0.0.1", "localhost", "::1"):
        return local
    return [*local, f"{host}:{port}", f"*:{port}"]


#: The served page: Panel's own, with the first page of rows (``lumo_first_page``) at the top of the body
#: and BokehJS/Panel's scripts and stylesheets after it (not in the head, where they would keep the rows
#: from painting until they are loaded). The rows cover the page until the interactive table has rows of
#: its own, then they are removed (docs/board.md, "First page").
PAGE_TEMPLATE = """{% extends "base.html" %}
{% block css_resources %}{% endblock %}
{% block js_resources %}{% endblock %}
{% block inner_body %}
{% if lumo_first_page %}
<div id="lumo-first-page" class="lumo-first-page"><style>
#lumo-first-page{position:absolute;top:0;left:0;right:0;min-height:100vh;z-index:100;background:#fff;
font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;font-size:14px;
padding:10px 10px 0 10px;box-sizing:border-box}
#lumo-first-page .lumo-first-page-head{margin:6px 0 14px 0}#lumo-first-page i{color:#757575}
#lumo-first-page table{border-collapse:collapse;white-space:nowrap}
#lumo-first-page th{text-align:left;border-bottom:2px solid #999;padding:4px}
#lumo-first-page tr.tabulator-row{display:table-row!important;position:static!important;min-height:0}
#lumo-first-page td{display:table-cell!important;position:static!important;border:0;border-bottom:1px solid #ddd;
padding:4px;height:auto;vertical-align:middle}</style>
{{ lumo_first_page }}</div>
<script>(function () {
  var first = document.getElementById("lumo-first-page"), since = 0;
  function deep(root, found) {  // the interactive table's rows live in Panel's shadow roots
    var els = root.querySelectorAll("*");
    for (var i = 0; i < els.length; i++) {
      var sr = els[i].shadowRoot;
      if (!sr) continue;
      if (els[i].classList.contains("lumo-runs")) {
        var row = sr.querySelector(".tabulator-row"), grid = sr.querySelector(".tabulator");
        if (row && row.getBoundingClientRect().height > 0) return 2;
        if (grid) found = 1;
      }
      found = Math.max(found, deep(sr, 0));
      if (found === 2) return 2;
    }
    return found;
  }
  var timer = setInterval(function () {
    var state = deep(document, 0);
    if (state === 1 && !since) since = Date.now();
    if (state === 2 || (since && Date.now() - since > 3000)) {  // rows, or a table left empty
      clearInterval(timer);
      first.remove();
    }
  }, 50);
})();</script>
{% endif %}
{{ bokeh_css if bokeh_css }}
{{ bokeh_js if bokeh_js }}
{{ super() }}
{% endblock %}
"""


def _serve_template() -> Any:
    from panel.io.resources import parse_template

    return parse_template(PAGE_TEMPLATE)


def make_server(ctx: BoardContext, host: str, port: int, *, show: bool = False, where: str | None = None) -> Any:
    """A Bokeh server (not started) serving the board at ``/`` on ``host:port`` (``port`` not 0). Each page's
    HTML carries its first page of rows (:data:`PAGE_TEMPLATE`)."""
    from markupsafe import Markup

    extension(inline=False)
    BoardPage(ctx, url=False, refresh_ms=None)  # warm: the frame and its table columns, once per server
    template = _serve_template()

    def page() -> pn.viewable.Viewable:
        root = board_app(ctx, where=where, inline=False)
        doc = pn.state.curdoc
        if doc is not None:
            bp: BoardPage = root._lumo_page  # type: ignore[attr-defined]
            first = bp.runs.first_page_html(f"lumo-hydra board  {bp._root()}") if bp.state.tab == "Runs" else ""
            doc.template = template
            doc.template_variables["lumo_first_page"] = Markup(first)
        return root

    return pn.serve({"/": page}, port=port, address=host, websocket_origin=origins(host, port), show=show,
                    start=False, title="lumo-hydra board", threaded=False, verbose=False)
