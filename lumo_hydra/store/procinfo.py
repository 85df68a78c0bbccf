"""Facts about a process that readers need to judge liveness: pid, host, start time."""
from __future__ import annotations

import os
import socket
import sys
from typing import Any


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
