"""The cache files' seal (``watcher/sealed.py``): CRC-32 below ``sealed._BIG`` (so `list`, which reads only the index's meta part,
never imports numpy), a 64-bit word sum above it; both refuse a flipped byte or a short payload."""
from __future__ import annotations

import subprocess
import sys
import zlib

import pytest

from lumo_hydra.watcher import frame
from lumo_hydra.watcher import sealed as seal


def _damaged(blob: bytes, magic: bytes) -> None:
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x10
    with pytest.raises(ValueError, match="damaged"):
        frame.unsealed(bytes(flipped), magic)
    with pytest.raises(ValueError, match="damaged"):
        frame.unsealed(blob[:-3], magic)


@pytest.mark.parametrize("big", [False, True])
def test_sealed_round_trip_and_damage(monkeypatch: pytest.MonkeyPatch, big: bool) -> None:
    if big:
        monkeypatch.setattr(seal, "_BIG", 64)
    payload = bytes(range(256)) * 41 + b"tail"  # not a multiple of 8 bytes
    blob = frame.sealed(payload, b"TESTMAG1")
    assert bytes(frame.unsealed(blob, b"TESTMAG1")) == payload
    check = int.from_bytes(blob[8:12], "little")
    assert (check == zlib.crc32(payload)) is not big
    _damaged(blob, b"TESTMAG1")


def test_a_15_mb_meta_part_is_checked_by_crc32() -> None:
    payload = b"x" * (15 << 20)
    blob = frame.sealed(payload, b"TESTMAG1")
    assert int.from_bytes(blob[8:12], "little") == zlib.crc32(payload)


def test_reading_a_small_seal_does_not_import_numpy() -> None:
    code = ("import sys; from lumo_hydra.watcher import frame; b = frame.sealed(b'y' * (3 << 20), b'TESTMAG1'); "
            "frame.unsealed(b, b'TESTMAG1'); print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
