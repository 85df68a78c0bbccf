"""The shape of ``run.json`` as a run writes it (docs/store.md): the start record, exception records, tags."""
from __future__ import annotations

import os
import sys
import traceback as _tb
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lumo_hydra.errors import LumoValueError
from lumo_hydra.store.layout import StoreLayout
from lumo_hydra.store.procinfo import pinfo
from lumo_hydra.store.times import now_iso
from lumo_hydra.store.writer import RECORD_VERSION

__all__ = ["RESERVED_KEYS", "OWNED_KEYS", "start_record", "exception_record", "clean_tags"]

#: top-level run.json keys an experiment manages itself; ``start(**extra)`` / ``update_record`` refuse them
RESERVED_KEYS = frozenset({
    "version", "exp_name", "test_name", "status", "paths", "pinfo", "progress", "hooks", "exception",
    "note", "tags", "info", "metrics",
})

#: keys ``dump_info`` refuses: the reserved ones and the others the record fills itself
OWNED_KEYS = RESERVED_KEYS | frozenset({
    "execute", "git", "lock", "sweep", "hydra", "rerun", "rerun_of", "rerun_at", "return_value", "info_dir",
    "recorded_status", "secrets", "masked",
})


def start_record(layout: StoreLayout, exp_name: str, test_name: str, info_dir: Path, t0: float) -> dict[str, Any]:
    """The first ``run.json`` of a run started now in this process (status ``running``)."""
    cwd = os.getcwd()
    main = sys.modules.get("__main__")
    exec_file = getattr(main, "__file__", None)
    return {
        "version": RECORD_VERSION,
        "exp_name": exp_name,
        "test_name": test_name,
        "status": "running",
        "paths": {
            "info_root": str(layout.experiments_dir), "blob_root": str(layout.blob_root),
            "cache_root": str(layout.cache_root), "info_dir": str(info_dir),
            "blob_dir": str(layout.blob_dir(exp_name, test_name)),
            "cache_dir": str(layout.cache_dir(exp_name, test_name)),
        },
        "execute": {
            "cwd": cwd, "exec_bin": sys.executable,
            "exec_file": os.path.abspath(exec_file) if exec_file else None,
            "exec_argv": list(sys.argv), "repo": None, "command": None,
        },
        "pinfo": pinfo(),
        "progress": {"start": now_iso(t0), "end": None, "end_code": None, "ratio": 0.0,
                     "last_edit_time": None},
        "git": {"msg": "no snapshot: the GitCommit hook is not used"},
        "lock": None,
        "hooks": {},
        "params": None,
        "sweep": None,
        "note": "",
        "tags": [],
        "exception": None,
        "info": {},
    }


def exception_record(exc: BaseException | dict[str, Any] | None) -> dict[str, Any] | None:
    """``{type, msg, traceback}`` for an exception (a dict is passed through)."""
    if exc is None:
        return None
    if isinstance(exc, dict):
        return {"type": exc.get("type"), "msg": exc.get("msg"), "traceback": exc.get("traceback")}
    return {
        "type": type(exc).__qualname__ if type(exc).__module__ == "builtins" else
        f"{type(exc).__module__}.{type(exc).__qualname__}",
        "msg": str(exc),
        "traceback": "".join(_tb.format_exception(type(exc), exc, exc.__traceback__)),
    }


def clean_tags(tags: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for t in tags:
        if isinstance(t, (list, tuple, set)):
            out.extend(clean_tags(t))
        elif isinstance(t, str) and t:
            out.append(t)
        else:
            raise LumoValueError(f"invalid tag: {t!r}; allowed: a non-empty string")
    return out
