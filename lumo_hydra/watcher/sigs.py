"""The index's file and folder signatures, packed: one ``array('q')`` aligned with the index's keys
instead of 100,000 dicts entries of nested tuples, so reading the index's meta part creates no object
per run; a :class:`SigMap` gives them back as the ``{key: signature}`` mapping the index works with.

A run's signature is ``((ino, mtime_ns, size) of run.json, (ino, mtime_ns, size) of metrics.json or
None)`` or ``None`` (not trusted yet); a run folder's is ``(ino, mtime_ns)`` or ``None``.
"""
from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["SigMap", "pack", "packed_sigs"]

_TOP = 1 << 63
_WRAP = 1 << 64


def _s(v: int) -> int:  # an unsigned 64-bit inode number into a signed slot, and back
    return v - _WRAP if v >= _TOP else v


def _u(v: int) -> int:
    return v + _WRAP if v < 0 else v


def _flat(sig: Any, width: int) -> list[int]:
    """``width`` ints, then a flag: 0 full, 1 second part ``None``, 2 the whole signature ``None``, 3 the
    second part ``(-1, -1, -1)`` (unreadable)."""
    if sig is None:
        return [0] * width + [2]
    if width == 2:
        return [_s(sig[0]), sig[1], 0]
    r, m = sig
    if m is None:
        return [_s(r[0]), r[1], r[2], 0, 0, 0, 1]
    if m == (-1, -1, -1):  # metrics.json could not be read: never matches a file
        return [_s(r[0]), r[1], r[2], 0, 0, 0, 3]
    return [_s(r[0]), r[1], r[2], _s(m[0]), m[1], m[2], 0]


def pack(keys: list[str], sigs: Mapping[str, Any], width: int) -> bytes:
    """The signatures of ``keys`` (``width`` 6 for runs, 2 for folders) as bytes for :class:`SigMap`."""
    if isinstance(sigs, SigMap):
        return (sigs if sigs._keys is keys else sigs.remap(keys, {}))._arr.tobytes()
    out = array("q")
    ext = out.extend
    get = sigs.get
    if width == 2:
        for k in keys:  # _flat(sig, 2) inlined
            sig = get(k)
            if sig is None:
                ext((0, 0, 2))
            elif sig[0] >= _TOP:
                ext(_flat(sig, 2))
            else:
                ext((sig[0], sig[1], 0))
        return out.tobytes()
    if width != 6:
        for k in keys:
            ext(_flat(get(k), width))
        return out.tobytes()
    none = (0, 0, 0, 0, 0, 0, 2)
    for k in keys:  # _flat(sig, 6) inlined for the common signatures (a cold load packs 100,000 of them)
        sig = get(k)
        if sig is None:
            ext(none)
            continue
        r, m = sig
        if m is None or r[0] >= _TOP or m[0] >= _TOP or m == (-1, -1, -1):
            ext(_flat(sig, 6))
        else:
            ext((r[0], r[1], r[2], m[0], m[1], m[2], 0))
    return out.tobytes()


class SigMap(Mapping[str, Any]):
    """``{key: signature}`` read from :func:`pack`'s bytes; values are built when looked up."""

    __slots__ = ("_keys", "_arr", "_w", "_pos")

    def __init__(self, keys: list[str], data: bytes, width: int) -> None:
        arr = array("q")
        arr.frombytes(data)
        if len(arr) != len(keys) * (width + 1):
            raise ValueError("packed signatures do not match the keys")
        self._keys, self._arr, self._w = keys, arr, width
        self._pos: dict[str, int] | None = None

    def _index(self) -> dict[str, int]:
        if self._pos is None:
            self._pos = {k: i for i, k in enumerate(self._keys)}
        return self._pos

    def __getitem__(self, key: str) -> Any:
        return self.at(self._index()[key])

    def aligned(self, keys: list[str]) -> bool:
        """Whether ``keys`` are this map's keys in its order (then :meth:`at` takes their positions)."""
        return keys is self._keys or keys == self._keys

    def at(self, pos: int) -> Any:
        """The signature of the key at ``pos`` (no key -> position dict built)."""
        i = pos * (self._w + 1)
        a = self._arr
        flag = a[i + self._w]
        if flag == 2:
            return None
        if self._w == 2:
            return (_u(a[i]), a[i + 1])
        r = (_u(a[i]), a[i + 1], a[i + 2])
        if flag:
            return (r, None) if flag == 1 else (r, (-1, -1, -1))
        return (r, (_u(a[i + 3]), a[i + 4], a[i + 5]))

    def remap(self, keys: list[str], extra: Mapping[str, Any]) -> SigMap:
        """The signatures of ``keys``: from ``extra`` when there, else from this map (else ``None``),
        copied row by row in numpy (no value built)."""
        import numpy as np

        pos = self._index()
        w1 = self._w + 1
        base = np.frombuffer(self._arr, dtype=np.int64).reshape(-1, w1)
        get = pos.get
        src = np.array([get(k, -1) for k in keys], dtype=np.intp)
        rows = base[src] if len(base) else np.zeros((len(keys), w1), dtype=np.int64)
        missing = src < 0
        if missing.any():
            rows[missing] = 0
            rows[missing, self._w] = 2
        if extra:
            for i in [i for i, k in enumerate(keys) if k in extra]:
                rows[i] = _flat(extra[keys[i]], self._w)
        return SigMap(keys, rows.tobytes(), self._w)

    def __contains__(self, key: object) -> bool:
        return key in self._index()

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def packed_sigs(table: dict[str, Any]) -> None:
    """Make ``table``'s ``sigs`` and ``dsigs`` :class:`SigMap` objects, as in an index read from disk, when
    they are dicts (a table this process built: a cold load). Rewriting changed runs in place needs them."""
    keys = table["keys"]
    for name, width in (("sigs", 6), ("dsigs", 2)):
        sigs = table.get(name)
        if keys and isinstance(sigs, dict):
            table[name] = SigMap(keys, pack(keys, sigs, width), width)
