"""The commands about runs and their records: ``list``, ``export``, ``show``, ``note``, ``tag``.

Reads go through the Watcher; the note/tag edits through :func:`lumo_hydra.store.reader.edit_record`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lumo_hydra.cli.columns import differing, main_metrics, metric_cmps
from lumo_hydra.cli.common import filtered, load, watcher
from lumo_hydra.cli.parser import stale_seconds
from lumo_hydra.cli.render import (
    console,
    csv_ready,
    dump_json,
    print_run,
    print_runs_table,
    rounded,
    to_json_records,
)
from lumo_hydra.cli.stream import Rows
from lumo_hydra.errors import CLIError
from lumo_hydra.store.layout import RUN_JSON
from lumo_hydra.store.reader import edit_record

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the columns ``list`` always shows first (then the params that differ, then the main metrics)
DEFAULT_COLUMNS = ["test_name", "exp_name", "status", "start", "duration"]


# -- list / export ---------------------------------------------------------------------------------
def _unknown_column(what: str, name: str, df: pd.DataFrame) -> CLIError:
    import difflib  # lazy: only an error message needs it

    close = difflib.get_close_matches(name, [str(c) for c in df.columns], n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return CLIError(f"{what} {name!r}{hint}")


def where_of(args: argparse.Namespace) -> Any:
    """The condition of ``--where`` (parsed before any run is read), or ``None``."""
    text = getattr(args, "where", None)
    if not text:
        return None
    from lumo_hydra.watcher.where import parse_where

    return parse_where(text)


def _select(df: pd.DataFrame, args: argparse.Namespace, cond: Any = None) -> pd.DataFrame:
    """``df`` filtered by ``--where``, sorted by ``--sort`` (default: newest first; a metric best first by
    its cmp; ``--asc``/``--desc`` override) and cut to ``--limit``."""
    if cond is not None:
        df = df[cond(df)].reset_index(drop=True)
    sort = args.sort or "start"
    if sort not in df.columns:
        if len(df) == 0:
            return df
        raise _unknown_column("cannot sort by unknown column", sort, df)
    if args.asc or args.desc:
        desc = bool(args.desc)
    elif not args.sort:
        desc = True
    elif sort.startswith("metrics.") and not sort.endswith(".last"):
        desc = metric_cmps(df[[sort, "info_dir"]] if "info_dir" in df.columns else df).get(sort) != "min"
    else:
        desc = False
    df = df.sort_values(sort, ascending=not desc, na_position="last", kind="stable")
    matched = len(df)
    if args.limit:  # 0: every run
        df = df.head(args.limit)
    df.attrs["matched"] = matched
    return df


def _columns(df: pd.DataFrame, args: argparse.Namespace) -> list[str]:
    """``--columns``, ``--all-columns``, else the compact default: id, experiment, status, start,
    duration, the params that differ among the runs, the main metrics (and the sort column)."""
    if args.columns:
        cols = [c.strip() for c in args.columns.split(",") if c.strip()]
        for c in cols:
            if c not in df.columns and len(df):
                raise _unknown_column("unknown column", c, df)
        return [c for c in cols if c in df.columns]
    if getattr(args, "all_columns", False):
        return list(df.columns)
    cols = [c for c in DEFAULT_COLUMNS if c in df.columns]
    metrics = main_metrics(df)
    if args.sort in metrics:  # the sort metric right after the fixed columns
        metrics.remove(args.sort)
        cols.append(args.sort)
    cols += differing(df) + metrics
    if args.sort and args.sort in df.columns and args.sort not in cols:
        cols.insert(len(DEFAULT_COLUMNS), args.sort)
    return cols


def with_last_seen(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``last_seen`` column: the end time, else the heartbeat (a crashed run's last sign of
    life), as local-time timestamps."""
    from lumo_hydra.store.reader import read_heartbeat
    from lumo_hydra.watcher.frame import to_local_time

    if "info_dir" not in df.columns or "last_seen" in df.columns or not len(df):
        return df
    ends = df["end"].tolist() if "end" in df.columns else [None] * len(df)
    seen = []
    for end, d in zip(ends, df["info_dir"].tolist()):
        if end is not None and end == end and hasattr(end, "timestamp"):
            seen.append(end.timestamp())
        else:
            hb = read_heartbeat(str(d))
            seen.append(hb if hb is not None else float("nan"))
    df = df.copy()
    pos = list(df.columns).index("end") + 1 if "end" in df.columns else len(df.columns)
    df.insert(pos, "last_seen", to_local_time(seen).set_axis(df.index))
    return df


def _fast_list(args: argparse.Namespace) -> pd.DataFrame | None:
    """``--limit N`` without ``--where`` and without a metric sort (whose direction needs its cmp):
    filter, sort and cut in the Watcher's index (:meth:`Watcher.select`), so the cost grows with N,
    not with the store; ``None`` when the general path is needed (or faster: every run unfiltered,
    ``--limit 0``, comes from the Watcher's cached flat frame)."""
    sort = args.sort or "start"
    if args.limit is None or (sort.startswith("metrics.") and not (args.asc or args.desc)):
        return None
    if args.limit == 0 and not filtered(args):
        return None
    desc = bool(args.desc) if (args.asc or args.desc) else not args.sort
    df = watcher(args).select(exp=args.exp, status=args.status, since=args.since, until=args.until,
                              sweep=args.sweep, tag=args.tag, sort=sort, desc=desc, limit=args.limit)
    if len(df) and sort not in df.columns:
        raise _unknown_column("cannot sort by unknown column", sort, df)
    return df


#: the lines of the screen the default ``list`` view keeps free: the header and its rule, the count
#: line (two when it wraps), the line of runs left out and the shell's prompt
SCREEN_CHROME = 6


def screen_limit(args: argparse.Namespace, height: int) -> int | None:
    """The default view's limit: on a terminal without ``--limit``, ``--all``, ``--json``, ``--csv``, the
    newest runs that fit a screen of ``height`` lines (like ``git log``); ``None`` otherwise (piped
    output keeps every row, so scripts see them all)."""
    if args.limit is not None or getattr(args, "all", False) or args.json or args.csv:
        return None
    if not sys.stdout.isatty():
        return None
    return max(1, height - SCREEN_CHROME)


#: the sorts the plain path of ``list`` orders by in the index (and ``metrics.<name>[.last]``)
PLAIN_SORTS = (None, "start", "end", "duration")


def _plain_select(w: Any, args: argparse.Namespace, limit: int | None, progress: Any) -> tuple[Any, Any, int]:
    """:meth:`Watcher.select_columns` of ``list``'s filters and sort; a metric's best value is sorted best
    first (by the cmp of the first run shown that has it, as :func:`_select` does; a second, in-memory
    select when it is ``min``)."""
    sort = args.sort or "start"
    desc = bool(args.desc) if (args.asc or args.desc) else not args.sort
    best = sort.startswith("metrics.") and not sort.endswith(".last") and not (args.asc or args.desc)
    kw: dict[str, Any] = {"exp": args.exp, "status": args.status, "since": args.since, "until": args.until,
                          "sweep": args.sweep, "tag": args.tag, "sort": sort, "limit": limit, "progress": progress}
    data, order, matched = w.select_columns(desc=True if best else desc, **kw)
    if best and sort in data and metric_cmps(Rows(data, order)).get(sort) == "min":  # type: ignore[arg-type]
        data, order, matched = w.select_columns(desc=False, **kw)
    return data, order, matched


def plain_list(args: argparse.Namespace) -> int | None:
    """``list``'s default view, ``--limit N`` and every run (piped, ``--limit 0``, ``--all``) with filters
    and sorts by start, end, duration, without pandas or rich: the rows cut in the index
    (:meth:`Watcher.select_columns`) written as the streamed table (the same lines as the laid-out
    one); ``None`` when the general path is needed (``--where``, JSON/CSV, chosen or all columns, a
    metric sort, forced colours)."""
    import os

    if (args.json or args.csv or args.columns or getattr(args, "all_columns", False)
            or not (args.sort in PLAIN_SORTS or args.sort.startswith("metrics."))
            or os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE")):
        return None
    from lumo_hydra.cli.common import lazy_progress
    from lumo_hydra.cli.stream import PlainConsole, stream_runs_table

    con = PlainConsole()
    view = screen_limit(args, con.height)
    limit = view if view is not None else (0 if getattr(args, "all", False) else args.limit)
    w = watcher(args)
    update, close = lazy_progress("reading runs")
    try:
        data, order, matched = _plain_select(w, args, limit or None, update)
    finally:
        close()
    rows = Rows(data, order)
    if not len(rows):
        con.print(f"no runs in {w.root}" + (" match the filters" if filtered(args) else ""))
        return 0
    if args.sort and args.sort not in rows.columns:
        raise _unknown_column("cannot sort by unknown column", args.sort, rows)  # type: ignore[arg-type]
    cols = _columns(rows, args)  # type: ignore[arg-type]
    stream_runs_table(con, rows, cols, fit=True, matched=matched)
    if view is not None and matched > len(rows):
        left = matched - len(rows)
        con.print(f"{left} more run{'s' if left != 1 else ''} not shown: --all (or --limit 0) lists every run",
                  style="dim")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """``lumo-hydra list``: a table (or JSON, CSV) of the filtered runs; on a terminal by default only
    the newest that fit the screen, and many rows streamed (:mod:`lumo_hydra.cli.stream`); the default
    view, ``--limit N`` and every run take :func:`plain_list` (no pandas, no rich)."""
    cond = where_of(args)
    if cond is None:
        done = plain_list(args)
        if done is not None:
            return done
    con = console()
    if getattr(args, "all", False):
        args.limit = 0
    view = screen_limit(args, con.height)
    if view is not None:
        args.limit = view
    df = _fast_list(args) if cond is None else None
    if df is None:
        df = _select(load(args), args, cond)
    matched = int(df.attrs.get("matched", len(df)))
    if args.json or args.csv:
        df = rounded(with_last_seen(df))
    cols = _columns(df, args)
    if args.json:
        dump_json(to_json_records(df[cols] if args.columns else df), sys.stdout)
        return 0
    if args.csv:
        csv_ready(df[cols]).to_csv(sys.stdout, index=False)
        return 0
    if not len(df):
        con.print(f"no runs in {watcher(args).root}"
                  + (" match the filters" if filtered(args) or cond is not None else ""))
        return 0
    fit = not (args.columns or getattr(args, "all_columns", False))
    from lumo_hydra.cli.stream import STREAM_ROWS, stream_runs_table

    show = stream_runs_table if len(df) > STREAM_ROWS else print_runs_table
    show(con, df, cols, fit=fit, matched=matched)
    if view is not None and matched > len(df):
        left = matched - len(df)
        con.print(f"{left} more run{'s' if left != 1 else ''} not shown: --all (or --limit 0) lists every run",
                  style="dim", markup=False)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``lumo-hydra export``: the filtered runs to CSV, parquet or JSON (stdout or ``-o FILE``)."""
    cond = where_of(args)
    df = load(args, flatten=not args.nested)
    df = rounded(with_last_seen(_select(df, args, cond)))
    if args.columns:
        df = df[_columns(df, args)]
    fmt = args.format
    out = args.output
    if fmt == "parquet":
        if not out:
            raise CLIError("--format parquet writes a binary file: give it with -o FILE")
        try:
            csv_ready(df).to_parquet(out, index=False)
        except ImportError as e:
            raise CLIError(f"--format parquet needs pyarrow or fastparquet: {e}") from None
    elif fmt == "csv":
        csv_ready(df).to_csv(out or sys.stdout, index=False)
    elif out:
        with open(out, "w", encoding="utf-8") as f:
            dump_json(to_json_records(df), f)
    else:
        dump_json(to_json_records(df), sys.stdout)
    if out:
        console(stderr=True).print(f"exported {len(df)} runs to {out}")
    return 0


# -- show ------------------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace) -> int:
    """``lumo-hydra show``: everything about one run (or its record as JSON)."""
    w = watcher(args)
    sid = _sweep_named(w, args.run)
    if sid is not None:
        from lumo_hydra.cli.sweeps import show_sweep

        return show_sweep(args, w, sid)
    rec = w.record(args.run)
    if not args.json and rec.get("status") == "crashed":
        from lumo_hydra.store.reader import read_heartbeat

        hb = read_heartbeat(str(rec.get("info_dir")))
        if hb is not None:
            from lumo_hydra.store.times import now_iso

            rec["last_seen"] = now_iso(hb)
    if args.json:
        dump_json(rec, sys.stdout)
    else:
        from lumo_hydra.cli.logs import run_files

        rec["_files"] = run_files(rec)
        print_run(console(), rec)
    return 0


def _sweep_named(w: Any, name: str) -> str | None:
    """The sweep ``name`` names: an exact sweep id, or a prefix of one when no run id matches it."""
    import os

    from lumo_hydra.errors import RunNotFoundError

    if os.path.isdir(w.layout.sweep_dir(name)):
        return name
    try:
        w.resolve(name)
        return None
    except RunNotFoundError as e:
        if "ambiguous" in str(e):
            return None
        try:
            return str(w.resolve_sweep(name))
        except RunNotFoundError:
            raise e from None


def cmd_rm_where(args: argparse.Namespace) -> int:
    """``lumo-hydra rm``: the runs named, and those ``--where`` selects, removed by :func:`cmd_rm`."""
    from lumo_hydra.cli.maintenance import cmd_rm

    cond = where_of(args)
    if cond is not None:
        df = load(args)
        picked = df[cond(df)]["info_dir"].tolist() if len(df) else []
        args.runs = list(args.runs or []) + [str(d) for d in picked]
        if not args.runs:
            console().print("no runs match --where: nothing to remove")
            return 0
    elif not args.runs:
        raise CLIError("no runs given; allowed: RUN ids, or --where EXPR selecting them")
    return cmd_rm(args)


# -- note / tag ------------------------------------------------------------------------------------
def _edit(args: argparse.Namespace, run: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply ``edit`` to the record of ``run``; refused while the run is running unless ``--force``."""
    w = watcher(args)
    ref = w.resolve(run)
    rec = w.record(ref.info_dir)
    if rec["status"] == "running" and not args.force:
        raise CLIError(
            f"run {ref.test_name!r} is still running and its process rewrites {RUN_JSON} (one writer per run): "
            f"editing it now could be lost or lose the run's own update; wait until it ends, or pass --force"
        )
    return edit_record(ref.info_dir, edit)


def cmd_note(args: argparse.Namespace) -> int:
    """``lumo-hydra note``: set (or ``--append`` to) a run's note."""
    text = " ".join(args.text)

    def edit(rec: dict[str, Any]) -> None:
        rec["note"] = (str(rec.get("note") or "") + "\n" + text).strip() if args.append else text

    rec = _edit(args, args.run, edit)
    console().print(f"note of {rec.get('test_name')}: {rec['note']}", markup=False)
    return 0


def _parse_tags(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The tags to add and to remove; ``--force``, ``--root`` and ``--stale-after`` among them are options."""
    add: list[str] = []
    remove: list[str] = []
    tags = list(args.tags)
    while tags:
        t = tags.pop(0)
        if t == "--force":
            args.force = True
            continue
        if t in ("--root", "--stale-after") and tags:
            setattr(args, t[2:].replace("-", "_"), tags.pop(0) if t == "--root" else stale_seconds(tags.pop(0)))
            continue
        if t.startswith("-") and len(t) > 1:
            remove.append(t[1:])
        elif t.startswith("+") and len(t) > 1:
            add.append(t[1:])
        elif t and t not in ("+", "-"):
            add.append(t)
        else:
            raise CLIError(f"invalid tag {t!r}; allowed: +name to add, -name to remove")
    if not add and not remove:
        raise CLIError("no tags given; allowed: +name to add, -name to remove (e.g. tag RUN +best -draft)")
    return add, remove


def cmd_tag(args: argparse.Namespace) -> int:
    """``lumo-hydra tag``: add (``+name``) and remove (``-name``) tags of a run."""
    add, remove = _parse_tags(args)

    def edit(rec: dict[str, Any]) -> None:
        tags = [str(x) for x in (rec.get("tags") or [])]
        tags = [x for x in tags if x not in remove]
        for x in add:
            if x not in tags:
                tags.append(x)
        rec["tags"] = tags

    rec = _edit(args, args.run, edit)
    console().print(f"tags of {rec.get('test_name')}: {', '.join(rec['tags']) or '(none)'}", markup=False)
    return 0
