"""The Watcher's DataFrames: the column order of ``load()``, flattening, times, and the bytes of the
frame cache file (the DataFrame of the last unfiltered load, see ``lumo_hydra.watcher.index``).

Built from the index table (``lumo_hydra.watcher.index``): one list per record key, one row per run.
"""
from __future__ import annotations

import marshal
from collections.abc import Mapping
from datetime import datetime
from itertools import chain
from operator import methodcaller
from typing import TYPE_CHECKING, Any

from lumo_hydra.watcher.sealed import sealed, unsealed, write_sealed  # (re-exported: the index imports them here)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["build_frame", "frame_to_bytes", "frame_from_bytes", "split_frame_file", "to_local_time", "local_tz",
           "sealed", "unsealed", "write_sealed", "write_frame", "meta_parts", "read_meta"]

FRAME_MAGIC = b"LUMOFRM5"


def meta_parts(meta: dict[str, Any], table: dict[str, Any], head: dict[str, list[Any]]) -> list[Any]:
    """The index file's first part: the length of ``meta``'s marshal bytes, them, then the keys and each
    ``head`` column marshalled apart, so that a column still the very list read (``table['blobs']``) is
    written back as the bytes it was read from (a note edited: the 100,000 runs' keys, times and tags
    are not encoded again)."""
    old = table.get("blobs") or {}
    blobs: dict[str, tuple[Any, Any]] = {}
    for name, obj in [("keys", table["keys"]), *(("h:" + c, v) for c, v in head.items())]:
        got = old.get(name)
        blobs[name] = (obj, got[1] if got is not None and got[0] is obj else marshal.dumps(obj))
    table["blobs"] = blobs
    meta["parts"] = [[name, len(b)] for name, (_, b) in blobs.items()]
    mp = marshal.dumps(meta)
    return [len(mp).to_bytes(8, "little"), mp, *(b for _, b in blobs.values())]


def read_meta(data: memoryview) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """``(meta, {part name: (value, its bytes)})`` of the index file's first part (see :func:`meta_parts`)."""
    n = int.from_bytes(data[:8], "little")
    meta = marshal.loads(data[8:8 + n])
    at = 8 + n
    blobs = {}
    for name, size in meta["parts"]:
        b = data[at:at + size]
        blobs[name] = (marshal.loads(b), b)
        at += size
    if at != len(data):
        raise ValueError("damaged index")
    return meta, blobs


# columns whose missing or empty values are ``{}``
_DICT_COLS = frozenset({"params", "metrics", "metrics_last", "git", "progress", "execute", "lock", "hooks"})

# column order of ``load()``: lumo's columns, then ours, then any other record keys
_FRONT = [
    "exp_name", "test_name", "status", "host", "start", "end", "duration", "sweep",
    "params", "metrics", "git", "progress", "execute", "exception", "note", "tags", "lock", "hooks",
    "info_dir",
]
_RECORD_KEYS_LATER = ["pinfo", "paths", "hydra", "info", "return_value", "rerun_of", "version"]
_NOT_FLATTENED = {"hydra.config"}  # the resolved composed config repeats params; kept in the nested column
_NESTED_FRONT = {"params", "metrics", "git", "progress", "execute", "exception", "lock", "hooks"}
_FRONT_SET = set(_FRONT)
_FLAT_ORDER = ["params", "metrics", "git", "progress", "execute", "exception", "lock", "hooks", "pinfo", "paths",
               "hydra", "info", "return_value", "rerun_of"]


# --------------------------------------------------------------------------------------------------
# flattening


def _flatten_into(out: dict[str, Any], prefix: str, value: Any) -> None:
    if isinstance(value, dict):
        if not value:
            return
        for k, v in value.items():
            key = f"{prefix}.{k}"
            if key in _NOT_FLATTENED:
                continue
            _flatten_into(out, key, v)
    else:
        out[prefix] = value


def _flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k == "metrics":
            last = row.get("metrics_last") or {}
            for name, best in v.items() if type(v) is dict else ():
                out["metrics." + name] = best
                out["metrics." + name + ".last"] = last.get(name)
        elif k == "metrics_last" or k[0] == "_":
            continue
        elif type(v) is dict:
            _flatten_into(out, k, v)
        else:
            out[k] = v
    return out


def _flat_rows(table: dict[str, Any], sel: list[int] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The flattened rows ``sel`` (all if ``None``) of ``table`` and the columns of ``load(flatten=True)``."""
    cols, rkeys = table["cols"], table["rkeys"]
    idx = range(len(rkeys)) if sel is None else sel
    flat = [_flat_row({k: cols[k][i] for k in rkeys[i]}) for i in idx]
    seen: dict[str, None] = {}
    for f in flat:
        seen.update(dict.fromkeys(f))
    rank = {p: i for i, p in enumerate(_FLAT_ORDER)}
    rest = sorted((k for k in seen if k not in _FRONT_SET),
                  key=lambda k: rank.get(k.split(".", 1)[0], len(rank)))  # stable: first-seen order
    return flat, [k for k in _FRONT if k not in _NESTED_FRONT] + rest


_MISS: Any = object()  # a key absent from a row (a value of None is present)


def _present_at(vals: list[Any]) -> int:
    """The first row of ``vals`` that has a value (``_MISS``: absent; a column has one)."""
    return next(j for j, v in enumerate(vals) if v is not _MISS)


def _flat_values(out: dict[str, list[Any]], prefix: str, vals: list[Any], first: dict[str, int]) -> None:
    """The flat columns of one nested column ``vals`` (``_MISS``: absent), column by column: what
    ``_flatten_into`` makes row by row, without a dict per row. Values repeated as one object (the
    snapshot, lock and hooks of a sweep's runs) are flattened once. ``first[name]``: the first row
    that has column ``name`` (the columns are put in order from it, see :func:`_flat_columns`)."""
    n = len(vals)
    ids = [id(v) if type(v) is dict and v else 0 for v in vals]  # 0: not a dict, or an empty one
    uniq = dict.fromkeys(ids)
    uniq.pop(0, None)
    if len(uniq) * 8 < n:  # mostly shared dicts: flatten each once, then look the leaves up per row
        _flat_shared(out, prefix, vals, ids, uniq, first)
        return
    alldicts = set(map(type, vals)) == {dict}
    keys = dict.fromkeys(chain.from_iterable(vals if alldicts else [v for v in vals if type(v) is dict]))
    if not alldicts and any(type(v) is not dict and v is not _MISS for v in vals):  # a scalar among them
        out[prefix] = [None if type(v) is dict or v is _MISS else v for v in vals]
        first[prefix] = next(j for j, v in enumerate(vals) if type(v) is not dict and v is not _MISS)
    for k in keys:
        key = f"{prefix}.{k}"
        if key in _NOT_FLATTENED:
            continue
        sub = list(map(methodcaller("get", k, _MISS), vals)) if alldicts else \
            [v.get(k, _MISS) if type(v) is dict else _MISS for v in vals]
        if _leaves_only(sub):  # scalars: the column itself (None for the absent)
            out[key] = [None if v is _MISS else v for v in sub] if _MISS in sub else sub
            first[key] = _present_at(sub)
        else:
            _flat_values(out, key, sub, first)


def _leaves_only(vals: list[Any]) -> bool:
    """Whether no value of ``vals`` is a dict (``_flat_values`` of it is the column itself)."""
    return dict not in set(map(type, vals))


def _flat_shared(out: dict[str, list[Any]], prefix: str, vals: list[Any], ids: list[int],
                 uniq: dict[int, None], first: dict[str, int]) -> None:
    """``_flat_values`` of ``vals`` whose non-empty dicts are few distinct objects (``ids``: each row's
    ``id`` of its dict, 0 for anything else; ``uniq``: those ids in first-seen order)."""
    byid = dict(zip(ids, vals)) if uniq else {}  # (0: some value that is not a non-empty dict)
    flats: dict[int, dict[str, Any]] = {}
    for i in uniq:
        f: dict[str, Any] = {}
        _flatten_into(f, prefix, byid[i])
        flats[i] = f
    first_scalar = next((j for j, v in enumerate(vals) if type(v) is not dict and v is not _MISS), None) \
        if set(map(type, vals)) - {dict, object} else None  # (``_MISS`` is an ``object()``; no JSON value is)
    names = dict.fromkeys(chain.from_iterable(flats[i] for i in uniq))  # (put in order by _flat_columns)
    if first_scalar is not None:
        names[prefix] = None
        first[prefix] = first_scalar
    if uniq:
        row_of = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1)))  # each dict's first row
        for i in uniq:  # in the order of their first rows
            for name in flats[i]:
                if name not in first:
                    first[name] = row_of[i]
    for name in names:
        if name == prefix:
            out[name] = [None if type(v) is dict or v is _MISS else v for v in vals]
        else:
            lut = {i: f.get(name) for i, f in flats.items()}
            out[name] = list(map(lut.get, ids))  # 0 and empty dicts: None


def _flat_columns(table: dict[str, Any], sel: list[int] | None) -> tuple[dict[str, list[Any]], list[str]]:
    """The flat columns of the rows ``sel`` (all if ``None``) of ``table`` and the columns of
    ``load(flatten=True)``, built column by column from the index (no dict per run)."""
    cols, rkeys = table["cols"], table["rkeys"]
    idx = range(len(rkeys)) if sel is None else sel
    rk = [rkeys[i] for i in idx]
    distinct = {id(t): t for t in rk}
    order: dict[str, None] = {}
    for t in distinct.values():
        order.update(dict.fromkeys(t))
    out: dict[str, list[Any]] = {}
    first: dict[str, int] = {}  # each column's first row (of ``idx``) that has it
    for k in order:
        if k == "metrics_last" or k[0] == "_":
            continue
        vals = cols[k] if sel is None else [cols[k][i] for i in idx]
        if len(distinct) > 1:  # rows without the key: absent, not None
            has = {i: k in t for i, t in distinct.items()}
            if not all(has.values()):
                vals = [v if has[id(t)] else _MISS for v, t in zip(vals, rk)]
        if k == "metrics":
            last = cols.get("metrics_last") or [None] * len(rkeys)
            lasts = last if sel is None else [last[i] for i in idx]
            names = dict.fromkeys(chain.from_iterable(v for v in vals if type(v) is dict))
            for name in names:
                out["metrics." + name] = [v.get(name) if type(v) is dict else None for v in vals]
                out["metrics." + name + ".last"] = [
                    (lv or {}).get(name) if type(v) is dict and name in v else None for v, lv in zip(vals, lasts)]
                first["metrics." + name] = first["metrics." + name + ".last"] = next(
                    j for j, v in enumerate(vals) if type(v) is dict and name in v)
        elif not _leaves_only(vals):
            _flat_values(out, k, vals, first)
        else:
            out[k] = [None if v is _MISS else v for v in vals]
            first[k] = _present_at(vals)
    # the order of flattening row by row (``_flat_rows``): a column comes where the first row that has it
    # puts it; only those rows are flattened (few: the rows that bring new keys)
    seen: dict[str, None] = {}
    for r in sorted(set(first.values())):
        i = idx[r]
        seen.update(dict.fromkeys(_flat_row({k: cols[k][i] for k in rkeys[i] if k[0] != "_" and k != "metrics_last"})))
    seen.update(dict.fromkeys(out))  # (every column is in ``seen`` already)
    rank = {p: i for i, p in enumerate(_FLAT_ORDER)}
    rest = sorted((k for k in seen if k in out and k not in _FRONT_SET),
                  key=lambda k: rank.get(k.split(".", 1)[0], len(rank)))  # stable: first-seen order
    return out, [k for k in _FRONT if k not in _NESTED_FRONT] + rest


def _nested_keys(rkeys: list[tuple[str, ...]]) -> list[str]:
    """The columns of ``load()``: lumo's, then ours, then every other record key of the rows."""
    seen = dict.fromkeys(_FRONT + _RECORD_KEYS_LATER)
    distinct = {id(t): t for t in rkeys}  # rows share their key tuples
    for t in distinct.values():
        seen.update(dict.fromkeys(t))
    return [k for k in seen if k[:1] != "_"]


def _filled(k: str, vals: list[Any]) -> list[Any]:
    """``vals`` of column ``k`` with the missing values of the dict, list and text columns filled."""
    if k in _DICT_COLS:
        return [v or {} for v in vals]
    if k == "tags":
        return [v or [] for v in vals]
    if k == "note":
        return [v or "" for v in vals]
    return vals


def build_frame(table: dict[str, Any], sel: list[int] | None, status: list[Any], dur: Any,
                flatten: bool) -> pd.DataFrame:
    """The DataFrame of ``load()`` from the index ``table``: the rows ``sel`` (all if ``None``), with the
    ``status`` and ``dur`` (a float array, NaN unknown) of every row of the table judged now."""
    import pandas as pd

    cols, rkeys = table["cols"], table["rkeys"]
    chunked = getattr(cols, "payloads", None)  # a nested.Cols: the index's chunks of each column
    n = len(table["keys"]) if sel is None else len(sel)

    def take(lst: list[Any]) -> list[Any]:
        return lst if sel is None else [lst[i] for i in sel]

    flat: dict[str, list[Any]] = {}
    if flatten:
        flat, data_keys = _flat_columns(table, sel)
    else:
        data_keys = _nested_keys(take(rkeys))
    out: dict[str, Any] = {}
    for k in data_keys:
        if k in _JUDGED:
            out[k] = _judged_column(k, table, sel, status, dur)
        elif flatten:
            out[k] = _filled(k, flat[k] if k in flat else [None] * n)
        elif sel is None and chunked is not None and k in chunked and cols.is_nested(k):
            from lumo_hydra.watcher.lazycol import NestedArray

            out[k] = NestedArray(cols.payloads[k], n, fill=fill_of(k), ref=k)  # the index's chunks, built on use
        elif sel is None and k in table.get("lean", ()):  # a cold load's plain columns (watcher/behind.py)
            from lumo_hydra.watcher.lazycol import NestedArray, _objects

            out[k] = NestedArray(values=_objects(_filled(k, cols[k])), fill=fill_of(k))
        elif chunked is not None and k in chunked:
            out[k] = _filled(k, take(cols.full(k)))
        else:
            out[k] = _filled(k, take(cols[k]) if k in cols else [None] * n)
        out[k] = _maybe_texts(out[k])
    return pd.DataFrame(out)


_JUDGED = ("status", "info_dir", "duration", "start", "end")  # not the record's values: judged at each load
_I64 = 1 << 63


def _judged_column(k: str, table: dict[str, Any], sel: list[int] | None, status: list[Any], dur: Any) -> Any:
    """The column ``k`` (one of ``_JUDGED``) of ``build_frame``."""
    import numpy as np

    def take(lst: list[Any]) -> list[Any]:
        return lst if sel is None else [lst[i] for i in sel]

    if k == "status":
        return take(status)
    if k == "info_dir":
        return take(table["dirs"])
    if k == "duration":
        durs = np.asarray(dur, dtype=float)
        return durs if sel is None else durs[np.asarray(sel, dtype=np.intp)]
    return to_local_time(np.array(take(table["cols"].get("_" + k) or [None] * len(table["rkeys"])), dtype=float))


def patched_flat(prev: pd.DataFrame, old: dict[str, Any], table: dict[str, Any], rows: list[int],
                 status: list[Any], dur: Any) -> pd.DataFrame | None:
    """``build_frame(table, None, status, dur, True)`` made from ``prev``, the flat frame of ``old``, when
    ``table`` is ``old`` with the rows ``rows`` read again (the same runs in the same order): only their
    changed values are set, and the judged columns again. ``None`` when it must be built anew: a changed
    row gains, loses or moves a column, or a value changes its type (its column's dtype could change)."""
    import numpy as np
    import pandas as pd

    if len(rows) * 20 > len(table["keys"]):
        return None
    changes: dict[str, list[tuple[int, Any]]] = {}
    for i in rows:
        was, now = (_flat_row({k: t["cols"][k][i] for k in t["rkeys"][i] if k[0] != "_"}) for t in (old, table))
        if list(was) != list(now):
            return None
        for c, v in now.items():
            w = was[c]
            if c in _JUDGED:
                continue
            if type(v) is not type(w) or (type(v) is int and not (-_I64 <= v < _I64 and -_I64 <= w < _I64)):
                return None
            if not (v == w or (v != v and w != w)):  # (NaN: unchanged)
                changes.setdefault(c, []).append((i, v))
    df = prev.copy()
    for c, sets in changes.items():
        if c not in df.columns:
            return None
        col = df[c]
        if isinstance(col.dtype, np.dtype):  # numbers, booleans, objects
            arr = col.to_numpy(copy=True)
            for i, v in sets:
                arr[i] = _filled(c, [v])[0]
        elif type(col.array).__name__ == "ArrowStringArray" or col.dtype == object:  # (or a lazy column of lists)
            vals = col.tolist()
            for i, v in sets:
                vals[i] = _filled(c, [v])[0]
            arr = pd.array(vals, dtype=col.dtype) if col.dtype != object else pd.Series(vals, dtype=object).to_numpy()
        else:
            return None
        df[c] = arr
    for k in _JUDGED:
        if k in df.columns:
            df[k] = _maybe_texts(_judged_column(k, table, None, status, dur))
    return df


def rebuilt(table: dict[str, Any], df: pd.DataFrame, flat: bool) -> pd.DataFrame:
    """``df`` (the unfiltered load of ``table``, built before its columns were encoded) with its nested
    columns as the index's chunks, as the frame cache refers to them (the detached writer's frame)."""
    if flat:
        return df
    return build_frame(table, None, df["status"].tolist(), df["duration"].to_numpy(dtype=float), False)


_STR: dict[str, Any] = {}


def _maybe_texts(v: Any) -> Any:
    """``v`` as a column of texts (:func:`_texts`) when it is a list of strings only, else as it is."""
    if type(v) is list and _STR.get("dtype") is not False and set(map(type, v)) == {str}:
        return _texts(v)
    return v


def _texts(vals: list[str]) -> Any:
    """A column of texts as pandas makes it from the list (its ``str`` dtype in pandas 3, pyarrow
    storage), built by pyarrow at once (pandas checks every value first: 3-4x slower)."""
    import pandas as pd

    dt = _STR.get("dtype")
    if dt is None:
        dt = pd.Series(["x"]).dtype
        ok = getattr(dt, "storage", None) == "pyarrow"
        _STR["dtype"] = dt if ok else False
        if not ok:
            return vals
    try:
        import pyarrow as pa  # type: ignore[import-untyped]

        return pd.arrays.ArrowStringArray(pa.array(vals, type=pa.large_string()), dtype=dt)
    except Exception:  # another pandas: as it infers
        _STR["dtype"] = False
        return vals


def fill_of(k: str) -> str | None:
    """How :func:`_filled` fills the missing values of column ``k`` (a key of ``lazycol.FILLS``)."""
    return "dict" if k in _DICT_COLS else "list" if k == "tags" else "str" if k == "note" else None


def _like_pandas(vals: list[Any]) -> list[Any]:
    """``vals`` as a DataFrame column gives them back: numbers with a missing value (or ints among
    floats) as floats, NaN for missing."""
    nums = [v for v in vals if v is not None]
    if nums and all(type(v) in (int, float) for v in nums) and (len(nums) < len(vals) or float in map(type, nums)):
        return [float("nan") if v is None else float(v) for v in vals]
    return vals


def build_columns(table: dict[str, Any], sel: list[int], status: list[Any], dur: Any) -> tuple[dict[str, list[Any]], list[str]]:
    """The columns of ``build_frame(table, sel, status, dur, flatten=True)`` as plain lists, without
    pandas (``list``'s default view): times as aware local datetimes (``None`` missing), the
    durations as floats (NaN unknown), the columns in the frame's order."""
    cols = table["cols"]
    flat, keys = _flat_columns(table, sel)
    tz = local_tz()
    out: dict[str, list[Any]] = {}
    for k in keys:
        if k == "status":
            out[k] = [status[i] for i in sel]
        elif k == "info_dir":
            out[k] = [table["dirs"][i] for i in sel]
        elif k == "duration":
            out[k] = [float(dur[i]) for i in sel]
        elif k in ("start", "end"):
            col = cols.get("_" + k) or [None] * len(table["dirs"])
            out[k] = [None if col[i] is None or col[i] != col[i] else datetime.fromtimestamp(col[i], tz) for i in sel]
        else:
            out[k] = _like_pandas(_filled(k, flat[k] if k in flat else [None] * len(sel)))
    return out, keys


# --------------------------------------------------------------------------------------------------
# times


_LOCAL_TZ: Any = None


def local_tz() -> Any:
    """The machine's current local time zone (as an offset), looked up once per process."""
    global _LOCAL_TZ
    if _LOCAL_TZ is None:
        _LOCAL_TZ = datetime.now().astimezone().tzinfo
    return _LOCAL_TZ


def to_local_time(values: Any) -> pd.Series:
    """Unix times (NaN for missing) as timezone-aware timestamps in the machine's current local offset."""
    import pandas as pd

    return pd.Series(pd.to_datetime(values, unit="s", utc=True)).dt.tz_convert(local_tz())


# --------------------------------------------------------------------------------------------------
# the frame cache file: MAGIC, len(header), marshal(header), len(lists), marshal(lists), pickle(typed)


def frame_to_bytes(header: dict[str, Any], df: pd.DataFrame) -> bytes:
    """The frame cache file of ``df`` as bytes (see :func:`write_frame`)."""
    import io

    buf = io.BytesIO()
    write_frame(buf, header, df)
    return buf.getvalue()


def write_frame(f: Any, header: dict[str, Any], df: pd.DataFrame,
                refs: dict[str, tuple[list[Any], list[Any]]] | None = None) -> None:
    """The frame cache file of ``df`` (``header`` gets the ``columns``, ``obj`` and ``lazy`` keys it needs).

    Object columns (the records' nested values) are stored as lists with marshal, several times faster
    than pickling them: those holding dicts or lists each as its own payloads, read back as a
    :class:`~lumo_hydra.watcher.lazycol.NestedArray` built on first use (a column not built yet is
    written without building it; one that is still the index's chunks ``refs[name] = (their places
    (body file number, offset), chunks)`` is not written at all: the header says where they are); the
    typed columns (strings, times, numbers) with pickle. Raises ``ValueError`` or
    ``pickle.PicklingError`` for values that cannot be stored.
    """
    import pickle

    from lumo_hydra.watcher.lazycol import lazy_payload

    obj: list[str] = []
    lazy: list[list[Any]] = []
    blobs: list[Any] = []
    eager: list[list[Any]] = []
    for k in df.columns:
        col = df[k]
        if col.dtype != object:
            continue
        got = lazy_payload(col)
        if got is None:
            vals = col.tolist()
            types = set(map(type, vals))  # (C speed: no Python call per value)
            if dict in types or list in types:
                got = ([marshal.dumps(vals)], None, None)
            else:
                obj.append(str(k))
                eager.append(vals)
                continue
        payloads, fill, ref = got
        sizes = [len(p) for p in payloads]
        at = refs.get(str(ref)) if refs and ref is not None else None
        if at is not None and at[1] is payloads:  # where the index's body files hold them
            lazy.append([str(k), sizes, fill, at[0]])
            continue
        lazy.append([str(k), sizes, fill, None])
        blobs.extend(payloads)
    header["columns"] = [str(k) for k in df.columns]
    header["obj"] = obj
    header["lazy"] = lazy
    hb = marshal.dumps(header)
    lists = marshal.dumps(eager)
    typed = pickle.dumps(df.drop(columns=obj + [k for k, *_ in lazy]), protocol=pickle.HIGHEST_PROTOCOL)
    write_sealed(f, [len(hb).to_bytes(8, "little"), hb, len(lists).to_bytes(8, "little"), lists, *blobs, typed],
                 FRAME_MAGIC)


def split_frame_file(data: bytes) -> tuple[Any, memoryview] | None:
    """``(header, payload)`` of a frame cache file's bytes (the header not checked yet), ``None`` if it is
    not one. Raises ``ValueError``/``EOFError``/``TypeError`` for a damaged header."""
    if data[:8] != FRAME_MAGIC:
        return None
    body = unsealed(data, FRAME_MAGIC)
    n = int.from_bytes(body[:8], "little")
    return marshal.loads(body[8:8 + n]), memoryview(body)[8 + n:]


def frame_from_bytes(header: dict[str, Any], data: memoryview, bodies: list[memoryview] | None = None) -> pd.DataFrame:
    """The DataFrame of a frame cache file's payload (see :func:`write_frame`), its columns that refer
    to the index's chunks from ``bodies`` (the payloads of the index's body files); raises on damage."""
    import pickle

    import pandas as pd

    from lumo_hydra.watcher.lazycol import FILLS, NestedArray

    n = int.from_bytes(data[:8], "little")
    lists = marshal.loads(data[8:8 + n])
    at = 8 + n
    lazy: dict[str, Any] = {}
    fills: dict[str, Any] = {}
    for name, sizes, fill, where in header["lazy"]:
        if fill is not None and fill not in FILLS:
            raise ValueError("damaged frame cache")
        parts = []
        if where is None:  # in this file, one after the other
            for size in sizes:
                parts.append(data[at:at + size])
                at += size
        elif bodies is None or len(where) != len(sizes):
            raise ValueError("damaged frame cache")
        else:
            for size, (fi, pos) in zip(sizes, where):
                if pos + size > len(bodies[fi]):
                    raise ValueError("damaged frame cache")
                parts.append(bodies[fi][pos:pos + size])
        lazy[name], fills[name] = parts, fill
    if at > len(data):
        raise ValueError("damaged frame cache")
    typed = pickle.loads(data[at:])
    obj = header["obj"]
    if not (isinstance(lists, list) and len(lists) == len(obj) and isinstance(typed, pd.DataFrame)
            and all(type(x) is list and len(x) == len(typed) for x in lists)):
        raise ValueError("damaged frame cache")
    by_name: dict[str, Any] = dict(zip(obj, lists))
    rows = len(typed)
    by_name.update((k, NestedArray(v, rows, fill=fills[k])) for k, v in lazy.items())
    df = pd.DataFrame({k: by_name[k] if k in by_name else typed[k] for k in header["columns"]})
    if [str(k) for k in df.columns if df[k].dtype == object] != [k for k in header["columns"] if k in by_name]:
        raise ValueError("frame cache columns changed type")
    return df
