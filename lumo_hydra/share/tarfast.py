"""A fast, strict subset of the tar format for packs (docs/share.md, "Speed").

``tarfile`` spends about 0.1 ms of Python per member writing a header and more reading one; a pack of
1,000 runs has 5,000 members. This module writes plain POSIX ustar headers itself (PAX headers through
``tarfile`` only for names that do not fit), gzip-compresses in a background thread (zlib releases the
GIL, so packing and compressing overlap like ``tar | gzip``), and reads back archives made only of
ustar regular files. Anything else (links, folders, devices, PAX or GNU extensions, a bad header
checksum, base-256 sizes, trailing data) makes :func:`read_members` return ``None``: the caller then
reads the archive with ``tarfile`` (``data`` filter), which refuses or handles it.
"""
from __future__ import annotations

import queue
import tarfile
import threading
import zlib
from typing import BinaryIO

__all__ = ["BLOCK", "TarGzWriter", "ustar_header", "gunzip_bounded", "read_members"]

BLOCK = 512
_ZEROS = bytes(BLOCK * 2)
_CHUNK = 1 << 20
_MAGIC_POSIX = b"ustar\x0000"
_MAGIC_GNU = b"ustar  \x00"


_MID = b"%07o\x000000000\x000000000\x00"  # mode, uid, gid
_TAIL = b"0" + bytes(100) + _MAGIC_POSIX + bytes(80)  # type, link name, magic, user/group names, devices
_CONST = sum(b"        ") + sum(_TAIL)
_MID644 = _MID % 0o644
_SUM644 = sum(_MID644)


_PADS = [bytes(100 - i) for i in range(101)]
_TAIL644 = _TAIL + bytes(167)
_CONST644 = _CONST + _SUM644
_MAX = 8 ** 11


def ustar_header(name: str, size: int, mtime: int, mode: int = 0o644) -> bytes:
    """The 512-byte header of a regular file ``name`` (uid/gid 0, no user names); a PAX header first
    when the name does not fit ustar's 100 + 155 ASCII bytes."""
    if mode == 0o644 and len(name) <= 100 and name.isascii() and size < _MAX and 0 <= mtime < _MAX:
        nb = name.encode("ascii")  # the common case, in one expression: a pack has 5 of these per run
        sm = b"%011o\x00%011o\x00" % (size, mtime)
        return b"".join((nb, _PADS[len(nb)], _MID644, sm, b"%06o\x00 " % (_CONST644 + sum(nb) + sum(sm)), _TAIL644))
    try:
        nb = name.encode("ascii")
    except UnicodeEncodeError:
        nb = b"\xff" * 300  # forces the PAX path
    prefix = b""
    if len(nb) > 100 or size >= 8 ** 11 or mtime >= 8 ** 11 or mtime < 0:
        cut = nb.rfind(b"/", 0, 156)
        if cut <= 0 or len(nb) - cut - 1 > 100 or size >= 8 ** 11 or not 0 <= mtime < 8 ** 11:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uname, info.gname = size, mtime, mode, "", ""
            return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        prefix, nb = nb[:cut], nb[cut + 1:]
    mid = _MID644 if mode == 0o644 else _MID % mode
    sm = b"%011o\x00%011o\x00" % (size, mtime)
    chk = _CONST + sum(nb) + (sum(prefix) if prefix else 0) + (_SUM644 if mode == 0o644 else sum(mid)) + sum(sm)
    return b"".join((nb, bytes(100 - len(nb)), mid, sm, b"%06o\x00 " % chk, _TAIL, prefix, bytes(167 - len(prefix))))


class TarGzWriter:
    """Tar members, gzip-compressed (level 6, ``gzip``'s and ``tar czf``'s default) in a background
    thread, written to the binary stream ``raw``. Use as a context manager; an exception inside
    stops the thread and nothing more is written."""

    def __init__(self, raw: BinaryIO, level: int = 6) -> None:
        self._raw = raw
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._buf: list[bytes] = []
        self._n = 0
        self._err: BaseException | None = None
        self._t = threading.Thread(target=self._work, name="lumo-pack-gzip", daemon=True)
        self._t.start()

    def _work(self) -> None:
        try:
            while (chunk := self._q.get()) is not None:
                out = self._z.compress(chunk)
                if out:
                    self._raw.write(out)
            self._raw.write(self._z.flush())
        except BaseException as e:  # noqa: BLE001 (handed to the writing thread)
            self._err = e
            while self._q.get() is not None:  # drain so the producer never blocks
                pass

    def _put(self, b: bytes | memoryview) -> None:
        self._buf.append(bytes(b) if isinstance(b, memoryview) else b)
        self._n += len(b)
        if self._n >= _CHUNK:
            self._send()

    def _send(self) -> None:
        if self._err is not None:
            raise self._err
        if self._buf:
            self._q.put(b"".join(self._buf))
            self._buf, self._n = [], 0

    def add(self, name: str, data: bytes, mtime: int) -> None:
        """One regular file ``name`` holding ``data``."""
        size = len(data)
        pad = -size % BLOCK
        self._buf += (ustar_header(name, size, mtime), data, _ZEROS[:pad])
        self._n += BLOCK + size + pad
        if self._n >= _CHUNK:
            self._send()

    def add_file(self, name: str, path: str, size: int, mtime: int) -> None:
        """One regular file ``name`` streamed from ``path`` (exactly ``size`` bytes are written: a file
        that changed meanwhile is caught by the manifest's checksums at unpack)."""
        self._put(ustar_header(name, size, mtime))
        left = size
        with open(path, "rb") as f:
            while left > 0:
                b = f.read(min(left, _CHUNK))
                if not b:
                    break
                self._put(b)
                left -= len(b)
        if left:
            self._put(bytes(left))
        pad = -size % BLOCK
        if pad:
            self._put(_ZEROS[:pad])

    def close(self, ok: bool = True) -> None:
        """End the archive (two zero blocks) and wait for the compressor; ``ok=False`` only stops it."""
        if ok:
            self._put(_ZEROS)
            self._send()
        self._q.put(None)
        self._t.join()
        if ok and self._err is not None:
            raise self._err

    def __enter__(self) -> TarGzWriter:
        return self

    def __exit__(self, et: object, ev: object, tb: object) -> None:
        self.close(ok=et is None)


def gunzip_bounded(raw: bytes, limit: int) -> bytes | None:
    """The one gzip member in ``raw`` decompressed, or ``None`` when it expands past ``limit`` bytes, is
    not complete, is damaged or is followed by more data (the caller then streams it with ``tarfile``)."""
    d = zlib.decompressobj(31)
    try:
        out = d.decompress(raw, limit + 1)
    except zlib.error:
        return None
    if len(out) > limit or d.unconsumed_tail or not d.eof or d.unused_data:
        return None
    return out


def _octal(field: bytes) -> int | None:
    s = field.rstrip(b"\x00 ").lstrip(b" ")
    if not s or s.strip(b"01234567"):
        return None if s else 0
    return int(s, 8)


def read_members(data: bytes) -> list[tuple[str, int, int]] | None:
    """``(name, offset, size)`` of every member of the uncompressed tar ``data``, when every member is a
    ustar regular file with a valid header; else ``None``."""
    out: list[tuple[str, int, int]] = []
    off, end = 0, len(data)
    zero = _ZEROS[:BLOCK]
    while off + BLOCK <= end:
        h = data[off:off + BLOCK]
        if h == zero:
            return out if not data[off:].strip(b"\x00") else None
        chk = _octal(h[148:156])
        if chk is None or chk != sum(h) - sum(h[148:156]) + 256:
            return None
        magic = h[257:265]
        if h[156] not in (0x30, 0) or magic not in (_MAGIC_POSIX, _MAGIC_GNU):
            return None
        size = _octal(h[124:136])
        if size is None:
            return None
        name_b = h[:100].split(b"\x00", 1)[0]
        prefix = h[345:500].split(b"\x00", 1)[0] if magic == _MAGIC_POSIX else b""
        try:
            name = (prefix + b"/" + name_b if prefix else name_b).decode("utf-8")
        except UnicodeDecodeError:
            return None
        start = off + BLOCK
        if start + size > end:
            return None  # truncated
        out.append((name, start, size))
        off = start + size + (-size % BLOCK)
    return None  # no end-of-archive blocks: truncated
