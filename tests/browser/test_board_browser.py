"""`lumo-hydra board` in a real headless Chromium (BOARD-CONTRACT.md): the runs table with every status
(runs written through the API and by a real Hydra sweep), header sort and the --where query box change the
rows, a note edited in the page lands in run.json (and is refused for a running run), two selected runs
draw their curves in Compare, the URL carries the view, a new run appears without a reload; no request
fails, no console error, no request leaves 127.0.0.1 (checked for every page by the open_page fixture).

Screenshots of each view go to docs/img/board-*.png with LUMO_SCREENSHOTS=1.
"""
from __future__ import annotations

import json
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from .kit import RUN_ID, Board, Store, deep_text, new_run, shot, wait_until

ROWS = ".lumo-runs:not(.lumo-first-page-table) .tabulator-row"  # the interactive table (not the HTML's rows)
REFRESH_MS = 3000  # lumo_hydra.board.app.REFRESH_MS: the page's live check (not imported: no Panel here)


def rows(page: Any) -> Any:
    return page.locator(ROWS).filter(has_text=RUN_ID)


def wait_rows(page: Any) -> Any:
    rows(page).first.wait_for(state="visible")
    page.locator("#lumo-first-page").wait_for(state="detached")  # the HTML's first page is gone
    return rows(page)


def row_of(page: Any, test_name: str) -> Any:
    return page.locator(ROWS).filter(has_text=test_name)


def shown_ids(page: Any) -> list[str]:
    """The test_name of every row on the page, top to bottom."""
    cells = page.locator(f"{ROWS} .tabulator-cell[tabulator-field='test_name']")
    return [t.strip() for t in cells.all_inner_texts()]


def column_texts(page: Any, field: str) -> list[str]:
    return [t.strip() for t in page.locator(f"{ROWS} .tabulator-cell[tabulator-field='{field}']").all_inner_texts()]


def wait_ids(page: Any, want: set[str], what: str) -> list[str]:
    """Wait until the rows shown are exactly ``want``."""
    return wait_until(what, lambda: (ids := shown_ids(page)) and set(ids) == want and ids)


def query(page: Any, text: str) -> None:
    box = page.locator(".lumo-query input")
    box.fill(text)
    box.press("Enter")


def url_state(page: Any) -> dict[str, str]:
    """The query of the page's URL now (asked from the page: the board rewrites it in place)."""
    search = page.evaluate("() => window.location.search")
    return {k: v[0] for k, v in urllib.parse.parse_qs(search.lstrip("?")).items()}


def lr_of(store: Store, name: str) -> float:
    return float(store.record(name)["params"]["lr"])


def test_table_shows_every_run_with_its_status(board: Board, store: Store, open_page: Any, tmp_path: Path) -> None:
    page = open_page(board.url)
    wait_rows(page)
    wait_ids(page, set(store.runs), "every run of the store in the table")
    for name, status in store.runs.items():
        badge = row_of(page, name).locator(".tabulator-cell[tabulator-field='status'] .lumo-badge")
        assert badge.inner_text().strip() == status, name
        assert f"lumo-status-{status}" in (badge.get_attribute("class") or "")
    assert {"finished", "failed", "interrupted", "killed", "crashed", "running"} <= set(store.runs.values())
    # the jobs of the real Hydra sweep are rows like the others
    assert set(store.hydra_runs) <= set(shown_ids(page))
    count = wait_until("the count", lambda: deep_text(page.locator(".lumo-count").first))
    assert re.search(rf"\b{len(store.runs)}\s+of\s+{len(store.runs)} runs", count), count
    page.wait_for_timeout(500)  # let the badges and progress bars paint
    shot(page, "board-runs.png", tmp_path)


def test_the_first_page_of_rows_comes_in_the_html_then_the_interactive_table(board: Board, store: Store,
                                                                            open_page: Any) -> None:
    import urllib.request

    with urllib.request.urlopen(board.url, timeout=60) as r:
        html = r.read().decode()
    # the page's HTML holds the rows (newest first), before any script: they show before BokehJS is loaded
    first = html.index('id="lumo-first-page"')
    assert first < html.index("bokeh.min.js")
    sent = re.findall(r'tabulator-field="test_name">([^<]+)<', html)
    assert set(sent) == set(store.runs)
    assert 'class="lumo-badge lumo-status-running"' in html
    page = open_page(board.url, wait="commit")
    page.locator(".lumo-first-page-table .tabulator-row").filter(has_text=RUN_ID).first.wait_for(state="attached")
    wait_rows(page)  # the interactive rows come and the HTML's are removed
    assert page.locator(".lumo-first-page-table").count() == 0
    assert set(shown_ids(page)) == set(sent)
    # a grouped view has no first page in its HTML (the Tabulator's group rows are not imitated)
    with urllib.request.urlopen(board.url + "?group=exp_name", timeout=60) as r:
        assert 'id="lumo-first-page"' not in r.read().decode()


def test_header_sort_and_query_change_the_rows(board: Board, store: Store, open_page: Any) -> None:
    page = open_page(board.url)
    wait_ids(page, set(store.runs), "every run")
    before = shown_ids(page)
    header = page.locator(".lumo-runs .tabulator-col[tabulator-field='params.lr'] .tabulator-col-title")
    header.click()

    def lrs() -> list[float]:
        return [float(t) for t in column_texts(page, "params.lr")]

    asc = wait_until("rows sorted by params.lr ascending",
                     lambda: (v := lrs()) and v == sorted(v) and shown_ids(page) != before and v)
    assert asc == sorted(lr_of(store, n) for n in store.runs)
    wait_until("sort=params.lr in the URL", lambda: url_state(page).get("sort") == "params.lr")
    header.click()
    wait_until("rows sorted by params.lr descending", lambda: (v := lrs()) and v == sorted(v, reverse=True))
    wait_until("sort=-params.lr in the URL", lambda: url_state(page).get("sort") == "-params.lr")

    # the query box takes --where expressions: the rows are the runs the expression keeps
    want = {n for n in store.runs if lr_of(store, n) >= 0.5 and store.runs[n] == "finished"}
    assert 0 < len(want) < len(store.runs)
    query(page, "params.lr >= 0.5 and status == finished")
    wait_ids(page, want, "the rows of params.lr >= 0.5 and status == finished")
    assert re.search(rf"\b{len(want)}\s+of\s+{len(store.runs)} runs", deep_text(page.locator(".lumo-count").first))
    wait_until("where= in the URL", lambda: url_state(page).get("where") == "params.lr >= 0.5 and status == finished")
    query(page, "status in [failed, crashed]")
    wait_ids(page, set(store.by_status("failed") + store.by_status("crashed")), "failed and crashed runs")

    # a bad query keeps the rows and says why
    shown = set(shown_ids(page))
    query(page, "params.nope > 1")
    msg = page.locator(".lumo-message").filter(has_text="query not applied")
    msg.first.wait_for(state="visible")
    assert "params.nope" in deep_text(msg.first)
    assert set(shown_ids(page)) == shown
    query(page, "")
    wait_ids(page, set(store.runs), "every run again after clearing the query")


def edit_note(page: Any, store: Store, name: str, text: str) -> None:
    """Double-click the run's note cell, type, hold the editor open while the running run heartbeats
    (every 0.5 s) across two live checks of the page (every 3 s), then Enter: no retry, the live check
    must leave the table alone for a heartbeat (it used to redraw every row, closing the editor)."""
    cell = row_of(page, name).locator(".tabulator-cell[tabulator-field='note']")
    cell.dblclick()
    editor = cell.locator("input")
    editor.wait_for(state="visible")
    editor.fill(text)
    beat = store.info_dir(store.by_status("running")[0]) / "heartbeat"
    seen = {beat.read_text()}
    wait_until("four heartbeats of the running run", lambda: seen.add(beat.read_text()) or len(seen) > 4)
    page.wait_for_timeout(2 * REFRESH_MS + 500)  # two live checks, each seeing the store changed
    assert editor.is_visible() and editor.input_value() == text, "the open editor went away under the keyboard"
    editor.press("Enter")


def test_note_edited_in_the_page_lands_in_run_json(board: Board, store: Store, open_page: Any) -> None:
    page = open_page(board.url)
    wait_ids(page, set(store.runs), "every run")
    name = store.by_status("finished")[0]
    assert store.record(name).get("note", "") == ""
    edit_note(page, store, name, "lr too high, rerun with warmup")
    wait_until("the note in run.json", lambda: store.record(name).get("note") == "lr too high, rerun with warmup")
    page.locator(".lumo-message").filter(has_text=f"note of {name} saved to run.json").first.wait_for(state="visible")
    rec = store.record(name)
    assert rec["status"] == "finished" and rec["params"]["lr"] == lr_of(store, name)  # nothing else changed

    # a running run's record belongs to its process: the edit is refused, run.json untouched
    running = store.by_status("running")[0]
    before = (store.info_dir(running) / "run.json").read_text()
    edit_note(page, store, running, "edited while running")
    page.locator(".lumo-message").filter(has_text=f"note of {running} not saved").first.wait_for(state="visible")
    assert json.loads((store.info_dir(running) / "run.json").read_text()).get("note", "") == ""
    assert "edited while running" not in before
    cell = row_of(page, running).locator(".tabulator-cell[tabulator-field='note']")
    wait_until("the refused note put back in the cell", lambda: cell.inner_text().strip() == "")


# points of the renderers named after each run (a run's curve) in the page's Bokeh documents
LINE_POINTS = """names => names.map(n => Math.max(0, ...Bokeh.documents.flatMap(d => [...d._all_models.values()])
    .filter(m => m.name === n && m.data_source && m.data_source.data)
    .map(m => (Object.values(m.data_source.data)[0] || []).length)))"""


def select(page: Any, name: str) -> None:
    row_of(page, name).locator("input[type='checkbox']").first.click()


def open_tab(page: Any, title: str) -> None:
    page.locator(".lumo-tabs .bk-tab").filter(has_text=re.compile(rf"^\s*{title}\s*$")).first.click()


def test_two_selected_runs_draw_their_curves_in_compare(board: Board, store: Store, open_page: Any,
                                                        tmp_path: Path) -> None:
    page = open_page(board.url)
    wait_ids(page, set(store.runs), "every run")
    a, b = store.by_status("finished")[:2]
    select(page, a)
    select(page, b)
    wait_until("sel= in the URL", lambda: set(url_state(page).get("sel", "").split(",")) == {a, b})
    open_tab(page, "Compare")
    curves = page.locator(".lumo-compare .lumo-curves")
    curves.first.wait_for(state="visible")
    page.locator(".lumo-curves canvas").first.wait_for(state="visible")
    info = page.locator(".lumo-curves-info").first
    text = wait_until("the curves' summary", lambda: (t := deep_text(info)) and "points read" in t and t)
    m = re.search(r"(\d+) runs · ([\d,]+) points read", text)
    assert m, text
    metrics = list(json.loads((store.info_dir(a) / "metrics.json").read_text()))
    assert int(m.group(1)) == 2
    assert int(m.group(2).replace(",", "")) in {store.history_points(a, k) + store.history_points(b, k) for k in metrics}
    # one line renderer per run (named by its run id) in the page's Bokeh documents
    drawn = page.evaluate(LINE_POINTS, [a, b])
    assert all(k > 0 for k in drawn), drawn
    wait_until("tab=Compare in the URL", lambda: url_state(page).get("tab") == "Compare")
    page.wait_for_timeout(500)
    shot(page, "board-compare.png", tmp_path)


def test_the_curves_of_a_selected_running_run_grow_without_a_reload(board: Board, store: Store,
                                                                    open_page: Any) -> None:
    """Points appended to a running run's history.jsonl reach its line in the open Compare tab (the live
    check streams them; the page is not reloaded)."""
    running = store.by_status("running")[0]
    page = open_page(board.url + "?" + urllib.parse.urlencode({"sel": running, "tab": "Compare"}))
    page.locator(".lumo-compare .lumo-curves canvas").first.wait_for(state="visible")
    page.evaluate("window.__lumo_no_reload = 7")
    metric = list(json.loads((store.info_dir(running) / "metrics.json").read_text()))[0]
    before = store.history_points(running, metric)
    wait_until("the running run's curve", lambda: page.evaluate(LINE_POINTS, [running]) == [before])
    with open(store.info_dir(running) / "history.jsonl", "a") as f:
        for s in range(before, before + 12):
            f.write(json.dumps({"k": metric, "v": 0.5, "s": s, "t": time.time()}) + "\n")
    wait_until("the appended points in the page", lambda: page.evaluate(LINE_POINTS, [running]) == [before + 12])
    assert page.evaluate("window.__lumo_no_reload") == 7, "the page was reloaded"


def test_the_url_carries_the_view(board: Board, store: Store, open_page: Any, tmp_path: Path) -> None:
    where = "params.lr <= 0.5"
    want = {n for n in store.runs if lr_of(store, n) <= 0.5}
    url = board.url + "?" + urllib.parse.urlencode({"where": where, "sort": "-params.lr"})
    page = open_page(url)
    wait_ids(page, want, "the rows of the URL's where")
    assert page.locator(".lumo-query input").input_value() == where
    lrs = [float(t) for t in column_texts(page, "params.lr")]
    assert lrs == sorted(lrs, reverse=True)

    # grouped by a param (from the URL): one summary row per value with its run count and mean ± std
    page = open_page(board.url + "?" + urllib.parse.urlencode({"group": "params.optim.name"}))
    want_groups: dict[str, int] = {}
    for n in store.runs:
        key = str((store.record(n)["params"].get("optim") or {}).get("name", "(none)"))
        want_groups[key] = want_groups.get(key, 0) + 1
    groups = page.locator(".lumo-groups .tabulator-row")

    def group_counts() -> dict[str, int]:
        names = [t.strip() for t in groups.locator(".tabulator-cell[tabulator-field='params.optim.name']")
                 .all_inner_texts()]
        runs = [t.strip() for t in groups.locator(".tabulator-cell[tabulator-field='runs']").all_inner_texts()]
        return {k: int(v) for k, v in zip(names, runs) if v.isdigit()}

    wait_until("the group summary rows", lambda: group_counts() == want_groups)
    assert "±" in groups.first.inner_text()
    # and the table's own group rows: the server's count of every run of the group, then the page's
    heads = page.locator(".lumo-runs .tabulator-group")

    def head_counts() -> dict[str, int]:
        out = {}
        for t in heads.all_inner_texts():
            m = re.match(r"\s*params\.optim\.name = (\S+) · (\d+) runs? .*\((\d+) on this page\)", t)
            if m and m.group(2) == m.group(3):  # every run on this one page
                out[m.group(1)] = int(m.group(2))
        return out

    wait_until("the table's group headers", lambda: head_counts() == want_groups)

    # the Run tab of one run, from the URL alone
    run = store.by_status("failed")[0]
    page = open_page(board.url + "?" + urllib.parse.urlencode({"tab": "Run", "run": run}))
    view = page.locator(".lumo-run-tab .lumo-run").first
    view.wait_for(state="visible")
    wait_until("the run page of the failed run", lambda: run in (t := deep_text(view)) and "diverged" in t)
    page.wait_for_timeout(500)
    shot(page, "board-run.png", tmp_path)

    # the Sweep tab of the Hydra sweep: one row per job
    page = open_page(board.url + "?" + urllib.parse.urlencode({"tab": "Sweep", "sweep": store.sweep}))
    view = page.locator(".lumo-sweep-tab .lumo-sweep").first
    view.wait_for(state="visible")
    wait_until("the sweep's jobs", lambda: all(n in deep_text(view) for n in store.hydra_runs))
    page.wait_for_timeout(500)
    shot(page, "board-sweep.png", tmp_path)


def test_a_new_run_appears_without_a_reload(board: Board, store: Store, open_page: Any) -> None:
    page = open_page(board.url)
    wait_ids(page, set(store.runs), "every run")
    page.evaluate("window.__lumo_no_reload = 42")
    name = new_run(store.root, "finished", 9, store.env, exp_name="live")
    store.runs[name] = "finished"
    row_of(page, name).first.wait_for(state="visible")  # the live check (every few seconds) finds it
    # and the running run that ends now shows its new status
    running = store.by_status("running")[0]
    assert store.running is not None and store.running.stdin is not None
    store.running.stdin.close()
    store.running.wait(60)
    store.runs[running] = "finished"
    badge = row_of(page, running).locator(".tabulator-cell[tabulator-field='status'] .lumo-badge")
    wait_until("the ended run's badge", lambda: badge.inner_text().strip() == "finished")
    assert page.evaluate("window.__lumo_no_reload") == 42, "the page was reloaded"
    wait_ids(page, set(store.runs), "every run, the new one included")


@pytest.mark.parametrize("signum", ["SIGTERM"])
def test_board_stops_cleanly_on_sigterm(store: Store, signum: str) -> None:
    """The other tests stop their board with SIGINT (Ctrl-C) and check exit 0; SIGTERM too."""
    import signal

    b = Board(store.root, store.env)
    b.proc.send_signal(getattr(signal, signum))
    assert b.proc.wait(60) == 0, "".join(b.err)[-2000:]
