"""A cheap change token of a store: one ``stat`` per experiment folder, no reading, no inotify (NFS-safe).

Every lumo-hydra writer marks the experiment folder of the run it writes after replacing ``run.json``,
``metrics.json`` or ``heartbeat`` (:func:`lumo_hydra.store.reader.mark_changed`: the folder's
modification time set to now; notes and tags go through ``edit_record``, which marks too), and
claiming or removing a run folder changes that time by itself. So the ``(inode, mtime_ns)`` of
``experiments/`` and of every experiment folder change whenever anything ``Watcher.load()`` shows
changes. Appends to ``history.jsonl`` mark nothing: the history is not part of ``load()``.

Three refinements:

- a folder marked in the last few seconds could be marked again within the same timestamp tick
  (file systems keep coarse times, and an NFS server's clock may differ a little from ours): then the
  token is new at every call ("maybe changed"), like git's "racily clean" entries;
- a run that stops without an end record turns ``crashed`` once its heartbeat is ``stale_after``
  seconds old, though no file changes: whether each folder was marked within ``stale_after`` is part
  of the token, so it changes when an experiment goes quiet for that long;
- the run folders of the runs known to be unfinished (``live``) are stat'ed too (one ``stat`` each),
  so their progress is seen even when written by a writer that does not mark (an older version).
"""
from __future__ import annotations

import hashlib
import os
import time
from array import array
from collections.abc import Iterable

__all__ = ["change_token"]

# folders marked less than this before the scan may be marked again within the same mtime tick
_RACY_NS = 3_000_000_000
_M = (1 << 63) - 1  # inode numbers are unsigned 64-bit: kept in a signed array


def change_token(experiments_dir: str, stale_after: float, live: Iterable[str] = ()) -> str:
    """The change token of the store whose experiment folders are in ``experiments_dir`` (hex text);
    ``live`` the run folders of unfinished runs (stat'ed one by one)."""
    now = time.time_ns()
    racy_after = now - _RACY_NS
    quiet_after = now - int(stale_after * 1e9)
    vals = array("q")
    add = vals.append
    try:
        st = os.stat(experiments_dir)
        with os.scandir(experiments_dir) as it:
            exps = [e for e in it if e.name[0] != "." and e.is_dir(follow_symlinks=False)]
    except OSError:
        return "none"
    racy = st.st_mtime_ns > racy_after
    add(st.st_ino & _M)
    add(st.st_mtime_ns)
    stats: list[os.stat_result | None] = []
    for e in exps:
        try:
            stats.append(e.stat(follow_symlinks=False))
        except OSError:
            stats.append(None)
    for d in live:
        try:
            stats.append(os.stat(d))
        except OSError:
            stats.append(None)
    for est in stats:
        if est is None:
            add(-1)
            continue
        m = est.st_mtime_ns
        add(est.st_ino & _M)
        add(m)
        add(m > quiet_after)
        racy = racy or m > racy_after
    if racy:
        add(now)
    return hashlib.blake2b(vals.tobytes(), digest_size=12).hexdigest()
