"""The writer side of the store (docs/store.md): names, run-id claiming, records, metrics, heartbeat.

Everything here is plain files and works without Hydra. One ``RunWriter`` is the single writer of one
run folder: it rewrites ``run.json`` and ``metrics.json`` atomically, appends ``history.jsonl`` in
buffered batches and keeps ``heartbeat`` fresh from a daemon thread.
"""
from __future__ import annotations

import json
import os
import random
import re
import socket
import sys
import threading
import time
import weakref
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from ._io import atomic_write_json, atomic_write_text, to_jsonable
from .errors import LumoValueError, StoreError

RECORD_VERSION = 1

NAME_RE = re.compile(r"[A-Za-z0-9_.+-]+")
RUN_ID_RE = re.compile(r"(\d{6})\.(\d{3,})\.([0-9a-z]{2})t")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_CMPS = ("max", "min", None)

#: how often the background thread flushes buffered metrics (seconds, at most)
FLUSH_INTERVAL = 2.0
#: buffered metric points that trigger a flush from ``dump_metric`` itself (bounds memory)
MAX_BUFFER = 200_000


def validate_name(value: Any, key: str = "exp_name") -> str:
    """Return ``value`` if it is a valid experiment name (``[A-Za-z0-9_.+-]+``, not ``.``/``..``)."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value) or value in (".", ".."):
        raise LumoValueError(
            f"invalid {key}: {value!r}; allowed: a non-empty string of letters, digits and _ . + - "
            f"(no slashes or spaces, not '.' or '..')"
        )
    return value


def now_iso(t: float | None = None) -> str:
    """Local time with offset, ISO-8601, milliseconds (``2026-11-28T10:00:00.123+08:00``)."""
    dt = datetime.fromtimestamp(time.time() if t is None else t).astimezone()
    return dt.isoformat(timespec="milliseconds")


def _rand2() -> str:
    r = random.SystemRandom()
    return r.choice(_B36) + r.choice(_B36)


# (parent folder, day) -> (next counter, the parent's mtime_ns right after this process's last claim)
_next_counter: dict[tuple[str, str], tuple[int, int]] = {}


def _day_counter(parent: Path, day: str) -> int:
    """How many runs of ``day`` are in ``parent``, or the highest counter + 1 if that is larger."""
    n = 0
    top = -1
    try:
        with os.scandir(parent) as it:
            for e in it:
                if e.name.startswith(day):
                    m = RUN_ID_RE.fullmatch(e.name)
                    if m:
                        n += 1
                        top = max(top, int(m.group(2)))
    except FileNotFoundError:
        return 0
    return max(n, top + 1)


def claim_dir(parent: str | os.PathLike[str], test_name: str | None = None, *, max_tries: int = 10_000) -> tuple[str, Path]:
    """Claim a new run folder under ``parent`` atomically (``os.mkdir``) and return ``(test_name, path)``.

    Without ``test_name`` a fresh id ``YYMMDD.NNN.RRt`` is made; on a conflict the next counter with
    new random characters is tried. With ``test_name`` exactly that folder is claimed (``StoreError`` if
    it exists). Any other failure to create folders raises ``StoreError`` naming the path.
    """
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the store folder {str(parent)!r}: {e.strerror or e}; "
                         f"set LUMO_HOME (or home=...) to a writable folder") from e
    if test_name is not None:
        validate_name(test_name, "test_name")
        path = parent / test_name
        try:
            os.mkdir(path)
        except FileExistsError as e:
            raise StoreError(f"run folder {str(path)!r} already exists; test_name {test_name!r} is taken") from e
        except OSError as e:
            raise StoreError(f"cannot create the run folder {str(path)!r}: {e.strerror or e}") from e
        return test_name, path
    day = time.strftime("%y%m%d")
    key = (str(parent), day)
    # The folder scan costs O(runs of the day). A process that claimed the last folder here (the parent's
    # mtime has not changed since) knows the next counter without it.
    cached = _next_counter.get(key)
    counter = None
    if cached is not None:
        try:
            if os.stat(parent).st_mtime_ns == cached[1]:
                counter = cached[0]
        except OSError:
            pass
    if counter is None:
        counter = _day_counter(parent, day)
    for _ in range(max_tries):
        name = f"{day}.{counter:03d}.{_rand2()}t"
        path = parent / name
        try:
            os.mkdir(path)
            try:
                _next_counter[key] = (counter + 1, os.stat(parent).st_mtime_ns)
            except OSError:
                _next_counter.pop(key, None)
            return name, path
        except FileExistsError:
            counter += 1
        except OSError as e:
            raise StoreError(f"cannot create the run folder {str(path)!r}: {e.strerror or e}") from e
    raise StoreError(f"could not claim a run id under {str(parent)!r} after {max_tries} tries")  # pragma: no cover


def process_start_time(pid: int | None = None) -> float | None:
    """The process start time as a Unix float, as ``psutil.Process(pid).create_time()`` reports it.

    On Linux it is read from ``/proc`` (the same formula psutil uses, without importing psutil).
    """
    pid = os.getpid() if pid is None else pid
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rfind(b")") + 2:].split()
            ticks = int(fields[19])
            with open("/proc/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"btime"):
                        btime = float(line.split()[1])
                        break
                else:
                    raise OSError("no btime")
            return btime + ticks / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # pragma: no cover
        return None


_pinfo_memo: dict[int, tuple[str, float | None]] = {}


def pinfo() -> dict[str, Any]:
    """``{pid, host, pstart, pname, argv}`` of this process (host and start time looked up once per process)."""
    pid = os.getpid()
    known = _pinfo_memo.get(pid)
    if known is None:
        known = _pinfo_memo[pid] = (socket.gethostname(), process_start_time(pid))
    return {
        "pid": pid,
        "host": known[0],
        "pstart": known[1],
        "pname": os.path.basename(sys.executable),
        "argv": list(sys.argv),
    }


def _num(v: Any) -> Any:
    """A metric value as int/float when possible (numpy/torch scalars via ``.item()``)."""
    t = type(v)
    if t is float or t is int:
        return v
    if t is bool:
        return int(v)
    item = getattr(v, "item", None)
    if callable(item):
        try:
            v = item()
        except Exception:
            pass
    if isinstance(v, (int, float)):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        raise LumoValueError(f"invalid metric value: {v!r}; allowed: a number (int, float or a 0-d tensor/array)") from None


_SPECIAL = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _jnum(v: Any) -> str:
    """JSON text of an int or float (``NaN``/``Infinity`` as Python's json module writes them)."""
    r = repr(v)
    return _SPECIAL.get(r, r) if "n" in r else r


class MetricState:
    """Best/last summary of one metric (one entry of ``metrics.json``)."""

    __slots__ = ("best", "last", "cmp", "count", "best_step", "last_step", "attachments", "time", "jkey")

    def __init__(self, key: str, cmp: str | None) -> None:
        self.cmp = cmp
        self.best: Any = None
        self.last: Any = None
        self.count = 0
        self.best_step: Any = None
        self.last_step: Any = None
        self.attachments: dict[str, Any] = {}
        self.time = 0.0
        self.jkey = json.dumps(key, ensure_ascii=False)

    def as_dict(self) -> dict[str, Any]:
        return {"best": self.best, "last": self.last, "cmp": self.cmp, "count": self.count,
                "best_step": self.best_step, "last_step": self.last_step,
                "attachments": to_jsonable(self.attachments), "time": self.time}


_writers: "weakref.WeakSet[RunWriter]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A forked child (e.g. a DataLoader worker) must not write the parent's run, and must not inherit a
    # lock the parent's heartbeat thread held at fork time.
    for w in list(_writers):
        w._lock = threading.RLock()
        w._beating = False
        w._forked = True
        w._buf = []
    _Beater.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class ForkedWriterError(LumoValueError, RuntimeError):
    """A forked child process tried to write the run of its parent (one writer per run folder)."""


class RunWriter:
    """The one writer of one run folder: ``run.json``, ``metrics.json``, ``history.jsonl``, ``heartbeat``.

    Thread-safe: the metric calls and the heartbeat thread share a re-entrant lock (re-entrant so a
    signal handler that ends the run while the main thread is inside ``dump_metric`` cannot deadlock).
    Holds a thread and a lock, so it does not pickle; it never travels to Hydra jobs.
    """

    def __init__(self, info_dir: str | os.PathLike[str], record: dict[str, Any]) -> None:
        self.info_dir = Path(info_dir)
        self.record = record
        self.metrics: dict[str, MetricState] = {}
        self._buf: list[tuple[MetricState, Any, Any, float]] = []
        self._dirty = False
        self._lock = threading.RLock()
        self._beating = False
        self._pid = os.getpid()
        self._forked = False
        _writers.add(self)

    def _refuse_child(self) -> None:
        raise ForkedWriterError(
            f"this process ({os.getpid()}) is a fork of the run's writer ({self._pid}); a run folder has one "
            f"writer: log from the main process, or start an Experiment of its own in the child")

    # -- records ---------------------------------------------------------------------------------
    def write_record(self) -> None:
        """Rewrite ``run.json`` atomically (updates ``progress.last_edit_time``)."""
        if self._forked:
            self._refuse_child()
        with self._lock:
            prog = self.record.get("progress")
            if isinstance(prog, dict):
                prog["last_edit_time"] = now_iso()
            atomic_write_json(self.info_dir / "run.json", self.record)

    def write_heartbeat(self, t: float | None = None) -> None:
        atomic_write_text(self.info_dir / "heartbeat", repr(time.time() if t is None else t))

    # -- metrics ---------------------------------------------------------------------------------
    def dump_metric(self, key: str, value: Any, cmp: str | None = None, step: Any = None,
                    attachments: dict[str, Any] | None = None) -> Any:
        """Record one point; returns the best value so far. No file I/O (buffered)."""
        if self._forked:
            self._refuse_child()
        v = _num(value)
        with self._lock:
            st = self.metrics.get(key)
            if st is None:
                if cmp not in _CMPS:
                    raise LumoValueError(f"invalid cmp for metric {key!r}: {cmp!r}; allowed: 'max', 'min' or None")
                if type(key) is not str:
                    raise LumoValueError(f"invalid metric key: {key!r}; allowed: a string")
                st = self.metrics[key] = MetricState(key, cmp)
            elif cmp is not None and cmp != st.cmp:
                if cmp not in _CMPS:
                    raise LumoValueError(f"invalid cmp for metric {key!r}: {cmp!r}; allowed: 'max', 'min' or None")
                raise LumoValueError(
                    f"invalid cmp for metric {key!r}: {cmp!r}; allowed: {st.cmp!r} (the metric was first "
                    f"logged with cmp={st.cmp!r}) or None")
            s = st.count if step is None else step
            t = time.time()
            best = st.best
            c = st.cmp
            if (best is None or best != best or c is None
                    or (c == "max" and v > best) or (c == "min" and v < best)):
                st.best = v
                st.best_step = s
                st.attachments = attachments or {}
            st.last = v
            st.last_step = s
            st.count += 1
            st.time = t
            self._buf.append((st, v, s, t))
            self._dirty = True
            if len(self._buf) >= MAX_BUFFER:
                self.flush()
            return st.best

    def flush(self) -> None:
        """Append buffered history lines (one write, O_APPEND) and rewrite ``metrics.json`` atomically."""
        if self._forked:
            return
        with self._lock:
            if not self._dirty:
                return
            buf, self._buf = self._buf, []
            if buf:
                jn = _jnum
                data = "".join([
                    f'{{"k": {st.jkey}, "v": {jn(v)}, "s": '
                    f'{jn(s) if type(s) is int or type(s) is float else json.dumps(to_jsonable(s))}, "t": {t!r}}}\n'
                    for st, v, s, t in buf]).encode("utf-8")
                fd = os.open(self.info_dir / "history.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    view = memoryview(data)
                    while view:
                        n = os.write(fd, view)
                        view = view[n:]
                finally:
                    os.close(fd)
            atomic_write_json(self.info_dir / "metrics.json", self.metrics_dict())
            self._dirty = False

    def metrics_dict(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: st.as_dict() for k, st in self.metrics.items()}

    # -- heartbeat -------------------------------------------------------------------------------
    def start_heartbeat(self, interval: float) -> None:
        """Write ``heartbeat`` now and then every ``interval`` s; buffered metrics are flushed at least
        every ``FLUSH_INTERVAL`` s. The beating is done by one daemon thread per process, shared by all
        open runs (so a job of a sweep does not start a thread of its own)."""
        self.write_heartbeat()
        if interval <= 0:
            return
        with self._lock:
            self._beating = True
        _Beater.add(self, float(interval))

    def beat(self, due: bool) -> None:
        """One tick of the heartbeat thread: flush metrics, and write the heartbeat when ``due``."""
        with self._lock:  # under the lock: once stop_heartbeat() returned, nothing more is written
            if not self._beating:
                return
            self.flush()
            if due:
                self.write_heartbeat()

    def stop_heartbeat(self) -> None:
        with self._lock:
            self._beating = False
        _Beater.remove(self)


class _Beater:
    """The heartbeat thread of this process. It wakes every ``min(FLUSH_INTERVAL, shortest interval)``
    seconds, beats for the runs that are due, and ends after ``IDLE_EXIT`` seconds without open runs
    (the next run starts it again). Adding a run wakes it only when that run needs a shorter tick, so
    the jobs of a sweep cost it nothing but a dictionary entry."""

    IDLE_EXIT = 30.0
    _lock = threading.Lock()
    _wake = threading.Event()
    _runs: dict[RunWriter, list[float]] = {}  # writer -> [interval, next heartbeat (monotonic)]
    _thread: threading.Thread | None = None
    _tick = FLUSH_INTERVAL  # the timeout the thread is waiting with

    @classmethod
    def add(cls, w: RunWriter, interval: float) -> None:
        with cls._lock:
            cls._runs[w] = [interval, time.monotonic() + interval]
            if cls._thread is None:
                cls._tick = min(FLUSH_INTERVAL, interval)
                th = cls._thread = threading.Thread(target=cls._run, name="lumo-hydra-heartbeat", daemon=True)
                th.start()
                return
            wake = interval < cls._tick
        if wake:
            cls._wake.set()

    @classmethod
    def remove(cls, w: RunWriter) -> None:
        with cls._lock:
            cls._runs.pop(w, None)

    @classmethod
    def reset(cls) -> None:
        """After a fork, in the child: no thread, no runs (the parent's runs are not ours)."""
        cls._lock = threading.Lock()
        cls._wake = threading.Event()
        cls._runs = {}
        cls._thread = None
        cls._tick = FLUSH_INTERVAL

    @classmethod
    def _run(cls) -> None:
        idle_since: float | None = None
        while True:
            cls._wake.wait(cls._tick)
            cls._wake.clear()
            now = time.monotonic()
            with cls._lock:
                runs = list(cls._runs.items())
                if not runs:
                    idle_since = idle_since if idle_since is not None else now
                    if now - idle_since >= cls.IDLE_EXIT:
                        cls._thread = None
                        return
                else:
                    idle_since = None
                cls._tick = min([FLUSH_INTERVAL, *(r[0] for _, r in runs)])
            for w, r in runs:
                due = now >= r[1]
                if due:
                    r[1] = now + r[0]
                try:
                    w.beat(due)
                except Exception:  # a full disk must not kill the thread; try again next tick
                    pass


def read_metrics(info_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``metrics.json`` of a run folder, ``{}`` if missing or unreadable."""
    try:
        with open(Path(info_dir) / "metrics.json", "rb") as f:
            data = json.loads(f.read())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def read_history(info_dir: str | os.PathLike[str]) -> Iterable[dict[str, Any]]:
    """The lines of ``history.jsonl`` (a last line without newline is ignored, as the contract says)."""
    try:
        with open(Path(info_dir) / "history.jsonl", "rb") as f:
            data = f.read()
    except OSError:
        return []
    out = []
    for line in data.split(b"\n")[:-1]:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
