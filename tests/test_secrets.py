"""Issue 11.7: secrets never reach the store. Real scripts and Hydra apps run as subprocesses with
``--password=...``, ``--token ...`` and ``+db.password=...``; afterwards every file of the store (and the
Watcher's cache) is searched for the secret values: 0 hits. Plus the key rule, ``LUMO_SECRET_KEYS``,
environment variables (never recorded) and putting the values back for a rerun."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lumo_hydra.record.secrets import (
    MASK,
    Masker,
    SecretMissingError,
    SecretPolicy,
    is_secret,
    mask_record,
    restore_argv,
    secret_env_name,
)

PW, TOKEN, DB_PW, HF = "Hunter2-opt-pw", "tok-9f8e7d6c5b", "Db-Hunter2-pw", "hf_TokenValue42"

PLAIN = '''
import argparse, os
from lumo_hydra import SimpleExperiment

ap = argparse.ArgumentParser()
ap.add_argument("--password")
ap.add_argument("--token")
ap.add_argument("--session_id")
ap.add_argument("--lr", type=float)
ap.add_argument("--max_tokens", type=int)
args = ap.parse_args()
exp = SimpleExperiment("plain")
exp.start()
exp.dump_params(vars(args))
exp.dump_metric("acc", 1.0, cmp="max")
if os.environ.get("OUT"):
    open(os.environ["OUT"], "w").write(f"{args.password}|{args.token}")
exp.end()
'''

HYDRA_APP = '''
import os
import hydra
import lumo_hydra

@hydra.main(version_base="1.3", config_path=None, config_name="config")
def main(cfg):
    exp = lumo_hydra.current_experiment()
    assert cfg.db.password == os.environ["EXPECT_PW"], "the job itself sees the clear value"
    assert os.environ.get("HF_TOKEN") == os.environ["EXPECT_HF"]
    exp.dump_metric("acc", 0.5 + cfg.x, cmp="max")
    return 0.5

if __name__ == "__main__":
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name="config", node={
        "x": 1, "db": {"user": "bob"}, "conn": {"url": "postgres://bob:${db.password}@host/db"}})
    main()
'''


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A subprocess environment with the store and the caches in tmp."""
    monkeypatch.setenv("LUMO_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("LUMO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LUMO_SECRET_KEYS", raising=False)
    (tmp_path / "plain.py").write_text(PLAIN)
    (tmp_path / "app.py").write_text(HYDRA_APP)
    e = dict(os.environ, LUMO_QUIET="1", EXPECT_PW=DB_PW, EXPECT_HF=HF)
    e.pop("LUMO_SECRET_KEYS", None)
    return e


def run(tmp_path: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def hits(roots: list[Path], *secrets: str) -> list[str]:
    """``path: secret`` for every file under ``roots`` whose bytes contain one of ``secrets``."""
    found = []
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                data = p.read_bytes()
                found += [f"{p}: {s}" for s in secrets if s.encode() in data]
    return found


def records(store: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((store / "experiments").glob("*/*/run.json"))]


def load_watcher(store: Path) -> str:
    """Load the store with the Watcher (writing its index and frame cache); the frame as text."""
    from lumo_hydra.watcher import Watcher

    df = Watcher(str(store)).load()
    assert len(df) >= 1
    return df.to_json(default_handler=str, date_format="iso")


def test_plain_script_password_and_token_options_masked_everywhere(tmp_path: Path, env: dict[str, str]) -> None:
    run(tmp_path, env, "plain.py", f"--password={PW}", "--token", TOKEN, "--lr", "0.1", "--max_tokens", "77")
    store = tmp_path / "store"
    [rec] = records(store)
    assert f"--password={MASK}" in rec["execute"]["exec_argv"] and rec["pinfo"]["argv"] == rec["execute"]["exec_argv"]
    i = rec["execute"]["exec_argv"].index("--token")
    assert rec["execute"]["exec_argv"][i + 1] == MASK
    assert rec["params"]["password"] == MASK and rec["params"]["token"] == MASK
    assert rec["params"]["lr"] == 0.1 and rec["params"]["max_tokens"] == 77  # not secrets: kept
    assert "--max_tokens 77" in rec["execute"]["command"] and "--lr 0.1" in rec["execute"]["command"]
    assert {"argv:--password", "argv:--token", "params:password", "params:token"} <= set(rec["masked"])
    frame = load_watcher(store)
    assert PW not in frame and TOKEN not in frame
    assert list((store / "diary").glob("*.log")) and (tmp_path / "cache").is_dir()
    assert hits([store, tmp_path / "cache"], PW, TOKEN) == []


def test_hydra_override_plus_db_password_masked_in_run_json_diary_and_watcher_index(
        tmp_path: Path, env: dict[str, str]) -> None:
    run(tmp_path, env, "app.py", "hydra/callbacks=lumo", f"+db.password={DB_PW}", "x=2",
        f"+hydra.job.env_set.HF_TOKEN={HF}", f"hydra.run.dir={tmp_path}/out")
    store = tmp_path / "store"
    [rec] = records(store)
    assert rec["status"] == "finished"
    assert rec["hydra"]["overrides"] == [f"+db.password={MASK}", "x=2"]
    assert f"+hydra.job.env_set.HF_TOKEN={MASK}" in rec["hydra"]["hydra_overrides"]
    assert rec["params"]["db"] == {"user": "bob", "password": MASK}
    assert rec["params"]["conn"]["url"] == f"postgres://bob:{MASK}@host/db"  # the value scrubbed where interpolated
    assert f"+db.password={MASK}" in rec["execute"]["exec_argv"] and f"'+db.password={MASK}'" in rec["execute"]["command"]
    assert {"override:db.password", "params:db.password", "override:hydra.job.env_set.HF_TOKEN"} <= set(rec["masked"])
    frame = load_watcher(store)
    assert DB_PW not in frame and HF not in frame
    assert hits([store, tmp_path / "cache"], DB_PW, HF) == []
    [copied] = store.rglob("hydra/overrides.yaml")  # Hydra's files copied into the run, masked
    assert f"+db.password={MASK}" in copied.read_text()
    # (Hydra's own output folder keeps the overrides in clear: docs/security.md says so)
    assert hits([tmp_path / "out"], DB_PW)


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_hydra_multirun_sweep_record_masks_the_override(tmp_path: Path, env: dict[str, str], launcher: str) -> None:
    run(tmp_path, env, "app.py", "-m", "hydra/callbacks=lumo", f"hydra/launcher={launcher}", f"+db.password={DB_PW}",
        "x=1,2", "hydra.sweep.subdir=${hydra.job.override_dirname}",
        f"+hydra.job.env_set.HF_TOKEN={HF}", f"hydra.sweep.dir={tmp_path}/multirun")
    store = tmp_path / "store"
    recs = records(store)
    assert len(recs) == 2 and {r["params"]["db"]["password"] for r in recs} == {MASK}
    [sweep_json] = list((store / "sweeps").glob("*/sweep.json"))
    sweep = json.loads(sweep_json.read_text())
    assert f"+db.password={MASK}" in sweep["overrides"]["task"] and f"+db.password={MASK}" in sweep["argv"]
    assert "argv:db.password" in sweep["masked"]
    # the job's output folder is named after its overrides (override_dirname): recorded with the value scrubbed
    assert sorted(Path(r["hydra"]["output_dir"]).name for r in recs) == [f"+db.password={MASK},x=1",
                                                                        f"+db.password={MASK},x=2"]
    load_watcher(store)
    assert hits([store, tmp_path / "cache"], DB_PW, HF) == []


def test_environment_variables_are_not_recorded(tmp_path: Path, env: dict[str, str]) -> None:
    secret_env = {"MY_SERVICE_PASSWORD": "envPw-77aa", "AWS_SECRET_ACCESS_KEY": "envAws-88bb",
                  "HARMLESS_LOOKING": "envPlain-99cc"}
    run(tmp_path, {**env, **secret_env}, "plain.py", "--lr", "0.5")
    run(tmp_path, {**env, **secret_env}, "app.py", "hydra/callbacks=lumo", f"+db.password={DB_PW}",
        f"+hydra.job.env_set.HF_TOKEN={HF}", f"hydra.run.dir={tmp_path}/out")
    store = tmp_path / "store"
    assert len(records(store)) == 2
    load_watcher(store)
    assert hits([store, tmp_path / "cache"], *secret_env.values()) == []
    assert hits([store], "MY_SERVICE_PASSWORD", "HARMLESS_LOOKING") == []  # not even the names


def test_secret_keys_configurable_with_LUMO_SECRET_KEYS(tmp_path: Path, env: dict[str, str]) -> None:
    run(tmp_path, {**env, "LUMO_SECRET_KEYS": "session_id,-token"}, "plain.py",
        "--session_id=sess-5544332211", "--token", "not-a-secret-here", f"--password={PW}")
    [rec] = records(tmp_path / "store")
    assert rec["params"]["session_id"] == MASK and rec["params"]["password"] == MASK
    assert rec["params"]["token"] == "not-a-secret-here"  # "-token" removed that name
    assert hits([tmp_path / "store"], "sess-5544332211", PW) == []


@pytest.mark.parametrize("key, secret", [
    ("password", True), ("PASSWORD", True), ("db.password", True), ("--db-password", True), ("passwd", True),
    ("apiKey", True), ("api_key", True), ("APIKEY", True), ("OPENAI_API_KEY", True), ("hf_token", True),
    ("AWS_SECRET_ACCESS_KEY", True), ("secret_key", True), ("client_secret", True), ("private_key", True),
    ("aws.credentials", True), ("hydra.job.env_set.HF_TOKEN", True), ("+db.passphrase", True),
    ("max_tokens", False), ("tokenizer", False), ("token_dim", False), ("password_file", False),
    ("lr", False), ("key", False), ("db.user", False), ("secrets_dir", False),
])
def test_key_rule_trailing_words_of_the_last_dotted_part(key: str, secret: bool) -> None:
    assert is_secret(key) is secret


def test_key_rule_exemption_and_extra_names() -> None:
    pol = SecretPolicy.from_spec("session_id, -pad_token")
    assert pol.is_secret("session_id") and pol.is_secret("user.session_id")
    assert not pol.is_secret("pad_token") and pol.is_secret("hf_token")  # exempt only as spelled


def test_argv_forms_and_scrub() -> None:
    m = Masker(SecretPolicy.from_spec(None))
    argv = ["app.py", "--password", "--lr=0.1", "--token", "t0k3n-xyz", "++db.api_key=k3y-abc", "~db.password",
            "url=http://u:t0k3n-xyz@h"]
    out = m.argv(argv)
    # a secret option followed by another option had no value; `~key` deletes, has no value
    assert out[:7] == ["app.py", "--password", "--lr=0.1", "--token", MASK, f"++db.api_key={MASK}", "~db.password"]
    assert m.scrub(out)[7] == f"url=http://u:{MASK}@h"
    rec: dict[str, Any] = {"params": {"db": {"password": None, "token": {"a": "deep-s3cret"}}}}
    mask_record(rec)
    assert rec["params"]["db"] == {"password": None, "token": MASK} and rec["masked"] == ["params:db.token"]


def test_rerun_restores_masked_values_from_override_environment_or_prompt() -> None:
    argv = ["py", "app.py", f"--password={MASK}", "--token", MASK, f"+db.password={MASK}", "x=1"]
    got = restore_argv([*argv, "db.password=fromOverride", "--token", "T"], run="r1",
                       environ={"LUMO_SECRET_PASSWORD": "fromEnv"}, ask=None)
    assert got == ["py", "app.py", "--password=fromEnv", "--token", "T", "+db.password=fromOverride", "x=1"]
    asked: list[str] = []
    got = restore_argv(argv, run="r1", environ={}, ask=lambda p: asked.append(p) or "typed")
    assert got[2:6] == ["--password=typed", "--token", "typed", "+db.password=typed"] and len(asked) == 3
    assert "db.password" in asked[2] and "r1" in asked[2]
    assert secret_env_name("+db.password") == "LUMO_SECRET_DB_PASSWORD"


def test_rerun_missing_secret_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"run 'r9' recorded '\+db\.password' masked as '\*\*\*'; give its value "
                                         r"as an override \(lumo-hydra rerun r9 \+db\.password=<value>\).*"
                                         r"LUMO_SECRET_DB_PASSWORD") as info:
        restore_argv(["py", "app.py", f"+db.password={MASK}"], run="r9", environ={}, ask=None)
    assert isinstance(info.value, SecretMissingError)


def test_rerun_of_a_masked_run_gets_the_value_from_the_environment(tmp_path: Path, env: dict[str, str]) -> None:
    from lumo_hydra.cli.code import rerun_argv

    run(tmp_path, env, "plain.py", f"--password={PW}", "--token", TOKEN)
    [rec] = records(tmp_path / "store")
    argv, cwd = rerun_argv(rec, str(tmp_path))
    assert PW not in argv and MASK in " ".join(argv)
    with pytest.raises(SecretMissingError, match="LUMO_SECRET_PASSWORD"):
        restore_argv(argv, run=rec["test_name"], environ={}, ask=None)
    argv = restore_argv([*argv, "--token", "new-token-1"], run=rec["test_name"],
                        environ={"LUMO_SECRET_PASSWORD": PW}, ask=None)
    out = tmp_path / "seen"
    subprocess.run(argv, cwd=cwd, env={**env, "OUT": str(out)}, check=True, capture_output=True, timeout=300)
    assert out.read_text() == f"{PW}|new-token-1"
    assert len(records(tmp_path / "store")) == 2
    assert hits([tmp_path / "store"], PW, TOKEN, "new-token-1") == []


UMASK_SCRIPT = '''
import os, sys
os.umask(int(sys.argv[1], 8))
from lumo_hydra import SimpleExperiment
exp = SimpleExperiment("perm")
exp.start()
exp.dump_metric("acc", 1.0, cmp="max")
exp.end()
'''


@pytest.mark.parametrize("umask, file_mode", [("077", 0o600), ("002", 0o664)])
def test_store_files_follow_the_writers_umask(tmp_path: Path, env: dict[str, str], umask: str, file_mode: int) -> None:
    # docs/security.md: files 0o666 & ~umask, folders 0o777 & ~umask; the diary too (a shared store's group appends)
    (tmp_path / "perm.py").write_text(UMASK_SCRIPT)
    run(tmp_path, env, "perm.py", umask)
    store = tmp_path / "store"
    [info] = list((store / "experiments" / "perm").iterdir())
    [diary] = list((store / "diary").glob("*.log"))
    for f in (info / "run.json", info / "metrics.json", diary):
        assert f.stat().st_mode & 0o777 == file_mode, f
    assert info.stat().st_mode & 0o777 == 0o777 & ~int(umask, 8)


def test_cli_rerun_of_a_hydra_run_with_masked_override_asks_for_it_or_takes_it(
        tmp_path: Path, env: dict[str, str], git_repo: Path) -> None:
    from conftest import git

    (git_repo / "app.py").write_text(HYDRA_APP)
    git(git_repo, "add", "app.py")
    git(git_repo, "commit", "-q", "-m", "app")
    store = tmp_path / "store"
    subprocess.run([sys.executable, "app.py", "hydra/callbacks=lumo", f"+db.password={DB_PW}",
                    f"+hydra.job.env_set.HF_TOKEN={HF}", f"hydra.run.dir={tmp_path}/out"],
                   cwd=git_repo, env=env, check=True, capture_output=True, timeout=300)
    [rec] = records(store)
    cli = [sys.executable, "-m", "lumo_hydra", "rerun", "--root", str(store), rec["test_name"]]
    # no value anywhere, no terminal: a clear error naming the key and the ways to give it
    proc = subprocess.run(cli, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1
    assert "masked as '***'" in proc.stderr and "LUMO_SECRET_" in proc.stderr and "lumo-hydra rerun" in proc.stderr
    assert len(records(store)) == 1
    # one value from an override on rerun's command line, the other from LUMO_SECRET_<KEY>
    proc = subprocess.run([*cli, f"+db.password={DB_PW}"], cwd=tmp_path, stdin=subprocess.DEVNULL,
                          env={**env, "LUMO_SECRET_HYDRA_JOB_ENV_SET_HF_TOKEN": HF}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = records(store)
    assert len(recs) == 2 and {r["status"] for r in recs} == {"finished"}  # the app checked the values it got
    assert [r["hydra"]["overrides"] for r in recs] == [[f"+db.password={MASK}"]] * 2
    assert hits([store], DB_PW, HF) == []


@pytest.mark.parametrize("text", [
    "db:\n  password: x\n", "DB_PASSWORD=1", "apiKey: 1", "my-api--key", "ACCESS.KEY", "hydra:\n  run:\n    dir: out\n",
    "nothing here", "", "pass word", "credentials", "paſsword", "K", "tokén", "secret\u0131", "private_KEY",
])
def test_may_name_a_secret_quick_ascii_test_agrees_with_the_pattern(text: str) -> None:
    """The ASCII shortcut (no name's first word in the text: no) never answers otherwise than the pattern."""
    from lumo_hydra.record.secrets import SecretPolicy

    p = SecretPolicy.from_spec("session_id")
    assert p.may_name_a_secret("password")  # compiles the pattern
    assert p._any is not None
    assert p.may_name_a_secret(text) == (p._any.search(text) is not None)
