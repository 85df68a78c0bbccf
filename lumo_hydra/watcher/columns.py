"""Rows (dicts) into columns (one list per key) at C speed, for the index's chunks of a cold load.

The rows of a store mostly share their keys, in the same order (one key tuple object per distinct set:
see ``nested.patch_table``): the rows of one key tuple become value tuples by ``operator.itemgetter``
and columns by ``zip``, without a ``dict.get`` per value (the ten thousand rows of a cold load times
25 keys). Rows of other key tuples are scattered into their places.
"""
from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

__all__ = ["columns_of", "plain_table"]


def columns_of(rows: Sequence[dict[str, Any]], rkeys: Sequence[tuple[str, ...]]) -> dict[str, list[Any]]:
    """``{key: [row.get(key) for row in rows]}`` for every key of ``rkeys`` (``rkeys[i]``: the keys of
    ``rows[i]``, in its order, one tuple object per distinct tuple)."""
    n = len(rows)
    groups: dict[int, list[int]] = {}
    tuples: dict[int, tuple[str, ...]] = {}
    for i, t in enumerate(rkeys):
        g = groups.get(id(t))
        if g is None:
            groups[id(t)] = g = []
            tuples[id(t)] = t
        g.append(i)
    out: dict[str, list[Any]] = {}
    for gid, at in groups.items():
        t = tuples[gid]
        if not t:
            continue
        whole = len(at) == n
        part = rows if whole else [rows[i] for i in at]
        if len(t) == 1:
            vals: Any = [[r[t[0]] for r in part]]
        else:
            vals = zip(*map(itemgetter(*t), part))
        for k, col in zip(t, vals):
            if whole:
                out[k] = list(col)
                continue
            dst = out.get(k)
            if dst is None:
                dst = out[k] = [None] * n
            for p, v in zip(at, col):
                dst[p] = v
    return out


def _take(values: Sequence[Any], order: list[int]) -> list[Any]:
    return list(itemgetter(*order)(values)) if len(order) > 1 else [values[i] for i in order]


def plain_table(new: list[tuple[Any, dict[str, Any], Any]], head_names: Sequence[str]) -> dict[str, Any]:
    """The index table of the rows ``new`` (``(ref, row, sig)``) alone, as ``nested.patch_table`` of an
    empty index makes it, but with plain lists for columns (nothing encoded: the writer of the index does
    that, :mod:`lumo_hydra.watcher.behind`); ``lean``: the columns (not in ``head_names``) holding a dict
    or a list, which ``load()`` shows as lazy columns."""
    inf = float("inf")
    keys = [r[0][0] + "/" + r[0][1] for r in new]
    by = list(zip([inf if (s := r[1]["_start"]) is None else s for r in new], [str(r[1]["test_name"]) for r in new], keys))
    order = sorted(range(len(new)), key=by.__getitem__)  # by start, test name, key, as patch_table; no Python call per run
    new, keys = _take(new, order), _take(keys, order)
    rows = [r[1] for r in new]
    tuples = list(map(tuple, rows))
    memo: dict[tuple[str, ...], tuple[str, ...]] = {}
    rkeys = list(map(memo.setdefault, tuples, tuples))  # one tuple object per distinct key tuple, at C speed
    del tuples
    cols = columns_of(rows, rkeys)
    lean = {k for k, vals in cols.items() if k not in head_names and _holds_nested(vals)}
    return {"keys": keys, "dirs": [r[0][2] for r in new], "rkeys": rkeys, "cols": cols,
            "sigs": dict(zip(keys, [r[2] for r in new])), "lean": lean}


def _holds_nested(vals: list[Any]) -> bool:
    """Whether ``vals`` holds a dict or a list (the first values tell, for a column of them)."""
    for v in vals[:8]:
        if type(v) is dict or type(v) is list:
            return True
    types = set(map(type, vals))
    return dict in types or list in types
