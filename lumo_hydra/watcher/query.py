"""The query language of the Watcher: ``C`` conditions on its DataFrames, time values (``parse_when``)
and the filters of ``load()``/``rows()`` (``exp``, ``status``, ``since``, ``until``, ``sweep``, ``tag``).

``C`` is the condition helper: ``df[C['params.lr'] >= 0.1]`` or ``w.load(where=C['status'] == 'finished')``.
Pure: no file is read here.
"""
from __future__ import annotations

import difflib
import fnmatch
import operator
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from lumo_hydra.errors import LumoValueError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["C", "Column", "ColumnEdit", "Condition", "parse_when", "as_list", "name_matches", "select_rows"]

# --------------------------------------------------------------------------------------------------
# time filters


_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(value: Any, *, now: float | None = None, key: str = "since") -> float:
    """A Unix time from a number, a ``datetime``/``date``, an ISO-8601 string (local time unless it has
    an offset) or a relative age like ``'90m'``, ``'2h'``, ``'3d'``, ``'1w'`` (that long before now)."""
    if isinstance(value, bool):
        raise LumoValueError(f"invalid value for '{key}': {value!r}; allowed: a time or an age like '2h'")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).timestamp()
    ts = getattr(value, "timestamp", None)  # pandas.Timestamp
    if callable(ts) and not isinstance(value, str):
        return float(ts())
    if isinstance(value, str):
        m = _REL.match(value)
        if m:
            base = time.time() if now is None else now
            return base - float(m.group(1)) * _UNITS[m.group(2)]
        try:
            return datetime.fromisoformat(value.strip()).timestamp()
        except ValueError:
            pass
    raise LumoValueError(
        f"invalid value for '{key}': {value!r}; allowed: a Unix time, an ISO date/time like "
        f"'2025-11-28' or '2025-11-28T14:00', or an age like '30m', '2h', '3d', '1w'"
    )


# --------------------------------------------------------------------------------------------------
# the filters of load() and rows()


def as_list(v: str | Sequence[str] | None) -> list[str] | None:
    """``None``, ``[v]`` for one string, else the strings of ``v``."""
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


def name_matches(name: str, pats: list[str]) -> bool:
    """``name`` equals one of ``pats`` or matches one of its glob patterns (``*?[``)."""
    for p in pats:
        if any(c in p for c in "*?["):
            if fnmatch.fnmatchcase(name, p):
                return True
        elif name == p:
            return True
    return False


def key_matcher(pats: list[str]) -> Callable[[str], bool]:
    """``key ('exp/test') -> name_matches(exp, pats)``, remembered per experiment (a store has few)."""
    memo: dict[str, bool] = {}

    def match(key: str) -> bool:
        e = key[:key.index("/")]
        r = memo.get(e)
        if r is None:
            r = memo[e] = name_matches(e, pats)
        return r

    return match


def check_filters(status: str | Sequence[str] | None, since: Any, until: Any) -> list[str] | None:
    """The statuses asked for (``None``: all); a bad status or time fails here, before any reading."""
    from lumo_hydra.store.status import STATUSES

    statuses = as_list(status)
    if statuses is not None:
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise LumoValueError(f"invalid value for 'status': {bad[0]!r}; allowed: one of {list(STATUSES)}")
    if since is not None:
        parse_when(since, key="since")
    if until is not None:
        parse_when(until, key="until")
    return statuses


def select_rows(
    table: dict[str, Any], status: list[Any], *, exp: Any, statuses: list[str] | None, since: Any, until: Any,
    sweep: Any, tag: Any,
) -> list[int] | None:
    """The rows of the index ``table`` that pass the filters (``None``: all rows); ``status`` is the
    status of every row, judged now."""
    if exp is None and statuses is None and since is None and until is None and sweep is None and tag is None:
        return None
    t0 = parse_when(since, key="since") if since is not None else None
    t1 = parse_when(until, key="until") if until is not None else None
    pats, sweeps, tags = as_list(exp), as_list(sweep), as_list(tag)
    match = key_matcher(pats) if pats is not None else None
    keys, cols = table["keys"], table["cols"]
    n = len(keys)
    starts = cols.get("_start") or [None] * n
    sws = cols.get("sweep") or [None] * n
    tgs = cols.get("tags") or [None] * n
    sel = []
    for i in range(n):
        if statuses is not None and status[i] not in statuses:
            continue
        start = starts[i]
        if t0 is not None and (start is None or start < t0):
            continue
        if t1 is not None and (start is None or start > t1):
            continue
        if sweeps is not None:
            sw = sws[i]
            if not (isinstance(sw, str) and any(sw.startswith(x) for x in sweeps)):
                continue
        if tags is not None:
            rtags = tgs[i] or ()
            if not all(t in rtags for t in tags):
                continue
        if match is not None and not match(keys[i]):
            continue
        sel.append(i)
    return sel


# --------------------------------------------------------------------------------------------------
# the condition helper C


_MISSING = object()


def _dig(value: Any, path: Sequence[str]) -> Any:
    for p in path:
        if isinstance(value, dict):
            value = value.get(p, _MISSING)
            if value is _MISSING:
                return None
        else:
            return None
    return value


def _column(df: pd.DataFrame, key: str) -> pd.Series:
    """The values of the dotted ``key`` in ``df``: a flat column, or a path into a nested column."""
    if key in df.columns:
        return df[key]
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        rest = parts[i:]
        if head == "metrics" and "metrics" in df.columns:
            name = ".".join(rest)
            col = "metrics"
            if len(rest) > 1 and rest[-1] in ("last", "best"):
                name, col = ".".join(rest[:-1]), ("metrics_last" if rest[-1] == "last" else "metrics")
            if col in df.columns:
                return df[col].map(lambda m, name=name: m.get(name) if isinstance(m, dict) else None)
        if head in df.columns:
            return df[head].map(lambda v, rest=rest: _dig(v, rest))
    close = difflib.get_close_matches(key, [str(c) for c in df.columns], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise LumoValueError(f"unknown column {key!r} in condition{hint}")


def _mask(s: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.Series(s, index=s.index).fillna(False).astype(bool)


def _compare(series: pd.Series, op: Callable[[Any, Any], Any], other: Any) -> pd.Series:
    import pandas as pd

    if isinstance(other, (int, float)) and not isinstance(other, bool) and op not in (operator.eq, operator.ne):
        series = pd.to_numeric(series, errors="coerce")
    try:
        res = op(series, other)
        if isinstance(res, pd.Series):
            return _mask(res)
    except TypeError:
        pass

    def one(v: Any) -> bool:
        try:
            return bool(op(v, other))
        except TypeError:
            return False

    return series.map(one).astype(bool)


class Condition:
    """A row filter built with ``C``: call it on a DataFrame to get a boolean mask.

    Works as ``df[cond]``, ``df.loc[cond]``, ``cond.apply(df)`` and ``w.load(where=cond)``; combine
    with ``&``, ``|`` and ``~``.
    """

    def __init__(self, fn: Callable[[pd.DataFrame], pd.Series], text: str, op: str | None = None) -> None:
        self._fn = fn
        self._text = text
        self.op = op  # lumo's names: '>=', '<=', '==', '!=', '>', '<', 'in', 'notin'; here also '&', '|', '~' ...

    def __call__(self, df: pd.DataFrame) -> pd.Series:
        return _mask(self._fn(df))

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``df`` that satisfy the condition."""
        return df[self(df)]

    def __and__(self, other: Condition) -> Condition:
        return Condition(lambda df: self(df) & other(df), f"({self._text}) & ({other._text})", "&")

    def __or__(self, other: Condition) -> Condition:
        return Condition(lambda df: self(df) | other(df), f"({self._text}) | ({other._text})", "|")

    def __invert__(self) -> Condition:
        return Condition(lambda df: ~self(df), f"~({self._text})", "~")

    def __bool__(self) -> bool:
        raise TypeError("a Condition has no truth value: use & | ~ instead of and/or/not, and a == b chains")

    def __repr__(self) -> str:
        return f"<Condition {self._text}>"


class Column:
    """``C['params.lr']``: a column of a Watcher DataFrame, nested (``params`` dict) or flat."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, key: str) -> None:
        self.key = key

    def values(self, df: pd.DataFrame) -> pd.Series:
        """The column's values in ``df``."""
        return _column(df, self.key)

    def _op(self, op: Callable[[Any, Any], Any], sym: str, other: Any) -> Condition:
        return Condition(lambda df: _compare(self.values(df), op, other), f"{self.key} {sym} {other!r}", sym)

    def __eq__(self, other: Any) -> Condition:  # type: ignore[override]
        return self._op(operator.eq, "==", other)

    def __ne__(self, other: Any) -> Condition:  # type: ignore[override]
        return self._op(operator.ne, "!=", other)

    def __lt__(self, other: Any) -> Condition:
        return self._op(operator.lt, "<", other)

    def __le__(self, other: Any) -> Condition:
        return self._op(operator.le, "<=", other)

    def __gt__(self, other: Any) -> Condition:
        return self._op(operator.gt, ">", other)

    def __ge__(self, other: Any) -> Condition:
        return self._op(operator.ge, ">=", other)

    def isin(self, values: Iterable[Any]) -> Condition:
        """The value is one of ``values``."""
        vals = list(values)
        return Condition(lambda df: self.values(df).map(lambda v: _in(v, vals)), f"{self.key} in {vals!r}", "in")

    def in_(self, values: Iterable[Any]) -> Condition:
        """lumo's name of ``isin``."""
        return self.isin(values)

    def not_in_(self, values: Iterable[Any]) -> Condition:
        """The value is none of ``values`` (lumo's ``not_in_``)."""
        vals = list(values)
        return Condition(lambda df: self.values(df).map(lambda v: not _in(v, vals)), f"{self.key} not in {vals!r}",
                         "notin")

    def __neg__(self) -> ColumnEdit:
        """``-C['x']``: drop the column ``x`` (lumo's column edit)."""
        return ColumnEdit("drop_column", {self.key: None})

    def contains(self, item: Any) -> Condition:
        """A list value (e.g. ``tags``) holds ``item``, or a string value contains the substring ``item``."""

        def one(v: Any) -> bool:
            if isinstance(v, str):
                return isinstance(item, str) and item in v
            if isinstance(v, (list, tuple, set, dict)):
                return item in v
            return False

        return Condition(lambda df: self.values(df).map(one), f"{self.key} contains {item!r}")

    def matches(self, pattern: str) -> Condition:
        """A string value matches the regular expression ``pattern`` (``re.search``)."""
        rx = re.compile(pattern)
        return Condition(lambda df: self.values(df).map(lambda v: isinstance(v, str) and rx.search(v) is not None),
                         f"{self.key} matches {pattern!r}")

    def between(self, low: Any, high: Any) -> Condition:
        """``low <= value <= high``."""
        above: Condition = self >= low
        below: Condition = self <= high
        return above & below

    def isna(self) -> Condition:
        """The value is missing."""
        import pandas as pd

        return Condition(lambda df: self.values(df).map(lambda v: v is None or (isinstance(v, float) and pd.isna(v))),
                         f"{self.key} is missing")

    def notna(self) -> Condition:
        """The value is present."""
        return ~self.isna()

    def __repr__(self) -> str:
        return f"C[{self.key!r}]"


def _in(v: Any, vals: list[Any]) -> bool:
    try:
        return v in vals
    except TypeError:
        return False


class ColumnEdit:
    """lumo's column edits: ``C + 'a.b'`` / ``C + {'a.b': 'alias'}`` add a column from a nested path
    (``op == 'add_column'``), ``C - 'x'`` / ``C - ['x', 'y']`` / ``-C['x']`` drop columns
    (``op == 'drop_column'``). ``edit.apply(df)`` returns a new DataFrame."""

    def __init__(self, op: str, value: dict[str, str | None]) -> None:
        self.op = op
        self.value = value

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with the columns added or dropped (``df`` itself is not changed)."""
        if self.op == "drop_column":
            missing = [k for k in self.value if k not in df.columns]
            if missing:
                close = difflib.get_close_matches(missing[0], [str(c) for c in df.columns], n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise LumoValueError(f"unknown column {missing[0]!r} to drop{hint}")
            return df.drop(columns=list(self.value))
        out = df.copy()
        for path, alias in self.value.items():
            out[alias or path] = _column(df, path)
        return out

    def __repr__(self) -> str:
        return f"<ColumnEdit {self.op} {self.value!r}>"


def _edit_keys(other: Any, what: str) -> list[str]:
    if isinstance(other, str) and other:
        return [other]
    if isinstance(other, (list, tuple, set, dict)) and other and all(isinstance(k, str) and k for k in other):
        return list(other)
    raise LumoValueError(f"invalid column edit C {what} {other!r}; allowed: a column name, a list of names"
                         + (" or a {path: alias} dict" if what == "+" else ""))


class _ConditionFactory:
    """``C['params.lr'] >= 0.1``: build row conditions for Watcher DataFrames (see ``Condition``), lumo's
    column edits ``C + 'a.b'``, ``C - 'x'`` (see ``ColumnEdit``) and ``C.pipe(df, [steps])``."""

    def __add__(self, other: Any) -> ColumnEdit:
        if isinstance(other, dict):
            _edit_keys(other, "+")
            bad = [v for v in other.values() if not isinstance(v, str) or not v]
            if bad:
                raise LumoValueError(f"invalid column alias {bad[0]!r} in C + {other!r}; allowed: a non-empty string")
            return ColumnEdit("add_column", dict(other))
        return ColumnEdit("add_column", {k: k for k in _edit_keys(other, "+")})

    def __sub__(self, other: Any) -> ColumnEdit:
        return ColumnEdit("drop_column", dict.fromkeys(_edit_keys(other, "-")))

    def pipe(self, df: pd.DataFrame, steps: Iterable[Condition | ColumnEdit]) -> pd.DataFrame:
        """Apply row conditions and column edits to ``df`` in order (lumo's ``C.pipe``)."""
        for step in steps:
            if not isinstance(step, (Condition, ColumnEdit)):
                raise LumoValueError(f"invalid step {step!r} in C.pipe; allowed: C[...] conditions and C +/- edits")
            df = step.apply(df)
        return df

    def __getitem__(self, key: str) -> Column:
        if not isinstance(key, str) or not key:
            raise LumoValueError(f"invalid column {key!r} for C[...]; allowed: a column name like 'params.lr'")
        return Column(key)

    def __getattr__(self, key: str) -> Column:
        if key.startswith("__"):
            raise AttributeError(key)
        return Column(key)

    def __repr__(self) -> str:
        return "C"


C = _ConditionFactory()
