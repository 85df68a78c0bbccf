"""The board's views (compare, curves, run page, sweep page, export) built on stores of real runs.

Runs are recorded by ``SimpleExperiment`` (real ``history.jsonl``, a real failed run with its traceback),
by a script in a real git repository (two code snapshots), and sweep jobs by the contract's fake writer.
Each view is built to its Bokeh models (``get_root``), as the server does for a page.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import git
from test_watcher_fake import write_run

pn = pytest.importorskip("panel")

from lumo_hydra.board import curves as C  # noqa: E402
from lumo_hydra.board.compare import axis_of, compare_view, parallel_view  # noqa: E402
from lumo_hydra.board.context import BoardContext  # noqa: E402
from lumo_hydra.board.export import export_html, external_assets, frame_csv  # noqa: E402
from lumo_hydra.board.runpage import log_tail, rerun_command, run_view  # noqa: E402
from lumo_hydra.board.sweeppage import sweep_jobs, sweep_view  # noqa: E402
from lumo_hydra.board.views_diff import diff_view, run_diff  # noqa: E402
from lumo_hydra.errors import LumoValueError, StoreWarning  # noqa: E402
from lumo_hydra.store.reader import read_history  # noqa: E402
from lumo_hydra.watcher import Watcher  # noqa: E402

LONG = 5000  # points of the long run


def _record(home: Path) -> dict[str, str]:
    """Real runs: three with histories, one with NaN values, one long, one failed, one without history."""
    from lumo_hydra import SimpleExperiment

    names: dict[str, str] = {}
    for lr, model in [(0.01, "resnet18"), (0.1, "resnet50"), (0.5, "vit")]:
        with SimpleExperiment("cifar", home=home, heartbeat_interval=0) as exp:
            exp.dump_params({"lr": lr, "model": {"name": model}})
            for step in range(30):
                exp.dump_metric("acc", 1 - math.exp(-step * lr), cmp="max", step=step)
                exp.dump_metric("loss", math.exp(-step * lr), cmp="min", step=step)
            names[model] = exp.test_name
    with SimpleExperiment("cifar", home=home, heartbeat_interval=0) as exp:
        exp.dump_params({"lr": 1.0, "model": {"name": "nanny"}})
        for step in range(6):
            exp.dump_metric("loss", float("nan") if step % 2 else 1.0 / (step + 1), cmp="min", step=step)
        names["nan"] = exp.test_name
    with SimpleExperiment("cifar", home=home, heartbeat_interval=0) as exp:
        exp.dump_params({"lr": 0.2, "model": {"name": "long"}})
        for step in range(LONG):
            exp.dump_metric("loss", 1.0 + math.sin(step / 50) + (5.0 if step == 1234 else 0.0), cmp="min", step=step)
        names["long"] = exp.test_name
    with pytest.raises(RuntimeError), SimpleExperiment("cifar", home=home, heartbeat_interval=0) as exp:
        names["failed"] = exp.test_name
        exp.dump_params({"lr": 2.0})
        exp.dump_metric("loss", 3.0, cmp="min")
        raise RuntimeError("boom in the board test")
    with SimpleExperiment("other", home=home, heartbeat_interval=0) as exp:
        exp.dump_params({"lr": 3.0})
        names["empty"] = exp.test_name
    return names


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("board-views")
    home = base / "store"
    cwd = os.getcwd()
    os.chdir(base)  # not inside a git repository: no snapshot refs anywhere
    try:
        names = _record(home)
    finally:
        os.chdir(cwd)
    return home, names


@pytest.fixture
def ctx(store: tuple[Path, dict[str, str]]) -> BoardContext:
    return BoardContext(Watcher(store[0]))


def panes(view: Any, css: str) -> list[Any]:
    """The objects under ``view`` whose css classes include ``css``."""
    return [o for o in view.select() if css in (getattr(o, "css_classes", None) or [])]


def renderers(fig: Any, glyph: str) -> list[Any]:
    return [r for r in fig.renderers if type(r.glyph).__name__ == glyph]


# ---- curves --------------------------------------------------------------------------------------

def test_curves_data_reads_real_histories(ctx: BoardContext, store: tuple[Path, dict[str, str]]) -> None:
    names = store[1]
    ids = [names["resnet18"], names["vit"], names["empty"], "no-such-run"]
    d = C.curves_data(ctx, ids, "loss")
    assert [c["run"] for c in d["curves"]] == ids[:3]
    first, _, empty = d["curves"]
    assert first["points"] == first["shown"] == 30 and first["dropped"] == 0
    assert list(first["x"]) == list(range(30))
    ref = [p["v"] for p in read_history(ctx.watcher.resolve(names["resnet18"]).info_dir, "loss")]
    assert np.allclose(first["y"], ref)
    assert empty["points"] == 0 and len(empty["x"]) == 0  # a run with no history: an empty curve
    assert [m["run"] for m in d["missing"]] == ["no-such-run"] and "no run" in d["missing"][0]["reason"]
    t = C.curves_data(ctx, ids[:1], "loss", x="time")["curves"][0]["x"]
    assert t[0] == 0.0 and np.all(np.diff(t) >= 0) and t[-1] > 0


def test_nan_values_are_left_out_and_counted(ctx: BoardContext, store: tuple[Path, dict[str, str]]) -> None:
    c = C.curves_data(ctx, [store[1]["nan"]], "loss")["curves"][0]
    assert c["points"] == 6 and c["dropped"] == 3 and c["shown"] == 3
    assert list(c["x"]) == [0, 2, 4] and np.all(np.isfinite(c["y"]))
    assert c["last"] == pytest.approx(1.0 / 5)


def test_downsampling_keeps_the_extremes(ctx: BoardContext, store: tuple[Path, dict[str, str]]) -> None:
    c = C.curves_data(ctx, [store[1]["long"]], "loss", max_points=200)["curves"][0]
    assert c["points"] == LONG and c["shown"] <= 200
    assert c["x"][0] == 0 and c["x"][-1] == LONG - 1 and np.all(np.diff(c["x"]) > 0)
    assert 1234 in c["x"] and c["y"].max() == pytest.approx(6.0 + math.sin(1234 / 50))  # the spike survives
    full = C.curves_data(ctx, [store[1]["long"]], "loss", max_points=LONG)["curves"][0]
    assert full["shown"] == LONG and c["y"].min() == pytest.approx(full["y"].min())
    x = np.arange(10.0)
    assert C.downsample(x, x, 20)[0] is x  # few points: unchanged


def test_smoothing_is_a_debiased_ema() -> None:
    v = np.array([1.0, 2.0, np.nan, 4.0, 8.0])
    out = C.ema(v, 0.5)
    ref, acc, w = [], 0.0, 0.0
    for x in v:
        if not np.isfinite(x):
            ref.append(np.nan)
            continue
        acc, w = acc * 0.5 + 0.5 * x, w * 0.5 + 0.5
        ref.append(acc / w)
    assert np.allclose(out, ref, equal_nan=True) and out[0] == 1.0
    assert np.array_equal(C.ema(v, 0.0), v, equal_nan=True)
    with pytest.raises(LumoValueError, match="smooth"):
        C.ema(v, 1.0)


def test_smoothed_curves_and_bad_arguments(ctx: BoardContext, store: tuple[Path, dict[str, str]]) -> None:
    rid = store[1]["resnet18"]
    raw = C.curves_data(ctx, [rid], "acc")["curves"][0]["y"]
    sm = C.curves_data(ctx, [rid], "acc", smooth=0.9)["curves"][0]["y"]
    assert np.allclose(sm, C.ema(raw, 0.9)) and not np.allclose(sm, raw)
    for kw, key in (({"x": "epoch"}, "'x'"), ({"smooth": -0.1}, "smooth"), ({"max_points": 2}, "max_points")):
        with pytest.raises(LumoValueError, match=key):
            C.curves_data(ctx, [rid], "acc", **kw)


def test_fast_reading_matches_the_store_reader_and_follows_appends(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    lines = [{"k": "a", "v": i * 0.5, "s": i, "t": 100.0 + i} for i in range(5)]
    lines.insert(2, {"k": "b", "v": 9.0, "s": 0, "t": 100.0})
    text = "".join(json.dumps(x) + "\n" for x in lines) + '{"k": "a", "v": {"$float": "inf"}, "s": 5, "t": 106}\n'
    (d / "history.jsonl").write_text(text + '{"k": "a", "v": 7')  # a line still being written
    step, value, _ = C.history_arrays(str(d), "a")
    ref = read_history(d, "a")
    assert list(step) == [p["s"] for p in ref] == [0, 1, 2, 3, 4, 5]
    assert list(value[:5]) == [p["v"] for p in ref][:5] and math.isinf(value[5])
    with open(d / "history.jsonl", "a") as f:  # the line completes, another follows
        f.write(', "s": 6, "t": 107}\n{"k": "a", "v": 8, "t": 108}\n')
    step, value, _ = C.history_arrays(str(d), "a")
    assert list(value[6:]) == [7, 8] and list(step) == [0, 1, 2, 3, 4, 5, 6, 7]
    with open(d / "history.jsonl", "a") as f:  # the writer's spelling of a point without a step
        f.write('{"k": "a", "v": {"$float": "nan"}, "s": null, "t": 109}\n{"k": "a", "v": 1e-3, "s": 9, "t": 110}\n')
    step, value, _ = C.history_arrays(str(d), "a")
    assert list(step) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] and math.isnan(value[8]) and value[9] == 1e-3
    rows = C._writer_rows(b'{"k": "a", "v": 1.5, "s": 2, "t": 3.25}\n{"k": "a", "v": -Infinity, "s": 3, "t": 4}\n',
                          b'"k": "a"')
    assert rows is not None and rows.tolist() == [[1.5, 2, 3.25], [-math.inf, 3, 4]]
    assert C._writer_rows(b'{"k": "a", "v": 1, "s": "x", "t": 3}\n', b'"k": "a"') is None  # a text step
    with open(d / "history.jsonl", "a") as f:
        f.write('not json\n{"k": "a", "v": oops}\n')
    with pytest.warns(StoreWarning, match="corrupt"):  # a damaged line: the store's reader and its warning
        step2, _, _ = C.history_arrays(str(d), "a")
    assert len(step2) == 10
    assert len(C.history_arrays(str(tmp_path / "none"), "a")[0]) == 0
    assert (str(d / "history.jsonl"), "a") in C._CACHE


def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(C, "_CACHE_POINTS", 25)
    C._CACHE.clear()
    for i in range(4):
        d = tmp_path / str(i)
        d.mkdir()
        (d / "history.jsonl").write_text("".join(json.dumps({"k": "a", "v": s, "s": s, "t": 0.0}) + "\n"
                                                 for s in range(10)))
        C.history_arrays(str(d), "a")
    assert [k[0] for k in C._CACHE] == [str(tmp_path / str(i) / "history.jsonl") for i in (2, 3)]


def test_bench_helper_reports_points(ctx: BoardContext, store: tuple[Path, dict[str, str]]) -> None:
    r = C.bench_curves(ctx, [store[1]["long"], store[1]["vit"]], "loss", repeat=2)
    assert r["runs"] == 2 and r["points"] == LONG + 30 and r["shown"] <= C.MAX_POINTS + 30 and r["best"] > 0


# ---- compare -------------------------------------------------------------------------------------

def test_compare_view_draws_the_curves_and_redraws(ctx: BoardContext, store: tuple[Path, dict[str, str]]) -> None:
    names = store[1]
    ids = [names["resnet18"], names["resnet50"], names["nan"], names["failed"], names["empty"]]
    view = compare_view(ctx, ids)
    view.get_root()
    assert "lumo-compare" in view.css_classes
    (plot,) = panes(view, "lumo-curves")
    fig = plot.object
    assert len(renderers(fig, "Line")) == 2 and fig.yaxis[0].axis_label == "acc"  # two runs logged acc
    metric = [w for w in view.select(pn.widgets.Select) if w.name == "metric"][0]
    assert metric.options == ["acc", "loss"]
    metric.value = "loss"
    assert plot.object is not fig and plot.object.yaxis[0].axis_label == "loss"
    assert len(renderers(plot.object, "Line")) == 4  # the run without history draws nothing
    logy = [w for w in view.select(pn.widgets.Checkbox) if w.name == "log y"][0]
    logy.value = True
    assert type(plot.object.y_scale).__name__ == "LogScale"
    assert any(type(t).__name__ == "SaveTool" for t in plot.object.toolbar.tools)  # PNG export
    assert panes(view, "lumo-parallel") and panes(view, "lumo-scatter") and panes(view, "lumo-diff")
    empty = compare_view(ctx, [])
    assert "lumo-compare" in empty.css_classes and not panes(empty, "lumo-curves")
    df = ctx.frame()
    view = compare_view(ctx, ids[:2], filtered=df)  # the plots of params: the filtered runs, or the selected
    view.get_root()
    (ml,) = renderers(panes(view, "lumo-parallel")[0].object, "MultiLine")
    assert len(ml.data_source.data["xs"]) == len(df)
    which = [w for w in view.select(pn.widgets.RadioButtonGroup) if w.name == "runs"][0]
    which.value = which.options[1]
    (ml,) = renderers(panes(view, "lumo-parallel")[0].object, "MultiLine")
    assert len(ml.data_source.data["xs"]) == 2


def test_axis_of_numbers_categories_and_missing() -> None:
    pos, ticks, num = axis_of([1.0, 3.0, None, 2.0])
    assert num and pos[:2] == [0.0, 1.0] and math.isnan(pos[2]) and pos[3] == 0.5
    assert ticks == [(0.0, "1"), (1.0, "3")]
    pos, ticks, num = axis_of(["vit", "cnn", float("nan"), "vit", True])
    assert not num and pos[0] == pos[3] and math.isnan(pos[2])
    assert [t[1] for t in ticks] == ["True", "cnn", "vit"]
    assert axis_of([5, 5])[0] == [0.5, 0.5]


def test_parallel_view_of_the_filtered_runs(ctx: BoardContext) -> None:
    df = ctx.frame()
    df = df[df["exp_name"] == "cifar"].reset_index(drop=True)
    view = parallel_view(ctx, df)
    view.get_root()
    (par,) = panes(view, "lumo-parallel")
    (ml,) = renderers(par.object, "MultiLine")
    data = ml.data_source.data
    assert len(data["xs"]) == len(df) == 6
    labels = par.object.xaxis[0].major_label_overrides
    assert "params.lr" in labels.values() and "params.model.name" in labels.values()
    assert "metrics.acc" in labels.values()
    colour = [w for w in view.select(pn.widgets.Select) if w.name == "colour by"][0]
    colour.value = "params.model.name"
    assert "params.model.name" in par.object.title.text
    (sc,) = panes(view, "lumo-scatter")
    xsel = [w for w in view.select(pn.widgets.Select) if w.name == "x"][0]
    xsel.value = "params.model.name"  # a categorical x: positions with labels
    assert sc.object.xaxis[0].major_label_overrides
    assert "lumo-parallel-view" in parallel_view(ctx, df.iloc[0:0]).css_classes


# ---- diff of two runs with real snapshots -----------------------------------------------------------

TRAIN = """
import sys
from lumo_hydra import SimpleExperiment
VALUE = {value}
exp = SimpleExperiment("rr", heartbeat_interval=0)
exp.start()
exp.dump_params({{"args": sys.argv[1:], "value": VALUE}})
exp.dump_metric("v", VALUE, cmp="max")
exp.end()
"""


def test_diff_shows_a_changed_param_and_the_code_change(git_repo: Path, tmp_path: Path) -> None:
    home = tmp_path / "store"
    env = dict(os.environ, LUMO_HOME=str(home))
    for value in (1, 2):
        (git_repo / "train.py").write_text(TRAIN.format(value=value))
        git(git_repo, "commit", "-qam", f"value {value}")
        p = subprocess.run([sys.executable, "train.py", f"x={value}"], cwd=git_repo, env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
    ctx = BoardContext(Watcher(home))
    a, b = ctx.frame()["test_name"].tolist()
    d = run_diff(ctx, a, b)
    assert d["params"] == {"args": [["x=1"], ["x=2"]], "value": [1, 2]}
    assert d["metrics"] == {"v": [1, 2]} and d["packages"] == {}
    assert "-VALUE = 1" in d["code"] and "+VALUE = 2" in d["code"]
    view = diff_view(ctx, a, b)
    view.get_root()
    assert "lumo-diff" in view.css_classes
    page = "".join(str(o.object) for o in view.select(pn.pane.HTML))
    assert "+VALUE = 2" in page and "x=2" in page
    same = run_diff(ctx, a, a)
    assert same["params"] == {} and same["code"] == ""
    run = run_view(ctx, b)  # the run page of a run with a snapshot and console output
    run.get_root()
    text = "".join(str(o.object) for o in run.select(pn.pane.HTML))
    assert d["b"] and "commit" in text and (home / "experiments" / "rr" / b / "output.log").exists()
    assert "lumo-hydra run rr/" in text  # the tail of output.log


# ---- run page ------------------------------------------------------------------------------------

def _texts(view: Any) -> str:
    out = []
    for o in view.select():
        if isinstance(o, (pn.pane.HTML, pn.pane.Markdown, pn.pane.Alert)):
            out.append(str(o.object))
        elif isinstance(o, pn.widgets.TextInput):
            out.append(str(o.value))
    return "\n".join(out)


def test_run_page_of_a_failed_run(ctx: BoardContext, store: tuple[Path, dict[str, str]]) -> None:
    rid = store[1]["failed"]
    view = run_view(ctx, rid)
    view.get_root()
    assert "lumo-run" in view.css_classes
    text = _texts(view)
    assert "failed" in text and "RuntimeError" in text and "boom in the board test" in text
    assert "Traceback (most recent call last)" in text and "raise RuntimeError" in text
    assert "run.json" in text and "history.jsonl" in text  # the files of its info folder
    assert rerun_command(ctx.watcher.root, {"exp_name": "cifar", "test_name": rid}) in text
    assert f"cifar/{rid}" in text and "lr" in text
    assert panes(view, "lumo-rerun") and panes(view, "lumo-curves")


def test_run_page_of_runs_without_history_or_with_nan(ctx: BoardContext, store: tuple[Path, dict[str, str]]) -> None:
    for key in ("empty", "nan", "long"):
        view = run_view(ctx, store[1][key])
        view.get_root()
        assert "lumo-run" in view.css_classes
    assert not panes(run_view(ctx, store[1]["empty"]), "lumo-curves")
    bad = run_view(ctx, "zzz-no-run")
    assert "lumo-run" in bad.css_classes and "no run" in _texts(bad)


def test_run_page_of_a_crashed_run_says_when_it_was_last_seen(tmp_path: Path) -> None:
    hb = time.time() - 3600
    write_run(tmp_path, "gan", test_name="261202.009.cct", status="running", heartbeat=hb, start=hb - 60,
              pid=999999, host="elsewhere.example")
    view = run_view(BoardContext(Watcher(tmp_path)), "261202.009.cct")
    view.get_root()
    text = _texts(view)
    assert "crashed" in text and "recorded: running" in text and "last seen" in text


def test_log_tail(tmp_path: Path) -> None:
    assert log_tail(str(tmp_path)) is None
    (tmp_path / "output.log").write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = log_tail(str(tmp_path), max_lines=10)
    assert tail is not None and tail.endswith("line 999") and "line 989" not in tail and "line 990" in tail
    small = log_tail(str(tmp_path), max_bytes=100)
    assert small is not None and "line 999" in small and "line 1\n" not in small and "not shown" in small


# ---- sweep page ----------------------------------------------------------------------------------

def _sweep(root: Path, direction: str | None) -> str:
    sid = "261202.000.swt"
    now = time.time()
    for j, lr in enumerate([0.1, 0.3, 0.01]):
        d = write_run(root, "opt", test_name=f"261202.00{j + 1}.abt", params={"lr": lr, "wd": 0.0},
                      metrics={"acc": (lr * 2, "max")}, sweep=sid, job_num=j, start=now - 100 + j, history_steps=10,
                      extra={"return_value": lr * 3})
        rec = json.loads((d / "run.json").read_text())
        rec["hydra"]["overrides"] = [f"lr={lr}"]
        (d / "run.json").write_text(json.dumps(rec))
    sd = root / "sweeps" / sid
    sd.mkdir(parents=True)
    (sd / "sweep.json").write_text(json.dumps({"sweep_id": sid, "exp_name": "opt", "direction": direction,
                                               "command": "python train.py -m lr=0.1,0.3,0.01"}))
    return sid


def test_sweep_page_best_first_in_the_sweeps_direction(tmp_path: Path) -> None:
    sid = _sweep(tmp_path / "s", "minimize")
    ctx = BoardContext(Watcher(tmp_path / "s"))
    jobs, info = sweep_jobs(ctx, sid[:10])
    assert info["objective"] == "return_value" and info["direction"] == "minimize"
    assert jobs["swept.lr"].tolist() == ["0.01", "0.1", "0.3"] and jobs["job"].tolist() == ["2", "0", "1"]
    assert info["columns"][:4] == ["job", "test_name", "status", "swept.lr"]
    view = sweep_view(ctx, sid)
    view.get_root()
    assert "lumo-sweep" in view.css_classes and "return_value" in _texts(view)
    (par,) = panes(view, "lumo-parallel")  # the objective is an axis of the jobs' parallel coordinates
    assert {"params.lr", "return_value", "metrics.acc"} <= set(par.object.xaxis[0].major_label_overrides.values())
    # maximize: the other way round; no direction: the first metric with a cmp (acc, max)
    rec = json.loads((tmp_path / "s" / "sweeps" / sid / "sweep.json").read_text())
    for direction, col, order in (("maximize", "return_value", ["0.3", "0.1", "0.01"]),
                                  (None, "metrics.acc", ["0.3", "0.1", "0.01"])):
        rec["direction"] = direction
        (tmp_path / "s" / "sweeps" / sid / "sweep.json").write_text(json.dumps(rec))
        jobs, info = sweep_jobs(ctx, sid)
        assert info["objective"] == col and jobs["swept.lr"].tolist() == order
        assert info["columns"].count(col) == 1 and len(set(info["columns"])) == len(info["columns"])
        heads = re.findall(r"<th[^>]*>(.*?)</th>", _texts(sweep_view(ctx, sid)))
        assert heads.count(f"★ {col}") == 1 and col not in heads  # the objective's column once, starred
    bad = sweep_view(ctx, "999")
    assert "lumo-sweep" in bad.css_classes and "no sweep" in _texts(bad)


# ---- export --------------------------------------------------------------------------------------

def test_export_html_is_self_contained(ctx: BoardContext, store: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    out = export_html(ctx, "exp_name == 'cifar'", tmp_path / "sub" / "report.html")
    assert out == tmp_path / "sub" / "report.html"
    page = out.read_text(encoding="utf-8")
    assert external_assets(page) == []
    assert "Bokeh" in page and len(page) > 500_000  # BokehJS itself is inside
    names = store[1]
    assert names["resnet18"] in page and names["failed"] in page and names["empty"] not in page
    assert '"type":"Line"' in page.replace(" ", "") or "GlyphRenderer" in page
    assert external_assets('<script src="https://cdn.bokeh.org/bokeh.js"></script>') == \
        ["https://cdn.bokeh.org/bokeh.js"]  # the check itself can fail
    assert external_assets('<link rel="stylesheet" href="//fonts.example/x.css">') == ["//fonts.example/x.css"]
    with pytest.raises(LumoValueError, match="folder"):
        export_html(ctx, None, tmp_path)
    with pytest.raises(ValueError):
        export_html(ctx, "params.lr >>> 1", tmp_path / "bad.html")


def test_frame_csv(ctx: BoardContext) -> None:
    import io

    import pandas as pd

    df = ctx.frame()
    data = frame_csv(df)
    back = pd.read_csv(io.BytesIO(data))
    assert len(back) == len(df) and list(back.columns) == list(df.columns)
    assert sorted(back["test_name"]) == sorted(df["test_name"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert frame_csv(df.iloc[0:0]).startswith(b"exp_name") or frame_csv(df.iloc[0:0]).strip()


def test_sweep_and_run_pages_of_a_real_hydra_multirun(git_repo: Path, tmp_path: Path) -> None:
    from test_hydra_record import APP

    (git_repo / "app.py").write_text(APP)
    (git_repo / ".gitignore").write_text("*.log\noutputs/\nmultirun/\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "app")
    home = tmp_path / "store"
    p = subprocess.run([sys.executable, "app.py", "-m", "hydra/callbacks=lumo", "x=1,3,2",
                        f"hydra.sweep.dir={tmp_path}/multirun"], cwd=git_repo, capture_output=True, text=True,
                       env=dict(os.environ, LUMO_HOME=str(home)), timeout=300)
    assert p.returncode == 0, p.stderr
    ctx = BoardContext(Watcher(home))
    (sid,) = {s for s in ctx.frame()["sweep"] if s}
    jobs, info = sweep_jobs(ctx, sid)
    # the basic sweeper optimizes nothing: ranked by the first metric with a cmp (acc, max), best first
    assert info["objective"] == "metrics.acc" and jobs["swept.x"].tolist() == ["3", "2", "1"]
    assert jobs["job"].tolist() == ["1", "2", "0"]
    view = sweep_view(ctx, sid)
    view.get_root()
    assert "lumo-sweep" in view.css_classes and "x=1,3,2" in _texts(view)
    run = run_view(ctx, jobs["test_name"].iloc[0])
    run.get_root()
    text = _texts(run)
    assert ">x</td>" in text and ">3</td>" in text and ">mode</td>" in text  # its params
    assert "hydra.yaml" in text and "output.log" in text and "rerun" in text  # its files, the rerun command
