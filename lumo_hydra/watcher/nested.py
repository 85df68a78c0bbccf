"""The index's record columns as chunks of encoded values: one marshal payload per column per chunk of
``CHUNK`` consecutive rows, in body files never changed once written, so that a load after a few runs
changed encodes only their chunks (no decoding of 100,000 runs' dicts) and the frame of ``load()``
wraps the nested columns' payloads as they are (:class:`~lumo_hydra.watcher.lazycol.NestedArray`).
:class:`Cols` decodes a column on first use (a point lookup: only its chunk, the first times).
"""
from __future__ import annotations

import marshal
import os
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from lumo_hydra.store.files import atomic_open
from lumo_hydra.watcher.columns import columns_of
from lumo_hydra.watcher.frame import unsealed, write_sealed
from lumo_hydra.watcher.sigs import SigMap, _flat

__all__ = ["CHUNK", "Cols", "LazyList", "patch_cols", "patch_table", "take", "save_body", "drop_bodies", "read_bodies",
           "folder_sig_check", "with_body"]

#: rows per chunk (a chunk of fewer than ``CHUNK // 4`` rows is merged with its changed neighbours)
CHUNK = 256
_POINT_MAX = 256  # point lookups of a column before it is decoded whole


def take(values: Sequence[Any], order: list[int]) -> list[Any]:
    """``[values[i] for i in order]`` at C speed."""
    if not order:
        return []
    if len(order) == 1:
        return [values[order[0]]]
    return list(itemgetter(*order)(values))


class Cols(Mapping[str, Any]):
    """``{record key: values}`` of an index table: the ``head`` columns as lists, the others as
    payloads, one per chunk (``sizes`` rows each), decoded when asked for. ``nested[k]``: whether a
    chunk of ``k`` holds a dict or a list (then the frame keeps the payloads: a lazy column)."""

    def __init__(self, sizes: list[int], payloads: dict[str, list[Any]], nested: dict[str, list[bool]],
                 head: dict[str, list[Any]], locs: dict[str, list[Any]] | None = None) -> None:
        self.sizes = sizes
        self.payloads = payloads
        #: where each chunk is in the index's body files: ``(file number, offset)``, ``None`` not written yet
        self.locs: dict[str, list[Any]] = locs if locs is not None else {k: [None] * len(ps) for k, ps in payloads.items()}
        self.files: list[list[Any]] = []  # ``[name, size]`` of the body files ``locs`` number
        self.nested = nested
        self.head = head
        self.bounds = [0]
        for s in sizes:
            self.bounds.append(self.bounds[-1] + s)
        self.decoded: dict[str, list[Any]] = {}
        self._lazy: dict[str, LazyList] = {}

    @property
    def n(self) -> int:
        return self.bounds[-1]

    def __getitem__(self, k: str) -> Any:
        v = self.head.get(k)
        if v is not None:
            return v
        v = self.decoded.get(k)
        if v is not None:
            return v
        if k not in self.payloads:
            raise KeyError(k)
        lazy = self._lazy.get(k)
        if lazy is None:
            lazy = self._lazy[k] = LazyList(self, k)
        return lazy

    def __contains__(self, k: object) -> bool:
        return k in self.head or k in self.payloads

    def __iter__(self) -> Iterator[str]:
        yield from self.payloads
        yield from (k for k in self.head if k not in self.payloads)

    def __len__(self) -> int:
        return len(self.payloads) + sum(1 for k in self.head if k not in self.payloads)

    def chunk_of(self, i: int) -> int:
        return bisect_right(self.bounds, i) - 1

    def chunk(self, k: str, c: int) -> list[Any]:
        """The values of chunk ``c`` of column ``k`` (decoded now)."""
        full = self.decoded.get(k)
        if full is not None:
            return full[self.bounds[c]:self.bounds[c + 1]]
        vals = marshal.loads(self.payloads[k][c])
        if type(vals) is not list or len(vals) != self.sizes[c]:
            raise ValueError(f"damaged index column {k!r}")
        return vals

    def full(self, k: str) -> list[Any]:
        """Every value of column ``k`` (decoded once)."""
        v = self.head.get(k)
        if v is None:
            v = self.decoded.get(k)
        if v is None:
            v = []
            for c in range(len(self.sizes)):
                v.extend(self.chunk(k, c))
            self.decoded[k] = v
            self._lazy.pop(k, None)
        return v

    def is_nested(self, k: str) -> bool:
        return k not in self.head and any(self.nested.get(k) or ())


class LazyList(Sequence[Any]):
    """Column ``k`` of ``cols``: a point lookup decodes only its chunk (the first ``_POINT_MAX``
    times), anything else decodes the whole column."""

    __slots__ = ("_cols", "_k", "_chunks", "_asked")

    def __init__(self, cols: Cols, k: str) -> None:
        self._cols, self._k = cols, k
        self._chunks: dict[int, list[Any]] = {}
        self._asked = 0

    def __len__(self) -> int:
        return self._cols.n

    def __getitem__(self, i: Any) -> Any:
        full = self._cols.decoded.get(self._k)
        if full is not None:
            return full[i]
        if type(i) is not int:
            return self._cols.full(self._k)[i]
        self._asked += 1
        if self._asked > _POINT_MAX:
            return self._cols.full(self._k)[i]
        n = self._cols.n
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        c = self._cols.chunk_of(i)
        vals = self._chunks.get(c)
        if vals is None:
            vals = self._chunks[c] = self._cols.chunk(self._k, c)
        return vals[i - self._cols.bounds[c]]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cols.full(self._k))


def _types_nested(vals: list[Any]) -> bool:
    types = set(map(type, vals))
    return dict in types or list in types


def encode(vals: list[Any]) -> tuple[bytes, bool]:
    """The payload of one chunk's values and whether it holds a dict or a list. A value marshal cannot
    store (nested deeper than it goes: the reader refuses such records, unless the recursion limit was
    raised) is kept as ``None``, with a warning."""
    try:
        return marshal.dumps(vals), _types_nested(vals)
    except ValueError:
        pass
    import warnings

    out = []
    for v in vals:
        try:
            marshal.dumps(v)
            out.append(v)
        except ValueError as e:
            warnings.warn(f"lumo-hydra: a record value the watcher index cannot keep ({e}) is shown as None",
                          stacklevel=2)
            out.append(None)
    return marshal.dumps(out), _types_nested(out)


def _pieces(old: Cols | None, order: list[int]) -> list[tuple[int, Any]]:
    """The chunks of the rows ``order`` (as for :func:`patch_cols`): ``(c, None)`` for chunk ``c`` of
    ``old`` kept as it is, ``(-1, [sources])`` for a chunk to encode."""
    n_old = old.n if old is not None else 0
    intact: dict[int, int] = {}  # new position of its first row -> old chunk
    if old is not None and n_old:
        pos = [-1] * n_old
        for p, i in enumerate(order):
            if i >= 0:
                pos[i] = p
        b = old.bounds
        for c, size in enumerate(old.sizes):
            s, e = b[c], b[c + 1]
            first, last = pos[s], pos[e - 1]
            # kept rows keep their order: all there and nothing between them <=> last - first == size - 1
            if size >= CHUNK // 4 and first >= 0 and last - first == size - 1 and -1 not in pos[s:e]:
                intact[first] = c
    pieces: list[tuple[int, Any]] = []
    loose: list[int] = []
    p, n = 0, len(order)
    while p < n:
        got = intact.get(p)
        if got is None:
            loose.append(order[p])
            p += 1
            continue
        _flush(pieces, loose)
        loose = []
        pieces.append((got, None))
        p += old.sizes[got]  # type: ignore[union-attr]
    _flush(pieces, loose)
    return pieces


# long: each column, chunk by chunk: kept, or encoded from the old chunks' and the new rows' values
def patch_cols(old: Cols | None, order: list[int], new_rows: list[dict[str, Any]], names: list[str],
               head: dict[str, list[Any]], pieces: list[tuple[int, Any]] | None = None,
               new_cols: dict[str, list[Any]] | None = None) -> Cols:
    """The columns ``names`` of the rows ``order`` (``i >= 0``: row ``i`` of ``old``, ``~j``: ``new_rows[j]``, its missing
    keys ``None``; ``new_cols``: their values as columns, if known), with the ``head`` columns already built. The chunks
    of ``old`` whose rows all come back together, in order, are kept as their payloads; the other rows are encoded anew."""
    if pieces is None:
        pieces = _pieces(old, order)
    sizes = [old.sizes[c] if c >= 0 else len(src) for c, src in pieces]  # type: ignore[union-attr]
    # where each loose row's old value is: (old chunk, offset in it) or (-1, new row)
    locs: list[Any] = []
    b = old.bounds if old is not None else [0]
    for c, src in pieces:
        if c >= 0:
            locs.append([])
            continue
        if src[0] < 0 and src[-1] == src[0] - len(src) + 1 and all(i < 0 for i in src):
            locs.append(slice(~src[0], ~src[-1] + 1))  # new rows one after the other (a first load)
            continue
        lst = []
        for i in src:
            if i >= 0:
                oc = bisect_right(b, i) - 1
                lst.append((oc, i - b[oc]))
            else:
                lst.append((-1, ~i))
        locs.append(lst)
    payloads: dict[str, list[Any]] = {}
    nested: dict[str, list[bool]] = {}
    where: dict[str, list[Any]] = {}
    none_chunk: dict[int, bytes] = {}
    for k in names:
        if k in head:
            continue
        has_old = old is not None and k in old.payloads
        new_vals = [r.get(k) for r in new_rows] if new_cols is None else new_cols.get(k) or [None] * len(new_rows)
        decoded: dict[int, list[Any]] = {}
        ps: list[Any] = []
        fl: list[bool] = []
        wh: list[Any] = []
        for (c, _), lst, size in zip(pieces, locs, sizes):
            if c >= 0:
                if has_old:
                    ps.append(old.payloads[k][c])  # type: ignore[union-attr]
                    fl.append(old.nested[k][c])  # type: ignore[union-attr]
                    wh.append(old.locs[k][c])  # type: ignore[union-attr]
                else:
                    if size not in none_chunk:
                        none_chunk[size] = marshal.dumps([None] * size)
                    ps.append(none_chunk[size])
                    fl.append(False)
                    wh.append(None)
                continue
            wh.append(None)
            if type(lst) is slice:
                data, isn = encode(new_vals[lst])
                ps.append(data)
                fl.append(isn)
                continue
            vals = []
            for oc, j in lst:
                if oc < 0:
                    vals.append(new_vals[j])
                elif has_old:
                    got = decoded.get(oc)
                    if got is None:
                        got = decoded[oc] = old.chunk(k, oc)  # type: ignore[union-attr]
                    vals.append(got[j])
                else:
                    vals.append(None)
            data, isn = encode(vals)
            ps.append(data)
            fl.append(isn)
        payloads[k] = ps
        nested[k] = fl
        where[k] = wh
    out = Cols(sizes, payloads, nested, head, where)
    out.files = list(old.files) if old is not None else []
    return out


def _flush(pieces: list[tuple[int, Any]], loose: list[int]) -> None:
    """``loose`` rows as new chunks of at most ``CHUNK`` rows (evenly split)."""
    if not loose:
        return
    k = -(-len(loose) // CHUNK)
    step = -(-len(loose) // k)
    for s in range(0, len(loose), step):
        pieces.append((-1, loose[s:s + step]))


def patch_table(old: dict[str, Any], keep: set[str], new: list[tuple[Any, dict[str, Any], Any]],
                head_names: Sequence[str]) -> dict[str, Any]:
    """The index table of the rows of ``old`` whose key is in ``keep`` plus the ``new`` rows
    (``(ref, row, sig)``), sorted as ``load()`` returns them: by start (missing last), test_name, key.
    The kept rows keep their order (they were sorted so), the new ones are merged in."""
    keys, dirs, rkeys, cols, sigs = old["keys"], old["dirs"], old["rkeys"], old["cols"], old["sigs"]
    n_old = len(keys)
    inf = float("inf")
    new = sorted(new, key=lambda x: (x[1]["_start"] if x[1]["_start"] is not None else inf,
                                     str(x[1]["test_name"]), x[0][0] + "/" + x[0][1]))
    new_keys = [r[0][0] + "/" + r[0][1] for r in new]
    memo = {t: t for t in {id(t): t for t in rkeys}.values()} if rkeys else {}
    new_rk = []
    for _, row, _ in new:
        t = tuple(row)
        new_rk.append(memo.setdefault(t, t))
    rows = [r[1] for r in new]
    new_cols = columns_of(rows, new_rk)
    # the usual change: runs rewritten in place, each new row where its old one was (same keys, same order)
    at = _in_place(old, keep, new, new_keys)
    same = at is not None
    order: list[int] = []
    if at is not None:
        nkeys, ndirs, nrkeys = keys, dirs, list(rkeys)
        for p, j in at:
            nrkeys[p] = new_rk[j]
    else:
        order = _merged(old, keep, new)
        flat = [i if i >= 0 else n_old + ~i for i in order]  # positions in old + new
        nkeys = take(list(keys) + new_keys, flat)
        ndirs = take(list(dirs) + [r[0][2] for r in new], flat)
        nrkeys = take(list(rkeys) + new_rk, flat)
    names: dict[str, None] = {}
    for t in {id(t): t for t in nrkeys}.values():
        names.update(dict.fromkeys(t))
    head = {}
    for k in head_names:
        if k in names:
            col = cols.get(k)
            if at is not None and col is not None and all(type(v := rows[j].get(k)) is type(col[p]) and v == col[p]
                                                          for p, j in at):
                head[k] = col  # unchanged: the same list (the index writes back the bytes it read)
                continue
            vals = list(col) if col is not None else [None] * n_old
            if at is not None:
                for p, j in at:
                    vals[p] = rows[j].get(k)
                head[k] = vals
            else:
                head[k] = take(vals + (new_cols.get(k) or [None] * len(rows)), flat)
    base = cols if isinstance(cols, Cols) else _as_cols(cols, n_old, head_names)
    ncols = patch_cols(base, order, rows, list(names), head,
                       _in_place_pieces(base, at) if at is not None and base is not None else None, new_cols)
    nsigs = {k: r[2] for k, r in zip(new_keys, new)}
    if isinstance(sigs, SigMap) and same and sigs.aligned(keys):
        nsig: Any = replace_sigs(sigs, keys, [(p, new[j][2]) for p, j in at])  # type: ignore[union-attr]
    elif isinstance(sigs, SigMap):
        nsig = sigs.remap(nkeys, nsigs)
    else:
        nsig = {k: sigs[k] if k in sigs else nsigs.get(k) for k in nkeys}
        nsig.update(nsigs)
    return {"keys": nkeys, "dirs": ndirs, "rkeys": nrkeys, "cols": ncols, "sigs": nsig}


def _merged(old: dict[str, Any], keep: set[str], new: list[tuple[Any, dict[str, Any], Any]]) -> list[int]:
    """The rows of the patched table: ``i`` for row ``i`` of ``old`` (kept: its key in ``keep``, in their
    order), ``~j`` for ``new[j]`` (sorted), merged by start, test_name, key."""
    keys, cols = old["keys"], old["cols"]
    n_old = len(keys)
    kept = list(range(n_old)) if len(keep) >= n_old and all(k in keep for k in keys) else \
        [i for i, k in enumerate(keys) if k in keep]
    if not (new and kept):
        return kept + [~j for j in range(len(new))]
    inf = float("inf")
    starts = cols.get("_start") or [None] * n_old
    tns = cols.get("test_name") or [None] * n_old

    def skey(i: int) -> tuple[float, str, str]:
        s = starts[i]
        return (s if s is not None else inf, str(tns[i]), keys[i])

    order: list[int] = []
    at = 0
    for j, (ref, row, _) in enumerate(new):
        nk = (row["_start"] if row["_start"] is not None else inf, str(row["test_name"]), ref[0] + "/" + ref[1])
        p = bisect_right(kept, nk, lo=at, key=skey)
        order.extend(kept[at:p])
        order.append(~j)
        at = p
    order.extend(kept[at:])
    return order


def _in_place(old: dict[str, Any], keep: set[str], new: list[tuple[Any, dict[str, Any], Any]],
              new_keys: list[str]) -> list[tuple[int, int]] | None:
    """``[(row of old, j)]`` when the ``new`` rows are exactly the rows of ``old`` not kept, read again,
    and each still sorts where it was (between its neighbours): the table keeps its order; else ``None``.
    No pass over every row: the positions come from the packed signatures' key index."""
    keys, cols, sigs = old["keys"], old["cols"], old["sigs"]
    n = len(keys)
    if not new or len(keep) + len(new) != n or not isinstance(sigs, SigMap) or not sigs.aligned(keys):
        return None
    pos = sigs._index()
    ps = [pos.get(k, -1) for k in new_keys]
    if -1 in ps or len(set(ps)) != len(ps) or any(keys[p] in keep for p in ps):
        return None
    inf = float("inf")
    starts = cols.get("_start") or [None] * n
    tns = cols.get("test_name") or [None] * n
    mine = {p: j for j, p in enumerate(ps)}

    def skey(i: int) -> tuple[float, str, str]:
        j = mine.get(i)
        if j is None:
            s, t = starts[i], tns[i]
        else:
            s, t = new[j][1]["_start"], new[j][1]["test_name"]
        return (s if s is not None else inf, str(t), keys[i])

    for p in ps:
        k = skey(p)
        if (p > 0 and not skey(p - 1) < k) or (p + 1 < n and not k < skey(p + 1)):
            return None
    return sorted(zip(ps, range(len(ps))))


def _in_place_pieces(cols: Cols, at: list[tuple[int, int]]) -> list[tuple[int, Any]]:
    """The chunks of ``cols`` with the rows ``at`` (``(row, j)``) replaced by new row ``j``: those holding
    one are encoded again (the same rows), the others kept."""
    b = cols.bounds
    dirty: dict[int, list[tuple[int, int]]] = {}
    for p, j in at:
        dirty.setdefault(bisect_right(b, p) - 1, []).append((p, j))
    out: list[tuple[int, Any]] = []
    for c in range(len(cols.sizes)):
        if c not in dirty:
            out.append((c, None))
            continue
        src = list(range(b[c], b[c + 1]))
        for p, j in dirty[c]:
            src[p - b[c]] = ~j
        out.append((-1, src))
    return out


def replace_sigs(sm: SigMap, keys: list[str], changes: list[tuple[int, Any]]) -> SigMap:
    """``sm`` (aligned with ``keys``) with the signatures at the positions of ``changes`` replaced: a
    copy of the packed rows (no position dict, no value built; ``SigMap.remap`` builds both)."""
    w = sm._w
    arr = array("q", sm._arr)
    for p, sig in changes:
        arr[p * (w + 1):(p + 1) * (w + 1)] = array("q", _flat(sig, w))
    return SigMap(keys, arr.tobytes(), w)


def _as_cols(cols: Mapping[str, list[Any]], n: int, head_names: Sequence[str]) -> Cols | None:
    """Plain lists of ``n`` rows as :class:`Cols` (one chunk per ``CHUNK`` rows)."""
    if not n:
        return None
    sizes = [min(CHUNK, n - s) for s in range(0, n, CHUNK)]
    payloads: dict[str, list[Any]] = {}
    nested: dict[str, list[bool]] = {}
    for k, vals in cols.items():
        if k in head_names:
            continue
        parts = [encode(list(vals[s:s + CHUNK])) for s in range(0, n, CHUNK)]
        payloads[k] = [p for p, _ in parts]
        nested[k] = [f for _, f in parts]
    return Cols(sizes, payloads, nested, {k: list(cols[k]) for k in head_names if k in cols})


# ---- the index's files -----------------------------------------------------------------------

_BODY_MAGIC = b"LUMOBDY1"
#: body files of one index before they are compacted into one
_MAX_BODIES = 16
#: seconds a body file no longer referred to is kept (for the readers and writers of the index before)
GRACE_S = 10.0


def save_body(prefix: str, cols: Cols, gen: bytes) -> None:
    """Write the chunks of ``cols`` not in a body file yet into a new one, ``<prefix>.<gen>.body`` (all
    of them, into one file, when the old files hold too much that is no longer used or are too many)
    and note where (``cols.locs``, ``cols.files``). Body files are never changed once written."""
    used = sum(len(p) for k, ps in cols.payloads.items() for p, w in zip(ps, cols.locs[k]) if w is not None)
    held = sum(f[1] for f in cols.files)
    fresh = [(k, c) for k, ws in cols.locs.items() for c, w in enumerate(ws) if w is None]
    if not fresh and held:
        return
    files = cols.files
    if len(files) >= _MAX_BODIES or held - used > used // 2:  # compact: one file of every chunk
        files = []
        fresh = [(k, c) for k, ws in cols.locs.items() for c in range(len(ws))]
    name = os.path.basename(prefix) + f".{gen.hex()}.body"
    parts, at, where = [], 0, []
    for k, c in fresh:
        p = cols.payloads[k][c]
        where.append([len(files), at])
        parts.append(p)
        at += len(p)
    with atomic_open(os.path.join(os.path.dirname(prefix), name)) as f:
        write_sealed(f, parts, _BODY_MAGIC)
    for (k, c), w in zip(fresh, where):
        cols.locs[k][c] = w
    cols.files = [*files, [name, at]]


def drop_bodies(prefix: str, keep: set[str], grace: float | None = None) -> None:
    """Delete the body files of ``prefix`` not in ``keep`` and not written in the last ``grace``
    (default ``GRACE_S``) seconds (a younger one may be about to be referred to by a concurrent writer, or still be read by
    a reader of the index it replaced: that reader then reads the index again)."""
    d, start = os.path.split(prefix)
    start += "."
    try:
        names = [n for n in os.listdir(d) if n.startswith(start) and n.endswith(".body") and n not in keep]
    except OSError:
        return
    before = time.time() - (GRACE_S if grace is None else grace)
    for n in names:
        try:
            if os.stat(os.path.join(d, n)).st_mtime < before:
                os.unlink(os.path.join(d, n))
        except OSError:
            pass


def read_bodies(d: str, files: list[list[Any]]) -> list[memoryview]:
    """The payloads of the body files ``files`` (``[name, size]``), checked; raises ``OSError`` or
    ``ValueError`` for a missing or damaged one."""
    out = []
    for name, size in files:
        with open(os.path.join(d, name), "rb") as f:
            body = unsealed(f.read(), _BODY_MAGIC)
        if len(body) != size:
            raise ValueError("damaged index body")
        out.append(body)
    return out


def folder_sig_check(keys: list[str], sigs: Any, dsigs: Any) -> Callable[[str, int, int], bool | None]:
    """``(key, inode, mtime_ns) -> None`` if ``key`` is not in the index (``sigs``), else whether the run
    folder signature ``dsigs`` keeps for it is that one (and was trusted). Packed signatures are compared
    in place: no tuple per run (a changed experiment of 20,000 runs is one ``stat`` each, nothing more)."""
    if isinstance(sigs, SigMap) and isinstance(dsigs, SigMap) and dsigs.aligned(keys) and sigs.aligned(keys):
        pos = sigs._index()
        arr = dsigs._arr  # per key: inode (signed), mtime_ns, flag (0: trusted, 2: None)
        top, wrap = 1 << 63, 1 << 64

        def packed(key: str, ino: int, mt: int) -> bool | None:
            p = pos.get(key)
            if p is None:
                return None
            j = 3 * p
            return mt >= 0 and arr[j + 2] == 0 and arr[j + 1] == mt and arr[j] == (ino - wrap if ino >= top else ino)

        return packed

    def plain(key: str, ino: int, mt: int) -> bool | None:
        if key not in sigs:
            return None
        return mt >= 0 and dsigs.get(key) == (ino, mt)

    return plain


def with_body(t: dict[str, Any], bodies: list[memoryview], n: int) -> dict[str, Any] | None:
    """The index table of the meta part ``t`` with its record columns' chunks in ``bodies`` (its body
    files' payloads), not decoded; ``None`` if they do not fit."""
    sizes, layout = t["sizes"], t["layout"]
    if not (type(sizes) is list and sum(sizes) == n and type(layout) is list):
        return None
    distinct, codes = t.pop("rk")
    rkeys = take(distinct, array("i", codes).tolist()) if n else []
    if len(rkeys) != n or not all(type(r) is tuple for r in distinct):
        return None
    payloads: dict[str, list[Any]] = {}
    nested: dict[str, list[bool]] = {}
    locs: dict[str, list[Any]] = {}
    for k, lens, flags, where in layout:
        if not (len(lens) == len(flags) == len(where) == len(sizes)):
            return None
        ps = []
        for ln, (fi, at) in zip(lens, where):
            b = bodies[fi]
            if at + ln > len(b):
                return None
            ps.append(b[at:at + ln])
        payloads[k], nested[k], locs[k] = ps, flags, where
    cols = Cols(sizes, payloads, nested, t["head"], locs)
    cols.files = t.pop("files")
    t.update(cols=cols, rkeys=rkeys)
    return t
