"""Run ids: names, and claiming a new run folder atomically (exclusive ``mkdir``, retry on conflict)."""
from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path
from typing import Any

from lumo_hydra.errors import LumoValueError, StoreError

NAME_RE = re.compile(r"[A-Za-z0-9_.+-]+")
RUN_ID_RE = re.compile(r"(\d{6})\.(\d{3,})\.([0-9a-z]{2})t")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def validate_name(value: Any, key: str = "exp_name") -> str:
    """Return ``value`` if it is a valid experiment name (``[A-Za-z0-9_.+-]+``, not ``.``/``..``)."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value) or value in (".", ".."):
        raise LumoValueError(
            f"invalid {key}: {value!r}; allowed: a non-empty string of letters, digits and _ . + - "
            f"(no slashes or spaces, not '.' or '..')"
        )
    return value

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
