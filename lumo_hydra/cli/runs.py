"""The commands about runs and their records: ``list``, ``export``, ``show``, ``note``, ``tag``.

Reads go through the Watcher; the note/tag edits through :func:`lumo_hydra.store.reader.edit_record`.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lumo_hydra.cli.common import filtered, load, watcher
from lumo_hydra.cli.parser import stale_seconds
from lumo_hydra.cli.render import console, csv_ready, dump_json, print_run, print_runs_table, to_json_records
from lumo_hydra.errors import CLIError
from lumo_hydra.store.layout import RUN_JSON
from lumo_hydra.store.reader import edit_record

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

DEFAULT_COLUMNS = ["test_name", "exp_name", "status", "start", "duration", "sweep", "tags", "note"]


# -- list / export ---------------------------------------------------------------------------------
def _unknown_column(what: str, name: str, df: pd.DataFrame) -> CLIError:
    import difflib  # lazy: only an error message needs it

    close = difflib.get_close_matches(name, [str(c) for c in df.columns], n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return CLIError(f"{what} {name!r}{hint}")


def _select(df: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    """``df`` sorted by ``--sort`` (default: newest first) and cut to ``--limit``."""
    sort = args.sort or "start"
    if sort not in df.columns:
        if len(df) == 0:
            return df
        raise _unknown_column("cannot sort by unknown column", sort, df)
    desc = args.desc if args.sort else not args.asc
    if args.asc:
        desc = False
    df = df.sort_values(sort, ascending=not desc, na_position="last", kind="stable")
    if args.limit is not None:
        df = df.head(args.limit)
    return df


def _columns(df: pd.DataFrame, args: argparse.Namespace) -> list[str]:
    """The ``--columns`` asked for, else the default ones, the metrics and the sort column."""
    if args.columns:
        cols = [c.strip() for c in args.columns.split(",") if c.strip()]
        for c in cols:
            if c not in df.columns and len(df):
                raise _unknown_column("unknown column", c, df)
        return [c for c in cols if c in df.columns]
    cols = [c for c in DEFAULT_COLUMNS if c in df.columns]
    cols += [c for c in df.columns if c.startswith("metrics.") and not c.endswith(".last")]
    if args.sort and args.sort in df.columns and args.sort not in cols:
        cols.append(args.sort)
    return cols


def _listed(args: argparse.Namespace) -> pd.DataFrame:
    """The runs of ``list``: filtered, sorted (default: newest first) and cut to ``--limit`` inside the
    Watcher's index (``Watcher.select``), so only the kept runs become a frame."""
    from lumo_hydra.cli.common import progress_cb

    sort = args.sort or "start"
    desc = (args.desc if args.sort else not args.asc) and not args.asc
    update, close = progress_cb(console(stderr=True), "reading runs")
    try:
        df = watcher(args).select(exp=args.exp, status=args.status, since=args.since, until=args.until,
                                  sweep=args.sweep, tag=args.tag, sort=sort, desc=desc, limit=args.limit,
                                  progress=update)
    finally:
        close()
    if sort not in df.columns and len(df):
        raise _unknown_column("cannot sort by unknown column", sort, df)
    return df


def cmd_list(args: argparse.Namespace) -> int:
    """``lumo-hydra list``: a table (or JSON, CSV) of the filtered runs."""
    df = _listed(args)
    cols = _columns(df, args)
    if args.json:
        dump_json(to_json_records(df[cols] if args.columns else df), sys.stdout)
        return 0
    if args.csv:
        csv_ready(df[cols]).to_csv(sys.stdout, index=False)
        return 0
    con = console()
    if not len(df):
        con.print(f"no runs in {watcher(args).root}" + (" match the filters" if filtered(args) else ""))
        return 0
    print_runs_table(con, df, cols)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``lumo-hydra export``: the filtered runs to CSV, parquet or JSON (stdout or ``-o FILE``)."""
    df = _select(load(args, flatten=not args.nested), args)
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
    rec = watcher(args).record(args.run)
    if args.json:
        dump_json(rec, sys.stdout)
    else:
        print_run(console(), rec)
    return 0


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
