"""Old days' claim markers (``.lumo-ids/<name>/<YYMMDD>/``) are removed, a bounded number per claim."""
from __future__ import annotations

import os
import time

from lumo_hydra.store import ids as I


def _day(days_ago: float) -> str:
    return time.strftime("%y%m%d", time.localtime(time.time() - days_ago * 86400))


def _fill(day_dir: str, n: int) -> None:
    os.makedirs(day_dir)
    for k in range(n):
        os.mkdir(os.path.join(day_dir, f"{k:03d}"))
    with open(os.path.join(day_dir, "next"), "w") as f:
        f.write(f"{n}\n")


def test_old_days_markers_are_retired_then_removed_in_bounded_steps(tmp_path):
    parent = tmp_path / "experiments" / "e"
    ids = I.ids_dir(parent)
    old, recent = _day(I.KEEP_DAYS + 3), _day(1)
    _fill(os.path.join(ids, old), 300)
    _fill(os.path.join(ids, recent), 5)
    os.makedirs(os.path.join(parent))
    names = {I.claim_dir(parent)[0]}  # the first claim of today
    left = os.listdir(ids)
    assert old not in left and recent in left  # retired by one rename; a recent day is kept
    retired = os.listdir(os.path.join(ids, ".old"))
    assert len(retired) == 1 and retired[0].startswith(old + ".")
    assert len(os.listdir(os.path.join(ids, ".old", retired[0]))) == 301 - I._GC_BUDGET  # one bounded step
    names.add(I.claim_dir(parent)[0])
    assert ".old" not in os.listdir(ids)  # gone after the next claim
    assert len(os.listdir(os.path.join(ids, recent))) == 6 and len(names) == 2
    assert sorted(os.listdir(parent)) == sorted(names)


def test_collect_never_raises_and_keeps_today(tmp_path):
    I.collect_old_days(str(tmp_path / "missing"))  # no ids folder: nothing to do
    ids = tmp_path / "ids"
    _fill(str(ids / _day(0)), 3)
    (ids / "notes.txt").write_text("x")  # not a day: left alone
    I.collect_old_days(str(ids), now=time.time())
    assert sorted(os.listdir(ids)) == sorted([_day(0), "notes.txt"])
    I.collect_old_days(str(ids), now=time.time() + (I.KEEP_DAYS + 1) * 86400)  # a week later
    assert [n for n in os.listdir(ids) if n.isdigit()] == []
