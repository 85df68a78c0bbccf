"""The Run tab of the board: everything ``lumo-hydra show`` shows about one run, plus the exception's
traceback, the tail of its console output (``output.log``), the files under its info and blob folders,
its curves and the command that re-runs it (with a copy button)."""
from __future__ import annotations

import html
import json
import os
import shlex
from collections.abc import Iterator, Mapping
from typing import Any

import panel as pn

from lumo_hydra.board.views_common import error_pane, flat, kv_table, rows_table, section, widget
from lumo_hydra.errors import LumoValueError
from lumo_hydra.record.console import OUTPUT_LOG

__all__ = ["run_view", "log_tail", "run_files", "rerun_command", "STATUS_COLORS"]

#: the end of ``output.log`` shown on the page
LOG_TAIL_BYTES = 64 * 1024
LOG_TAIL_LINES = 300
#: the most files listed per folder
MAX_FILES = 500
STATUS_COLORS = {"running": "#1f77b4", "finished": "#2ca02c", "failed": "#d62728", "interrupted": "#ff7f0e",
                 "killed": "#9467bd", "crashed": "#8c564b"}


def log_tail(info_dir: str, max_bytes: int = LOG_TAIL_BYTES, max_lines: int = LOG_TAIL_LINES) -> str | None:
    """The last ``max_lines`` lines (at most ``max_bytes``) of the run's ``output.log``; ``None`` without one."""
    path = os.path.join(info_dir, OUTPUT_LOG)
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    lines = text.splitlines()
    if size > max_bytes and lines:
        lines = lines[1:]  # the first line is cut
    cut = len(lines) > max_lines or size > max_bytes
    return ("... (the start is not shown)\n" if cut else "") + "\n".join(lines[-max_lines:])


def _walk(root: str) -> Iterator[tuple[str, int]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            try:
                size = os.lstat(p).st_size
            except OSError:
                continue
            yield os.path.relpath(p, root), size


def run_files(folder: str | None, limit: int = MAX_FILES) -> tuple[list[tuple[str, int]], int]:
    """``([(relative path, size)], total count)`` of the files under ``folder`` (at most ``limit`` listed)."""
    if not folder or not os.path.isdir(folder):
        return [], 0
    out: list[tuple[str, int]] = []
    total = 0
    for item in _walk(folder):
        total += 1
        if len(out) < limit:
            out.append(item)
    return out, total


def rerun_command(root: str, rec: Mapping[str, Any]) -> str:
    """The shell command that re-runs the run on its code snapshot (``lumo-hydra rerun``)."""
    name = f"{rec.get('exp_name')}/{rec.get('test_name')}"
    return f"lumo-hydra --root {shlex.quote(str(root))} rerun {shlex.quote(name)}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _badge(status: str) -> str:
    color = STATUS_COLORS.get(status, "#7f7f7f")
    return (f'<span class="lumo-status lumo-status-{html.escape(status)}" style="background:{color};color:white;'
            f'border-radius:4px;padding:1px 8px">{html.escape(status)}</span>')


def _head(rec: Mapping[str, Any]) -> pn.pane.HTML:
    st = str(rec.get("status"))
    prog, pinfo = rec.get("progress") or {}, rec.get("pinfo") or {}
    rows = [f"<h3 style='margin:4px 0'>{html.escape(str(rec.get('exp_name')))}/"
            f"{html.escape(str(rec.get('test_name')))} {_badge(st)}"
            + (f" <small>(recorded: {html.escape(str(rec.get('recorded_status')))})</small>"
               if rec.get("recorded_status") not in (None, st) else "") + "</h3>"]
    line = (f"start {prog.get('start') or '?'} &nbsp; end {prog.get('end') or '-'} &nbsp; host "
            f"{html.escape(str(pinfo.get('host') or '?'))} &nbsp; pid {pinfo.get('pid') or '?'}")
    if prog.get("ratio") is not None and st == "running":
        line += f" &nbsp; progress {float(prog['ratio']) * 100:.0f}%"
    rows.append(f"<div>{line}</div>")
    if rec.get("last_seen"):
        rows.append(f"<div>last seen {html.escape(str(rec['last_seen']))} (its heartbeat: the run ended without "
                    "an end record, so it ran at least this long)</div>")
    for key in ("sweep", "rerun_of", "note"):
        if rec.get(key):
            rows.append(f"<div><b>{key}</b>: {html.escape(str(rec[key]))}</div>")
    if rec.get("tags"):
        rows.append("<div><b>tags</b>: " + html.escape(", ".join(map(str, rec["tags"]))) + "</div>")
    return pn.pane.HTML("\n".join(rows), sizing_mode="stretch_width")


def _metrics(rec: Mapping[str, Any]) -> pn.Column | None:
    metrics = rec.get("metrics") or {}
    if not metrics:
        return None
    rows = []
    for name, m in metrics.items():
        m = m if isinstance(m, dict) else {}
        rows.append((name, m.get("best"), m.get("cmp") or "", m.get("best_step"), m.get("last"), m.get("count")))
    return section("metrics", rows_table(("name", "best", "cmp", "best step", "last", "count"), rows))


def _code(rec: Mapping[str, Any]) -> pn.Column:
    ex, git, lock = rec.get("execute") or {}, rec.get("git") or {}, rec.get("lock") or {}
    items: dict[str, Any] = {}
    if ex.get("command"):
        items["command"] = ex["command"]
    if ex.get("cwd"):
        items["cwd"] = ex["cwd"]
    if git.get("commit"):
        items.update({"commit": git.get("commit"), "base": git.get("base"), "branch": git.get("branch"),
                      "dirty": git.get("dirty"), "repo": git.get("repo"), "ref": git.get("ref")})
        if git.get("skipped"):
            items["skipped"] = ", ".join(map(str, git["skipped"]))
    else:
        items["snapshot"] = "none: " + str(git.get("msg") or "not recorded")
    if lock:
        items["environment"] = (f"python {lock.get('python')}, {lock.get('packages')} packages, "
                                f"lock {lock.get('file')}")
    return section("command and code snapshot", kv_table(items))


def _failure(rec: Mapping[str, Any]) -> pn.Column | None:
    exc = rec.get("exception")
    if not exc:
        return None
    exc = exc if isinstance(exc, dict) else {"msg": str(exc)}
    head = f"{exc.get('type') or 'exception'}: {exc.get('msg') or ''}"
    tb = str(exc.get("traceback") or "").rstrip()
    body = (f'<div style="color:#b00;font-weight:bold">{html.escape(head)}</div>'
            + (f'<pre class="lumo-traceback" style="font-size:12px;overflow:auto;max-height:500px">'
               f"{html.escape(tb)}</pre>" if tb else ""))
    return section("exception", pn.pane.HTML(body, sizing_mode="stretch_width", css_classes=["lumo-exception"]))


def _files(rec: Mapping[str, Any]) -> pn.Column:
    paths = rec.get("paths") or {}
    parts: list[Any] = []
    for label, folder in (("info", rec.get("info_dir")), ("blob", paths.get("blob_dir"))):
        files, total = run_files(str(folder) if folder else None)
        more = f" (first {len(files)} of {total})" if total > len(files) else ""
        parts.append(pn.pane.Markdown(f"**{label}** `{folder or '-'}`: {total} file{'s' if total != 1 else ''}{more}"))
        if files:
            parts.append(rows_table(("file", "size"), [(p, _size(n)) for p, n in files]))
    if paths.get("cache_dir"):
        parts.append(pn.pane.Markdown(f"**cache** `{paths['cache_dir']}`"))
    return section("files", *parts)


def _rerun(root: str, rec: Mapping[str, Any]) -> pn.Column:
    cmd = rerun_command(root, rec)
    box = pn.widgets.TextInput(value=cmd, sizing_mode="stretch_width", css_classes=["lumo-rerun-command"])
    copy = widget(pn.widgets.Button, "copy", width=80)
    copy.js_on_click(args={"box": box}, code="navigator.clipboard && navigator.clipboard.writeText(box.value)")
    return pn.Column(pn.pane.Markdown("#### re-run (on the run's code snapshot, in a temporary worktree)"),
                     pn.Row(box, copy, sizing_mode="stretch_width"), css_classes=["lumo-rerun"],
                     sizing_mode="stretch_width")


def _record(ctx: Any, run_id: str) -> dict[str, Any]:
    rec = ctx.watcher.record(run_id)
    if rec.get("status") == "crashed":
        from lumo_hydra.store.reader import read_heartbeat
        from lumo_hydra.store.times import now_iso

        hb = read_heartbeat(str(rec.get("info_dir")))
        if hb is not None:
            rec["last_seen"] = now_iso(hb)
    return rec


def _log_html(info_dir: str) -> str:
    tail = log_tail(info_dir)
    if tail is None:
        return "<i>no recorded console output</i>"
    return f'<pre class="lumo-log" style="font-size:12px;overflow:auto;max-height:400px">{html.escape(tail)}</pre>'


class _RunPage:
    """The Run tab's view of one run; :meth:`live` (the board's live check) keeps it current while the run
    is running: its header (status, progress), metrics table and console tail are updated in place, its
    curves grow (:class:`lumo_hydra.board.compare.LiveCurves`); a new metric or the run's end rebuilds the
    page once (then the exception, end time and final figures show), after which nothing is read."""

    def __init__(self, ctx: Any, run_id: str, rec: dict[str, Any]) -> None:
        self.ctx, self.run_id = ctx, run_id
        self.root = pn.Column(css_classes=["lumo-run"], sizing_mode="stretch_width")
        self.updates = 0  # live checks that changed the page (for tests)
        self._build(rec)

    def _build(self, rec: dict[str, Any]) -> None:
        self.rec, self.curves = rec, None
        self.head = _head(rec)
        parts: list[Any] = [self.head]
        params = flat(rec.get("params") or {})
        if params:
            parts.append(section("params", kv_table({k: v if isinstance(v, str) else json.dumps(v, default=str)
                                                     for k, v in params.items()})))
        self.metrics = _metrics(rec)
        parts += [x for x in (self.metrics, _failure(rec)) if x is not None]
        if rec.get("metrics"):
            from lumo_hydra.board.compare import curves_panel

            self.curves = curves_panel(self.ctx, [str(rec["info_dir"])], list(rec["metrics"]))
            parts.append(section("curves", self.curves))
        parts.append(_code(rec))
        self.log = pn.pane.HTML(_log_html(str(rec.get("info_dir"))), sizing_mode="stretch_width")
        parts.append(section("console output (output.log, the end)", self.log))
        parts += [_files(rec), _rerun(self.ctx.watcher.root, rec)]
        self.root.objects = parts

    def live(self) -> bool:
        """Bring the page up to date while the run is running; whether anything changed."""
        if self.rec.get("status") != "running":
            return False
        try:
            rec = _record(self.ctx, self.run_id)
        except LumoValueError:
            return False  # removed meanwhile: the page stays as it was
        if rec.get("status") != "running" or list(rec.get("metrics") or {}) != list(self.rec.get("metrics") or {}):
            self._build(rec)
            self.updates += 1
            return True
        self.rec = rec
        changed = _set(self.head, _head(rec).object)
        if self.metrics is not None:
            new = _metrics(rec)
            changed |= new is not None and _set(self.metrics[1], new[1].object)  # type: ignore[union-attr]
        changed |= _set(self.log, _log_html(str(rec.get("info_dir"))))
        if self.curves is not None:
            changed |= bool(self.curves.lumo_live())  # type: ignore[attr-defined]
        self.updates += changed
        return changed


def _set(pane: Any, obj: Any) -> bool:
    """Set ``pane.object`` when it differs (nothing is sent otherwise)."""
    if pane.object == obj:
        return False
    pane.object = obj
    return True


def run_view(ctx: Any, run_id: str) -> pn.viewable.Viewable:
    """The page of run ``run_id`` (any id ``Watcher.resolve`` takes; root css class ``lumo-run``). Its
    ``lumo_live()`` keeps it current while the run is running (see :class:`_RunPage`)."""
    try:
        rec = _record(ctx, run_id)
    except LumoValueError as e:
        return error_pane(str(e), "lumo-run")
    page = _RunPage(ctx, run_id, rec)
    page.root.lumo_live = page.live  # type: ignore[attr-defined]
    page.root._lumo_run_page = page  # type: ignore[attr-defined]  # for tests
    return page.root
