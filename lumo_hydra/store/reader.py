"""The one reader of a run's files (docs/store.md): ``run.json``, ``metrics.json``, ``history.jsonl``,
``heartbeat`` and ``sweep.json``, plus record edits (note, tags) by someone other than the run.

One policy for bad files, used by every reader (the Watcher, the command line, ``Experiment.from_disk``):

- a missing file is normal (a run just claimed, a metric never logged): no warning;
- a damaged file (truncated, not JSON, not an object) is skipped with a :class:`~lumo_hydra.errors.StoreWarning`
  naming the file, through :func:`warn_bad`; a reader never crashes a whole load over one run;
- ``history.jsonl``: a last line without its newline is a line still being written and is ignored
  silently (the contract); a damaged complete line is skipped and counted in one warning per file;
- a caller that needs one record (``show``, ``note``) gets a ``StoreError`` naming the file instead.

Plain files only, no Hydra. Fast paths (:func:`read_sig`, :func:`read_run_files`, :func:`parse_many`)
serve the Watcher's index at 100,000 runs.
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from lumo_hydra.errors import StoreError, StoreWarning
from lumo_hydra.store.files import FLOAT_TAG, atomic_write_json, loads, revive_floats
from lumo_hydra.store.layout import HEARTBEAT, HISTORY_JSONL, METRICS_JSON, RUN_JSON

__all__ = ["FileSig", "RunFiles", "warn_bad", "read_sig", "read_run_files", "parse_many", "parse_record", "reader_name",
           "read_record", "read_record_or_none", "read_json_object_or_none", "read_metrics", "read_history", "read_heartbeat",
           "read_json_object", "edit_record", "mark_changed"]

#: ``(inode, mtime_ns, size)`` of exactly the bytes that were read
FileSig = tuple[int, int, int]


def warn_bad(path: str | os.PathLike[str], what: str, err: Any, *, stacklevel: int = 3) -> None:
    """The one warning for a damaged file: ``lumo-hydra: <what> <path>: <err>`` as a ``StoreWarning``."""
    warnings.warn(f"lumo-hydra: {what} {os.fspath(path)}: {err}", StoreWarning, stacklevel=stacklevel)


def read_sig(path: str) -> tuple[FileSig, bytes]:
    """The content of ``path`` and the ``(inode, mtime_ns, size)`` of exactly the file that was read.

    One ``open``, one ``fstat`` and (usually) one ``read``: the Watcher's index compares the signature
    to know when a record changed. Raises ``OSError``.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        size = st.st_size
        data = os.read(fd, size + 1)  # one byte more: a file grown since fstat is seen (and read to its end)
        if len(data) != size:  # the file changed size since fstat (an in-place writer): read to the end
            chunks = [data]
            while True:
                b = os.read(fd, 65536)
                if not b:
                    break
                chunks.append(b)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return (st.st_ino, st.st_mtime_ns, st.st_size), data


class RunFiles(NamedTuple):
    """``run.json`` and ``metrics.json`` of one run as read from disk (bytes, not parsed yet).

    ``run`` is ``None`` when the folder has no ``run.json`` yet (just claimed) or it could not be read
    (then ``error`` says why). ``metrics`` is ``None`` when there is no ``metrics.json``, or the
    ``OSError`` met reading it (its signature is then ``(-1, -1, -1)``, which never matches a file).
    """

    run_sig: FileSig | None
    run: bytes | None
    metrics_sig: FileSig | None
    metrics: bytes | OSError | None
    error: OSError | None


def read_run_files(info_dir: str) -> RunFiles:
    """Read ``run.json`` and ``metrics.json`` of one run folder (I/O only, safe in a worker thread)."""
    try:
        rsig, rdata = read_sig(f"{info_dir}/{RUN_JSON}")
    except FileNotFoundError:
        return RunFiles(None, None, None, None, None)  # a folder just claimed: its run.json is not written yet
    except OSError as e:
        return RunFiles(None, None, None, None, e)
    msig: FileSig | None
    mdata: bytes | OSError | None
    try:
        msig, mdata = read_sig(f"{info_dir}/{METRICS_JSON}")
    except FileNotFoundError:
        msig, mdata = None, None
    except OSError as e:
        msig, mdata = (-1, -1, -1), e
    return RunFiles(rsig, rdata, msig, mdata, None)


_TAG = f'"{FLOAT_TAG}"'.encode()



def _fast_parser() -> Any:
    """orjson, the optional fast parser (``pip install lumo-hydra[fast]``: same values, about twice as
    fast), or ``None``."""
    import importlib

    try:
        return importlib.import_module("orjson")  # not a static import: type checks pass without it
    except ImportError:  # pragma: no cover - depends on the environment
        return None


_orjson: Any = False  # not looked up yet (imported on first use: ~7 ms the command line's start-up skips)


def _fast() -> Any:
    """The orjson module, or ``None`` without the ``[fast]`` extra."""
    global _orjson
    if _orjson is False:
        _orjson = _fast_parser()
    return _orjson
# digits -> "0", "." -> ".", anything else -> "x": an integer of 19 digits or more (beyond 64 bits, which
# orjson would read as a float) shows as "x" + 19 "0"s; fractions (".0...") and exponents never do
_DIGITS = bytes(48 if 48 <= i <= 57 else 46 if i == 46 else 120 for i in range(256))
_LONG_INT = b"x" + b"0" * 19
# a document with this many brackets may nest deeper than ``json`` (the recursion limit) reads, which
# orjson reads anyway: such a document is parsed by ``json`` alone, so that both readers agree
_DEEP = 400


def reader_name() -> str:
    """The JSON parser :func:`parse_many` uses: ``"orjson"`` (the ``[fast]`` extra) or ``"json"``."""
    return "json" if _fast() is None else "orjson"


def _loads_array(doc: bytes) -> Any:
    """``doc`` (a JSON array) parsed as ``json.loads`` would, or ``None`` if it does not parse. By orjson
    when it is there and the text holds nothing it reads otherwise (a long integer; a bare ``NaN``,
    ``1e400`` or a lone surrogate make it fail: ``None``, and the caller parses the documents one by one)."""
    fast = _fast()
    try:
        if fast is not None and _LONG_INT not in doc.translate(_DIGITS):
            return fast.loads(doc)
        return json.loads(doc)
    except (ValueError, RecursionError):  # orjson's JSONDecodeError is a ValueError; RecursionError: nested
        return None                       # thousands deep


def parse_many(datas: list[bytes]) -> list[dict[str, Any] | ValueError]:
    """Parse many JSON objects; a document that does not parse (or is not an object) becomes its ``ValueError``.

    All documents are parsed in one call when they are all valid, which also makes their keys share
    one string object per distinct key (smaller index, faster loads).
    """
    if not datas:
        return []
    doc = b"[" + b",".join(datas) + b"]"
    out = _loads_array(doc)
    if isinstance(out, list) and len(out) == len(datas) and all(type(x) is dict for x in out):
        fast = _fast() is not None
        tags = _TAG in doc  # one search of them all (most chunks hold no tag)
        for i, d in enumerate(datas):
            if fast and d.count(b"[") + d.count(b"{") >= _DEEP:  # maybe deeper than json reads: as json says
                out[i] = parse_record(d)
            elif tags and _TAG in d:  # a non-finite float written as {"$float": ...}
                out[i] = revive_floats(out[i])
        return out
    return [parse_record(d) for d in datas]


def parse_record(data: bytes) -> dict[str, Any] | ValueError:
    """One JSON object from ``data``, or the ``ValueError`` saying why it is not one."""
    try:
        x = loads(data)
    except ValueError as e:
        return e
    except RecursionError:
        return ValueError("nested too deeply to be a record")
    return x if type(x) is dict else ValueError(f"expected a JSON object, got {type(x).__name__}")


def read_json_object(path: str | os.PathLike[str], what: str = "record") -> dict[str, Any]:
    """The JSON object in ``path``; ``StoreError`` naming the file if it is missing, damaged or not an object."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise StoreError(f"the {what} {os.fspath(path)} cannot be read: {e.strerror or e}") from None
    rec = parse_record(data)
    if isinstance(rec, ValueError):
        raise StoreError(f"the {what} {os.fspath(path)} is damaged ({rec}); it is skipped by the Watcher, "
                         f"and can be repaired by hand or removed with `lumo-hydra rm`") from None
    return rec


def read_record(info_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``run.json`` of a run folder; ``StoreError`` naming the file if it is missing or damaged. The paths
    of a run that moved (unpacked, copied) are re-based on where it is now (store/moved.py)."""
    from lumo_hydra.store.moved import rebase_record

    return rebase_record(info_dir, read_json_object(Path(info_dir) / RUN_JSON, "record"))


def read_json_object_or_none(path: str | os.PathLike[str], what: str = "record", *,
                             stacklevel: int = 2) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None``: silently when the file is missing, with a ``StoreWarning``
    naming it when it exists but cannot be read or is damaged (``stacklevel`` as for ``warnings.warn``,
    counted from the caller of this function)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        warn_bad(path, f"cannot read {what}", e, stacklevel=stacklevel + 1)
        return None
    rec = parse_record(data)
    if isinstance(rec, ValueError):
        warn_bad(path, f"skipped corrupt or truncated {what}", rec, stacklevel=stacklevel + 1)
        return None
    return rec


def read_record_or_none(info_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``run.json`` of a run folder, or ``None`` (with a ``StoreWarning`` if it exists but is damaged)."""
    return read_json_object_or_none(Path(info_dir) / RUN_JSON, "record", stacklevel=3)


def read_metrics(info_dir: str | os.PathLike[str], *, warn: bool = True, stacklevel: int = 2) -> dict[str, Any]:
    """``metrics.json`` of a run folder; ``{}`` if missing, or damaged (then with a ``StoreWarning``;
    ``stacklevel`` as for ``warnings.warn``, counted from the caller)."""
    path = Path(info_dir) / METRICS_JSON
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        if warn:
            warn_bad(path, "cannot read metrics", e, stacklevel=stacklevel + 1)
        return {}
    m = parse_record(data)
    if isinstance(m, ValueError):
        if warn:
            warn_bad(path, "ignored corrupt or truncated metrics", m, stacklevel=stacklevel + 1)
        return {}
    return m


def read_history(info_dir: str | os.PathLike[str], metric: str | None = None, *,
                 stacklevel: int = 2) -> list[dict[str, Any]]:
    """The points of ``history.jsonl`` (``{"k", "v", "s", "t"}`` each), of one ``metric`` or all, in order.

    The part after the last newline (a line still being written) is ignored; damaged complete lines are
    skipped and counted in one ``StoreWarning`` naming the file (``stacklevel`` as for ``warnings.warn``).
    """
    path = Path(info_dir) / HISTORY_JSONL
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    except OSError as e:  # a directory, no permission: damaged, said once
        warn_bad(path, "cannot read history", e, stacklevel=stacklevel + 1)
        return []
    lines = data.split(b"\n")
    lines.pop()  # empty, or a line still being written
    out: list[dict[str, Any]] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            d = loads(line)
            k = d["k"]
        except (ValueError, KeyError, TypeError, RecursionError):
            bad += 1
            continue
        if metric is None or k == metric:
            out.append(d)
    if bad:
        warn_bad(path, f"skipped {bad} corrupt line(s) of", "not a JSON object with a 'k' key", stacklevel=stacklevel + 1)
    return out


def read_heartbeat(info_dir: str | os.PathLike[str]) -> float | None:
    """The Unix time in a run's ``heartbeat`` file, or ``None`` when it is missing or garbled."""
    try:
        with open(os.path.join(info_dir, HEARTBEAT), "rb") as f:
            data = f.read().strip()
    except OSError:
        return None
    try:
        return float(data or b"nan")
    except ValueError:
        return None


def mark_changed(info_dir: str | os.PathLike[str]) -> None:
    """Mark the experiment folder of run folder ``info_dir`` as changed (its modification time set to now),
    after a write of ``run.json``, ``metrics.json`` or ``heartbeat``: ``Watcher.change_token()`` and the
    frame cache stat only the experiment folders. Never raises (a folder that cannot be marked costs
    only the speed of the readers' next check, see ``lumo_hydra.watcher.token``)."""
    try:
        os.utime(os.path.dirname(os.path.abspath(info_dir)))
    except OSError:
        pass


def edit_record(info_dir: str | os.PathLike[str], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply ``edit`` to the run's ``run.json`` and write it back atomically; returns the new record.

    For edits by someone other than the run's writer (``lumo-hydra note``/``tag``, the board): the caller
    checks first that the run is not running (one writer per run folder). ``StoreError`` if the record
    cannot be read or written.
    """
    path = Path(info_dir) / RUN_JSON
    rec = read_json_object(path, "record")
    edit(rec)
    try:
        atomic_write_json(path, rec)
    except OSError as e:
        raise StoreError(f"cannot write the record {path}: {e.strerror or e}; nothing was changed") from None
    mark_changed(info_dir)
    return rec
