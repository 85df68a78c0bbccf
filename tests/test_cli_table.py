"""The table of runs (`list`: columns fit to the terminal, metric sort by cmp), `--where`, `sweeps` and
`show SWEEP`, the "at least" duration of killed runs and export's millisecond rounding (issue 12.9-12.15)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_watcher_fake import write_run

from lumo_hydra.cli.app import main
from lumo_hydra.watcher.where import WhereError, filter_rows, parse_where

LONG = "resnet152-with-a-very-long-architecture-name-that-never-fits"


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
            width: int = 200) -> tuple[int, str, str]:
    """``lumo-hydra ARGS`` in this process, on a console of ``width`` columns (rich's width)."""
    monkeypatch.setenv("COLUMNS", str(width))
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Runs with differing and equal params, a long value, metrics with max/min cmps and a returned dict."""
    root = tmp_path / "store"
    now = time.time()
    for i, (lr, acc, loss) in enumerate([(0.1, 0.70, 0.9), (0.01, 0.95, 0.2), (0.001, 0.80, 0.5)]):
        write_run(root, "cls", params={"lr": lr, "seed": 1, "model": {"arch": f"{LONG}-{i}", "depth": 50},
                                       "data": {"root": "/datasets/imagenet"}},
                  metrics={"acc": (acc, "max"), "loss": (loss, "min"), "epoch_time_seconds_mean": (3.0 + i, None)},
                  extra={"return_value": {"final_acc": acc, "train_seconds": 12.5, "extra": {"a": 1, "b": 2}}},
                  start=now - 3000 + i * 100, counter=i)
    return root


def _lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.strip()]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_list_fits_console_width_without_one_character_columns(store: Path, width: int, capsys, monkeypatch) -> None:
    code, out, err = run_cli(capsys, monkeypatch, "--root", str(store), "list", width=width)
    assert code == 0, err
    lines = _lines(out)
    assert all(len(ln) <= width for ln in lines), [len(ln) for ln in lines]
    head = lines[0]
    headers = re.split(r"\s{2,}", head.strip())
    assert headers[:5] == ["id", "experiment", "status", "start", "duration"], headers
    assert all(len(h) >= 2 for h in headers), headers  # never squeezed to one character
    for name in ("lr", "model.arch"):  # the params that differ ...
        if width >= 120:
            assert name in headers, (name, headers)
    for name in ("seed", "data.root", "model.depth", "final_acc", "extra.a"):  # ... not the equal ones, no returned dict
        assert name not in headers
    assert "acc" in headers and "loss" in headers and "epoch_time_seconds_mean" not in headers  # main metrics: with cmp
    ids = [ln.split()[0] for ln in lines[2:-1]]
    assert len(ids) == 3 and all(re.fullmatch(r"\d{6}\.\d{3}\.[a-z0-9]{2}t", x) for x in ids)  # ids never cut
    if width == 200:
        assert LONG[:20] in out and "…" in out  # a long value cut with an ellipsis, on one line
    if width == 80:
        assert "more column" in lines[-1] and "--all-columns" in lines[-1]
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(store), "list", "--all-columns", width=width)
    head = re.split(r"\s{2,}", _lines(out)[0].strip())  # wider than the terminal rather than squeezed
    assert code == 0 and {"seed", "data.root", "return_value.extra.a", "execute.command"} <= set(head), head


def test_list_columns_on_request_and_main_metrics(store: Path, capsys, monkeypatch) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(store), "list", "--columns",
                           "test_name,params.seed,metrics.epoch_time_seconds_mean", width=80)
    assert code == 0
    head = re.split(r"\s{2,}", _lines(out)[0].strip())
    assert head == ["id", "seed", "epoch_time_seconds_mean"]


def test_sort_metric_best_first_by_cmp_with_asc_desc_override(store: Path, capsys, monkeypatch) -> None:
    def order(*extra: str) -> list[float]:
        code, out, err = run_cli(capsys, monkeypatch, "--root", str(store), "list", "--json", *extra)
        assert code == 0, err
        return [d["params.lr"] for d in json.loads(out)]

    assert order("--sort", "metrics.acc") == [0.01, 0.001, 0.1]  # max: highest first
    assert order("--sort", "metrics.loss") == [0.01, 0.001, 0.1]  # min: lowest first
    assert order("--sort", "metrics.acc", "--asc") == [0.1, 0.001, 0.01]
    assert order("--sort", "metrics.loss", "--desc") == [0.1, 0.001, 0.01]
    assert order() == [0.001, 0.01, 0.1]  # default: newest first
    assert order("--sort", "params.lr") == [0.001, 0.01, 0.1]  # other columns ascending
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(store), "list", "--sort", "metrics.loss", width=120)
    assert re.split(r"\s{2,}", _lines(out)[0].strip())[5] == "loss"  # the sort metric comes first


def test_where_grammar_and_errors_pointing_at_the_token() -> None:
    df = pd.DataFrame([
        {"status": "finished", "params.lr": 0.1, "metrics.acc": 0.95, "tags": ["base"], "note": "good run"},
        {"status": "failed", "params.lr": 0.001, "metrics.acc": 0.99, "tags": [], "note": ""},
        {"status": "finished", "params.lr": 0.05, "metrics.acc": float("nan"), "tags": ["x"], "note": None},
    ])

    def sel(text: str) -> list[int]:
        return [i for i, keep in enumerate(parse_where(text)(df).tolist()) if keep]

    assert sel("params.lr >= 0.01 and metrics.acc > 0.9") == [0]
    assert sel("status == finished") == [0, 2] == sel("status = 'finished'") == sel('status in ["finished"]')
    assert sel("not status == finished or params.lr < 0.01") == [1]
    assert sel("status != finished and (params.lr > 1 or metrics.acc >= 0.99)") == [1]
    assert sel("status not in [failed, crashed]") == [0, 2]
    assert sel("tags contains base") == [0]
    assert sel("note matches '^go+d'") == [0]
    assert sel("metrics.acc is null") == [2] and sel("metrics.acc is not null") == [0, 1]
    assert sel("params.lr == 1e-3") == [1] and sel("params.lr > -1") == [0, 1, 2]
    assert filter_rows("status == failed", df.to_dict("records"))[0]["params.lr"] == 0.001
    for text, token in [("params.lr >> 1", ">"), ("params.lr > ", ""), ("params.lx > 1", "params.lx"),
                        ("lr > 1 and", ""), ("(status == finished", ""), ("status finished", "finished"),
                        ("params.lr > 1 metrics.acc", "metrics.acc"), ("status is 3", "3"), ("and", "and")]:
        with pytest.raises(WhereError) as ei:
            parse_where(text)(df)
        e = ei.value
        assert isinstance(e, ValueError) and e.text == text
        assert text[e.pos:].startswith(token), (text, e.pos)
        caret = str(e).splitlines()[2]
        assert caret.index("^") - 2 == e.pos  # the caret under the bad token
    with pytest.raises(WhereError, match="did you mean params.lr"):
        parse_where("params.lx > 1")(df)


def test_where_on_list_export_rm_and_watcher(store: Path, capsys, monkeypatch) -> None:
    from lumo_hydra.watcher import Watcher

    df = Watcher(root=str(store)).load(flatten=True, where=parse_where("params.lr >= 0.01 and metrics.acc > 0.9"))
    assert df["params.lr"].tolist() == [0.01]
    nested = Watcher(root=str(store)).load(where=parse_where("params.model.depth == 50 and metrics.loss < 0.6"))
    assert sorted(p["lr"] for p in nested["params"]) == [0.001, 0.01]
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(store), "list", "--json", "--where", "metrics.loss < 0.6")
    assert code == 0 and sorted(d["params.lr"] for d in json.loads(out)) == [0.001, 0.01]
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(store), "export", "--format", "json",
                           "--where", "params.lr < 0.01")
    assert code == 0 and [d["params.lr"] for d in json.loads(out)] == [0.001]
    code, _, err = run_cli(capsys, monkeypatch, "--root", str(store), "list", "--where", "params.lr >")
    assert code == 1 and "^" in err and "at character 12" in err
    code, out, err = run_cli(capsys, monkeypatch, "--root", str(store), "rm", "--yes", "--where", "params.lr > 0.05")
    assert code == 0, err
    left = Watcher(root=str(store)).load(flatten=True)
    assert sorted(left["params.lr"]) == [0.001, 0.01]
    code, _, err = run_cli(capsys, monkeypatch, "--root", str(store), "rm", "--yes")
    assert code == 1 and "--where" in err


def test_sigkilled_run_duration_at_least_and_last_seen(tmp_path: Path, capsys, monkeypatch) -> None:
    root = tmp_path / "store"
    script = tmp_path / "train.py"
    script.write_text("import time\nfrom lumo_hydra import SimpleExperiment\n"
                      "exp = SimpleExperiment('kill', heartbeat_interval=0.2)\nexp.start()\nprint('up', flush=True)\n"
                      "time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ, LUMO_HOME=str(root)),
                         stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "up"
        time.sleep(1.5)  # a few heartbeats
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    killed_at = time.time()
    time.sleep(1.2)
    code, out, err = run_cli(capsys, monkeypatch, "--root", str(root), "--stale-after", "1", "list", width=100)
    assert code == 0, err
    row = _lines(out)[2]
    assert "crashed" in row and re.search(r">= \d+\.\ds", row), row
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(root), "--stale-after", "1", "export", "--format", "json")
    rec = json.loads(out)[0]
    seen = pd.Timestamp(rec["last_seen"]).timestamp()
    start = pd.Timestamp(rec["start"]).timestamp()
    assert start + 1.0 <= seen <= killed_at + 0.01 and rec["end"] is None
    assert abs((seen - start) - rec["duration"]) < 0.01
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(root), "--stale-after", "1", "show", "kill/" +
                           rec["test_name"])
    assert "last seen" in out and "at least" in out


def test_export_rounds_times_and_durations_to_milliseconds(tmp_path: Path, capsys, monkeypatch) -> None:
    root = tmp_path / "store"
    write_run(root, "e", start=1764300000.427000046, duration=0.0989999771118164)
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(root), "export", "--format", "json")
    rec = json.loads(out)[0]
    assert rec["duration"] == 0.099
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", rec["start"]), rec["start"]
    assert rec["start"].split(".")[1].startswith("427")
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(root), "export", "--format", "csv")
    import csv
    import io

    row = next(csv.DictReader(io.StringIO(out)))
    assert row["duration"] == "0.099", row["duration"]
    for k in ("start", "end", "last_seen"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}([+-]\d\d:\d\d)?", row[k]), (k, row[k])


FAKE_OPT = '''
from dataclasses import dataclass
from typing import Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore


@dataclass
class FakeOptConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.fake_opt_sweeper.FakeOptSweeper"
    direction: str = "minimize"


class FakeOptSweeper(BasicSweeper):
    """The basic sweeper with Optuna's ``direction`` setting."""

    def __init__(self, max_batch_size: Optional[int], params: Optional[dict] = None,
                 direction: str = "minimize") -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.direction = direction


ConfigStore.instance().store(group="hydra/sweeper", name="fake_opt", node=FakeOptConf, provider="test")
'''

APP = '''
import hydra


@hydra.main(version_base=None, config_path=None, config_name=None)
def main(cfg):
    return (float(cfg.x) - 3) ** 2 + 1


if __name__ == "__main__":
    main()
'''


def test_sweeps_and_show_sweep_rank_by_the_sweepers_direction(tmp_path: Path, capsys, monkeypatch) -> None:
    """A real Hydra multirun with an Optuna-like sweeper (``hydra.sweeper.direction``)."""
    app = tmp_path / "app"
    (app / "hydra_plugins" / "fake_opt_sweeper").mkdir(parents=True)
    (app / "hydra_plugins" / "fake_opt_sweeper" / "__init__.py").write_text(FAKE_OPT)
    (app / "my_app.py").write_text(APP)
    root = tmp_path / "store"
    for direction in ("minimize", "maximize"):
        r = subprocess.run([sys.executable, "my_app.py", "-m", "hydra/callbacks=lumo", "hydra/sweeper=fake_opt",
                            f"hydra.sweeper.direction={direction}", "+x=1,3,6",
                            f"hydra.sweep.dir={tmp_path}/multi-{direction}"],
                           cwd=app, env=dict(os.environ, LUMO_HOME=str(root)), capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
    code, out, err = run_cli(capsys, monkeypatch, "--root", str(root), "sweeps", "--json")
    assert code == 0, err
    sweeps = json.loads(out)
    assert [s["jobs"] for s in sweeps] == ["3/0/3", "3/0/3"] and {s["status"] for s in sweeps} == {"finished"}
    newest, oldest = sweeps  # maximize ran last
    rec_path = root / "sweeps" / oldest["sweep"] / "sweep.json"
    assert json.loads(rec_path.read_text())["direction"] == "minimize"  # recorded by the launching process
    assert json.loads((root / "sweeps" / newest["sweep"] / "sweep.json").read_text())["direction"] == "maximize"
    (tmp_path / "multi-maximize" / "multirun.yaml").unlink()  # the record alone ranks the maximized sweep
    rec = json.loads(rec_path.read_text())
    del rec["direction"]  # a record without it (older writer): Hydra's multirun.yaml is read instead
    rec_path.write_text(json.dumps(rec))
    assert newest["best"] == "return_value=10" and oldest["best"] == "return_value=1"
    for s, order in ((oldest, ["3", "1", "6"]), (newest, ["6", "1", "3"])):
        code, out, err = run_cli(capsys, monkeypatch, "--root", str(root), "show", s["sweep"], width=80)
        assert code == 0, err
        lines = _lines(out)
        head = lines.index(next(ln for ln in lines if ln.startswith("job")))
        assert re.split(r"\s{2,}", lines[head].strip())[:4] == ["job", "id", "status", "x"]
        assert [ln.split()[3] for ln in lines[head + 2:head + 5]] == order
        assert "ranked by return_value" in out and all(len(ln) <= 80 for ln in lines if not ln.startswith("  "))
        assert lines[head + 2].split()[1] == s["best job"]
    code, out, _ = run_cli(capsys, monkeypatch, "--root", str(root), "sweeps", width=80)
    assert code == 0 and "2 sweeps" in out and all(len(ln) <= 80 for ln in _lines(out))
