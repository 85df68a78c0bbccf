"""The board's live tick beyond the runs table: the Compare tab's curves of running runs grow by the points
they append, and the Run page of a running run refreshes its status, progress, metrics and console tail,
all in place (same figure, so the user's zoom stays; same controls)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from test_watcher_fake import this_host, write_run

from lumo_hydra import Watcher
from lumo_hydra.board.context import BoardContext

pn = pytest.importorskip("panel")

from lumo_hydra.board.app import board_app  # noqa: E402

STEPS = 10


def _store(root: Path) -> dict[str, Path]:
    """One finished and one running run (this process, so it stays ``running``), each with a history."""
    now = time.time() - 100
    done = write_run(root, "cls", counter=1, start=now, metrics={"loss": (1.0, "min")}, history_steps=STEPS)
    run = write_run(root, "cls", counter=2, start=now + 10, status="running", host=this_host(), pid=os.getpid(),
                    pstart=psutil.Process().create_time(), metrics={"loss": (2.0, "min")}, history_steps=STEPS)
    return {"done": done, "running": run}


def _append(info_dir: Path, start: int, n: int, metric: str = "loss") -> None:
    with open(info_dir / "history.jsonl", "a") as f:
        for s in range(start, start + n):
            f.write(json.dumps({"k": metric, "v": 1.0 / (s + 1), "s": s, "t": time.time()}) + "\n")


def _find(view: Any, attr: str) -> list[Any]:
    return [getattr(o, attr) for o in view.select() if hasattr(o, attr)]


def _lengths(fig: Any) -> dict[str, int]:
    """Points of each run's line (the renderers' name is the run's test_name)."""
    return {r.name: len(r.data_source.data["x"]) for r in fig.renderers if type(r.glyph).__name__ == "Line"}


def test_the_tick_grows_the_compare_curves_of_a_running_run(tmp_path: Path) -> None:
    runs = _store(tmp_path / "store")
    ctx = BoardContext(Watcher(tmp_path / "store"))
    page = board_app(ctx, url=False, refresh_ms=None)._lumo_page
    page.runs.sel = ",".join(p.name for p in runs.values())
    page.state.tab = "Compare"
    (live,) = _find(page.compare_box, "_lumo_curves")
    fig = live.plot.object
    assert _lengths(fig) == {runs["done"].name: STEPS, runs["running"].name: STEPS}
    fig.x_range.start, fig.x_range.end = 2.0, 6.0  # the user zoomed in
    page.tick()
    assert live.updates == 0  # nothing appended: nothing sent
    _append(runs["running"], STEPS, 5)
    page.tick()
    assert live.plot.object is fig and (fig.x_range.start, fig.x_range.end) == (2.0, 6.0)
    assert _lengths(fig) == {runs["done"].name: STEPS, runs["running"].name: STEPS + 5}
    assert live.updates == 1
    _append(runs["running"], STEPS + 5, 3)
    page.tick()
    assert _lengths(fig)[runs["running"].name] == STEPS + 8 and live.plot.object is fig
    ys = [r.data_source.data["y"] for r in fig.renderers if r.name == runs["running"].name][0]
    assert list(ys[-3:]) == [1.0 / (s + 1) for s in range(STEPS + 5, STEPS + 8)]


def _html(pane: Any) -> str:
    return " ".join(str(o.object) for o in pane.select() if isinstance(getattr(o, "object", None), str))


def test_the_tick_refreshes_the_run_page_of_a_running_run(tmp_path: Path) -> None:
    from lumo_hydra.store.files import atomic_write_json

    runs = _store(tmp_path / "store")
    d = runs["running"]
    (d / "output.log").write_text("epoch 1\n")
    ctx = BoardContext(Watcher(tmp_path / "store"))
    page = board_app(ctx, url=False, refresh_ms=None)._lumo_page
    page.state.run = d.name
    page.state.tab = "Run"
    view = page.run_box[0]
    run = view._lumo_run_page
    head, log = run.head, run.log
    assert "progress 50%" in head.object and "epoch 1" in log.object and "running" in head.object
    page.tick()
    assert run.updates == 0  # nothing changed: nothing sent
    rec = json.loads((d / "run.json").read_text())
    rec["progress"]["ratio"] = 0.8
    atomic_write_json(d / "run.json", rec)
    summary = json.loads((d / "metrics.json").read_text())
    summary["loss"].update(best=0.125, count=STEPS + 2)
    atomic_write_json(d / "metrics.json", summary)
    with open(d / "output.log", "a") as f:
        f.write("epoch 2: loss 0.125\n")
    _append(d, STEPS, 2)
    page.tick()
    assert run.updates == 1 and view.objects[0] is head and run.log is log  # in place: not rebuilt
    assert "progress 80%" in head.object and "epoch 2: loss 0.125" in log.object
    assert "0.125" in _html(run.metrics)
    assert _lengths(run.curves._lumo_curves.plot.object)[d.name] == STEPS + 2
    rec.update(status="finished", exception=None)
    rec["progress"].update(ratio=1.0, end=rec["progress"]["start"], end_code=0)
    atomic_write_json(d / "run.json", rec)
    page.tick()  # the end: the page is built once more, with the final record
    assert run.updates == 2 and view.objects[0] is not head and "finished" in view.objects[0].object
    assert page.run_box[0] is view
    page.tick()
    assert run.updates == 2  # an ended run is not read again
