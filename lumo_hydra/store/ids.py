"""Run ids: names, and claiming a new run folder atomically (exclusive ``mkdir``, retry on conflict).

Claiming costs the same in an empty experiment folder and in one holding 50,000 runs: the counter of
the day comes from a small hint, not from listing the folder. Each folder of runs ``<base>/<name>``
(an experiment, or the sweeps folder) keeps ``<base>/.lumo-ids/<name>/<YYMMDD>/`` beside it (a dot-name
that readers skip; the folder of runs itself holds only runs):

- ``NNN``: an empty folder per counter taken that day, claimed with an exclusive ``os.mkdir`` (atomic
  on local file systems and NFS, no locks): two runs never get the same counter, even from a hint
  that is behind;
- ``next``: the hint, the next counter as text of a fixed width, written in place after each claim (one
  small ``pwrite``: no rename, which costs ext4 a flush when it replaces a file). A hint that is missing,
  garbled (a write cut short) or behind costs a bounded probe of the markers (a doubling search:
  O(log n) ``stat`` calls), never a listing of the folder.

The run folder ``YYMMDD.NNN.RRt`` itself is then claimed with an exclusive ``os.mkdir`` too. Only the
first claim ever in a folder with no ids folder yet (a store of an older version) lists the folder,
once, to go past the runs of the day already there.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

from lumo_hydra.errors import LumoValueError, StoreError

# ``NAME_RE`` and ``RUN_ID_RE`` are compiled on first use (module ``__getattr__``): a recorded job checks
# names with a set, and compiling them cost every process ~0.2 ms (issue 18)
_PATTERNS = {"NAME_RE": r"[A-Za-z0-9_.+-]+", "RUN_ID_RE": r"(\d{6})\.(\d{3,})\.([0-9a-z]{2})t"}
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
#: the claim markers and hints of a folder of runs (a dot-name: never a run id, skipped by readers)
IDS_DIR = ".lumo-ids"
_HINT = "next"
_MAX_HINT = 10**7  # a larger hint is garbled
_CONFLICTS_BEFORE_PROBE = 3
#: days of claim markers kept (today and the days before, for clocks a little behind); older days'
#: folders are retired by one rename each and their markers removed a bounded number per claim
KEEP_DAYS = 7
_GC_BUDGET = 256
_RETIRED = ".old"


def __getattr__(name: str) -> Any:
    pattern = _PATTERNS.get(name)
    if pattern is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    compiled = globals()[name] = re.compile(pattern)
    return compiled


def validate_name(value: Any, key: str = "exp_name") -> str:
    """Return ``value`` if it is a valid experiment name (``[A-Za-z0-9_.+-]+``, not ``.``/``..``)."""
    if not isinstance(value, str) or not value or not _NAME_CHARS.issuperset(value) or value[0] in ".-":
        raise LumoValueError(
            f"invalid {key}: {value!r}; allowed: a non-empty string of letters, digits and _ . + - "
            f"(no slashes or spaces, not starting with '.' or '-')"
        )
    return value


def _rand2() -> str:
    r = random.SystemRandom()
    return r.choice(_B36) + r.choice(_B36)


def _day_counter(parent: Path, day: str) -> int:
    """How many runs of ``day`` are in ``parent``, or the highest counter + 1 if that is larger (a listing:
    only for a folder that has no ids folder yet)."""
    n = 0
    top = -1
    run_id = __getattr__("RUN_ID_RE")
    try:
        with os.scandir(parent) as it:
            for e in it:
                if e.name.startswith(day):
                    m = run_id.fullmatch(e.name)
                    if m:
                        n += 1
                        top = max(top, int(m.group(2)))
    except FileNotFoundError:
        return 0
    return max(n, top + 1)


def _read_hint(day_dir: str) -> int | None:
    try:
        with open(os.path.join(day_dir, _HINT), "rb") as f:
            text = f.read(32)
        n = int(text)
    except (OSError, ValueError):
        return None
    return n if 0 <= n < _MAX_HINT else None


def _write_hint(day_dir: str, n: int) -> None:
    """Write the hint in place, always 9 bytes (``%8d\\n``: the whole file is replaced by one write, a
    reader sees the old hint or the new one, at worst a garbled one); a hint that cannot be written
    costs the next claim a probe, nothing more (the markers, not the hint, make claims unique)."""
    try:
        fd = os.open(os.path.join(day_dir, _HINT), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, b"%8d\n" % n, 0)
            if os.fstat(fd).st_size > 9:  # longer garbage left by something else
                os.ftruncate(fd, 9)
        finally:
            os.close(fd)
    except OSError:
        pass


def _probe(day_dir: str, lo: int) -> int:
    """A counter at or above ``lo`` with no marker, next to a taken one: a doubling search, then a halving
    one (O(log n) ``lstat`` calls; markers are dense from where the day started)."""
    def taken(k: int) -> bool:
        return os.path.lexists(os.path.join(day_dir, f"{k:03d}"))

    if not taken(lo):
        return lo
    step = 1
    while taken(lo + step):
        lo, step = lo + step, step * 2
    hi = lo + step  # lo taken, hi free
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if taken(mid):
            lo = mid
        else:
            hi = mid
    return hi


def _start_counter(parent: Path, ids: str, day_dir: str, day: str) -> int:
    """Where to start counting: the hint; else, for a new day, 0; else a probe. A folder with no ids
    folder (never claimed in by this version) is listed once, and the ids folder is published with its
    hint by one rename, so a concurrent claimer never starts from 0 past runs it cannot see."""
    hint = _read_hint(day_dir)
    if hint is not None:
        return hint
    if os.path.isdir(day_dir):
        return _probe(day_dir, 0)
    if os.path.isdir(ids):
        os.makedirs(day_dir, exist_ok=True)
        retire_old_days(ids)  # the first claim of a day: older days' markers go
        return _probe(day_dir, 0)  # a new day (0), or one another process has just begun
    n = _day_counter(parent, day)
    tmp = f"{ids}.tmp.{os.getpid()}.{_rand2()}{_rand2()}"
    try:
        os.makedirs(os.path.join(tmp, day))
        _write_hint(os.path.join(tmp, day), n)
        os.rename(tmp, ids)
    except OSError:  # another process published it first (or the hint could not be written): use theirs
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(day_dir, exist_ok=True)
        hint = _read_hint(day_dir)
        return max(n, hint) if hint is not None else _probe(day_dir, n)
    return n


def collect_old_days(ids: str, now: float | None = None, budget: int = _GC_BUDGET) -> None:
    """Remove the markers of days older than :data:`KEEP_DAYS` from the ids folder ``ids`` (both steps
    below at once). Never raises."""
    retire_old_days(ids, now)
    remove_retired(ids, budget)


def retire_old_days(ids: str, now: float | None = None) -> None:
    """Move each day folder older than :data:`KEEP_DAYS` into ``<ids>/.old/`` by one rename (atomic on
    local file systems and NFS: one process wins; a claim of today never looks there). Run at the
    first claim of a day. Never raises."""
    cutoff = time.strftime("%y%m%d", time.localtime((time.time() if now is None else now) - KEEP_DAYS * 86400))
    try:
        with os.scandir(ids) as it:
            old = [e.name for e in it if len(e.name) == 6 and e.name.isdigit() and e.name < cutoff]
    except OSError:
        return
    retired = os.path.join(ids, _RETIRED)
    for name in old:
        try:
            os.makedirs(retired, exist_ok=True)
            os.rename(os.path.join(ids, name), os.path.join(retired, f"{name}.{os.getpid()}.{_rand2()}{_rand2()}"))
        except OSError:
            pass  # another claimer retired it first (or emptied .old meanwhile: the next day retries)


def remove_retired(ids: str, budget: int = _GC_BUDGET) -> None:
    """Remove at most ``budget`` markers of retired days: one ``rmdir`` when there are none, so every
    claim can call it and a claim costs the same whatever the size of an old day. Never raises."""
    retired = os.path.join(ids, _RETIRED)
    try:
        os.rmdir(retired)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass  # not empty
    try:
        with os.scandir(retired) as it:
            subs = [e.path for e in it]
    except OSError:
        return
    for sub in subs:
        budget = _remove_some(sub, budget)
        if budget <= 0:
            return
    try:
        os.rmdir(retired)
    except OSError:
        pass


def _remove_some(folder: str, budget: int) -> int:
    """Remove up to ``budget`` entries of a retired day folder (and the folder once empty); what is left."""
    try:
        with os.scandir(folder) as it:
            for e in it:
                if budget <= 0:
                    return 0
                budget -= 1
                try:
                    if e.is_dir(follow_symlinks=False):
                        os.rmdir(e.path)
                    else:
                        os.unlink(e.path)
                except OSError:
                    pass
        os.rmdir(folder)
    except OSError:
        pass  # another process is removing it too, or it is not empty yet
    return budget


def ids_dir(parent: str | os.PathLike[str]) -> str:
    """The claim markers and hints of the folder of runs ``parent``: ``<parent's parent>/.lumo-ids/<name>``."""
    p = os.path.abspath(parent)
    return os.path.join(os.path.dirname(p), IDS_DIR, os.path.basename(p))


def _claim_counter(parent: Path, day: str) -> int:
    """Take a counter of ``day`` in ``parent`` for this process (exclusive ``mkdir`` of its marker)."""
    ids = ids_dir(parent)
    day_dir = os.path.join(ids, day)
    n = _start_counter(parent, ids, day_dir, day)
    remove_retired(ids)  # old days' markers, a bounded number per claim
    conflicts = 0
    while True:
        try:
            os.mkdir(os.path.join(day_dir, f"{n:03d}"))
            break
        except FileExistsError:
            conflicts += 1
            n = _probe(day_dir, n + 1) if conflicts >= _CONFLICTS_BEFORE_PROBE else n + 1
        except FileNotFoundError:  # the day's folder went away (cleaned up): make it again
            os.makedirs(day_dir, exist_ok=True)
    _write_hint(day_dir, n + 1)
    return n


def claim_dir(parent: str | os.PathLike[str], test_name: str | None = None, *, max_tries: int = 10_000) -> tuple[str, Path]:
    """Claim a new run folder under ``parent`` atomically (``os.mkdir``) and return ``(test_name, path)``.

    Without ``test_name`` a fresh id ``YYMMDD.NNN.RRt`` is made: a counter of the day taken by an
    exclusive ``mkdir`` in :func:`ids_dir` (see the module's docstring), then the run folder with new
    random characters (another counter on a conflict). With ``test_name`` exactly that folder is claimed
    (``StoreError`` if it exists). Any other failure to create folders raises ``StoreError`` naming the path.
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
    for _ in range(max_tries):
        try:
            counter = _claim_counter(parent, day)
        except OSError as e:
            raise StoreError(f"cannot claim a run id under {str(parent)!r}: {e.strerror or e}") from e
        name = f"{day}.{counter:03d}.{_rand2()}t"
        path = parent / name
        try:
            os.mkdir(path)
            return name, path
        except FileExistsError:  # a folder made without a marker (an older version): next counter
            continue
        except OSError as e:
            raise StoreError(f"cannot create the run folder {str(path)!r}: {e.strerror or e}") from e
    raise StoreError(f"could not claim a run id under {str(parent)!r} after {max_tries} tries")  # pragma: no cover
