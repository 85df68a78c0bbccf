"""A run's console output, recorded: stdout and stderr as the user saw them, into ``output.log``.

:class:`ConsoleOutput` is an experiment hook (row ``output`` of :data:`lumo_hydra.record.hooks.HOOKS`).
At start it puts a pipe (a pseudo-terminal when the stream was a terminal, so ``isatty()``, colours and
progress bars do not change) in place of file descriptors 1 and 2; a thread copies every byte to the
original descriptor first and then into ``<info>/output.log``. Child processes inherit the descriptors,
so their output is recorded too. When stdout and stderr go to the same place, one channel serves both
and their order is kept exactly.

The log is size-bounded: :data:`DEFAULT_LIMIT` bytes (``LUMO_OUTPUT_LIMIT`` = bytes, ``0`` = no limit).
Beyond it the first half and the last half of the limit are kept, with a marker line
``[lumo-hydra: N bytes of output not recorded here]`` where the middle was cut.

At end it restores the descriptors and copies Hydra's job log (``<output_dir>/<job_name>.log``) and the
``.hydra/`` files of the job's output folder into ``<info>/hydra/``. Recording never breaks the run: any
failure to record stops the recording (the terminal keeps getting everything) and is noted in the hook's
message.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from lumo_hydra.record.secrets import Masker
from lumo_hydra.record.secrets import policy as masker_policy

__all__ = ["ConsoleOutput", "OUTPUT_LOG", "HYDRA_FILES_DIR", "DEFAULT_LIMIT", "ENV_LIMIT", "output_limit"]

OUTPUT_LOG = "output.log"
#: the folder of a run's info folder that gets Hydra's job log and ``.hydra/`` files
HYDRA_FILES_DIR = "hydra"
DEFAULT_LIMIT = 10 * 1024 * 1024
ENV_LIMIT = "LUMO_OUTPUT_LIMIT"
_CHUNK = 1 << 20
#: the pipe's buffer (Linux ``F_SETPIPE_SZ``): the copying thread waits for the GIL while the task
#: runs, so a large buffer lets the task keep writing and the thread copy big chunks at once
_PIPE_SIZE = 1 << 20


def output_limit() -> int:
    """The size limit of ``output.log`` in bytes (``LUMO_OUTPUT_LIMIT``; ``0``: none)."""
    raw = os.environ.get(ENV_LIMIT, "").strip()
    if not raw:
        return DEFAULT_LIMIT
    try:
        return max(0, int(raw))
    except ValueError:
        return DEFAULT_LIMIT


class _BoundedLog:
    """``output.log``: the head written as it comes, the tail kept in memory and written at close."""

    def __init__(self, path: Path, limit: int) -> None:
        self._f = open(path, "ab", buffering=0)  # noqa: SIM115 (closed in close())
        self.limit = limit
        self._head_left = limit // 2 if limit else -1
        self._tail = bytearray()
        self._cut = 0
        self._lock = threading.Lock()
        self.failed = ""

    def write(self, data: bytes) -> None:
        if self.failed:
            return
        with self._lock:
            try:
                self._write(data)
            except Exception as e:  # never the user's problem: stop recording, say why
                self.failed = f"{type(e).__name__}: {e}"

    def _write(self, data: bytes) -> None:
        if self._head_left < 0:
            self._f.write(data)
            return
        if self._head_left:
            head, data = data[:self._head_left], data[self._head_left:]
            self._f.write(head)
            self._head_left -= len(head)
        if data:
            self._tail += data
            keep = self.limit - self.limit // 2
            if len(self._tail) > keep:
                drop = len(self._tail) - keep
                self._cut += drop
                del self._tail[:drop]

    def close(self) -> None:
        with self._lock:
            try:
                if self._cut:
                    self._f.write(f"\n[lumo-hydra: {self._cut} bytes of output not recorded here "
                                  f"(limit {self.limit} bytes, {ENV_LIMIT})]\n".encode())
                if self._tail:
                    self._f.write(bytes(self._tail))
                self._tail.clear()
            except Exception as e:
                self.failed = self.failed or f"{type(e).__name__}: {e}"
            finally:
                try:
                    self._f.close()
                except OSError:
                    pass


class _Channel:
    """One replaced descriptor set (``fds``, e.g. ``(1, 2)``): a pipe or pty and the copying thread."""

    def __init__(self, fds: tuple[int, ...], log: _BoundedLog) -> None:
        self.fds = fds
        self.log = log
        self.saved = [os.dup(fd) for fd in fds]
        self.out = self.saved[0]  # where the terminal output goes
        if os.isatty(fds[0]):
            import pty

            self.rfd, wfd = pty.openpty()
            _raw_like(wfd, fds[0])
        else:
            self.rfd, wfd = os.pipe()
            _grow_pipe(wfd)
        for fd in fds:
            os.dup2(wfd, fd)
        os.close(wfd)
        self.ending = threading.Event()  # set by restore(): no more gathering pauses, drain and stop
        self.running = threading.Event()  # set by the thread first: from then on it can be joined
        self.thread = threading.Thread(target=self._copy, name=f"lumo-hydra-output-{fds[0]}", daemon=True)
        from lumo_hydra.store.writer import start_thread

        start_thread(self.thread)

    def _copy(self) -> None:
        self.running.set()
        pending = b""  # the log gets whole lines per channel: stdout and stderr lines never mix
        while True:
            try:
                data = os.read(self.rfd, _CHUNK)
            except InterruptedError:
                continue
            except OSError:  # EIO: a pty whose last writer closed
                break
            if not data:
                break
            _write_all(self.out, data)
            pending += data
            cut = pending.rfind(b"\n") + 1 if len(pending) < _CHUNK else len(pending)
            if cut:
                self.log.write(pending[:cut])
                pending = pending[cut:]
            if len(data) < 4096:  # a trickle of small writes: let them gather (2 ms, GIL released)
                self.ending.wait(0.002)
        if pending:
            self.log.write(pending)

    def restore(self, timeout: float) -> None:
        for fd, saved in zip(self.fds, self.saved):
            os.dup2(saved, fd)
        self.ending.set()
        # the writers left are this process's duplicates (closed now) and children still running
        started = self.running.wait(timeout)
        if started:
            self.thread.join(timeout)
        if started and not self.thread.is_alive():
            os.close(self.rfd)
            for saved in self.saved:
                os.close(saved)
        # else: a child still writes; the daemon thread keeps copying to the terminal until it exits


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            return  # the terminal went away: keep reading so that writers never block
        view = view[n:]


def _grow_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)
    except OSError:  # above /proc/sys/fs/pipe-max-size, or not Linux: the default buffer
        pass


def _raw_like(slave: int, term: int) -> None:
    """No output translation on the pty (the real terminal does it) and the terminal's size."""
    try:
        import fcntl
        import termios

        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        size = fcntl.ioctl(term, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
    except Exception:  # a terminal without these: output still flows
        pass


def _same_target(a: int, b: int) -> bool:
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _flush_std() -> None:
    for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if s is not None:
                s.flush()
        except Exception:
            pass


class ConsoleOutput:
    """The ``output`` hook: records the run's console output into ``output.log`` (see the module)."""

    quick = True
    name = "ConsoleOutput"

    def __init__(self, enabled: bool = True, join_timeout: float = 2.0) -> None:
        self.enabled = bool(enabled)
        self.msg = ""
        self.join_timeout = join_timeout
        self._channels: list[_Channel] = []
        self._log: _BoundedLog | None = None
        self._pid = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "msg": "", "join_timeout": self.join_timeout,
                "_channels": [], "_log": None, "_pid": 0}

    def on_start(self, exp: Any) -> None:
        path = Path(exp.info_dir) / OUTPUT_LOG
        try:
            fds = [fd for fd in (1, 2) if _valid(fd)]
            if not fds:
                self.msg = "no stdout/stderr to record"
                return
            _flush_std()
            self._log = _BoundedLog(path, output_limit())
            if len(fds) == 2 and (_same_target(1, 2) or (os.isatty(1) and os.isatty(2))):
                groups: list[tuple[int, ...]] = [(1, 2)]
            else:
                groups = [(fd,) for fd in fds]
            for g in groups:
                self._channels.append(_Channel(g, self._log))
            self._pid = os.getpid()
            self.msg = str(path)
        except Exception as e:  # recording is optional; the run is not
            self._stop()
            self.msg = f"output not recorded: {type(e).__name__}: {e}"

    def on_end(self, exp: Any) -> None:
        if self._pid and self._pid != os.getpid():
            return
        self._stop()
        if self._log is not None:
            self._add_exception(exp)
            if self._log.failed:
                exp.record.setdefault("hooks", {})[self.name] = {
                    "loaded": False, "msg": f"output recording stopped: {self._log.failed}"}
        copy_hydra_files(exp)

    def _stop(self) -> None:
        if not self._channels:
            if self._log is not None:
                self._log.close()
            return
        _flush_std()
        channels, self._channels = self._channels, []
        for ch in channels:
            try:
                ch.restore(self.join_timeout)
            except Exception:
                pass
        if self._log is not None:
            self._log.close()

    def _add_exception(self, exp: Any) -> None:
        """Python prints an uncaught traceback after the run ended: put it into the log too."""
        exc = exp.record.get("exception")
        tb = exc.get("traceback") if isinstance(exc, dict) else None
        if not tb:
            return
        try:
            with open(Path(exp.info_dir) / OUTPUT_LOG, "a", encoding="utf-8", errors="replace") as f:
                f.write(f"\n[lumo-hydra: the run ended with this exception]\n{tb}")
        except OSError:
            pass


def _valid(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def copy_hydra_files(exp: Any) -> list[str]:
    """Copy ``<output_dir>/<job_name>.log`` and ``<output_dir>/.hydra/*`` into ``<info>/hydra/``."""
    hydra = exp.record.get("hydra")
    if not isinstance(hydra, dict) or not hydra.get("output_dir"):
        return []
    out = Path(str(hydra["output_dir"]))
    dest = Path(exp.info_dir) / HYDRA_FILES_DIR
    sources = []
    if hydra.get("job_name"):
        sources.append(out / f"{hydra['job_name']}.log")
    hd = out / ".hydra"
    if hd.is_dir():
        sources.extend(sorted(p for p in hd.iterdir() if p.is_file()))
    copied: list[str] = []
    data: dict[Path, bytes] = {}
    for src in sources:
        try:
            data[src] = src.read_bytes()
        except OSError:
            pass
    masker = None
    if any(masker_policy().may_name_a_secret(b.decode("utf-8", "replace")) for b in data.values()):
        masker = _hydra_masker(hd)  # parsing Hydra's YAML costs tens of ms: only when a secret may be there
    for src, raw in data.items():
        try:
            dest.mkdir(exist_ok=True)
            _copy_masked(src, raw, dest / src.name, masker)
            copied.append(str(dest / src.name))
        except OSError:
            pass
    return copied


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return None


def _mask_doc(masker: Masker, doc: Any) -> Any:
    """A YAML document of Hydra's with secret keys masked and lists of overrides masked as overrides."""
    doc = masker.mapping(doc)

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            if x and all(isinstance(v, str) for v in x):
                return masker.overrides(x)
            return [walk(v) for v in x]
        return x

    return walk(doc)


def _hydra_masker(hd: Path) -> Masker:
    """A masker that has seen the secret values of the job's overrides and composed config."""
    masker = Masker()
    for name in ("overrides.yaml", "config.yaml", "hydra.yaml"):
        _mask_doc(masker, _load_yaml(hd / name))
    return masker


def _copy_masked(src: Path, data: bytes, dst: Path, masker: Masker | None) -> None:
    """Write ``src``'s bytes ``data`` to ``dst``; with a masker, Hydra's YAML files are re-written with
    secrets masked, and every text file has the secret values seen in them replaced by ``***`` (see
    docs/security.md)."""
    if masker is not None and src.suffix == ".yaml":
        doc = _load_yaml(src)
        if doc is not None:
            import yaml

            dst.write_text(yaml.safe_dump(masker.scrub(_mask_doc(masker, doc)), sort_keys=False), encoding="utf-8")
            return
    if masker is None or not masker.values:
        dst.write_bytes(data)
        return
    text = data.decode("utf-8", errors="surrogateescape")
    dst.write_bytes(str(masker.scrub(text)).encode("utf-8", errors="surrogateescape"))
