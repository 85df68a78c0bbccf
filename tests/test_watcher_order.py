"""The index's numeric order (start, end, duration): a stable sort (ties keep the index's order, for
``desc`` too), missing and NaN values after every number (reversed for ``desc``), every row kept."""
from __future__ import annotations

import random
from array import array

import pytest

from lumo_hydra.watcher.watcher import _numeric_order


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("desc", [True, False])
def test_order_is_stable_with_missing_last(seed: int, desc: bool) -> None:
    rnd = random.Random(seed)
    n = rnd.randint(0, 300)
    start = [rnd.choice([None, float("nan"), rnd.randint(0, 20), rnd.random()]) for _ in range(n)]
    dur = array("d", [rnd.choice([float("nan"), rnd.randint(0, 5)]) for _ in range(n)])
    table = {"cols": {"_start": start}}
    idx = [i for i in range(n) if rnd.random() < 0.9]
    for sort in ("start", "duration", "end"):  # no "_end" column: every value missing
        got = _numeric_order(list(idx), table, sort, dur, desc)
        vals = {"start": start, "duration": dur, "end": [None] * n}[sort]
        known = [i for i in idx if vals[i] is not None and vals[i] == vals[i]]
        missing = [i for i in idx if not (vals[i] is not None and vals[i] == vals[i])]
        want = sorted(known, key=lambda i: -vals[i] if desc else vals[i]) + (missing[::-1] if desc else missing)
        assert got == want, sort


def test_newest_first_and_ties_in_index_order() -> None:
    table = {"cols": {"_start": [5.0, 7.0, None, 7.0, 1.0, float("nan")]}}
    idx = list(range(6))
    assert _numeric_order(idx, table, "start", [], True) == [1, 3, 0, 4, 5, 2]
    assert _numeric_order(idx, table, "start", [], False) == [4, 0, 1, 3, 2, 5]
