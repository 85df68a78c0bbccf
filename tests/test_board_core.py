"""The board's core without a browser: server-side filter/sort/group/columns, edits, change detection, the
``lumo-hydra board`` server as a real subprocess, and the promise that lumo_hydra never imports Panel."""
from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from test_watcher_fake import this_host, write_run

from lumo_hydra import Watcher
from lumo_hydra.board import frames as F
from lumo_hydra.board.context import BoardContext, EditRefused, store_token

PYTHON = sys.executable
LRS = (0.1, 0.01)
SEEDS = (0, 1, 2)


def _acc(lr: float, seed: int) -> float:
    return round(0.5 + lr + 0.01 * seed, 4)


def make_store(root: Path) -> Path:
    """6 finished runs (lr x seed, constant batch), one failed, one running on this host."""
    now = time.time() - 1000
    i = 0
    for lr in LRS:
        for seed in SEEDS:
            i += 1
            write_run(root, "cls", counter=i, start=now + 10 * i, params={"lr": lr, "seed": seed, "batch": 32},
                      metrics={"acc": (_acc(lr, seed), "max"), "loss": (1 - _acc(lr, seed), "min")})
    write_run(root, "gan", counter=20, start=now + 200, status="failed", params={"lr": 1.0, "batch": 32})
    write_run(root, "gan", counter=21, start=now + 300, status="running", host=this_host(), pid=os.getpid(),
              pstart=psutil.Process().create_time(), params={"lr": 0.5, "batch": 32})
    return age(root)


def age(root: Path) -> Path:
    """Every file and folder of the store 30 s old (no change is 'recent')."""
    t = time.time() - 30
    for p in [*(root / "experiments").glob("*/*/*"), *(root / "experiments").glob("*/*"),
              *(root / "experiments").glob("*"), root / "experiments"]:
        os.utime(p, (t, t))
    return root


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "store")


@pytest.fixture
def ctx(store: Path) -> BoardContext:
    return BoardContext(Watcher(store))


def _run_json(ctx: BoardContext, name: str) -> dict[str, Any]:
    d = ctx.frame().set_index("test_name").loc[name, "info_dir"]
    return json.loads((Path(d) / "run.json").read_text())


def _name(ctx: BoardContext, **params: Any) -> str:
    df = ctx.frame()
    for k, v in params.items():
        df = df[df[f"params.{k}"] == v]
    assert len(df) == 1
    return str(df["test_name"].iloc[0])


# ---- server side without Panel ---------------------------------------------------------------------

def test_query_filter_uses_the_where_language(ctx: BoardContext) -> None:
    df = ctx.frame()
    assert len(df) == 8
    got = F.apply_where(df, "params.lr == 0.1 and metrics.acc > 0.605")
    assert sorted(got["params.seed"]) == [1, 2]
    assert len(F.apply_where(df, "status in [failed, running]")) == 2
    assert len(F.apply_where(df, "  ")) == 8
    with pytest.raises(ValueError, match="at character"):
        F.apply_where(df, "params.lr >>")
    with pytest.raises(ValueError, match="nope"):
        F.apply_where(df, "nope == 1")


def test_sort_by_any_column_missing_last(ctx: BoardContext) -> None:
    assert F.parse_sort("-metrics.acc, params.lr") == [("metrics.acc", False), ("params.lr", True)]
    assert F.format_sort(F.parse_sort("-metrics.acc,params.lr")) == "-metrics.acc,params.lr"
    df = F.sort_frame(ctx.frame(), F.parse_sort("-metrics.acc"))
    accs = list(df["metrics.acc"])
    known = [a for a in accs if a == a]
    assert known == sorted(known, reverse=True) and len(known) == 6
    assert all(a != a for a in accs[6:])  # the runs without the metric go last
    df = F.sort_frame(ctx.frame(), [("params.lr", True), ("params.seed", False)])
    assert list(zip(df["params.lr"], df["params.seed"]))[:3] == [(0.01, 2), (0.01, 1), (0.01, 0)]
    with pytest.raises(ValueError, match="invalid sort column 'nope'"):
        F.sort_frame(ctx.frame(), [("nope", True)])


def test_group_rows_give_mean_and_std_over_seeds(ctx: BoardContext) -> None:
    df = F.apply_where(ctx.frame(), "exp_name == cls")
    g = F.group_summary(df, "params.lr", ["metrics.acc"]).set_index("params.lr")
    for lr in LRS:
        vals = [_acc(lr, s) for s in SEEDS]
        assert g.loc[lr, "runs"] == 3
        assert g.loc[lr, "metrics.acc.mean"] == pytest.approx(statistics.mean(vals))
        assert g.loc[lr, "metrics.acc.std"] == pytest.approx(statistics.stdev(vals))
        assert g.loc[lr, "metrics.acc"] == f"{statistics.mean(vals):.4g} ± {statistics.stdev(vals):.4g}"
    one = F.group_summary(ctx.frame(), "exp_name").set_index("exp_name")
    assert one.loc["gan", "runs"] == 2 and "metrics.acc.last" in one.columns
    with pytest.raises(ValueError, match="invalid group column 'nope'"):
        F.group_summary(df, "nope")


def test_default_columns_are_the_differing_params_and_best_metrics(ctx: BoardContext) -> None:
    cols = F.default_columns(ctx.frame())
    assert cols == ["params.lr", "params.seed", "metrics.acc", "metrics.loss"]  # batch is the same everywhere
    assert "metrics.acc.last" in F.pickable_columns(ctx.frame())
    groups = F.column_groups(["params.optim.lr", "params.optim.wd", "params.seed", "metrics.acc",
                              "metrics.acc.last", "sweep"])
    assert groups == {"params.optim": ["params.optim.lr", "params.optim.wd"], "params": ["params.seed"],
                      "metrics": ["metrics.acc", "metrics.acc.last"], "run": ["sweep"]}
    table = F.table_frame(ctx.frame(), cols)
    assert list(table.columns) == [*F.FIXED, *cols, *F.EDITABLE, "info_dir"]
    assert set(table[table["status"] == "finished"]["progress"]) == {100.0}  # percent
    assert all(0 <= v < 100 for v in table[table["status"] == "running"]["progress"])


# ---- edits --------------------------------------------------------------------------------------------

def test_note_and_tags_edits_land_in_run_json(ctx: BoardContext) -> None:
    name = _name(ctx, lr=0.1, seed=0)
    ctx.frame()
    v = ctx.version
    ctx.set_note(name, "baseline, rerun with warmup")
    ctx.set_tags(name, "best, paper  best")
    rec = _run_json(ctx, name)
    assert rec["note"] == "baseline, rerun with warmup" and rec["tags"] == ["best", "paper"]
    assert ctx.version > v  # the frame is reloaded: it shows the edit
    row = ctx.frame().set_index("test_name").loc[name]
    assert row["note"] == "baseline, rerun with warmup" and list(row["tags"]) == ["best", "paper"]


def test_edits_are_refused_read_only_and_for_a_running_run(store: Path) -> None:
    ro = BoardContext(Watcher(store), read_only=True)
    name = _name(ro, lr=0.1, seed=1)
    before = _run_json(ro, name)
    with pytest.raises(EditRefused, match="read-only"):
        ro.set_note(name, "x")
    assert _run_json(ro, name) == before
    rw = BoardContext(Watcher(store))
    running = _name(rw, lr=0.5)
    before = _run_json(rw, running)
    with pytest.raises(EditRefused, match="still running"):
        rw.set_tags(running, "x")
    assert _run_json(rw, running) == before


# ---- change detection -----------------------------------------------------------------------------

@pytest.mark.parametrize("fallback", [False, True])
def test_change_detection_picks_a_new_run(store: Path, fallback: bool) -> None:
    w = Watcher(store)
    ctx = BoardContext(w if not fallback else SimpleNamespace(  # a Watcher without change_token()
        root=w.root, load=w.load, record=w.record, resolve=w.resolve, stale_after=w.stale_after))
    assert hasattr(ctx.watcher, "change_token") is not fallback
    assert len(ctx.frame()) == 8
    assert not ctx.changed() and not ctx.changed()
    write_run(store, "cls", counter=99, params={"lr": 0.3, "seed": 0, "batch": 32})
    age(store)  # (not 'recent': the token is stable at once)
    assert ctx.changed()
    assert len(ctx.frame()) == 9 and not ctx.changed()


def test_fallback_token_moves_on_an_atomic_rewrite(store: Path) -> None:
    before = store_token(store)
    assert store_token(store) == before
    run = next((store / "experiments" / "cls").iterdir())
    time.sleep(0.01)
    tmp = run / "run.json.tmp"
    tmp.write_text((run / "run.json").read_text())
    os.replace(tmp, run / "run.json")
    assert store_token(store) != before
    assert store_token(store / "nothing-here") == "none"


def test_a_given_frame_is_fixed_and_flattened(store: Path) -> None:
    w = Watcher(store)
    ctx = BoardContext(w, df=w.load())  # lumo's nested frame
    flat = ctx.frame()
    assert {"params.lr", "metrics.acc", "metrics.acc.last", "progress.ratio"} <= set(flat.columns)
    write_run(store, "cls", counter=98)
    assert not ctx.changed() and len(ctx.frame()) == 8


# ---- the Panel table and page (no browser) --------------------------------------------------------

def test_runs_table_state_filter_sort_group_select_and_refresh(store: Path) -> None:
    pytest.importorskip("panel")
    from lumo_hydra.board.app import board_app

    ctx = BoardContext(Watcher(store))
    page = board_app(ctx, url=False, refresh_ms=None)._lumo_page
    runs = page.runs
    assert len(runs.table.value) == 8 and runs.table.pagination == "remote"
    runs.where = "exp_name == cls"
    assert len(runs.table.value) == 6 and "**6** of 8" in runs.count.object
    runs.where = "params.lr >>"
    assert runs.message.visible and "query not applied" in runs.message.object
    assert len(runs.table.value) == 6  # the last good view stays
    runs.where = "exp_name == cls"
    assert not runs.message.visible
    runs.sort = "-metrics.acc"
    assert runs.table.sorters == [{"field": "metrics.acc", "dir": "desc"}]
    assert list(runs.current_frame()["metrics.acc"]) == sorted([_acc(lr, s) for lr in LRS for s in SEEDS],
                                                                reverse=True)
    assert b"metrics.acc" in runs.csv_bytes().getvalue().splitlines()[0]
    runs.group = "params.nope"
    assert not runs.groups.visible and "'params.nope' is not a column" in runs.message.object
    runs.group = "params.lr"
    assert runs.groups.visible and len(runs.groups.value) == 2 and runs.table.groupby == [F.GROUP_KEY]
    pick = _name(ctx, lr=0.01, seed=2)
    runs.sel = pick
    assert [runs.table.value["test_name"].iloc[i] for i in runs.table.selection] == [pick]
    runs.table.selection = []
    assert runs.sel == ""
    runs.sel = pick
    write_run(store, "cls", counter=97, params={"lr": 0.01, "seed": 3, "batch": 32},
              metrics={"acc": (0.99, "max")})
    age(store)
    assert runs.refresh()  # the store changed: the new run is in, state kept
    assert len(runs.table.value) == 7 and runs.where == "exp_name == cls" and runs.group == "params.lr"
    assert [runs.table.value["test_name"].iloc[i] for i in runs.table.selection] == [pick]
    assert runs.table.sorters == [{"field": "metrics.acc", "dir": "desc"}]
    assert not runs.refresh()
    runs.table.get_root()  # a model, as in a page: Panel sorts the value with the sorters
    runs.cols = "params.seed,metrics.acc.last"  # the sort column is no longer shown: no sorter on it
    assert runs.table.sorters == [] and runs.sort == "-metrics.acc"
    assert list(runs.table.value.columns[6:8]) == ["params.seed", "metrics.acc.last"]
    runs.cols = ""
    assert runs.table.sorters == [{"field": "metrics.acc", "dir": "desc"}]
    assert len(runs.pickers) == 0  # the column picker is built when first opened
    runs.picker.collapsed = False
    boxes = {col[1].options[0].rpartition(".")[0] or "run": col[1] for col in runs.pickers}
    assert boxes["params"].value == ["params.lr", "params.seed"] and "params.batch" in boxes["params"].options
    boxes["params"].value = ["params.batch"]  # ticking a box shows that column
    assert runs.cols.startswith("params.batch,") and "params.seed" not in runs.cols
    assert "params.batch" in runs.table.value.columns and "params.seed" not in runs.table.value.columns


def test_group_headers_count_every_matching_run_not_only_the_page(store: Path) -> None:
    """Grouped with a page smaller than a group: each row's group header (what the table shows above the
    group's rows on any page) has the count and mean ± std of ALL the group's filtered runs."""
    pytest.importorskip("panel")
    import pandas as pd

    from lumo_hydra.board.table import RunsTable

    ctx = BoardContext(Watcher(store))
    runs = RunsTable(ctx, page_size=2, where="exp_name == cls", cols="params.seed,metrics.acc", group="params.lr")
    assert runs.table.groupby == [F.GROUP_KEY] and F.GROUP_KEY in runs.table.hidden_columns
    want = {}
    for lr in LRS:
        accs = [_acc(lr, s) for s in SEEDS]
        want[lr] = f"params.lr = {lr:g} · 3 runs · metrics.acc {statistics.mean(accs):.4g} ± {statistics.stdev(accs):.4g}"
    data = runs.table.value
    assert dict(zip(data["params.lr"], data[F.GROUP_KEY])) == want
    model = runs.table.get_root()
    src = model.source.data  # what the browser gets: one page (2 rows of a 3-run group)
    assert len(src["test_name"]) == 2 and [str(t) for t in src[F.GROUP_KEY]] == [want[min(LRS)]] * 2
    assert "groupHeader" in model.configuration or "langs" in model.configuration
    runs.where = "exp_name == cls and params.seed != 2"  # the filter changes the groups' figures
    assert set(runs.table.value[F.GROUP_KEY].str.contains("2 runs")) == {True}
    runs.group = ""
    assert runs.table.groupby == [] and F.GROUP_KEY not in runs.table.value
    odd = pd.DataFrame({"params.m": ["<b>x</b>", "<b>x</b>", None], "metrics.acc": [0.5, 0.7, 0.1]})
    assert F.group_labels(odd, "params.m", ["metrics.acc"]) == [
        "params.m = &lt;b&gt;x&lt;/b&gt; · 2 runs · metrics.acc 0.6 ± 0.1414"] * 2 + [
        "params.m = (none) · 1 run · metrics.acc 0.1 ± 0"]


def test_a_live_change_of_a_groups_figures_regroups_the_table(store: Path) -> None:
    """Grouped, a metric changed on disk changes its group's header (the rows' group key): the value is
    replaced (Tabulator groups a new value; a patch would leave the rows under the old header)."""
    pytest.importorskip("panel")
    from lumo_hydra.board.table import RunsTable
    from lumo_hydra.store.reader import mark_changed

    ctx = BoardContext(Watcher(store))
    runs = RunsTable(ctx, where="exp_name == cls", cols="params.seed,metrics.acc", group="params.lr")
    runs.table.get_root()
    sent: list[str] = []
    runs.table.param.watch(lambda e: sent.append(e.name), ["value"])
    d = Path(ctx.frame().set_index("test_name").loc[_name(ctx, lr=0.1, seed=0), "info_dir"])
    m = json.loads((d / "metrics.json").read_text())
    m["acc"]["best"] = 0.99
    (d / "metrics.json").write_text(json.dumps(m))
    mark_changed(d)
    assert ctx.changed() and runs.refresh()
    data = runs.table.value
    assert sent == ["value"] and runs.table.groupby == [F.GROUP_KEY]
    heads = set(data.loc[data["params.lr"] == 0.1, F.GROUP_KEY])
    accs = [0.99, _acc(0.1, 1), _acc(0.1, 2)]
    assert heads == {f"params.lr = 0.1 · 3 runs · metrics.acc {statistics.mean(accs):.4g} ± {statistics.stdev(accs):.4g}"}


def test_a_heartbeat_leaves_the_table_alone_and_a_change_is_patched(store: Path) -> None:
    """The live check reloads the frame at every heartbeat of a running run, but the table (whose value
    replaced redraws every row in the browser, closing an open editor) is touched only for a real change."""
    pytest.importorskip("panel")
    from lumo_hydra.board.app import board_app
    from lumo_hydra.store.reader import edit_record, mark_changed

    ctx = BoardContext(Watcher(store))
    runs = board_app(ctx, url=False, refresh_ms=None)._lumo_page.runs
    runs.table.get_root()
    value, sent = runs.table.value, []
    runs.table.param.watch(lambda e: sent.append(e.name), ["value"])
    running = Path(ctx.frame().set_index("test_name").loc[_name(ctx, lr=0.5), "info_dir"])
    for _ in range(2):
        time.sleep(0.05)
        (running / "heartbeat").write_text(repr(time.time()))
        mark_changed(running)
        assert ctx.changed()
        assert runs.refresh() and runs.table.value is value and sent == []  # not even a patch
    name = _name(ctx, lr=0.1, seed=1)
    edit_record(Path(ctx.frame().set_index("test_name").loc[name, "info_dir"]),
                lambda r: r.update(note="written by lumo-hydra note"))
    assert ctx.changed() and runs.refresh()
    assert runs.table.value is value and sent == []  # patched, not replaced
    row = int(value.index[value["test_name"] == name][0])
    assert runs.table.value["note"].iloc[row] == "written by lumo-hydra note"
    write_run(store, "cls", counter=96, params={"lr": 0.01, "seed": 4, "batch": 32})
    assert ctx.changed() and runs.refresh()
    assert sent == ["value"] and len(runs.table.value) == 9  # a new row: the value is replaced


def test_editing_a_cell_writes_run_json_or_puts_it_back(store: Path) -> None:
    pytest.importorskip("panel")
    from lumo_hydra.board.app import board_app

    for read_only in (False, True):
        ctx = BoardContext(Watcher(store), read_only=read_only)
        runs = board_app(ctx, url=False, refresh_ms=None)._lumo_page.runs
        data = runs.table.value
        for name, text in ((_name(ctx, lr=0.1, seed=2), f"from the board {read_only}"), (_name(ctx, lr=0.5), "no")):
            row = int(data.index[data["test_name"] == name][0])
            before = _run_json(ctx, name)
            runs._on_edit(SimpleNamespace(column="note", row=row, value=text, old=""))
            saved = not read_only and text != "no"
            assert (_run_json(ctx, name)["note"] == text) is saved
            if not saved:
                assert _run_json(ctx, name) == before
                assert runs.message.visible and "not saved" in runs.message.object
            else:
                assert "saved to run.json" in runs.message.object
        assert runs.table.editors["note"] == (None if read_only else {"type": "input"})
        assert runs.table.editors["status"] is None


def test_a_refused_edit_stays_said_across_live_refreshes(store: Path) -> None:
    """The refusal of a running run's edit is not hidden by the next live check that sees a heartbeat
    (a busy server can send both in one batch: the page would never show it), only by the user's next
    action; a failed query's message still goes once the query works."""
    pytest.importorskip("panel")
    from lumo_hydra.board.app import board_app
    from lumo_hydra.store.reader import mark_changed

    ctx = BoardContext(Watcher(store))
    runs = board_app(ctx, url=False, refresh_ms=None)._lumo_page.runs
    data = runs.table.value
    running = _name(ctx, lr=0.5)
    row = int(data.index[data["test_name"] == running][0])
    runs._on_edit(SimpleNamespace(column="note", row=row, value="edited while running", old=""))
    assert runs.message.visible and f"note of {running} not saved" in runs.message.object
    info_dir = Path(ctx.frame().set_index("test_name").loc[running, "info_dir"])
    for _ in range(2):  # heartbeats seen by live checks
        time.sleep(0.05)
        (info_dir / "heartbeat").write_text(repr(time.time()))
        mark_changed(info_dir)
        assert ctx.changed()
        runs.refresh()
        assert runs.message.visible and "not saved" in runs.message.object
    runs.where = "exp_name == cls"  # the user's next action clears it
    assert not runs.message.visible
    runs.where = "params.lr >>"
    assert runs.message.visible and "query not applied" in runs.message.object
    runs.where = ""
    assert not runs.message.visible


def test_tabs_and_watcher_panel(store: Path) -> None:
    pytest.importorskip("panel")
    from lumo_hydra.board.app import TABS

    w = Watcher(store)
    root = w.panel()
    page = root._lumo_page
    assert [page.tabs._names[i] for i in range(4)] == list(TABS)
    page.state.tab = "Compare"
    assert page.tabs.active == 1 and len(page.compare_box) == 1
    page.state.tab = "Run"
    assert len(page.run_box) == 1
    assert len(w.panel(w.load())._lumo_page.runs.table.value) == 8
    assert len(w.panel(status="failed")._lumo_page.runs.table.value) == 1


# ---- the command ---------------------------------------------------------------------------------

def _start(store: Path, *extra: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    p = subprocess.Popen([PYTHON, "-m", "lumo_hydra", "board", "--root", str(store), "--port", "0", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    threading.Thread(target=lambda: err.extend(p.stderr or []), daemon=True).start()
    line = ""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(p.stdout.readline() if p.stdout else ""), daemon=True)
    reader.start()
    reader.join(120)
    line = box[0] if box else ""
    if not line:
        p.kill()
        pytest.fail(f"no serving line; stderr: {''.join(err)}")
    return p, line.rstrip("\n"), err


def test_board_serves_the_page_offline_and_stops_on_sigint(store: Path) -> None:
    pytest.importorskip("panel")
    p, line, err = _start(store)
    try:
        m = re.fullmatch(r"lumo-hydra board: serving (http://127\.0\.0\.1:(\d+)/)", line)
        assert m, line
        with urllib.request.urlopen(m.group(1), timeout=120) as r:
            assert r.status == 200
            html = r.read().decode()
        assert "lumo-hydra board" in html and "bokeh" in html
        assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
        assert any("tabulator" in a for a in assets), assets
        cdn = [a for a in assets if re.match(r"(https?:)?//", a)]
        assert not cdn, cdn
        for a in assets:  # every asset the page names is served by the board itself
            if a.endswith((".js", ".css")) or ".js?" in a or ".css?" in a:
                with urllib.request.urlopen(m.group(1) + a.lstrip("./"), timeout=60) as r:
                    assert r.status == 200, a
        p.send_signal(signal.SIGINT)
        assert p.wait(60) == 0, "".join(err)
    finally:
        if p.poll() is None:
            p.kill()


def test_board_on_another_host_warns_and_stops_on_sigterm(store: Path) -> None:
    pytest.importorskip("panel")
    p, line, err = _start(store, "--host", "0.0.0.0", "--read-only")
    try:
        assert re.fullmatch(r"lumo-hydra board: serving http://0\.0\.0\.0:\d+/", line), line
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0
        text = "".join(err)
        assert "warning: listening on 0.0.0.0" in text and "--read-only" in text
    finally:
        if p.poll() is None:
            p.kill()


def test_board_without_panel_is_one_line_naming_the_extra(store: Path) -> None:
    code = ("import sys; sys.modules['panel'] = None\nfrom lumo_hydra.cli import main\n"
            f"sys.exit(main(['board', '--root', {str(store)!r}, '--port', '0']))")
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "pip install 'lumo-hydra[board]'" in r.stderr, r.stderr


def test_lumo_hydra_and_a_recorded_job_never_import_panel(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import sys
        import lumo_hydra
        from lumo_hydra import Watcher
        assert not {'panel', 'bokeh'} & set(sys.modules), 'import'
        exp = lumo_hydra.SimpleExperiment('purity', heartbeat_interval=0)
        exp.start(); exp.dump_metric('acc', 0.5); exp.end()
        Watcher().load()
        from lumo_hydra.cli import main
        main(['list'])
        bad = sorted(m for m in sys.modules if m.split('.')[0] in ('panel', 'bokeh', 'param', 'tornado'))
        assert not bad, bad
        print('clean')
    """)
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, LUMO_HOME=str(tmp_path / "home")), cwd=tmp_path)
    assert r.returncode == 0 and "clean" in r.stdout, r.stdout + r.stderr


def test_an_empty_store_shows_an_empty_table(tmp_path: Path) -> None:
    pytest.importorskip("panel")
    w = Watcher(tmp_path / "none")
    for root in (w.panel(), w.panel(w.load()), w.panel(status="failed")):
        runs = root._lumo_page.runs
        assert len(runs.table.value) == 0 and "**0** of 0" in runs.count.object


def test_board_export_writes_a_filtered_static_page(store: Path, tmp_path: Path) -> None:
    pytest.importorskip("panel")
    pytest.importorskip("lumo_hydra.board.export")
    out = tmp_path / "report.html"
    r = subprocess.run([PYTHON, "-m", "lumo_hydra", "board", "--root", str(store), "--export", str(out),
                        "--where", "status == failed"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"lumo-hydra board: wrote {out}"
    html = out.read_text()
    ctx = BoardContext(Watcher(store))
    assert _name(ctx, lr=1.0) in html and _name(ctx, lr=0.1, seed=0) not in html


def test_board_port_is_checked(store: Path) -> None:
    r = subprocess.run([PYTHON, "-m", "lumo_hydra", "board", "--root", str(store), "--port", "70000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "must be <= 65535, got 70000" in r.stderr


def test_board_on_a_taken_port_says_so(store: Path) -> None:
    pytest.importorskip("panel")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([PYTHON, "-m", "lumo_hydra", "board", "--root", str(store), "--port", str(port)],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "a free --port" in r.stderr, r.stderr


def test_the_sweep_tab_opens_the_newest_sweep(tmp_path: Path) -> None:
    pytest.importorskip("panel")
    root = tmp_path / "s"
    for i, sid in enumerate(["261201.000.aat", "261202.000.bbt", "261202.000.bbt"]):
        write_run(root, "sw", counter=i, sweep=sid, job_num=i, params={"lr": i / 10})
    page = Watcher(age(root)).panel()._lumo_page
    page.state.tab = "Sweep"
    assert page.tabs.active == 3 and page.state.sweep == "261202.000.bbt"
    assert list(page.sweep_select.options) == ["", "261202.000.bbt", "261201.000.aat"]
    assert len(page.sweep_box) == 1 and page.sweep_box[0].css_classes != ["lumo-message"]
    page.sweep_select.value = "261201.000.aat"
    assert page.state.sweep == "261201.000.aat"
