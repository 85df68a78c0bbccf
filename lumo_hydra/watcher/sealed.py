"""Cache files that detect their own damage: a magic, a check value and the length before the payload
(the Watcher's index, body and frame cache files, see ``lumo_hydra.watcher.index``)."""
from __future__ import annotations

import zlib
from typing import Any

__all__ = ["sealed", "unsealed", "write_sealed"]

# payloads of at least this many bytes are checked by a sum of their 64-bit words in numpy (several
# times faster than CRC-32 on 100 MB; any single flipped bit or short write still changes it). Below it,
# CRC-32 (about 6 ms for the 15 MB meta part of a 100,000-run index), so that `list`, which reads only
# that part, never imports numpy (~0.1 s)
_BIG = 64 << 20
_M64 = (1 << 64) - 1


class _Sum:
    """The running check value of a payload given in parts: CRC-32 of a small payload, the sum modulo
    2**64 of its little-endian 64-bit words (the last one zero-padded) plus its length for a big one."""

    __slots__ = ("big", "crc", "total", "tail", "n")

    def __init__(self, size: int) -> None:
        self.big = size >= _BIG
        self.crc = 0
        self.total = 0
        self.tail = b""
        self.n = 0

    def add(self, part: Any) -> None:
        part = memoryview(part).cast("B")
        self.n += len(part)
        if not self.big:
            self.crc = zlib.crc32(part, self.crc)
            return
        import numpy as np

        if self.tail:  # complete the word left over from the previous part
            k = min(8 - len(self.tail), len(part))
            self.tail += bytes(part[:k])
            part = part[k:]
            if len(self.tail) < 8:
                return
            self.total = (self.total + int.from_bytes(self.tail, "little")) & _M64
            self.tail = b""
        whole = len(part) // 8 * 8
        if whole:
            self.total = (self.total + int(np.frombuffer(part[:whole], dtype="<u8").sum(dtype=np.uint64))) & _M64
        self.tail = bytes(part[whole:])

    def value(self) -> int:
        if not self.big:
            return self.crc
        total = (self.total + int.from_bytes(self.tail, "little") + self.n) & _M64
        return (total ^ (total >> 32)) & 0xFFFFFFFF


def _check(parts: list[Any], size: int) -> int:
    s = _Sum(size)
    for p in parts:
        s.add(p)
    return s.value()


def sealed(payload: bytes, magic: bytes) -> bytes:
    """``magic``, the check value (CRC-32, or a word sum for big payloads) and the length of ``payload``,
    then ``payload``: a cache file whose damage (a garbled byte, a short write) is detected when it is
    read back, never returned as a value."""
    return magic + _check([payload], len(payload)).to_bytes(4, "little") + len(payload).to_bytes(8, "little") + payload


def write_sealed(f: Any, parts: list[bytes], magic: bytes) -> None:
    """Write ``sealed(b"".join(parts), magic)`` to the binary file ``f`` without joining the parts (a
    cache file of 100,000 runs is hundreds of MB: no copy of it in memory)."""
    size = sum(len(p) for p in parts)
    if len(parts) > 64:  # many small parts (the index's chunks): one copy is cheaper than a check per part
        parts = [b"".join(parts)]
    f.write(magic + _check(parts, size).to_bytes(4, "little") + size.to_bytes(8, "little"))
    for p in parts:
        f.write(p)


def unsealed(data: bytes, magic: bytes) -> memoryview:
    """The payload of a :func:`sealed` file; ``ValueError`` if it is not one or is damaged."""
    m = len(magic)
    if data[:m] != magic:
        raise ValueError("not a cache file of this version")
    crc = int.from_bytes(data[m:m + 4], "little")
    n = int.from_bytes(data[m + 4:m + 12], "little")
    payload = memoryview(data)[m + 12:]
    if len(payload) != n or _check([payload], n) != crc:
        raise ValueError("damaged cache file (checksum)")
    return payload
