"""The job path of ``hydra/callbacks=lumo`` imports no module it does not need (issue 18, H14).

A recorded one-job Hydra app prints ``sys.modules`` at exit; the modules made lazy (rarely used code,
heavy libraries) must not be there, while the recording modules must (so the check cannot pass by a
run that recorded nothing).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import git

APP = '''
import atexit, json, sys
import hydra

def dump():
    with open("modules.json", "w") as f:
        json.dump(sorted(sys.modules), f)

@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    import threading
    atexit.register(dump)  # after Hydra's on_job_end / on_run_end: everything the run imported
    with open("threads.json", "w") as f:
        json.dump(sorted(t.name for t in threading.enumerate()), f)
    return {"acc": 0.5}

if __name__ == "__main__":
    main()
'''

# made lazy or never needed by one recorded job (docs/benchmarks.md, "Issue 18 ... imports")
NOT_IMPORTED = [
    "lumo_hydra.record.rerun", "lumo_hydra.record.rerun_link",  # only with $LUMO_RERUN_INFO / $LUMO_RERUN_OF
    "git", "pandas", "numpy", "rich", "psutil", "difflib", "importlib.metadata", "email",
    "shlex",  # commands are quoted by secrets.shell_quote; split only when one names a secret
    "lumo_hydra.store.reader",  # the writer marks changes itself (store.files.mark_changed)
    "lumo_hydra.watcher", "lumo_hydra.board", "lumo_hydra.share", "lumo_hydra.cli", "lumo_hydra.params.params",
]
RECORDING = ["lumo_hydra._hydra.callback", "lumo_hydra._hydra.job", "lumo_hydra.record.experiment",
             "lumo_hydra.record.gitsnap", "lumo_hydra.record.lockfile", "lumo_hydra.store.writer"]


def test_recorded_job_imports_no_lazy_module(tmp_path: Path, lumo_home: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("x: 0\n")
    (tmp_path / "app.py").write_text(APP)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "init")
    r = subprocess.run([sys.executable, "app.py", "hydra/callbacks=lumo"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    modules = set(json.loads((tmp_path / "modules.json").read_text()))
    runs = list((lumo_home / "experiments" / "app").glob("*/run.json"))
    assert len(runs) == 1
    rec = json.loads(runs[0].read_text())
    metrics = json.loads((runs[0].parent / "metrics.json").read_text())
    assert rec["status"] == "finished" and metrics["acc"]["last"] == 0.5
    assert [m for m in RECORDING if m not in modules] == []
    # the snapshot ran in two steps in the main thread (no thread to start and join: issue 18)
    threads = json.loads((tmp_path / "threads.json").read_text())
    assert "lumo-hydra-heartbeat" in threads and not [t for t in threads if "snapshot" in t], threads
    assert rec["git"]["commit"] and rec["git"]["msg"] == "ok"
    assert [m for m in NOT_IMPORTED if m in modules] == []


def test_callback_answers_every_hydra_hook() -> None:
    """A subclass of Hydra's ``Callback`` (kept on purpose: ~0.3 ms of imports is not worth leaving it)."""
    from hydra.experimental.callback import Callback

    from lumo_hydra._hydra.callback import LumoCallback
    from lumo_hydra.record.rerun import ENV_RERUN_INFO

    cb = LumoCallback(record=False, validate=False)
    hooks = [n for n in dir(Callback) if n.startswith("on_")]
    assert "on_job_end" in hooks
    assert all(callable(getattr(cb, n)) for n in hooks)
    assert isinstance(cb, Callback)
    assert ENV_RERUN_INFO == "LUMO_RERUN_INFO"  # the name record/experiment.py checks before importing


JOB_MODULES = ["lumo_hydra.hydra_callback", "lumo_hydra.params.validation", "lumo_hydra._hydra.job",
               "lumo_hydra.record.gitsnap", "lumo_hydra.record.experiment", "lumo_hydra.record.lockfile",
               "lumo_hydra.record.abort", "lumo_hydra.record.hooks"]


def test_job_modules_compile_no_regex_at_import() -> None:
    """Each pattern compiled costs every recorded process ~0.1 ms (issue 18): string checks instead."""
    code = ("import re, importlib, locale, logging\nimport hydra.core.utils, omegaconf\nn = len(re._cache)\n"
            f"for m in {JOB_MODULES!r}: importlib.import_module(m)\n"
            "print(sorted(k[1] for k in list(re._cache)[n:]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def _random_texts(alphabet: list[str], n: int, longest: int, seed: int) -> list[str]:
    import random

    rnd = random.Random(seed)
    return ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, longest))) for _ in range(n)]


def test_string_checks_answer_as_the_regexes_they_replaced() -> None:
    import re
    import shlex

    from lumo_hydra.record import gitwrite, secrets, snapplan
    from lumo_hydra.store import ids

    camel, split = re.compile(r"(?<=[a-z0-9])(?=[A-Z])"), re.compile(r"[^A-Za-z0-9]+")
    override = re.compile(r"([+~]*)([A-Za-z_$][\w$.@/\-\[\]]*)=(.*)\Z", re.S)
    for t in _random_texts(list("aAzZ09_-.+~=$@/[]ä ß\nKkéDbPASSwordX,'\"\\"), 20000, 12, 1):
        assert secrets._words(t) == tuple(w.lower() for w in split.split(camel.sub("_", t)) if w), t
        m = override.match(t)
        assert secrets._override(t) == (m.groups() if m else None), t
        assert secrets.shell_quote(t) == shlex.quote(t), t
    bad = re.compile(snapplan._BAD_REF_PATTERN)
    for t in _random_texts(list("ab./@{}lock~^:?*[\\ \n\x7f\x01-_0"), 20000, 10, 2):
        assert snapplan.bad_ref(t) == bool(bad.search(t)), t
        assert snapplan.bad_ref(t + ".lock")
    section = re.compile(r'^\[\s*([A-Za-z0-9.-]+)\s*(?:"((?:[^"\\]|\\.)*)")?\s*\]\s*(?:[#;].*)?$')
    keyval = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*(?:=(.*))?$")
    ident = re.compile(r"[^<>\n\0]*<[^<>\n\0]*>")
    for t in _random_texts(['[', ']', ' ', '\t', '"', '\\', 'core', 'a.b', '-x', '#', ';', '=', 'v', '1', '<', '>',
                            '\0', 'é', '\u00a0'], 20000, 9, 3):
        line = t.strip()
        m = section.match(line)
        if line.startswith("["):
            assert gitwrite._section(line) == (m.groups() if m else None), line
        m = keyval.match(line)
        assert gitwrite._keyval(line) == (m.groups() if m else None), line
        assert gitwrite._ident_ok(t + "\n") is False and gitwrite._ident_ok(t) == bool(ident.fullmatch(t)), t
    odd = re.compile(r"^\s*(\[\s*include|worktree\s*=|bare\s*=\s*(true|yes|on|1)\b)", re.M | re.I)
    for t in _random_texts(["[", " ", "\t", "\n", "include", "Include", "worktree", "WorkTree", "bare", "=", "true",
                            "yes", "on", "1", "10", "x", "_", "Config", "[core]", "\r\n"], 20000, 8, 4):
        assert snapplan._odd_config(t) or not odd.search(t), t  # it may only err towards "odd"
    assert not snapplan._odd_config("[core]\n\tbare = false\n\tlogallrefupdates = true\n")
    sha = "0123456789abcdef" * 4
    commit = re.compile(rb"commit \d+\0tree ([0-9a-f]{40}|[0-9a-f]{64})\n")
    for head in [b"commit 12\0tree " + sha[:40].encode() + b"\nparent x", b"commit 12\0tree " + sha.encode() + b"\n",
                 b"commit \0tree " + sha[:40].encode() + b"\n", b"commit 1\0tree " + sha[:39].encode() + b"\n",
                 b"commit +1\0tree " + sha[:40].encode() + b"\n", b"commit 1\0tree " + sha[:40].encode()]:
        m = commit.match(head)
        assert snapplan._tree_of_commit_object(head) == (m.group(1).decode() if m else None), head
    assert [snapplan.is_sha(x) for x in (sha, sha[:40], sha[:41], sha.upper(), 40)] == [True, True, False, False, False]
    assert ids.RUN_ID_RE.fullmatch("261204.001.abt") and ids.NAME_RE.fullmatch("a.b+c")  # still there, compiled on use
    assert snapplan._BAD_REF.search("a..b")
