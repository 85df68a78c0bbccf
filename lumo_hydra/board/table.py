"""The runs table of the board: a Panel Tabulator with remote pagination over :mod:`lumo_hydra.board.frames`.

:class:`RunsTable` is a ``param.Parameterized`` whose parameters are the view state kept in the URL
(``where``, ``sort``, ``group``, ``cols``, ``sel``: see :mod:`lumo_hydra.board.frames`). The query box,
the column picker, the group select and the table's own header sort and checkboxes all write them; the
table is rebuilt from them on the server, and only the current page is sent to the browser.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import panel as pn
import param

from lumo_hydra.board import frames as F
from lumo_hydra.board.context import BoardContext

__all__ = ["RunsTable", "STATUS_COLOURS", "PAGE_SIZE"]

PAGE_SIZE = 50
STATUS_COLOURS = {"finished": "#2e7d32", "running": "#1565c0", "failed": "#c62828", "crashed": "#6a1b9a",
                  "interrupted": "#ef6c00", "killed": "#4e342e"}
_NONE = "(none)"


def _status_formatter() -> Any:
    """The status as a coloured badge whose text is the status (class ``lumo-badge lumo-status-<s>``)."""
    from bokeh.models.widgets.tables import HTMLTemplateFormatter

    colours = ",".join(f"{k}:'{v}'" for k, v in STATUS_COLOURS.items())
    return HTMLTemplateFormatter(template=(
        '<span class="lumo-badge lumo-status-<%= value %>" style="background:'
        f"<%= ({{{colours}}})[value] || '#757575' %>"
        ';color:#fff;padding:1px 7px;border-radius:9px;font-size:90%"><%= value %></span>'))


def _progress_formatter() -> dict[str, Any]:
    return {"type": "progress", "min": 0, "max": 100, "legend": True, "color": "#90caf9"}


def _group_header() -> dict[str, Any]:
    """Tabulator options for the group rows: the header is the group's text computed on the server over
    every filtered run (hidden column :data:`F.GROUP_KEY`), then how many of them are on this page."""
    try:
        from panel.io.model import JSCode
    except ImportError:  # an older Panel: Tabulator's own header, its count worded as what it is
        return {"langs": {"default": {"groups": {"item": "on this page", "items": "on this page"}}}}
    return {"groupHeader": JSCode(
        "function (value, count) { var i = String(value).indexOf(': ');"
        " return (i < 0 ? value : String(value).slice(i + 2))"
        " + ' <span class=\"lumo-group-page\">(' + count + ' on this page)</span>'; }")}


class RunsTable(param.Parameterized):
    """The runs of ``ctx`` as a paged, filtered, sorted, grouped and editable table."""

    where = param.String(default="", doc="a --where expression")
    sort = param.String(default="", doc="columns, a leading '-' for descending: '-metrics.acc,params.lr'")
    group = param.String(default="", doc="the column the runs are grouped by ('' for none)")
    cols = param.String(default="", doc="the shown columns, comma separated ('' for the defaults)")
    sel = param.String(default="", doc="the selected runs (test_name), comma separated")

    def __init__(self, ctx: BoardContext, *, page_size: int = PAGE_SIZE, **params: Any) -> None:
        super().__init__(**params)
        self.ctx = ctx
        self.view = ctx.frame().iloc[0:0]  # the filtered runs (flat frame), set by refresh()
        self._syncing = False
        self._seen_version = -1
        self._on_select: list[Callable[[list[str]], None]] = []
        self._picker_options: list[str] | None = None
        self._group_options: list[str] | None = None
        self._all_columns: list[str] = []
        self._display: tuple[Any, tuple[str, ...], Any] = (None, (), None)
        self._build_widgets(page_size)
        self.refresh(force=True)
        self.param.watch(self._on_state, ["where", "group", "cols"])
        self.param.watch(self._on_sort_param, "sort")
        self.param.watch(self._on_sel_param, "sel")

    # ---- widgets ---------------------------------------------------------------------------------

    def _build_widgets(self, page_size: int) -> None:
        self.query = pn.widgets.TextInput(
            value=self.where, placeholder="filter: params.lr >= 0.01 and status == finished (Enter)",
            css_classes=["lumo-query"], sizing_mode="stretch_width")
        self.query.param.watch(lambda e: setattr(self, "where", e.new or ""), "value")
        self.message = pn.pane.Alert("", alert_type="warning", visible=False, css_classes=["lumo-message"],
                                     sizing_mode="stretch_width")
        self._sticky = False  # the message shown is an edit refused (see show_message)
        self.count = pn.pane.Markdown("", css_classes=["lumo-count"], margin=(0, 10))
        self.group_select = pn.widgets.Select(label="group by", options=[_NONE], value=self.group or _NONE,
                                              css_classes=["lumo-group"], width=220)
        self.group_select.param.watch(lambda e: setattr(self, "group", "" if e.new == _NONE else e.new), "value")
        self.pickers = pn.Column(css_classes=["lumo-columns-list"])
        self.picker = pn.Card(self.pickers, title="Columns", collapsed=True, css_classes=["lumo-columns"],
                              sizing_mode="stretch_width")
        self.picker.param.watch(lambda e: self._update_pickers(self.shown_columns()), "collapsed")
        self.csv = pn.widgets.FileDownload(callback=self.csv_bytes, filename="runs.csv", label="CSV of this view",
                                           css_classes=["lumo-csv"], width=160)
        self.table = pn.widgets.Tabulator(
            value=F.table_frame(self.view, []), pagination="remote", page_size=page_size, selectable="checkbox",
            show_index=False, hidden_columns=["info_dir", F.GROUP_KEY], sizing_mode="stretch_width",
            configuration=_group_header(),
            css_classes=["lumo-runs"], formatters={"status": _status_formatter(),
                                                   "progress": _progress_formatter()},
            header_filters=False, layout="fit_data_fill", frozen_columns=["test_name"])
        self.table.on_edit(self._on_edit)
        self.table.param.watch(self._on_sorters, "sorters")
        self.table.param.watch(self._on_selection, "selection")
        self.groups = pn.widgets.Tabulator(value=None, show_index=False, disabled=True, visible=False,
                                           css_classes=["lumo-groups"], sizing_mode="stretch_width",
                                           pagination="remote", page_size=20)
        # the group summary joins the page when first shown: a second Tabulator in every page's first
        # document is time before its first row
        self.groups_box = pn.Column(sizing_mode="stretch_width", margin=0)

    def panel(self) -> pn.viewable.Viewable:
        """The Runs tab: query box, controls, message, group summary, table."""
        controls = pn.Row(self.group_select, self.csv, self.count, sizing_mode="stretch_width")
        return pn.Column(self.query, controls, self.message, self.picker, self.groups_box, self.table,
                         sizing_mode="stretch_width", css_classes=["lumo-runs-tab"])

    def show_message(self, text: str, kind: Any = "warning", sticky: bool = False) -> None:
        """A visible message above the table (``kind``: warning, danger, info, success); ``""`` hides it.
        A ``sticky`` message (an edit refused) stays until the next message or a refresh the user asked
        for; a live refresh (a heartbeat seen) hides only the other danger messages (a query or refresh
        that failed and now works)."""
        self.message.object = text
        self.message.alert_type = kind
        self.message.visible = bool(text)
        self._sticky = sticky and bool(text)

    # ---- data ------------------------------------------------------------------------------------

    def shown_columns(self) -> list[str]:
        """The chosen columns (``cols``) or the defaults for the filtered runs, plus the group column."""
        cols = F.split_list(self.cols) or F.default_columns(self.view)
        if self.group and self.group not in cols and self.group not in F.FIXED + F.EDITABLE:
            cols = [*cols, self.group]
        return cols

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the table from the context when the store changed (or ``force``), keeping the sort,
        filter, selection and page. Returns whether it was rebuilt."""
        if not force and not self.ctx.changed() and self.ctx.version == self._seen_version:
            return False
        self._seen_version = self.ctx.version
        frame = self.ctx.frame()
        try:
            mask = F.where_mask(frame, self.where)
        except ValueError as e:
            self.show_message(f"**query not applied**: {e}".split("\n")[0], "danger")
            return False
        if self.message.alert_type == "danger" and (force or not self._sticky):
            self.show_message("")
        sub = self._columns_of(frame)
        self.view = (sub if mask is None else sub[mask]).iloc[::-1].reset_index(drop=True)  # newest first
        self._all_columns = list(frame.columns)
        self._update_table(live=not force)
        return True

    def _columns_of(self, frame: Any) -> Any:
        """The columns of ``frame`` the table can show, with the start/tags text: cached per frame."""
        need = tuple(F.needed_columns(frame, [*F.split_list(self.cols), self.group]))
        if self._display[0] is not frame or self._display[1] != need:
            sub = self.ctx.memo(("columns", need), lambda f: f[list(need)].assign(**F.display_columns(f)))
            self._display = (frame, need, sub)
        return self._display[2]

    def _update_table(self, live: bool = False) -> None:
        """Show ``self.view``. ``live`` (a store change seen by the periodic check, the view state the
        same): the table is left alone when the rows it shows did not change but for the running runs'
        duration so far (a heartbeat), and changed cells are patched when the rows and columns are the
        same: replacing the value redraws every row in the browser and closes an open note/tag editor."""
        page, ids = self.table.page, F.split_list(self.sel)
        cols = self.shown_columns()
        data = F.table_frame(self.view, cols)
        grouped = bool(self.group) and self.group in data and self.group in self.view
        if grouped:
            # each row carries its group's header, counted over every filtered run (not the page)
            data[F.GROUP_KEY] = F.group_labels(self.view, self.group, [c for c in cols if c.startswith("metrics.")])
            data = data.sort_values(self.group, kind="stable", key=F._sortable).reset_index(drop=True)
        if live and self._patch_table(data):
            self._update_groups(cols)
            self._update_count(data)
            return
        self._syncing = True
        try:
            # Panel sorts the value at each change: a sort key must be a column of the value at all times
            final = self._sorters(data)
            old = self.table.value
            keep = [s for s in final if old is not None and s["field"] in old]
            if keep != list(self.table.sorters):
                self.table.sorters = keep
            self.table.editors = self._editors(data)
            self.table.value = data
            if final != keep:
                self.table.sorters = final
            self.table.groupby = [F.GROUP_KEY] if grouped else []
            if ids:
                pos = {t: i for i, t in enumerate(data["test_name"].tolist())}
                self.table.selection = [pos[t] for t in ids if t in pos]
            elif self.table.selection:
                self.table.selection = []
            last = max(1, -(-len(data) // (self.table.page_size or PAGE_SIZE)))
            self.table.page = min(page, last)
        finally:
            self._syncing = False
        self._update_groups(cols)
        self._update_pickers(cols)
        self._update_count(data)

    def _update_count(self, data: Any) -> None:
        total = len(self.ctx.frame())
        text = f"**{len(data)}** of {total} runs" + (" (read-only)" if self.ctx.read_only else "")
        if self.count.object != text:
            self.count.object = text

    def _patch_table(self, data: Any) -> bool:
        """Bring the table to ``data`` without replacing its value, when it has the same rows (same
        runs, same order) and columns: nothing sent when only the running runs' duration moved, else
        a patch of the changed cells. Returns ``False`` when the value must be replaced."""
        old = self.table.value
        if old is None or list(old.columns) != list(data.columns) or len(old) != len(data):
            return False
        if not (old["test_name"].to_numpy() == data["test_name"].to_numpy()).all():
            return False
        changes = F.changed_cells(old, data)
        if F.GROUP_KEY in changes:
            return False  # a group's header (its rows' key) changed: Tabulator regroups a new value only
        running = data["status"].to_numpy() == "running"
        real = {c: rows for c, rows in changes.items()
                if c != "duration" or any(not running[i] for i, _ in rows)}
        if not real:
            return True  # a heartbeat: the durations so far are refreshed with the next real change
        if self.table.page != 1 and not self.table.sorters:
            return False  # Panel patches a remote page by its rows' positions in the value: page 1 only
        self._syncing = True
        try:
            self.table.patch(changes, as_index=False)
        finally:
            self._syncing = False
        return True

    def _editors(self, data: Any) -> dict[str, Any]:
        editable = not self.ctx.read_only
        eds: dict[str, Any] = dict.fromkeys(data.columns)
        if editable:
            eds["note"] = {"type": "input"}
            eds["tags"] = {"type": "input"}
        return eds

    def _update_groups(self, cols: list[str]) -> None:
        if self.group and len(self.view) and self.group not in self.view:
            allowed = ", ".join(o for o in list(self.group_select.options)[1:8])
            self.show_message(f"**not grouped**: {self.group!r} is not a column of these runs; allowed: "
                              f"{allowed}, ...", "warning")
        if not self.group or not len(self.view) or self.group not in self.view:
            self.groups.visible = False
            return
        metrics = [c for c in cols if c.startswith("metrics.")] or None
        summary = F.group_summary(self.view, self.group, metrics)
        shown = [c for c in summary.columns if not c.endswith((".mean", ".std"))]
        self.groups.value = summary[shown]
        self.groups.visible = True
        if not len(self.groups_box):
            self.groups_box[:] = [self.groups]

    def _update_pickers(self, cols: list[str]) -> None:
        """The column picker: rebuilt only when the columns on offer change (building widgets is the
        slow part of a refresh); otherwise only the ticks are set."""
        options = F.pickable_columns(self._all_columns)
        shown = set(cols)
        self._syncing = True
        try:
            if options != self._group_options:
                self._group_options = options
                params = [c for c in options if c.startswith("params.")]
                self.group_select.options = [_NONE, "exp_name", "sweep", "status", "host", "tags", *params]
            if self.picker.collapsed:  # built when first opened: its many widgets are slow to make
                return
            if options != self._picker_options:
                self._picker_options = options
                boxes = []
                for prefix, names in F.column_groups(options).items():
                    box = pn.widgets.CheckBoxGroup(options=names, value=[], inline=True,
                                                   css_classes=["lumo-colgroup"])
                    box.param.watch(self._on_pick, "value")
                    boxes.append(pn.Column(pn.pane.Markdown(f"**{prefix}**", margin=(0, 5)), box))
                self.pickers[:] = boxes
            for col in self.pickers:
                box = col[1]  # type: ignore[index]
                ticked = [n for n in box.options if n in shown]
                if box.value != ticked:
                    box.value = ticked
        finally:
            self.group_select.value = self.group or _NONE
            self._syncing = False

    # ---- events ----------------------------------------------------------------------------------

    def _on_state(self, *_: Any) -> None:
        if self.query.value != self.where:
            self.query.value = self.where
        self.refresh(force=True)

    def _on_pick(self, *_: Any) -> None:
        if self._syncing:
            return
        chosen: list[str] = []
        for col in self.pickers:
            chosen.extend(col[1].value)  # type: ignore[index]
        self.cols = ",".join(dict.fromkeys(chosen))

    def _on_sorters(self, event: Any) -> None:
        if self._syncing:
            return
        self.sort = F.format_sort([(s["field"], s.get("dir", "asc") != "desc") for s in event.new or []])

    def _sorters(self, data: Any) -> list[dict[str, str]]:
        """The Tabulator sorters of ``sort`` for the columns ``data`` has (others are kept in the URL)."""
        return [{"field": n, "dir": "asc" if a else "desc"} for n, a in F.parse_sort(self.sort) if n in data]

    def _on_sort_param(self, event: Any) -> None:
        wanted = self._sorters(self.table.value)
        if wanted != list(self.table.sorters):
            self._syncing = True
            try:
                self.table.sorters = wanted
            finally:
                self._syncing = False

    def _on_selection(self, event: Any) -> None:
        if self._syncing:
            return
        data = self.table.value
        ids = [str(data["test_name"].iloc[i]) for i in event.new or [] if 0 <= i < len(data)]
        self.sel = ",".join(ids)

    def _on_sel_param(self, event: Any) -> None:
        ids = F.split_list(event.new)
        data = self.table.value
        pos = {t: i for i, t in enumerate(data["test_name"])}
        wanted = [pos[t] for t in ids if t in pos]
        if sorted(wanted) != sorted(self.table.selection):
            self._syncing = True
            try:
                self.table.selection = wanted
            finally:
                self._syncing = False
        for cb in self._on_select:
            cb(ids)

    def on_select(self, callback: Callable[[list[str]], None]) -> None:
        """Call ``callback(run_ids)`` whenever the selection changes."""
        self._on_select.append(callback)

    def selected(self) -> list[str]:
        """The selected runs' ``test_name`` s."""
        return F.split_list(self.sel)

    def _on_edit(self, event: Any) -> None:
        """A note or tags cell was edited: written to run.json, or refused and put back with a message."""
        col, row, new, old = event.column, event.row, event.value, event.old
        if col not in F.EDITABLE:
            return
        data = self.table.value
        info_dir = str(data["info_dir"].iloc[row])
        name = str(data["test_name"].iloc[row])
        try:
            if col == "note":
                rec = self.ctx.set_note(info_dir, new or "")
                shown: Any = rec.get("note", "")
            else:
                rec = self.ctx.set_tags(info_dir, new or "")
                shown = ", ".join(rec.get("tags") or [])
        except ValueError as e:
            self.table.patch({col: [(row, old)]})
            self.show_message(f"**{col} of {name} not saved**: {e}", "danger", sticky=True)
            return
        if shown != new:
            self.table.patch({col: [(row, shown)]})
        self._seen_version = self.ctx.version  # our own edit: the table already shows it
        self.show_message(f"{col} of {name} saved to run.json", "success")

    def first_page_html(self, title: str = "") -> str:
        """The table's first page (its sort applied) as plain HTML with the Tabulator's row classes, for the
        page's HTML (``lumo-first-page``); ``""`` when grouped or empty (then only the real table shows)."""
        data = self.table.value
        if self.group or data is None or not len(data):
            return ""
        sort = [(s["field"], s.get("dir", "asc") != "desc") for s in self.table.sorters if s["field"] in data]
        page = F.sort_frame(data, sort).iloc[: self.table.page_size or PAGE_SIZE]
        count = self.count.object.replace("*", "") if isinstance(self.count.object, str) else ""
        return F.page_html(page, hidden=self.table.hidden_columns, colours=STATUS_COLOURS, title=title, count=count)

    # ---- export ----------------------------------------------------------------------------------

    def current_frame(self) -> Any:
        """The rows and columns of the current view (filter, sort, shown columns) as a DataFrame."""
        sort = F.parse_sort(self.sort)
        data = F.table_frame(self.view, self.shown_columns())
        known = [(n, a) for n, a in sort if n in data.columns]
        return F.sort_frame(data, known)

    def csv_bytes(self) -> io.BytesIO:
        """The current view as CSV (``board.export.frame_csv`` when present)."""
        df = self.current_frame()
        frame_csv = optional_view("export", "frame_csv")
        data = frame_csv(df) if frame_csv is not None else df.to_csv(index=False).encode()
        return io.BytesIO(data)


def optional_view(module: str, name: str) -> Any:
    """``lumo_hydra.board.<module>.<name>`` (H2's views), or ``None`` while that module does not exist."""
    import importlib

    try:
        mod = importlib.import_module(f"lumo_hydra.board.{module}")
    except ModuleNotFoundError as e:
        if e.name != f"lumo_hydra.board.{module}":
            raise
        return None
    return getattr(mod, name, None)
