"""The manifest of a two-process pack written from parts compressed where they were read (issue 14)."""
from __future__ import annotations

import gzip
import io
import json
import sys
import tarfile
import zlib
from pathlib import Path
from typing import Any

from lumo_hydra.share.tarfast import TarGzWriter, deflate_part


def _pack_module() -> Any:
    import lumo_hydra.share.pack  # noqa: F401 (the package's ``pack`` is a function of the same name)

    return sys.modules["lumo_hydra.share.pack"]


def test_a_head_of_plain_pieces_and_parts_compressed_apart_is_one_member(tmp_path: Path) -> None:
    out = tmp_path / "a.tar.gz"
    text = [b'{"a":', b"1" * 5000, b',"b":', b"2" * 70000, b"}"]
    with out.open("wb") as raw, TarGzWriter(raw, 3) as tar:
        tar.add("x.txt", b"hello", 5)
        tar.head("manifest.json", [text[0], deflate_part(text[1], 3), text[2], deflate_part(text[3], 1), text[4]], 7)
    data = out.read_bytes()
    assert len(zlib.decompress(data, 31)) % 512 == 0  # one gzip member: the CRC-32 and length hold
    with tarfile.open(out) as t:
        names = t.getnames()
        assert names == ["manifest.json", "x.txt"]
        assert t.extractfile("manifest.json").read() == b"".join(text)  # type: ignore[union-attr]
        assert t.getmember("manifest.json").mtime == 7
    assert gzip.decompress(data)[:13] == b"manifest.json"


def test_a_head_of_one_piece_is_the_bytes_one_process_writes(tmp_path: Path) -> None:
    outs = []
    for head in (b'{"m":1}', [b'{"m":1}']):
        buf = io.BytesIO()
        with TarGzWriter(buf, 3) as tar:
            tar.add("x", b"y", 1)
            tar.head("manifest.json", head, 2)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]


def test_the_manifest_from_parts_is_the_same_object_as_in_name_order(tmp_path: Path) -> None:
    pack = _pack_module()
    from lumo_hydra.store.layout import StoreLayout

    files = {f"experiments/e/t{i}/f{j}": (f"{i:02d}{j:02d}" * 16, i * 10 + j) for i in (3, 1, 2) for j in (2, 1)}
    files["locks/abcdef12.json"] = ("ab" * 32, 9)
    names = list(files)
    layout = StoreLayout(tmp_path / "store")
    runs = [("e", "t3"), ("e", "t1"), ("e", "t2")]
    whole = pack._manifest(layout, runs, files, {"x": 1}, 5.0)
    assert len(whole) == 1 and isinstance(whole[0], bytes)  # one process: one piece, members in name order
    doc = json.loads(whole[0])
    assert list(doc["members"]) == sorted(files)
    for cut in ((2, 6), (0, 6), (2, 2), (0, 0), (0, 7)):  # this process's entries, the child's, the rest after
        mine = {n: files[n] for n in names[:cut[0]]}
        child = {n: files[n] for n in names[cut[0]:cut[1]]}
        here = {**mine, **{n: files[n] for n in names[cut[1]:]}}  # the child's members are not listed here
        parts = [deflate_part(pack._entries(p.items()).encode(), 3) for p in (mine, child)]
        got = pack._manifest(layout, runs, here, {"x": 1}, 5.0, parts, len(mine))
        text = b"".join(p if isinstance(p, bytes) else zlib.decompressobj(-15).decompress(p[0]) for p in got)
        assert json.loads(text) == doc, cut
