"""``lumo-hydra`` run as the program freezes what is left for the interpreter's exit; called with ``argv``
(from Python) it leaves the collector alone (issue 14: the exit's collections were ~6 ms of a pack)."""
from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from lumo_hydra.cli import main


@pytest.fixture()
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_called_as_the_program_the_objects_left_are_frozen(monkeypatch: pytest.MonkeyPatch, unfrozen: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["lumo-hydra"])
    assert main() == 0
    assert gc.get_freeze_count() > 0
    assert "usage" in capsys.readouterr().out


def test_called_with_argv_the_collector_is_left_alone(unfrozen: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert gc.get_freeze_count() == 0
    assert "usage" in capsys.readouterr().out
