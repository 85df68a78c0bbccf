"""``lumo-hydra list``'s default view (on a real terminal: the newest runs that fit the screen, like
``git log``), ``--limit 0``/``--all`` for every run, piped output unchanged (every row), and the
streamed table of many rows (issue 17)."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from test_watcher_fake import write_run

from lumo_hydra.cli import stream
from lumo_hydra.cli.app import main

N = 30
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ID = re.compile(r"^\d{6}\.\d{3}\.[a-z0-9]+t\b")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``N`` runs a minute apart (the last is the newest), with a param that differs."""
    root = tmp_path_factory.mktemp("view") / "store"
    now = time.time()
    for i in range(N):
        write_run(root, "cls", params={"lr": 10.0 ** -(i % 4), "name": f"model-{i}"},
                  metrics={"acc": (i / N, "max")}, start=now - 3600 + i * 60, counter=i)
    return root


def newest(root: Path, k: int) -> list[str]:
    """The ids of the ``k`` newest runs of ``root``."""
    from lumo_hydra.watcher import Watcher

    df = Watcher(root=str(root)).load()
    return df.sort_values("start", ascending=False)["test_name"].tolist()[:k]


def on_pty(rows: int, cols: int, *args: str) -> tuple[int, str]:
    """``lumo-hydra ARGS`` in a subprocess whose stdout is a pseudo-terminal of ``rows`` x ``cols``."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    p = subprocess.Popen([sys.executable, "-m", "lumo_hydra", *args], stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    err = p.stderr.read().decode() if p.stderr else ""
    code = p.wait(timeout=60)
    assert code == 0, err
    return code, ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


HEAVY = ("pandas", "rich", "pyarrow", "numpy")


def list_in_child(root: Path, *args: str, columns: str = "150") -> tuple[subprocess.CompletedProcess, list[str]]:
    """``lumo-hydra --root ROOT *args`` in a new process: its result and which of :data:`HEAVY` it imported."""
    code = ("import sys; from lumo_hydra.cli.app import main; c = main(sys.argv[1:]); "
            f"print([m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr); sys.exit(c)")
    r = subprocess.run([sys.executable, "-c", code, "--root", str(root), *args], capture_output=True, text=True,
                       env=dict(os.environ, COLUMNS=columns), timeout=60)
    assert r.returncode == 0, r.stderr
    return r, eval(r.stderr.strip().splitlines()[-1])


def ids_of(out: str) -> list[str]:
    return [m.group(0) for ln in out.splitlines() if (m := ID.match(ln))]


def test_terminal_default_view_fits_the_screen(store: Path) -> None:
    rows = 15
    _, out = on_pty(rows, 120, "--root", str(store), "list")
    lines = out.rstrip("\n").split("\n")
    assert len(lines) <= rows - 1, lines  # the prompt still fits: nothing scrolled off the top
    assert lines[0].split()[:3] == ["id", "experiment", "status"], lines[0]
    shown = ids_of(out)
    assert shown == newest(store, rows - 6), shown  # the newest first, as many as fit
    assert f"{len(shown)} of {N} runs" in out
    assert lines[-1].startswith(f"{N - len(shown)} more runs not shown") and "--all" in lines[-1] \
        and "--limit 0" in lines[-1], lines[-1]
    assert all(len(ln) <= 120 for ln in lines)


@pytest.mark.parametrize("flags", [["--all"], ["--limit", "0"]])
def test_terminal_all_rows_on_request(store: Path, flags: list[str]) -> None:
    _, out = on_pty(15, 120, "--root", str(store), "list", *flags)
    assert ids_of(out) == newest(store, N) and "not shown" not in out
    assert out.rstrip().split("\n")[-1].startswith(f"{N} runs")


def test_terminal_explicit_limit_is_kept(store: Path) -> None:
    _, out = on_pty(40, 120, "--root", str(store), "list", "--limit", "4")
    assert ids_of(out) == newest(store, 4) and "not shown" not in out  # what was asked for, no hint


def test_pipe_keeps_every_row(store: Path) -> None:
    env = dict(os.environ, LINES="10", COLUMNS="120")
    r = subprocess.run([sys.executable, "-m", "lumo_hydra", "--root", str(store), "list"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ids_of(r.stdout) == newest(store, N) and "not shown" not in r.stdout  # scripts see every run
    r = subprocess.run([sys.executable, "-m", "lumo_hydra", "--root", str(store), "list", "--csv"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert len(r.stdout.strip().splitlines()) == N + 1


def test_limit_flags_parse(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--root", str(store), "list", "--limit", "-1"])
    assert e.value.code == 2 and "must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["list", "--help"])
    assert "0: all" in capsys.readouterr().out


def run_list(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
             width: int = 120) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def columns_of(line: str, starts: list[int]) -> list[str]:
    return [line[a:b].strip() for a, b in zip(starts, starts[1:] + [len(line) + 1])]


def test_streamed_table_matches_the_laid_out_one(store: Path, capsys, monkeypatch) -> None:
    """Under the threshold rich lays the table out; streamed (threshold 0), the same rows come out
    aligned the same way, line for line."""
    for width in (80, 120):
        laid = run_list(capsys, monkeypatch, "--root", str(store), "list", "--limit", "0", width=width)
        monkeypatch.setattr(stream, "STREAM_ROWS", 0)
        streamed = run_list(capsys, monkeypatch, "--root", str(store), "list", "--limit", "0", width=width)
        monkeypatch.setattr(stream, "STREAM_ROWS", 200)
        a = [ln.rstrip() for ln in laid.splitlines()]
        b = [ln.rstrip() for ln in streamed.splitlines()]
        assert ids_of(streamed) == newest(store, N)
        assert a == b, "\n".join(x + "\n" + y for x, y in zip(a, b) if x != y)


def test_streamed_chunks_keep_the_first_chunk_widths(tmp_path: Path, capsys, monkeypatch) -> None:
    """Widths come from the first chunk; a longer value in a later chunk is cut with an ellipsis, so
    every row keeps the columns where the header put them."""
    root = tmp_path / "store"
    now = time.time()
    for i in range(12):  # the oldest runs (the last chunks, newest first) have the longest names
        write_run(root, "cls", params={"name": "n" * (20 - i), "lr": float(i)}, start=now - 1000 + i * 10,
                  counter=i)
    monkeypatch.setattr(stream, "STREAM_ROWS", 5)
    monkeypatch.setattr(stream, "CHUNK", 4)
    out = run_list(capsys, monkeypatch, "--root", str(root), "list", "--limit", "0")
    lines = out.splitlines()
    head, rule, rows, foot = lines[0], lines[1], lines[2:-1], lines[-1]
    assert set(rule) == {"─"} and foot.startswith("12 runs")
    assert len(rows) == 12 and all(ID.match(r) for r in rows)
    starts = [m.start() for m in re.finditer(r"\S+", head)]
    names = head.split()
    assert names[:5] == ["id", "experiment", "status", "start", "duration"] and "name" in names
    k = names.index("name")
    width = len("n" * (20 - 8))  # the first chunk: the 4 newest runs, the longest of them has 12 n's
    for r in rows:
        assert len(r) <= len(rule)
        cells = columns_of(r, starts)
        assert cells[2] == "finished" and re.fullmatch(r"n+…?", cells[k]), cells
        assert len(cells[k]) <= width
    assert columns_of(rows[-1], starts)[k] == "n" * (width - 1) + "…"  # the oldest, 20 n's, cut to the width


def test_many_rows_stream_fast_enough_to_feel_instant(tmp_path: Path, capsys, monkeypatch) -> None:
    """250 rows (over the threshold) are streamed, not laid out: formatting them takes a fraction of
    what the rich table takes (a generous ratio, no absolute time)."""
    root = tmp_path / "store"
    now = time.time()
    for i in range(250):
        write_run(root, "cls", params={"lr": i / 250}, metrics={"acc": (i / 250, "max")},
                  start=now - 10000 + i * 10, counter=i)
    main(["--root", str(root), "list", "--limit", "1"])  # warm the index

    def best_of_3(rows: int) -> tuple[float, str]:  # each path run once first: its imports are not timed
        monkeypatch.setattr(stream, "STREAM_ROWS", rows)
        out = run_list(capsys, monkeypatch, "--root", str(root), "list", "--limit", "0")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            run_list(capsys, monkeypatch, "--root", str(root), "list", "--limit", "0")
            times.append(time.perf_counter() - t)
        return min(times), out

    streamed, out = best_of_3(stream.STREAM_ROWS)
    assert len(ids_of(out)) == 250 and out.splitlines()[-1].startswith("250 runs")
    from lumo_hydra.cli import runs

    monkeypatch.setattr(runs, "plain_list", lambda args: None)  # the pandas path, laid out as one rich table
    rich_time, laid = best_of_3(10**6)
    assert [ln.rstrip() for ln in laid.splitlines()] == [ln.rstrip() for ln in out.splitlines()]
    assert streamed < rich_time * 0.6, (streamed, rich_time)  # 0.15-0.25 measured; 1 if nothing streamed


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs of two experiments, statuses, tags, an int param missing in some runs, a crashed run."""
    root = tmp_path_factory.mktemp("plain") / "store"
    now = time.time()
    for i in range(24):
        params: dict = {"lr": 10.0 ** -(i % 3), "opt": {"name": ["sgd", "adam"][i % 2]}}
        if i % 4:
            params["depth"] = 1234567 + i  # an int column with holes: floats in a DataFrame
        write_run(root, f"exp{i % 2}", status=["finished", "failed", "running"][i % 3] if i != 5 else "crashed",
                  params=params, metrics={"acc": (i / 24, "max"), "loss": (1 - i / 24, "min")},
                  tags=["best"] if i % 5 == 0 else [], start=now - 7200 + i * 97, duration=5.0 + i * 13,
                  counter=i, heartbeat=now - 3000 if i == 5 else now + 86400)  # running stays running under --stale-after 1
    for dp, _, fs in os.walk(root):  # past the index's racy window: a warm, unchanged store
        for f in fs:
            os.utime(os.path.join(dp, f), (now - 120, now - 120))
    return root


PLAIN_FLAGS = [[], ["--exp", "exp1"], ["--status", "failed"], ["--tag", "best", "--limit", "3"],
               ["--sort", "duration"], ["--sort", "end", "--desc"], ["--since", "90m", "--sort", "start", "--asc"],
               ["--sort", "metrics.acc"], ["--sort", "metrics.loss"], ["--sort", "metrics.loss", "--desc"],
               ["--sort", "metrics.acc", "--asc", "--exp", "exp0"]]


@pytest.mark.parametrize("flags", PLAIN_FLAGS)
def test_plain_list_imports_no_pandas_and_matches_the_pandas_path(mixed: Path, flags: list[str], capsys,
                                                                  monkeypatch) -> None:
    """``list --limit N`` (filters, sorts by times) runs without pandas, rich and numpy, and writes the same
    lines as the pandas path's table for the same rows: same columns, values and order."""
    if "--limit" not in flags:
        flags = [*flags, "--limit", "7"]
    r, heavy = list_in_child(mixed, "--stale-after", "1", "list", *flags)
    assert heavy == [], r.stderr  # neither pandas nor rich (nor pyarrow, numpy)
    from lumo_hydra.cli import runs

    monkeypatch.setattr(runs, "plain_list", lambda args: None)  # the pandas path, streamed for the comparison
    monkeypatch.setattr(stream, "STREAM_ROWS", 0)
    out = run_list(capsys, monkeypatch, "--root", str(mixed), "--stale-after", "1", "list", *flags, width=150)
    assert len(ids_of(out)) >= 1 and r.stdout == out, (r.stdout, out)


def test_plain_list_leaves_the_rest_to_pandas(mixed: Path) -> None:
    """--where, --json and chosen columns still take the pandas path."""
    for flags in (["--where", "params.lr < 0.5"], ["--json"], ["--columns", "status"]):
        r, heavy = list_in_child(mixed, "list", "--limit", "3", *flags)
        assert "pandas" in heavy, (flags, r.stderr)


def test_rolling_check_sees_an_edit_in_place_without_a_key_dict(tmp_path: Path, monkeypatch) -> None:
    """Past ``VERIFY`` runs, each load stats a rolling slice found by position in the packed signatures
    (no dict of every key); an edit in place that no folder time shows is still seen within a few loads."""
    import json

    from lumo_hydra.watcher import Watcher
    from lumo_hydra.watcher import index as wi
    from lumo_hydra.watcher.sigs import SigMap

    root = tmp_path / "store"
    now = time.time()
    dirs = [write_run(root, "cls", params={"lr": float(i)}, start=now - 900 + i * 10, counter=i,
                      status="running" if i == 0 else "finished") for i in range(12)]
    for dp, _, fs in os.walk(root, topdown=False):  # past the racy window, so every run and folder is trusted
        for f in fs:
            os.utime(os.path.join(dp, f), (now - 120, now - 120))
        os.utime(dp, (now - 120, now - 120))
    monkeypatch.setattr(wi, "VERIFY", 4)
    aligned = []
    real = SigMap.aligned
    monkeypatch.setattr(SigMap, "aligned", lambda self, keys: aligned.append(real(self, keys)) or aligned[-1])
    assert Watcher(root=str(root)).select_columns(limit=3)[2] == 12
    target = dirs[7] / "run.json"
    folders = [(p, os.stat(p)) for p in (dirs[7], dirs[7].parent)]
    rec = json.loads(target.read_text())
    rec["params"]["lr"] = 99.5
    with open(target, "w") as f:  # in place: no folder time changes
        json.dump(rec, f)
    for p, st in folders:
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    seen = []
    for _ in range(40):
        data, _, _ = Watcher(root=str(root)).select_columns(sort="start", desc=False, limit=12)
        seen.append(data["params.lr"][7])
        if seen[-1] == 99.5:
            break
    assert seen[-1] == 99.5, seen
    assert True in aligned  # the positional path was taken (the running run checked as an extra)
    for _ in range(5):  # and it reads no finished run of an unchanged store (each position, its own signature)
        w = Watcher(root=str(root))
        w.select_columns(limit=3)
        assert w.stats["read"] <= 1, w.stats  # at most the running run, read again as before


@pytest.mark.parametrize("flags", [[], ["--limit", "0"], ["--all"], ["--status", "failed", "--sort", "duration"],
                                   ["--sort", "metrics.loss"]])
def test_plain_list_of_every_run_imports_no_pandas(mixed: Path, flags: list[str], capsys, monkeypatch) -> None:
    """Every run (piped ``list``, ``--limit 0``, ``--all``) also comes from the index's columns without pandas
    or rich, line for line what the pandas path writes."""
    r, heavy = list_in_child(mixed, "--stale-after", "1", "list", *flags)
    assert heavy == [], r.stderr
    from lumo_hydra.cli import runs

    monkeypatch.setattr(runs, "plain_list", lambda args: None)
    out = run_list(capsys, monkeypatch, "--root", str(mixed), "--stale-after", "1", "list", *flags, width=150)
    assert len(ids_of(out)) >= 8 and "not shown" not in out and r.stdout == out, (r.stdout, out)


def test_plain_list_of_an_empty_store_imports_no_pandas(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    r, heavy = list_in_child(tmp_path / "store", "list")
    assert heavy == [], r.stderr
    assert r.stdout.startswith("no runs in "), r.stdout


def test_streamed_cells_of_every_kind(tmp_path: Path, capsys, monkeypatch) -> None:
    """The streamed table's cells are :func:`render.cell`'s: floats to 6 digits, ints, bools, lists, texts
    with wide characters, missing values empty."""
    from lumo_hydra.cli.render import cell

    rows = stream.Rows({"status": ["finished", "crashed", None], "duration": [5.0, 75.0, float("nan")],
                        "params.a": [0.123456789, float("nan"), None], "params.b": [3, True, [1, 2]],
                        "params.c": ["x", "日本語のテキスト", ""]},
                       ["status", "duration", "params.a", "params.b", "params.c"])
    texts = stream._texts(rows, rows.columns, rows["status"], 0, 3)
    assert texts == {c: [cell(c, v, s) for v, s in zip(rows[c], rows["status"])] for c in rows.columns}
    assert stream._fitted(["ab", "日本語のテキスト", "abcdefghij"], 6, False) == \
        [stream.fit_text(t, 6) for t in ["ab", "日本語のテキスト", "abcdefghij"]]



@pytest.mark.parametrize("flags", [["--limit", "3"], []])
def test_plain_list_unknown_sort_column(mixed: Path, flags: list[str], capsys) -> None:
    """An unknown metric to sort by is refused with the close names, as on the pandas path."""
    capsys.readouterr()
    assert main(["--root", str(mixed), "list", "--sort", "metrics.acx", *flags]) == 1
    err = capsys.readouterr().err
    assert "cannot sort by unknown column 'metrics.acx'" in err and "metrics.acc" in err, err
