"""``tarfast.read_members``' fast path for the headers ``ustar_header`` writes (lumo_hydra/share/tarfast.py):
the same members as ``tarfile`` reads, and any damaged or unusual header refused or read the general way."""
from __future__ import annotations

import importlib
import io
import tarfile

import pytest

TF = importlib.import_module("lumo_hydra.share.tarfast")


def _tar(files: dict[str, bytes]) -> bytes:
    out = []
    for name, data in files.items():
        out += [TF.ustar_header(name, len(data), 1_700_000_000), data, bytes(-len(data) % 512)]
    return b"".join(out) + bytes(1024)


FILES = {"manifest.json": b"{}", "experiments/e/t1/run.json": b"x" * 700, "experiments/e/t1/empty": b"",
         "a/" + "long/" * 30 + "name.txt": b"prefix or PAX header: the general path", "z.log": b"z" * 512}


def test_the_writers_headers_are_read_without_the_general_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _tar({k: v for k, v in FILES.items() if len(k) <= 100})
    monkeypatch.setattr(TF, "_octal", lambda field: pytest.fail("the general path read a plain header"))
    got = TF.read_members(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert got == [(m.name, m.offset_data, m.size) for m in t.getmembers()]


def test_mixed_headers_read_as_tarfile_reads_them() -> None:
    data = _tar(FILES)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        ref = [(m.name, m.offset_data, m.size) for m in t.getmembers()]
    got = TF.read_members(data)
    assert got is None or got == ref  # a PAX header is not plain ustar: None sends the caller to tarfile
    plain = _tar({"b" * 60 + "/" + "c" * 60: b"prefix field"})  # fits ustar with a prefix: general path
    with tarfile.open(fileobj=io.BytesIO(plain)) as t:
        assert TF.read_members(plain) == [(m.name, m.offset_data, m.size) for m in t.getmembers()]


@pytest.mark.parametrize(("at", "byte"), [(0, b"X"), (50, b"\x01"), (125, b"7"), (130, b"+"), (140, b"1"),
                                          (149, b"8"), (135, b"1"), (200, b"\x01"), (400, b"\x01")])
def test_a_changed_header_byte_is_refused_or_read_the_general_way(at: int, byte: bytes) -> None:
    data = bytearray(_tar({"experiments/e/t1/run.json": b"x" * 700}))
    if data[at:at + 1] == byte:
        byte = b"Y"
    data[at:at + 1] = byte
    got = TF.read_members(bytes(data))
    assert got is None  # a wrong checksum (or an unusual field) is refused: the caller reads it with tarfile
