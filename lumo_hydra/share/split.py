"""A pack of many runs read by two processes (docs/share.md, "Speed").

``tar czf`` is two processes, ``tar`` and ``gzip``, on two cores; one Python process reading 5,000 small
files is held by its interpreter (the GIL: a second thread does not help). So ``pack`` forks once: the
child reads, hashes and compresses the second half of the runs into a deflate part of its own and hands
it back through a pipe (``marshal``: bytes, numbers, strings, lists and dicts), which the parent puts in
its stream (:meth:`~lumo_hydra.share.tarfast.TarGzWriter.splice`), as ``pigz`` joins its blocks. Only
where ``os.fork`` exists, from a process with no other thread running (a fork
copies no thread, and a lock another thread holds would stay locked in the child); ``lumo-hydra pack``
also only when a core looks idle.
"""
from __future__ import annotations

import os
import threading

from lumo_hydra.store.forked import Child, settle

__all__ = ["Child", "can_fork", "LOADAVG"]

#: Linux's load figures: the fourth field, ``running/total``, counts the tasks running right now
LOADAVG = "/proc/loadavg"


def can_fork(idle: bool = False) -> bool:
    """Whether a second packing process can run: ``os.fork`` and no other thread running; ``idle``: and a
    core looks free for it (else two processes only slow each other down): on Linux, the tasks running
    right now (``/proc/loadavg``) besides this one leave two usable cores; elsewhere the 1-minute load
    average leaves one. The reaper threads of earlier forks are waited for first (``settle``)."""
    settle()
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    if not idle:
        return True
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        with open(LOADAVG, "rb") as f:
            others = int(f.read().split()[3].split(b"/")[0]) - 1  # "running/total": this process is running
        return cores - others >= 2
    except (OSError, ValueError, IndexError):
        return cores - (os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0) >= 1.0
