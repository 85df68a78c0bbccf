"""A small writer of store records exactly per docs/store.md, for watcher/CLI tests that need many or
unusual runs (corrupt files, foreign hosts, old records). Real-API stores are tested in test_watcher_real.py.
"""
from __future__ import annotations

import json
import os
import random
import socket
import string
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from lumo_hydra.store.files import atomic_write_json, atomic_write_text


def iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat()


def make_test_name(t: float, counter: int) -> str:
    d = datetime.fromtimestamp(t).strftime("%y%m%d")
    rnd = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(2))
    return f"{d}.{counter:03d}.{rnd}t"


def write_run(
    root: Path,
    exp_name: str = "exp",
    *,
    test_name: str | None = None,
    status: str = "finished",
    params: dict[str, Any] | None = None,
    metrics: dict[str, tuple[float, str | None]] | None = None,
    tags: list[str] | None = None,
    note: str = "",
    start: float | None = None,
    duration: float = 10.0,
    sweep: str | None = None,
    job_num: int | None = None,
    host: str | None = None,
    pid: int | None = None,
    pstart: float | None = None,
    heartbeat: float | None = None,
    counter: int = 0,
    history_steps: int = 0,
    git: dict[str, Any] | None = None,
    lock: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write one run folder (run.json, metrics.json, history.jsonl, heartbeat) and return its info_dir."""
    root = Path(root)
    start = time.time() - 60 if start is None else start
    if test_name is None:
        test_name = make_test_name(start, counter)
    d = root / "experiments" / exp_name / test_name
    d.mkdir(parents=True)
    end = None if status == "running" else start + duration
    rec: dict[str, Any] = {
        "version": 1,
        "exp_name": exp_name,
        "test_name": test_name,
        "status": status,
        "paths": {"info_root": str(root / "experiments"), "blob_root": str(root / "blob"),
                  "cache_root": str(root / "cache"), "info_dir": str(d),
                  "blob_dir": str(root / "blob" / exp_name / test_name),
                  "cache_dir": str(root / "cache" / exp_name / test_name)},
        "execute": {"cwd": "/tmp", "exec_bin": "python", "exec_file": "train.py", "exec_argv": ["train.py"],
                    "repo": None, "command": "python train.py"},
        "pinfo": {"pid": pid if pid is not None else 999999, "host": host or "elsewhere.example",
                  "pstart": pstart if pstart is not None else start, "pname": "python", "argv": ["train.py"]},
        "progress": {"start": iso(start), "end": iso(end) if end else None, "end_code": None if end is None else 0,
                     "ratio": 1.0 if end else 0.5, "last_edit_time": iso(end or start)},
        "git": git if git is not None else {"msg": "no snapshot"},
        "lock": lock if lock is not None else {"digest": "0" * 16, "file": "locks/" + "0" * 16 + ".json",
                                               "python": "3.11.7", "platform": "linux", "packages": 0},
        "hooks": {"GitCommit": {"loaded": True, "msg": ""}},
        "params": params if params is not None else {"lr": 0.1},
        "sweep": sweep,
        "note": note,
        "tags": tags or [],
        "exception": None if status != "failed" else {"type": "RuntimeError", "msg": "boom", "traceback": "..."},
    }
    if job_num is not None:
        rec["hydra"] = {"overrides": [], "job_num": job_num, "job_id": str(job_num), "config": {}}
    if extra:
        rec.update(extra)
    atomic_write_json(d / "run.json", rec)
    summary = {}
    lines = []
    for name, (best, cmp) in (metrics or {}).items():
        summary[name] = {"best": best, "last": best * 0.9, "cmp": cmp, "count": max(history_steps, 1),
                         "best_step": 0, "last_step": max(history_steps - 1, 0), "attachments": {}, "time": start}
        for s in range(history_steps):
            lines.append(json.dumps({"k": name, "v": best * s / max(history_steps - 1, 1), "s": s, "t": start + s}))
    if summary:
        atomic_write_json(d / "metrics.json", summary)
    if lines:
        with open(d / "history.jsonl", "w") as f:
            f.write("\n".join(lines) + "\n")
    if status == "running":
        atomic_write_text(d / "heartbeat", repr(heartbeat if heartbeat is not None else time.time()))
    return d


def this_host() -> str:
    return socket.gethostname()


def test_fake_writer_follows_contract(tmp_path: Path) -> None:
    d = write_run(tmp_path, "e", metrics={"Acc": (0.9, "max")}, history_steps=3, counter=4)
    rec = json.loads((d / "run.json").read_text())
    assert rec["test_name"] == d.name and d.parent.name == "e"
    import re

    assert re.fullmatch(r"\d{6}\.\d{3,}\.[a-z0-9]{2}t", d.name)
    assert json.loads((d / "metrics.json").read_text())["Acc"]["best"] == 0.9
    assert len((d / "history.jsonl").read_text().splitlines()) == 3
    assert not any(p.name.startswith(".tmp") for p in d.iterdir())
    assert os.path.isdir(tmp_path / "experiments" / "e")
