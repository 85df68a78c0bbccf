"""lumo's rerun links: ``properties['rerun'] == {'from': <id>, 'repeat': n}`` on a rerun and ``rerun_at`` on
the run it repeats, from ``$LUMO_RERUN_OF`` (set by ``exp.rerun`` and ``lumo-hydra rerun``)."""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lumo_hydra.errors import StoreError
from lumo_hydra.store.layout import ENV_HOME, ENV_RERUN_OF, StoreLayout
from lumo_hydra.store.reader import edit_record, read_heartbeat, read_record
from lumo_hydra.store.status import RUNNING, judge_status

__all__ = ["find_original", "link_rerun", "run_again"]


def find_original(layout: StoreLayout, exp_name: str, test_name: str) -> Path | None:
    """The info folder of run ``test_name`` (in ``exp_name`` first, then any experiment)."""
    if not test_name or "/" in test_name or test_name[0] == ".":
        return None
    d = layout.exp_dir(exp_name) / test_name
    if d.is_dir():
        return d
    try:
        for e in os.scandir(layout.experiments_dir):
            if e.name[0] != "." and os.path.isdir(os.path.join(e.path, test_name)):
                return Path(e.path) / test_name
    except OSError:
        pass
    return None


def link_rerun(rec: dict[str, Any], layout: StoreLayout) -> Path | None:
    """Put ``rerun = {from, repeat}`` (and ``rerun_of``) into the new start record ``rec``; returns the
    original's info folder when its record may be edited (it is not running), else ``None``."""
    of = os.environ.get(ENV_RERUN_OF)
    if not of:
        return None
    rec["rerun_of"] = of
    orig = find_original(layout, str(rec.get("exp_name")), of)
    repeat = 1
    editable = None
    if orig is not None:
        try:
            o = read_record(orig)
            prev = o.get("rerun")
            if isinstance(prev, dict) and isinstance(prev.get("repeat"), int):
                repeat = prev["repeat"] + 1
            if judge_status(o, read_heartbeat(orig), now=time.time()) != RUNNING:
                editable = orig
        except StoreError:
            pass
    rerun = rec.get("rerun")
    rec["rerun"] = {**(rerun if isinstance(rerun, dict) else {}), "from": of, "repeat": repeat}
    return editable


def mark_original(orig: Path, new_test_name: str) -> None:
    """Write ``rerun_at`` (the latest rerun's id) into the original's record; never raises."""
    def edit(o: dict[str, Any]) -> None:
        o["rerun_at"] = new_test_name

    try:
        edit_record(orig, edit)
    except (StoreError, OSError, ValueError):
        pass


def run_again(rec: dict[str, Any], root: Path, arg_list: Sequence[str]) -> int:
    """Run the recorded command of ``rec`` again (in its recorded cwd, on the current code) with
    ``arg_list`` appended; returns the exit code."""
    ex = rec.get("execute") or {}
    argv = [*(ex.get("exec_argv") or []), *map(str, arg_list)]
    if not ex.get("exec_argv"):
        raise StoreError(f"run {rec.get('test_name')!r} recorded no command (execute.exec_argv) to rerun")
    try:
        from lumo_hydra.record.secrets import restore_argv

        argv = restore_argv(argv, run=str(rec.get("test_name")))
    except ImportError:
        pass
    env = dict(os.environ)
    env[ENV_RERUN_OF] = str(rec.get("test_name"))
    env[ENV_HOME] = str(root)
    cwd = ex.get("cwd") if ex.get("cwd") and os.path.isdir(ex["cwd"]) else None
    proc = subprocess.run([ex.get("exec_bin") or "python", *argv], cwd=cwd, env=env)
    return proc.returncode
