"""Many rows of the ``list`` table written as plain aligned text, chunk by chunk.

A rich ``Table`` measures every cell of every row before it prints the first line (about 1 ms a row);
past :data:`STREAM_ROWS` rows the table is written as the same columns instead: the widths come from
the first chunk (each at most ``MAX_CELL``), every later value is cut to them with an ellipsis, and
each chunk is written as soon as it is formatted, so the first rows appear at once and 10,000 rows
take well under a second of formatting.
"""
from __future__ import annotations

import os
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from lumo_hydra.cli.render import cell, choose_columns, fmt, header, print_footer, right_aligned

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from rich.console import Console

__all__ = ["STREAM_ROWS", "CHUNK", "stream_runs_table", "fit_text", "PlainConsole", "Rows"]

#: a table of more rows than this is streamed (plain aligned rows) instead of laid out by rich
STREAM_ROWS = 200
#: the rows formatted and written at a time; the first chunk sets the column widths
CHUNK = 200
#: ANSI colours of the statuses on a terminal (the same as the rich table's ``STATUS_STYLE``)
_ANSI = {"running": "36", "finished": "32", "failed": "31", "interrupted": "33", "killed": "35",
         "crashed": "1;31"}


def fit_text(t: str, width: int, right: bool = False) -> str:
    """``t`` padded to exactly ``width`` terminal cells (right-aligned when ``right``), cut with an
    ellipsis when longer."""
    if t.isascii():
        if len(t) > width:
            t = t[: max(width - 1, 0)] + "…"
        return t.rjust(width) if right else t.ljust(width)
    from rich.cells import cell_len, set_cell_size  # wide characters take two cells

    n = cell_len(t)
    if n > width:
        t = set_cell_size(t, max(width - 1, 0)) + "…"
        n = width
    pad = " " * (width - n)
    return pad + t if right else t + pad


class Rows:
    """Rows as plain column lists (``Watcher.select_columns``), standing in for the DataFrame the
    table and its columns are chosen from: ``len``, ``.columns``, ``rows[column]`` (a list)."""

    def __init__(self, data: dict[str, list[Any]], columns: list[str]) -> None:
        self.data = data
        self.columns = columns
        self.attrs: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.data[self.columns[0]]) if self.columns else 0

    def __getitem__(self, column: str) -> list[Any]:
        return self.data[column]


class PlainConsole:
    """What the streamed table needs of a rich ``Console`` (width, height, terminal or not, colour, the
    file, ``print``), without importing rich: sized as rich sizes it (``$COLUMNS``/``$LINES``, else the
    terminal, else 80x25; 200 columns when stdout is not a terminal, as :func:`render.console`)."""

    def __init__(self) -> None:
        self.file = sys.stdout
        self.is_terminal = sys.stdout.isatty()
        self.no_color = bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM", "") in ("dumb", "unknown")
        cols, lines = os.environ.get("COLUMNS", ""), os.environ.get("LINES", "")
        if not self.is_terminal:
            self.width, self.height = (int(cols) if cols.isdigit() and int(cols) else 200), 25
            return
        try:
            size = os.get_terminal_size(sys.stdout.fileno())
            w, h = size.columns, size.lines
        except (OSError, ValueError):
            w, h = 80, 25
        self.width = int(cols) if cols.isdigit() else (w or 80)
        self.height = int(lines) if lines.isdigit() else (h or 25)

    def print(self, text: str, style: str | None = None, markup: bool = False) -> None:
        """``text`` wrapped to the width at spaces (as rich wraps it), dim when ``style='dim'`` on a
        colour terminal."""
        lines = textwrap.wrap(text, self.width, break_on_hyphens=False) or [""]
        colour = style == "dim" and self.is_terminal and not self.no_color
        self.file.write("\n".join(f"\x1b[2m{ln}\x1b[0m" if colour else ln for ln in lines) + "\n")
        self.file.flush()


def _list(values: Any, lo: int = 0, hi: int | None = None) -> list[Any]:
    """Rows ``lo:hi`` of a column of a DataFrame (a Series) or of :class:`Rows` (a list)."""
    if hasattr(values, "iloc"):
        return values.iloc[lo:hi].tolist()  # type: ignore[no-any-return]
    return list(values[lo:hi])


def _texts(df: Any, cols: list[str], statuses: list[Any], lo: int, hi: int) -> dict[str, list[str]]:
    """The cell texts of rows ``lo:hi`` of ``df``, column by column (what :func:`cell` gives, the plain
    floats and texts of params and metrics without its per-cell dispatch)."""
    st = statuses[lo:hi]
    out = {}
    for c in cols:
        vals = _list(df[c], lo, hi)
        if c in _CELL_COLS:
            out[c] = [cell(c, v, s) for v, s in zip(vals, st)]
        else:
            out[c] = [(f"{v:.6g}" if v == v else "") if type(v) is float else v if type(v) is str else fmt(v)
                      for v in vals]
    return out


#: the columns whose cells :func:`cell` formats in its own way (the others as :func:`fmt`)
_CELL_COLS = frozenset({"status", "duration", "start", "end"})


def _fitted(texts: list[str], width: int, right: bool) -> list[str]:
    """:func:`fit_text` of each of ``texts`` (plain padding for the short ASCII ones)."""
    pad = str.rjust if right else str.ljust
    return [pad(t, width) if len(t) <= width and t.isascii() else fit_text(t, width, right) for t in texts]


def stream_runs_table(con: Console | PlainConsole, df: pd.DataFrame | Rows, cols: list[str], *, fit: bool = True,
                      what: str = "run", hint: str = "see --columns, --all-columns",
                      matched: int | None = None) -> list[str]:
    """The table of :func:`lumo_hydra.cli.render.print_runs_table` as plain aligned rows written chunk
    by chunk to ``con``'s file (status colours only on a terminal); returns the columns shown."""
    n = len(df)
    statuses = _list(df["status"]) if "status" in df.columns else [None] * n
    first = _texts(df, cols, statuses, 0, CHUNK)
    con, shown, widths = choose_columns(con, cols, first, fit)  # type: ignore[arg-type]  # PlainConsole: its width is all fit needs
    right = [right_aligned(c) for c in shown]
    ws = [widths[c] for c in shown]
    colour = con.is_terminal and not con.no_color
    si = shown.index("status") if "status" in shown and colour else -1
    out = con.file
    head = "  ".join(fit_text(header(c), w, r) for c, w, r in zip(shown, ws, right)).rstrip()
    out.write((f"\x1b[1m{head}\x1b[0m" if colour else head) + "\n")
    out.write("─" * (sum(ws) + 2 * (len(ws) - 1)) + "\n")
    for lo in range(0, n, CHUNK):
        texts = first if lo == 0 else _texts(df, shown, statuses, lo, lo + CHUNK)
        cells = [_fitted(texts[c], w, r) for c, w, r in zip(shown, ws, right)]
        if si >= 0:
            cells[si] = [f"\x1b[{_ANSI[raw]}m{t}\x1b[0m" if raw in _ANSI else t
                         for raw, t in zip(texts["status"], cells[si])]
        out.write("\n".join(["  ".join(row).rstrip() for row in zip(*cells)]) + "\n")
        out.flush()
    print_footer(con, n, cols, shown, what=what, hint=hint, matched=matched)
    return shown
