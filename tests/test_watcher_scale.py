"""Issue 17 at small sizes: ``Watcher.select`` (filters, sort and limit pushed into the index) gives what
``load()`` then sort/head gives; a lookup by exact id does not grow with the store (ratio, generous);
``load(flatten=True)`` has its own frame cache; the benchmark runs tiny."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_watcher_fake import write_run

from lumo_hydra import Watcher
from lumo_hydra.errors import LumoValueError, RunNotFoundError

ROOT = Path(__file__).resolve().parents[1]


def _store(root: Path, n: int) -> Path:
    now = time.time() - 10 * n - 100
    for i in range(n):
        write_run(root, f"e{i % 3}", counter=i % 1000, start=now + 10 * i, params={"lr": (i * 7) % 11 / 10,
                  "opt": {"name": "sgd" if i % 2 else "adam"}}, metrics={"acc": ((i * 13) % 17 / 17, "max")},
                  tags=["a"] if i % 4 == 0 else ["b"], status="failed" if i % 5 == 0 else "finished")
    t = time.time() - 30
    for p in (root / "experiments").glob("*/*/*.json"):
        os.utime(p, (t, t))
    return root


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _store(tmp_path_factory.mktemp("scale") / "store", 60)


@pytest.mark.parametrize(("sort", "desc"), [("start", True), ("start", False), ("params.lr", True),
                                            ("metrics.acc", False), ("status", True), ("opt.missing", True)])
@pytest.mark.parametrize("limit", [None, 7])
def test_select_equals_load_then_sort_and_head(small: Path, sort: str, desc: bool, limit: int | None) -> None:
    w = Watcher(small, cache=False)
    got = w.select(sort=sort, desc=desc, limit=limit)
    df = w.load(flatten=True)
    if sort in df.columns:
        want = df.sort_values(sort, ascending=not desc, na_position="last", kind="stable")
        if desc:  # select keeps load()'s order among equal keys reversed (newest first): compare key values
            assert got[sort].tolist()[: len(got)] == want[sort].head(len(got)).tolist()
        else:
            assert got["test_name"].tolist() == want["test_name"].head(limit or len(df)).tolist()
    else:
        assert got["test_name"].tolist() == df["test_name"].iloc[::-1].head(limit or len(df)).tolist()
    assert len(got) == (limit or len(df))


def test_select_filters_and_match_before_the_limit(small: Path) -> None:
    w = Watcher(small, cache=False)
    got = w.select(exp="e1", status="failed", tag="a", limit=3)
    df = w.load(flatten=True, exp="e1", status="failed", tag="a")
    assert got["test_name"].tolist() == df["test_name"].iloc[::-1].head(3).tolist()
    lr = w.select(match=lambda r: r["params"]["lr"] >= 0.5, sort="params.lr", desc=False, limit=0)
    assert len(lr) == int((w.load(flatten=True)["params.lr"] >= 0.5).sum())
    assert lr["params.lr"].is_monotonic_increasing
    by_len = w.select(sort=lambda r: len(r["test_name"]) + r["duration"], limit=2)
    assert len(by_len) == 2
    nested = w.select(limit=2, flatten=False)
    assert isinstance(nested["params"].iloc[0], dict)
    with pytest.raises(LumoValueError, match="limit"):
        w.select(limit=-1)


def test_lookup_by_exact_id_does_not_scan_the_store(tmp_path: Path) -> None:
    small = _store(tmp_path / "small", 6)
    big = _store(tmp_path / "big", 1500)

    def per_lookup(root: Path) -> float:
        w = Watcher(root, cache=False)
        names = [r[0] + "/" + r[1] for r in w.iter_runs()][:5]
        ts = []
        for name in names * 3:
            t = time.perf_counter()
            ref = w.resolve(name.split("/")[1])
            ts.append(time.perf_counter() - t)
            assert ref[0] + "/" + ref[1] == name
        return statistics.median(ts)

    ratio = per_lookup(big) / per_lookup(small)
    assert ratio < 25, ratio  # a scan of 250x more runs would be ~100x slower or more


def test_exact_lookup_keeps_ambiguity_and_prefix_rules(tmp_path: Path) -> None:
    root = tmp_path / "s"
    a = write_run(root, "x", test_name="261201.001.aat")
    write_run(root, "y", test_name="261201.001.aat")
    write_run(root, "y", test_name="261201.002.bbt")
    w = Watcher(root, cache=False)
    with pytest.raises(RunNotFoundError, match="ambiguous"):
        w.resolve("261201.001.aat")
    assert w.resolve("x/261201.001.aat")[2] == str(a)
    assert w.resolve("261201.002")[1] == "261201.002.bbt"
    with pytest.raises(RunNotFoundError, match="no run"):
        w.resolve("x/261201.002.bbt")
    assert w.record("x/261201.001.aat")["info_dir"] == str(a)


def test_list_limit_shows_the_newest_runs(small: Path) -> None:
    env = dict(os.environ, LUMO_HOME=str(small), COLUMNS="200")
    r = subprocess.run([sys.executable, "-c", "import sys; from lumo_hydra.cli import main; sys.exit(main(sys.argv[1:]))",
                        "list", "--limit", "3"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    names = Watcher(small, cache=False).load()["test_name"].tolist()
    assert all(name in r.stdout for name in names[-3:])
    assert not any(name in r.stdout for name in names[:-3])


def test_flat_load_has_its_own_frame_cache(small: Path) -> None:
    w = Watcher(small)
    w.clear_cache()
    first = w.load(flatten=True)
    assert os.path.exists(w._index.flat_frame_path)
    w2 = Watcher(small)
    again = w2.load(flatten=True)
    assert w2.stats["read"] == 0
    pd_testing = pytest.importorskip("pandas.testing")
    pd_testing.assert_frame_equal(first, again)
    assert list(w2.load().columns)[:3] == ["exp_name", "test_name", "status"]  # nested load unaffected


def test_bench_watcher_runs_tiny_with_direct_stores(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(LUMO_HOME=str(tmp_path / "home"), LUMO_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_watcher.py"), "--runs", "12", "--direct",
                        "--rounds", "1", "--mlflow-runs", "0", "--lumo-runs", "0", "--work", str(tmp_path / "w")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for what in ("floor (json.loads)", "load(flatten) warm", "record (show) by id", "list --limit 20"):
        assert what in r.stdout
    assert "generated 12 runs by writing their files directly" in r.stdout
