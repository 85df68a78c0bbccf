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

import collections
import struct
import threading
import zlib
from typing import Any, BinaryIO

__all__ = ["BLOCK", "TarGzWriter", "Part", "deflate_part", "ustar_header", "gunzip_bounded", "read_members",
           "crc32_combine"]

BLOCK = 512
_ZEROS = bytes(BLOCK * 2)
_CHUNK = 1 << 20
#: tar bytes handed to the compressor thread at a time: small enough that the last one, compressed after
#: the members are read, is a short wait (~0.3 ms at level 3)
_SEND = 1 << 18
_MAGIC_POSIX = b"ustar\x0000"
_MAGIC_GNU = b"ustar  \x00"


_MID = b"%07o\x000000000\x000000000\x00"  # mode, uid, gid
_TAIL = b"0" + bytes(100) + _MAGIC_POSIX + bytes(80)  # type, link name, magic, user/group names, devices
_CONST = sum(b"        ") + sum(_TAIL)  # the checksum field counts as 8 spaces
_MID644 = _MID % 0o644
adler32 = zlib.adler32
_START644 = adler32(_MID644)
_PADS = [bytes(100 - i) for i in range(101)]
_PADS167 = [bytes(167 - i) for i in range(156)]  # after a prefix of i bytes
_TAIL644 = _TAIL + bytes(167)  # no prefix (read_members' fast path)
_MAX = 8 ** 11


def ustar_header(name: str, size: int, mtime: int, mode: int = 0o644) -> bytes:
    """The 512-byte header of a regular file ``name`` (uid/gid 0, no user names); a PAX header first
    when the name does not fit ustar's 100 + 155 ASCII bytes (a pack has 5 of these per run)."""
    nb = name.encode("ascii") if name.isascii() else b"\xff" * 300  # not ASCII: the PAX path
    prefix = b""
    if len(nb) > 100 or size >= _MAX or not 0 <= mtime < _MAX:
        cut = nb.rfind(b"/", 0, 156)
        if cut <= 0 or len(nb) - cut - 1 > 100 or size >= _MAX or not 0 <= mtime < _MAX:
            import tarfile  # here: only a name that does not fit ustar needs it

            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uname, info.gname = size, mtime, mode, "", ""
            return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        prefix, nb = nb[:cut], nb[cut + 1:]
    mid, start = (_MID644, _START644) if mode == 0o644 else (_MID % mode, adler32(_MID % mode))
    sm = b"%011o\x00%011o\x00" % (size, mtime)
    # the checksum is the sum of the header's bytes; the sum of those that vary (at most 255 * 127 + 48 * 55,
    # under adler32's modulus 65521) is adler32's low half minus one, in C (``start``: adler32 of ``mid``)
    chk = _CONST - 1 + (adler32(nb + prefix + sm, start) & 0xFFFF)
    return b"".join((nb, _PADS[len(nb)], mid, sm, b"%06o\x00 " % chk, _TAIL, prefix, _PADS167[len(prefix)]))


_POLY = 0xEDB88320  # CRC-32's polynomial, bit-reflected
_X2N: list[int] = []  # x^(2^k) modulo the polynomial, k = 0..31


def _multmodp(a: int, b: int) -> int:
    """``a * b`` modulo CRC-32's polynomial (reflected; zlib's ``multmodp``)."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of ``A + B`` from ``crc1 = crc32(A)``, ``crc2 = crc32(B)`` and ``len(B)`` (zlib's
    ``crc32_combine``, which Python's ``zlib`` does not expose: ``crc1`` times x^(8 len2), plus ``crc2``)."""
    if len2 <= 0:
        return crc1
    if not _X2N:
        p = 1 << 30  # x^1
        for _ in range(32):
            _X2N.append(p)
            p = _multmodp(p, p)
    p, n, k = 1 << 31, len2, 3  # x^0; x^(8 len2) = x^(len2 * 2^3)
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


#: what ``zlib`` writes as the gzip header (no name, time 0, Unix): a pack's bytes depend on its members only
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
_SPOOL = 64 << 20  # compressed bytes held in memory before they go to a temporary file


#: bytes compressed apart: ``(raw deflate ending with a sync flush, CRC-32 of the bytes, their length)``
Part = tuple[bytes, int, int]
#: what the compressor thread is handed: tar bytes, a part compressed elsewhere (``splice``), or the end
_Item = bytes | Part | None


def deflate_part(data: bytes, level: int = 6) -> Part:
    """``data`` compressed on its own as a :data:`Part` of a stream (``TarGzWriter.splice``/``head``)."""
    z = zlib.compressobj(level, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(data), len(data)


class _Chunks:
    """A first-in first-out queue of at most ``size`` chunks between two threads (``queue.Queue``'s job,
    without importing ``queue``: a command pays for every module)."""

    def __init__(self, size: int) -> None:
        self._items: collections.deque[_Item] = collections.deque()
        self._free, self._full = threading.Semaphore(size), threading.Semaphore(0)

    def put(self, item: _Item) -> None:
        self._free.acquire()
        self._items.append(item)
        self._full.release()

    def get(self) -> _Item:
        self._full.acquire()
        item = self._items.popleft()
        self._free.release()
        return item


class TarGzWriter:
    """Tar members, gzip-compressed at ``level`` (6 by default, as ``gzip`` and ``tar czf``; ``pack``
    uses 3) in a background thread, written to the binary stream ``raw``. Use as a context manager; an exception inside
    stops the thread and nothing more is written.

    ``head()`` gives the first member after the others were added (a pack's manifest holds the
    checksums of the members after it): the members are compressed while they are read, into memory
    (a temporary file in ``spool_dir`` past 64 MiB); at the end the head is compressed alone and the
    two deflate streams are joined into one gzip member, as ``pigz`` joins its blocks (the head's part
    ends on a byte boundary with a sync flush, the CRC-32s are combined): any gzip reader reads it.

    The same way, ``splice()`` puts a part compressed by another process in the stream, and a writer
    made with ``raw=None`` makes such a part: ``part()`` ends it and returns it instead of writing a file."""

    def __init__(self, raw: BinaryIO | None, level: int = 6, spool_dir: str | None = None) -> None:
        self._raw = raw
        self._level = level
        self._z = zlib.compressobj(level, zlib.DEFLATED, -15)  # raw deflate: the gzip frame is written here
        self._crc = 0
        self._len = 0
        self._head: list[bytes | Part] | bytes | None = None
        self._spool_dir = spool_dir
        self._out: list[bytes] = []
        self._out_n = 0
        self._file: BinaryIO | None = None
        self._q = _Chunks(16)
        self._buf: list[bytes] = []
        self._n = 0
        self._err: BaseException | None = None
        self._ended = False
        self._t = threading.Thread(target=self._work, name="lumo-pack-gzip", daemon=True)
        self._t.start()

    def _keep(self, out: bytes) -> None:
        if not out:
            return
        if self._file is None and self._out_n + len(out) > _SPOOL:
            import tempfile

            self._file = tempfile.TemporaryFile(dir=self._spool_dir)  # type: ignore[assignment]  # noqa: SIM115 (closed by close())
            for b in self._out:
                self._file.write(b)  # type: ignore[union-attr]
            self._out = []
        if self._file is not None:
            self._file.write(out)
        else:
            self._out.append(out)
            self._out_n += len(out)

    def _work(self) -> None:
        try:
            while (chunk := self._q.get()) is not None:
                if isinstance(chunk, tuple):  # a part compressed elsewhere: end ours on a byte boundary, then a new stream
                    data, crc, n = chunk
                    self._keep(self._z.flush(zlib.Z_SYNC_FLUSH))
                    self._keep(data)
                    self._crc, self._len = crc32_combine(self._crc, crc, n), self._len + n
                    self._z = zlib.compressobj(self._level, zlib.DEFLATED, -15)
                    continue
                self._crc = zlib.crc32(chunk, self._crc)
                self._len += len(chunk)
                self._keep(self._z.compress(chunk))
            self._keep(self._z.flush(zlib.Z_FINISH if self._raw is not None else zlib.Z_SYNC_FLUSH))
        except BaseException as e:  # noqa: BLE001 (handed to the writing thread)
            self._err = e
            while self._q.get() is not None:  # drain so the producer never blocks
                pass

    def _put(self, b: bytes | memoryview) -> None:
        self._buf.append(bytes(b) if isinstance(b, memoryview) else b)
        self._n += len(b)
        if self._n >= _SEND:
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
        if self._n >= _SEND:
            self._send()

    def add_file(self, name: str, path: str, size: int, mtime: int, hasher: Any = None) -> None:
        """One regular file ``name`` streamed from ``path`` (exactly ``size`` bytes are written: a file
        that changed meanwhile is caught by the manifest's checksums at unpack); ``hasher`` (a
        ``hashlib`` object) is fed the bytes written."""
        self._put(ustar_header(name, size, mtime))
        left = size
        with open(path, "rb") as f:
            while left > 0:
                b = f.read(min(left, _CHUNK))
                if not b:
                    break
                if hasher is not None:
                    hasher.update(b)
                self._put(b)
                left -= len(b)
        if left:
            if hasher is not None:
                hasher.update(bytes(left))
            self._put(bytes(left))
        pad = -size % BLOCK
        if pad:
            self._put(_ZEROS[:pad])

    def splice(self, data: bytes, crc: int, length: int) -> None:
        """The members of another writer's ``part()`` (``data``: raw deflate ending with a sync flush, of
        ``length`` tar bytes with CRC-32 ``crc``), after the members added so far."""
        self._send()
        self._q.put((data, crc, length))

    def part(self) -> tuple[bytes, int, int]:
        """End a writer made with ``raw=None``: ``(raw deflate ending with a sync flush, CRC-32, length)``
        of the members added (no end-of-archive blocks), for another writer's ``splice()``."""
        self._ended = True
        self._send()
        self._q.put(None)
        self._t.join()
        if self._err is not None:
            raise self._err
        if self._file is not None:
            self._file.seek(0)
            data = self._file.read()
            self._file.close()
        else:
            data = b"".join(self._out)
        return data, self._crc, self._len

    def head(self, name: str, data: bytes | list[bytes | Part], mtime: int) -> None:
        """The regular file ``name`` holding ``data`` as the archive's first member (call once, last);
        ``data`` may be a list of pieces: bytes, or parts already compressed (:func:`deflate_part`, done
        while other work went on), in order."""
        pieces = [data] if isinstance(data, bytes) else data
        size = sum(len(p) if isinstance(p, bytes) else p[2] for p in pieces)
        self._head = [ustar_header(name, size, mtime), *pieces, _ZEROS[:-size % BLOCK]]

    def close(self, ok: bool = True) -> None:
        """End the archive (two zero blocks) and wait for the compressor; ``ok=False`` only stops it."""
        if self._ended:
            return
        self._ended = True
        if ok:
            self._put(_ZEROS)
            self._send()
        self._q.put(None)
        self._t.join()
        if not ok:
            if self._file is not None:
                self._file.close()
            return
        if self._err is not None:
            raise self._err
        raw = self._raw
        assert raw is not None, "a part (raw=None) is ended by part()"
        raw.write(_GZIP_HEADER)
        crc, n, plain = 0, 0, []
        head = self._head or []
        for p in [*([head] if isinstance(head, bytes) else head), None]:  # plain runs compressed together, parts kept
            if isinstance(p, bytes):
                plain.append(p)
                continue
            if plain or p is None:
                data, plain = b"".join(plain), []
                z = zlib.compressobj(self._level, zlib.DEFLATED, -15)
                raw.write(z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH))
                crc, n = zlib.crc32(data, crc), n + len(data)
            if p is not None:
                raw.write(p[0])
                crc, n = crc32_combine(crc, p[1], p[2]), n + p[2]
        if self._file is not None:
            self._file.seek(0)
            while b := self._file.read(_CHUNK):
                raw.write(b)
            self._file.close()
        else:
            for b in self._out:
                raw.write(b)
        crc = crc32_combine(crc, self._crc, self._len)
        raw.write(struct.pack("<II", crc, (n + self._len) & 0xFFFFFFFF))

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
    tail, mid, const = _TAIL644, _MID644, 256 + sum(_TAIL644)  # the checksum field counts as 8 spaces
    while off + BLOCK <= end:
        h = data[off:off + BLOCK]
        if h[156:] == tail and h[100:124] == mid and h[135] == 0 and h[154:156] == b"\x00 " \
                and (sf := h[124:135]).isdigit() and (cf := h[148:154]).isdigit():
            # the header ustar_header writes for a regular file (mode 644, no prefix, no user names): every
            # byte after the checksum is known, so the sum of the first 148 (under adler32's modulus: exact)
            # plus a constant is the checksum. Anything else takes the general path below
            try:
                fsize, fchk = int(sf, 8), int(cf, 8)
            except ValueError:  # an 8 or a 9
                return None
            if (zlib.adler32(h[:148]) & 0xFFFF) - 1 + const != fchk:
                return None
            try:
                name = h[:100].split(b"\x00", 1)[0].decode("utf-8")
            except UnicodeDecodeError:
                return None
            start = off + BLOCK
            if start + fsize > end:
                return None  # truncated
            out.append((name, start, fsize))
            off = start + fsize + (-fsize % BLOCK)
            continue
        if h == zero:
            return out if not data[off:].strip(b"\x00") else None
        chk = _octal(h[148:156])
        # the header checksum is the sum of its bytes with the checksum field as spaces; adler32's low half
        # is 1 + that sum modulo 65521, in C (a Python sum() of 512 bytes is most of reading a header).
        # Exact up to multiples of 65521: the gzip CRC-32 and each member's sha256 check every byte anyway
        if chk is None or (zlib.adler32(h) & 0xFFFF) != (1 + chk - 256 + sum(h[148:156])) % 65521:
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
