"""``--where`` expressions: a small, safe filter language over the Watcher's rows (no ``eval``).

``parse_where("params.lr >= 0.01 and metrics.acc > 0.9")`` gives a :class:`~lumo_hydra.watcher.query.Condition`
(a ``df -> bool mask`` function, usable as ``Watcher.load(where=...)``); :func:`filter_rows` applies one to
a list of row dicts. Pure: nothing is read here. Grammar (keywords in any case)::

    expr  := conj ("or" conj)*
    conj  := neg ("and" neg)*
    neg   := "not" neg | "(" expr ")" | test
    test  := NAME OP value | NAME ["not"] "in" "[" value ("," value)* "]"
           | NAME "contains" value | NAME "matches" value | NAME "is" ["not"] "null"
    OP    := "==" | "=" | "!=" | "<" | "<=" | ">" | ">="
    value := number | 'string' | "string" | true | false | null | bare-word (a string, e.g. finished)

A NAME is any column (``status``, ``params.lr``, ``metrics.acc``, ``metrics.acc.last``, ``tags``...).
Comparing a time column (``start``, ``end``) with a value reads the value as a date/time, Unix time or an
age (``start >= 2h``: started in the last two hours). Errors are :class:`WhereError` (a ``ValueError``)
and point at the bad token.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lumo_hydra.errors import LumoValueError
from lumo_hydra.watcher.query import Column, Condition, _column, _compare, parse_when

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["WhereError", "parse_where", "filter_rows"]

_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<op>==|!=|<=|>=|=|<|>)"""
                    r"""|(?P<punct>[()\[\],])|(?P<word>[^\s'"()\[\],=!<>]+))""")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_OPS: dict[str, tuple[Callable[[Any, Any], Any], str]] = {
    "==": (operator.eq, "=="), "=": (operator.eq, "=="), "!=": (operator.ne, "!="), "<": (operator.lt, "<"),
    "<=": (operator.le, "<="), ">": (operator.gt, ">"), ">=": (operator.ge, ">=")}
_KEYWORDS = {"and", "or", "not", "in", "contains", "matches", "is", "true", "false", "null", "none"}


class WhereError(LumoValueError):
    """A ``--where`` expression that cannot be parsed or names an unknown column; ``pos`` is the bad
    token's offset in ``text``."""

    def __init__(self, text: str, pos: int, problem: str) -> None:
        self.text, self.pos, self.problem = text, pos, problem
        super().__init__(f"invalid where expression {text!r} at character {pos + 1}: {problem}\n"
                         f"  {text}\n  {' ' * pos}^\n"
                         "allowed: NAME OP VALUE (OP: == != < <= > >=), NAME in [..], NAME contains V, "
                         "NAME matches 'regex', NAME is [not] null, joined by and/or/not and ( )")

    def __reduce__(self) -> Any:
        return (type(self), (self.text, self.pos, self.problem))


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """``(kind, text, offset)`` of each token, then ``("end", "", len(text))``."""
    out: list[tuple[str, str, int]] = []
    i = 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = _TOKEN.match(text, i)
        if m is None or m.lastgroup is None:
            j = len(text) - len(text[i:].lstrip())
            raise WhereError(text, j, f"unexpected character {text[j]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind)))
        i = m.end()
    out.append(("end", "", len(text)))
    return out


class _Col(Column):
    """A column of the expression: an unknown name raises :class:`WhereError` at its token."""

    def __init__(self, key: str, text: str, pos: int) -> None:
        super().__init__(key)
        self._text, self._pos = text, pos

    def values(self, df: pd.DataFrame) -> pd.Series:
        import pandas as pd

        if len(df) == 0 and self.key not in df.columns:
            return pd.Series([None] * 0, index=df.index, dtype=object)
        try:
            return _column(df, self.key)
        except LumoValueError as e:
            raise WhereError(self._text, self._pos, str(e)) from None

    def _op(self, op: Callable[[Any, Any], Any], sym: str, other: Any) -> Condition:
        def fn(df: pd.DataFrame) -> pd.Series:
            import pandas as pd

            s = self.values(df)
            v = other
            if (isinstance(v, (str, int, float)) and not isinstance(v, bool)
                    and pd.api.types.is_datetime64_any_dtype(s)):
                try:
                    t = pd.Timestamp(parse_when(v, key=self.key), unit="s", tz="UTC")
                except ValueError as e:
                    raise WhereError(self._text, self._pos, str(e)) from None
                v = t.tz_convert(s.dt.tz) if s.dt.tz is not None else t.tz_localize(None)
            if v is None:
                na = self.isna()(df)
                return na if op is operator.eq else ~na
            return _compare(s, op, v)

        return Condition(fn, f"{self.key} {sym} {other!r}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_kw(self, word: str) -> bool:
        kind, val, _ = self.peek()
        return kind == "word" and val.lower() == word

    def fail(self, problem: str, tok: tuple[str, str, int] | None = None) -> WhereError:
        kind, val, pos = tok or self.peek()
        got = "the end of the expression" if kind == "end" else repr(val)
        return WhereError(self.text, pos, f"{problem}, got {got}")

    def expr(self) -> Condition:
        c = self.conj()
        while self.is_kw("or"):
            self.take()
            c = c | self.conj()
        return c

    def conj(self) -> Condition:
        c = self.neg()
        while self.is_kw("and"):
            self.take()
            c = c & self.neg()
        return c

    def neg(self) -> Condition:
        if self.is_kw("not"):
            self.take()
            return ~self.neg()
        if self.peek()[:2] == ("punct", "("):
            self.take()
            c = self.expr()
            if self.peek()[:2] != ("punct", ")"):
                raise self.fail("expected ')'")
            self.take()
            return c
        return self.test()

    def test(self) -> Condition:  # long: one branch per kind of test of the grammar
        kind, name, pos = self.take()
        if kind != "word" or name.lower() in _KEYWORDS or _NUMBER.fullmatch(name):
            raise self.fail("expected a column name (e.g. params.lr, metrics.acc, status)", (kind, name, pos))
        col = _Col(name, self.text, pos)
        kind, val, _ = self.peek()
        if kind == "op":
            self.take()
            op, sym = _OPS[val]
            return col._op(op, sym, self.value())
        word = val.lower() if kind == "word" else ""
        if word in ("in", "not"):
            self.take()
            if word == "not":
                if not self.is_kw("in"):
                    raise self.fail("expected 'in' after 'not'")
                self.take()
                return ~col.isin(self.values())
            return col.isin(self.values())
        if word == "contains":
            self.take()
            return col.contains(self.value())
        if word == "matches":
            self.take()
            tok = self.peek()
            pattern = self.value()
            try:
                return col.matches(str(pattern))
            except re.error as e:
                raise WhereError(self.text, tok[2], f"invalid regular expression: {e}") from None
        if word == "is":
            self.take()
            negate = self.is_kw("not")
            if negate:
                self.take()
            if not (self.is_kw("null") or self.is_kw("none")):
                raise self.fail("expected 'null' after 'is'")
            self.take()
            return col.notna() if negate else col.isna()
        raise self.fail(f"expected an operator after {name!r} (== != < <= > >= in contains matches is)")

    def values(self) -> list[Any]:
        if self.peek()[:2] != ("punct", "["):
            raise self.fail("expected '[' starting a list of values")
        self.take()
        out = [self.value()]
        while self.peek()[:2] == ("punct", ","):
            self.take()
            out.append(self.value())
        if self.peek()[:2] != ("punct", "]"):
            raise self.fail("expected ',' or ']'")
        self.take()
        return out

    def value(self) -> Any:
        kind, val, pos = self.peek()
        if kind == "str":
            self.take()
            return re.sub(r"\\(.)", r"\1", val[1:-1])
        if kind != "word" or val.lower() in ("and", "or", "not", "in", "contains", "matches", "is"):
            raise self.fail("expected a value (number, 'string', true, false, null or a word)")
        self.take()
        low = val.lower()
        if low in ("true", "false"):
            return low == "true"
        if low in ("null", "none"):
            return None
        if _NUMBER.fullmatch(val):
            return int(val) if re.fullmatch(r"[-+]?\d+", val) else float(val)
        return val


def parse_where(text: str) -> Condition:
    """The condition of the expression ``text`` (see the module's grammar); :class:`WhereError` if invalid."""
    if not isinstance(text, str) or not text.strip():
        raise WhereError(str(text), 0, "empty expression; allowed: e.g. \"params.lr >= 0.01 and status == finished\"")
    p = _Parser(text)
    cond = p.expr()
    if p.peek()[0] != "end":
        raise p.fail("expected 'and', 'or' or the end of the expression")
    return cond


def filter_rows(where: str | Condition, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The ``rows`` (flat or nested row dicts, as the Watcher's frames hold) that satisfy ``where``."""
    import pandas as pd

    cond = parse_where(where) if isinstance(where, str) else where
    rows = list(rows)
    if not rows:
        return []
    mask = cond(pd.DataFrame(rows))
    return [r for r, keep in zip(rows, mask.tolist()) if keep]
