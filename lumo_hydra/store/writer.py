"""The writer side of the store (docs/store.md): names, run-id claiming, records, metrics, heartbeat.

Everything here is plain files and works without Hydra. One ``RunWriter`` is the single writer of one
run folder: it rewrites ``run.json`` and ``metrics.json`` atomically, appends ``history.jsonl`` in
buffered batches and keeps ``heartbeat`` fresh from a daemon thread.
"""
from __future__ import annotations

import json
import numbers
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lumo_hydra.errors import ForkedWriterError, LumoValueError
from lumo_hydra.store.files import atomic_write_json, atomic_write_text, dumps, mark_changed, to_jsonable
from lumo_hydra.store.layout import HEARTBEAT, HISTORY_JSONL, METRICS_JSON, RUN_JSON
from lumo_hydra.store.times import now_iso

RECORD_VERSION = 1
_CMPS = ("max", "min", None)

#: how often the background thread flushes buffered metrics (seconds, at most)
FLUSH_INTERVAL = 2.0
#: buffered metric points that trigger a flush from ``dump_metric`` itself (bounds memory)
MAX_BUFFER = 200_000
#: points kept in memory while the disk refuses writes (e.g. full); beyond, the oldest are dropped and
#: counted in ``run.json`` under ``store_errors.dropped_points``
MAX_PENDING = 2_000_000

class MetricTypeError(LumoValueError, TypeError):
    """A metric value that is not a number: a ``TypeError`` (issue 11.14) and, as before, a ``LumoValueError``."""


def _num(v: Any, key: Any = None) -> Any:
    """A metric value as int/float: numbers, numpy scalars, 0-d tensors/arrays and 1-d ones of one element
    (``tensor([0.5])``, via ``.item()``). Anything else (strings, bytes, None, arrays of several elements
    or of 2 or more dimensions such as ``np.array([[3.]])``, which usually means an unreduced batch) is a
    ``TypeError`` naming the metric, the value's type and shape (issue 11.14: no silent guess)."""
    t = type(v)
    if t is float or t is int:
        return v
    if t is bool:
        return int(v)
    shape = getattr(v, "shape", None)
    shape = tuple(shape) if isinstance(shape, tuple) else None  # numpy, torch (torch.Size is a tuple)
    if not isinstance(v, (str, bytes, bytearray)) and (shape is None or len(shape) <= 1):
        item = getattr(v, "item", None)
        if callable(item):
            try:
                v = item()
            except Exception:  # e.g. a multi-element array
                pass
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, (int, float)):
            return v
        if isinstance(v, numbers.Real):
            return float(v)
    arr = shape is not None and not isinstance(v, numbers.Real)
    raise MetricTypeError(f"invalid metric value: {_short(v)} for metric {key!r} (type {type(v).__module__}."
                          f"{type(v).__qualname__}{f', shape {shape}' if arr else ''}); allowed: a number (int, float, "
                          f"a numpy scalar, a tensor/array of shape () or (1,))"
                          + ("; reduce it first, e.g. float(x.mean())" if arr else ""))


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


_SPECIAL = {"nan": '{"$float": "nan"}', "inf": '{"$float": "inf"}', "-inf": '{"$float": "-inf"}'}


def _jnum(v: Any) -> str:
    """Standard JSON text of an int or float (a non-finite float as ``{"$float": ...}``, see ``files.dumps``)."""
    r = repr(v)
    return _SPECIAL.get(r, r) if "n" in r else r


def _append_lines(path: Path, buf: list[tuple[MetricState, Any, Any, float]]) -> None:
    """Append the lines of ``buf`` in one O_APPEND write; on failure the file is truncated back to its
    size before the write, so no line is ever partial or glued to the next (raises the ``OSError``)."""
    jn = _jnum
    data = "".join([
        f'{{"k": {st.jkey}, "v": {jn(v)}, "s": '
        f'{jn(s) if type(s) is int or type(s) is float else dumps(s)}, "t": {t!r}}}\n'
        for st, v, s, t in buf]).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
    finally:
        os.close(fd)


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


_writers: weakref.WeakSet[RunWriter] = weakref.WeakSet()


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
        #: after ``start_heartbeat`` (the run has started) a write failure is recorded, never raised
        self.armed = False
        self._warned = False
        self._flush_at = MAX_BUFFER
        self.dropped = 0
        _writers.add(self)

    def _failed(self, what: str, e: OSError) -> None:
        """Record a write failure of an armed writer; warn once on stderr with the path and what to do."""
        err = self.record.setdefault("store_errors", {})
        if isinstance(err, dict):
            err.update(last=f"{what}: {e.strerror or e}", time=now_iso(), dropped_points=self.dropped,
                       count=int(err.get("count", 0)) + 1)
        if not self._warned:
            self._warned = True
            print(f"lumo-hydra: cannot write {what} in {self.info_dir}: {e.strerror or e}; the run goes on, "
                  f"unwritten metric points are kept in memory (up to {MAX_PENDING}) and the writes are retried "
                  f"at the next flush and at end(): free space on that file system", file=sys.stderr, flush=True)

    def _refuse_child(self) -> None:
        raise ForkedWriterError(
            f"this process ({os.getpid()}) is a fork of the run's writer ({self._pid}); a run folder has one "
            f"writer: log from the main process, or start an Experiment of its own in the child")

    # -- records ---------------------------------------------------------------------------------
    def write_record(self) -> bool:
        """Rewrite ``run.json`` atomically (updates ``progress.last_edit_time``). True when it is on disk;
        an armed writer records a failure (``store_errors``, warned once) and returns False."""
        if self._forked:
            self._refuse_child()
        with self._lock:
            prog = self.record.get("progress")
            if isinstance(prog, dict):
                prog["last_edit_time"] = now_iso()
            try:
                atomic_write_json(self.info_dir / RUN_JSON, self.record)
                mark_changed(self.info_dir)  # Watcher.change_token stats experiment folders only
            except OSError as e:
                if not self.armed:
                    raise
                self._failed(RUN_JSON, e)
                return False
            return True

    def discard_empty(self) -> None:
        """Remove the run folder if it is still empty (the first write failed: no empty claimed folder)."""
        try:
            os.rmdir(self.info_dir)
        except OSError:
            pass

    def write_heartbeat(self, t: float | None = None) -> None:
        atomic_write_text(self.info_dir / HEARTBEAT, repr(time.time() if t is None else t))
        mark_changed(self.info_dir)

    # -- metrics ---------------------------------------------------------------------------------
    def dump_metric(self, key: str, value: Any, cmp: str | None = None, step: Any = None,
                    attachments: dict[str, Any] | None = None) -> Any:
        """Record one point; returns the best value so far. No file I/O (buffered)."""
        if self._forked:
            self._refuse_child()
        v = _num(value, key)
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
            if len(self._buf) >= self._flush_at:
                self.flush()
            return st.best

    def flush(self) -> None:
        """Append buffered history lines (one write, O_APPEND) and rewrite ``metrics.json`` atomically."""
        if self._forked:
            return
        with self._lock:
            if not self._dirty:
                return
            buf = self._buf
            if buf:
                try:
                    _append_lines(self.info_dir / HISTORY_JSONL, buf)
                except OSError as e:
                    if not self.armed:
                        raise
                    if len(buf) > MAX_PENDING:  # the bound: drop the oldest, count them
                        self.dropped += len(buf) - MAX_PENDING
                        del buf[:len(buf) - MAX_PENDING]
                    self._flush_at = len(buf) + MAX_BUFFER
                    self._failed(HISTORY_JSONL, e)
                    return
                self._buf = []
                self._flush_at = MAX_BUFFER
            try:
                atomic_write_json(self.info_dir / METRICS_JSON, self.metrics_dict())
                mark_changed(self.info_dir)
            except OSError as e:
                if not self.armed:
                    raise
                self._failed(METRICS_JSON, e)
                return
            self._dirty = False

    def metrics_dict(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: st.as_dict() for k, st in self.metrics.items()}

    # -- heartbeat -------------------------------------------------------------------------------
    def start_heartbeat(self, interval: float) -> None:
        """Write ``heartbeat`` now and then every ``interval`` s; buffered metrics are flushed at least
        every ``FLUSH_INTERVAL`` s. The beating is done by one daemon thread per process, shared by all
        open runs (so a job of a sweep does not start a thread of its own)."""
        self.armed = True
        try:
            self.write_heartbeat()
        except OSError as e:
            self._failed(HEARTBEAT, e)
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
                try:
                    self.write_heartbeat()
                except OSError as e:
                    self._failed(HEARTBEAT, e)

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
    _parent: tuple[int, Callable[[], None]] | None = None  # see watch_parent

    @classmethod
    def add(cls, w: RunWriter, interval: float) -> None:
        with cls._lock:
            cls._runs[w] = [interval, time.monotonic() + interval]
            if cls._thread is None:
                cls._tick = min(FLUSH_INTERVAL, interval)
                th = cls._thread = threading.Thread(target=cls._run, name="lumo-hydra-heartbeat", daemon=True)
                start_thread(th)
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
        cls._parent = None

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
            parent = cls._parent
            if parent is not None and os.getppid() != parent[0]:
                cls._parent = None
                parent[1]()


def start_thread(th: threading.Thread) -> None:
    """Start the daemon thread ``th`` without waiting until it has run: ``Thread.start`` waits for the new
    thread to be scheduled, a scheduler slice (~3 ms) on a busy machine for each of a run's threads
    (issue 18). CPython 3.10-3.12's own steps without that wait, else ``th.start()``. ``th.join()`` (and
    ``is_alive()``) are meaningful once the thread runs: callers first wait for an event its target sets."""
    names = ("_active_limbo_lock", "_limbo", "_start_new_thread")
    lock, limbo, new = (getattr(threading, n, None) for n in names)
    boot = getattr(th, "_bootstrap", None)
    if sys.version_info >= (3, 13) or lock is None or not isinstance(limbo, dict) or new is None or boot is None \
            or not th.daemon:
        th.start()
        return
    with lock:
        limbo[th] = th
    try:
        new(boot, ())
    except BaseException:
        with lock:
            limbo.pop(th, None)
        raise


def watch_parent(pid: int, on_gone: Callable[[], None]) -> None:
    """Call ``on_gone()`` (once, from the heartbeat thread, at its next tick) when this process's parent is
    no longer ``pid`` (it died: the process was re-parented). Checked while open runs keep the thread alive."""
    _Beater._parent = (pid, on_gone)
