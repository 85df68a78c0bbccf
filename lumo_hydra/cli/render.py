"""Rendering for the command line: the rich console, cell formatting, tables, JSON and CSV output.

Nothing here reads the store: the commands hand over records and frames, these functions print them.
``rich`` and ``pandas`` are imported where they are used (start-up speed of ``lumo-hydra --help``).
"""
from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lumo_hydra.record.rundiff import flat  # the params of ``show``, flattened as by ``diff`` and the board

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from rich.console import Console

STATUS_STYLE = {"running": "cyan", "finished": "green", "failed": "red", "interrupted": "yellow",
                "killed": "magenta", "crashed": "bold red"}


# -- the console -----------------------------------------------------------------------------------
def console(stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr); 200 columns (or ``$COLUMNS``) when not a terminal."""
    from rich.console import Console

    width = None
    if not (sys.stderr if stderr else sys.stdout).isatty():
        width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False)


def progress_cb(con: Console, label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A rich progress bar shown only for long work (many runs to read) on a terminal: ``(update, close)``."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if total < 500 or not con.is_terminal:
            return
        if "p" not in state:
            from rich.progress import Progress

            p = Progress(transient=True, console=con)
            p.start()
            state["p"] = p
            state["t"] = p.add_task(label, total=total)
        state["p"].update(state["t"], completed=done)

    def close() -> None:
        if "p" in state:
            state["p"].stop()

    return update, close


def styled_status(status: Any) -> str:
    """``status`` with its colour markup."""
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


# -- cells -----------------------------------------------------------------------------------------
def fmt(v: Any) -> str:
    """One table cell: empty for None/NaN/NaT, 6 significant digits, lists joined by commas."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    if hasattr(v, "strftime"):
        try:
            return str(v.strftime("%Y-%m-%d %H:%M:%S"))
        except ValueError:  # NaT
            return ""
    return str(v)


def fmt_duration(v: Any) -> str:
    """Seconds as ``12.3s``, ``4m05s`` or ``2h03m``; empty when not a number."""
    try:
        s = float(v)
    except (TypeError, ValueError):
        return ""
    if math.isnan(s):
        return ""
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


# -- JSON and CSV ----------------------------------------------------------------------------------
def to_json_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``df`` as JSON-able dicts (times as ISO strings, NaN/NaT as None, numpy scalars unwrapped)."""
    out = []
    cols = list(df.columns)
    for row in df.itertuples(index=False, name=None):
        d = {}
        for c, v in zip(cols, row):
            if hasattr(v, "isoformat"):
                try:
                    v = None if str(v) == "NaT" else (
                        v.isoformat(timespec="milliseconds") if hasattr(v, "tzinfo") else v.isoformat())
                except ValueError:
                    v = None
            elif isinstance(v, float) and math.isnan(v):
                v = None
            elif v is not None and type(v).__module__ == "numpy":
                v = v.item()
            d[c] = v
        out.append(d)
    return out


def dump_json(obj: Any, fh: Any) -> None:
    """``obj`` as indented JSON and a newline to the text file ``fh``."""
    json.dump(obj, fh, indent=1, ensure_ascii=False, default=str, allow_nan=False)
    fh.write("\n")


def rounded(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with its times and durations rounded to milliseconds (no ``.427000046`` artefacts)."""
    import pandas as pd

    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            df[c] = df[c].dt.round("ms")
        elif (c == "duration" or c.endswith((".duration", "_seconds"))) and pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].round(3)
    return df


def csv_ready(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose list and dict cells are JSON strings (for CSV and parquet)."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(lambda v: json.dumps(v, default=str) if isinstance(v, (list, dict)) else v)
    return df


# -- tables ----------------------------------------------------------------------------------------
#: the widest a cell of the ``list`` table gets before it is cut with an ellipsis
MAX_CELL = 28
#: a start time of this year is shown without its year
_THIS_YEAR = __import__("datetime").date.today().year
#: the narrowest a column gets: a column that does not fit at this width is left out, never squeezed
MIN_CELL = 6


def header(c: str) -> str:
    """The table header of column ``c``: ``params.`` and ``metrics.`` left out, ``id`` for test_name."""
    for pre in ("params.", "metrics.", "swept."):
        if c.startswith(pre):
            return c[len(pre):]
    return {"test_name": "id", "exp_name": "experiment"}.get(c, c)


def cell(c: str, v: Any, status: Any = None) -> str:
    """The text of one table cell of column ``c`` (``>= 4.0s`` for the duration of a crashed run)."""
    if c == "status":
        return str(v) if v is not None else ""
    if c == "duration":
        d = fmt_duration(v)
        return f">= {d}" if d and status == "crashed" else d
    if c in ("start", "end") and hasattr(v, "strftime"):
        try:
            return str(v.strftime("%m-%d %H:%M" if v.year == _THIS_YEAR else "%Y-%m-%d %H:%M"))
        except ValueError:
            return ""
    return fmt(v)


def fit_columns(cols: list[str], texts: Mapping[str, list[str]], width: int,
                keep: int = 1) -> tuple[list[str], dict[str, int]]:
    """The columns of ``cols`` (in order) that fit ``width`` and the width of each; the first ``keep``
    always stay. A column takes its longest cell (at most ``MAX_CELL``) and at least ``MIN_CELL``."""
    chosen: list[str] = []
    widths: dict[str, int] = {}
    used = 0
    for i, c in enumerate(cols):
        natural = max([len(header(c))] + [len(t) for t in texts[c]])
        w = min(natural, MAX_CELL)
        if i >= keep and used + w + 2 > width:
            w = min(natural, max(MIN_CELL, width - used - 2))
            if used + w + 2 > width:
                continue
        chosen.append(c)
        widths[c] = w
        used += w + 2
    return chosen, widths


def choose_columns(con: Console, cols: list[str], texts: Mapping[str, list[str]],
                   fit: bool) -> tuple[Console, list[str], dict[str, int]]:
    """The columns of ``cols`` shown and their widths: cut to the console's width when ``fit`` (the
    metrics kept before the params), else all of them on a console wide enough (``less -S``)."""
    if fit:  # the metrics before the params when not all fit (shown in the order of ``cols``)
        prio = cols[:5] + [c for c in cols[5:] if c.startswith("metrics.")] + \
            [c for c in cols[5:] if not c.startswith("metrics.")]
        chosen, widths = fit_columns(prio, texts, con.width, keep=2)
        return con, [c for c in cols if c in chosen], widths
    shown, widths = fit_columns(cols, texts, 10**6)
    return _wide(con, sum(w + 2 for w in widths.values())), shown, widths


def right_aligned(c: str) -> bool:
    """Whether column ``c`` of the table of runs is right-aligned (numbers)."""
    return c.startswith(("metrics.", "duration", "return_value"))


def print_footer(con: Console, total: int, cols: list[str], shown: list[str], *, what: str = "run",
                 hint: str = "see --columns, --all-columns", matched: int | None = None) -> None:
    """The last line of a table of runs: the count (``20 of 10000 runs`` when cut) and the columns
    left out."""
    left = [c for c in cols if c not in shown]
    more = f"; {len(left)} more column{'s' if len(left) != 1 else ''} ({', '.join(map(header, left[:4]))}" \
           f"{', ...' if len(left) > 4 else ''}): {hint}" if left else ""
    count = f"{total} of {matched}" if matched is not None and matched > total else f"{total}"
    plural = "s" if (matched if matched is not None and matched > total else total) != 1 else ""
    con.print(f"{count} {what}{plural}{more}", style="dim", markup=False)


def print_runs_table(con: Console, df: pd.DataFrame, cols: list[str], *, fit: bool = True,
                     what: str = "run", hint: str = "see --columns, --all-columns",
                     matched: int | None = None) -> list[str]:
    """The ``list`` table of the runs in ``df`` (columns ``cols``, cut to the console's width when
    ``fit``), the run count (of ``matched`` when cut) and the columns left out; returns the columns
    shown."""
    from rich import box
    from rich.table import Table

    statuses = list(df["status"]) if "status" in df.columns else [None] * len(df)
    texts = {c: [cell(c, v, st) for v, st in zip(df[c].tolist(), statuses)] for c in cols}
    con, shown, widths = choose_columns(con, cols, texts, fit)
    table = Table(show_lines=False, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False, collapse_padding=True)
    for c in shown:
        w = widths.get(c)
        table.add_column(header(c), no_wrap=True, overflow="ellipsis", max_width=w, min_width=min(w or 0, MIN_CELL),
                         justify="right" if right_aligned(c) else "left")
    for i in range(len(df)):
        row = []
        for c in shown:
            t = texts[c][i]
            row.append(f"[{STATUS_STYLE.get(t, 'white')}]{t}[/]" if c == "status" else _escape(t))
        table.add_row(*row)
    con.print(table)
    print_footer(con, len(df), cols, shown, what=what, hint=hint, matched=matched)
    return shown


def _wide(con: Console, width: int) -> Console:
    """``con``, or a console on the same file at least ``width`` columns wide."""
    if width <= con.width:
        return con
    from rich.console import Console

    return Console(file=con.file, width=width, highlight=False, soft_wrap=False,
                   force_terminal=con.is_terminal)


def _escape(t: str) -> str:
    from rich.markup import escape

    return escape(t)


def print_ab_table(con: Console, title: str, rows: Mapping[str, Any]) -> None:
    """A ``key | A | B`` table of the differing values of two runs (``-`` for a missing value)."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    t.add_column("key", no_wrap=True)
    t.add_column("A", overflow="fold")
    t.add_column("B", overflow="fold")
    for k, (x, y) in rows.items():
        t.add_row(k, fmt(x) if x is not None else "-", fmt(y) if y is not None else "-")
    con.print(t)


# -- one run (``show``) ----------------------------------------------------------------------------
def print_run(con: Console, rec: Mapping[str, Any]) -> None:
    """Everything about one run record, section by section (the ``show`` command)."""
    _print_head(con, rec)
    _print_params(con, rec)
    _print_metrics(con, rec)
    _print_code(con, rec)
    _print_failure(con, rec)
    _print_files(con, rec)


def _print_head(con: Console, rec: Mapping[str, Any]) -> None:
    st = str(rec.get("status"))
    con.print(f"[bold]{rec.get('exp_name')}/{rec.get('test_name')}[/]  {styled_status(st)}"
              + (f" (recorded: {rec.get('recorded_status')})" if rec.get("recorded_status") != st else ""))
    prog = rec.get("progress") or {}
    pinfo = rec.get("pinfo") or {}
    con.print(f"start {prog.get('start') or '?'}   end {prog.get('end') or '-'}   "
              f"host {pinfo.get('host') or '?'}   pid {pinfo.get('pid') or '?'}")
    if rec.get("last_seen"):
        con.print(f"last seen {rec['last_seen']} (its heartbeat: the run ended without an end record, "
                  "so it ran at least this long)", markup=False)
    for key in ("sweep", "rerun_of", "note"):
        if rec.get(key):
            con.print(f"{key}: {rec[key]}")
    if rec.get("tags"):
        con.print("tags: " + ", ".join(rec["tags"]))


def _print_params(con: Console, rec: Mapping[str, Any]) -> None:
    params = flat(rec.get("params") or {})
    if not params:
        return
    from rich.table import Table

    t = Table(title="params", title_justify="left", header_style="bold")
    t.add_column("key", no_wrap=True)
    t.add_column("value", overflow="fold")
    for k, v in params.items():
        t.add_row(k, json.dumps(v, default=str) if not isinstance(v, str) else v)
    con.print(t)


def _print_metrics(con: Console, rec: Mapping[str, Any]) -> None:
    metrics = rec.get("metrics") or {}
    if not metrics:
        return
    from rich.table import Table

    t = Table(title="metrics", title_justify="left", header_style="bold")
    for col in ("name", "best", "cmp", "best step", "last", "count"):
        t.add_column(col, justify="left" if col in ("name", "cmp") else "right")
    for name, m in metrics.items():
        m = m if isinstance(m, dict) else {}
        t.add_row(name, fmt(m.get("best")), str(m.get("cmp") or ""), fmt(m.get("best_step")),
                  fmt(m.get("last")), fmt(m.get("count")))
    con.print(t)


def _print_code(con: Console, rec: Mapping[str, Any]) -> None:
    ex = rec.get("execute") or {}
    if ex.get("command"):
        con.print("[bold]command[/]")
        con.print("  " + ex["command"], markup=False)
    git = rec.get("git") or {}
    con.print("[bold]code snapshot[/]")
    if git.get("commit"):
        con.print(f"  commit {git.get('commit')}  (base {git.get('base')}, branch {git.get('branch')}, "
                  f"dirty {git.get('dirty')})", markup=False)
        con.print(f"  repo {git.get('repo')}  ref {git.get('ref')}", markup=False)
        if git.get("skipped"):
            con.print(f"  skipped: {', '.join(map(str, git['skipped']))}", markup=False)
    else:
        con.print(f"  none: {git.get('msg') or 'not recorded'}", markup=False)
    lock = rec.get("lock") or {}
    if lock:
        con.print(f"[bold]environment[/]  python {lock.get('python')}  {lock.get('packages')} packages  "
                  f"lock {lock.get('file')}")


def _print_failure(con: Console, rec: Mapping[str, Any]) -> None:
    exc = rec.get("exception")
    if exc:
        con.print(f"[bold red]exception[/] {exc.get('type')}: {exc.get('msg')}", markup=True)
        if exc.get("traceback"):
            con.print(str(exc["traceback"]).rstrip(), markup=False)


def _print_files(con: Console, rec: Mapping[str, Any]) -> None:
    paths = rec.get("paths") or {}
    con.print("[bold]files[/]")
    con.print(f"  info  {rec.get('info_dir')}", markup=False)
    for k in ("blob_dir", "cache_dir"):
        if paths.get(k):
            con.print(f"  {k[:-4]:5} {paths[k]}", markup=False)
    for label, path in rec.get("_files") or ():  # output.log, Hydra's job log and .hydra/ files (cmd_show)
        con.print(f"  {label:5} {path}", markup=False)


# -- two runs (``diff``) ---------------------------------------------------------------------------
def print_run_diff(con: Console, a: Mapping[str, Any], b: Mapping[str, Any], data: Mapping[str, Any],
                   code_msg: str) -> None:
    """The ``diff`` of runs ``a`` and ``b``: ``data`` holds the differing params, metrics, packages, code."""
    con.print(f"[bold]A[/] {a.get('exp_name')}/{data['a']}   [bold]B[/] {b.get('exp_name')}/{data['b']}")
    for title, rows in (("params", data["params"]), ("metrics (best)", data["metrics"]),
                        ("packages", data["packages"])):
        if rows is None:
            con.print(f"{title}: lock files unavailable")
        elif not rows:
            con.print(f"{title}: identical")
        else:
            print_ab_table(con, title, rows)
    code = data["code"]
    if code is None:
        con.print(code_msg)
    elif code == "":
        con.print("code: identical snapshots")
    else:
        con.print("[bold]code[/]")
        con.print(code.rstrip(), markup=False, highlight=False)
