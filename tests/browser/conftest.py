"""Fixtures of the browser tests (helpers in kit.py): Debian's Chromium through Playwright, a realistic
store (runs of every status through the API, and a real Hydra sweep), a `lumo-hydra board` subprocess,
and pages that fail the test on any failed request or console error.

Where Chromium is missing every browser test skips with the reason (never passes silently).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .kit import CHROMIUM, TIMEOUT, VIEWPORT, Board, Problems, Store, chromium_missing, make_store, stop_store


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium (headless) through Playwright, one per test module; skips with the reason if missing.
    (Module scope: Playwright's sync API runs an event loop that must not outlive the browser tests.)"""
    why = chromium_missing()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Store]:
    """One realistic store per test module (LUMO_HOME of its subprocesses points into it); made only when
    Chromium is there (it needs it: the skip comes first)."""
    st = make_store(tmp_path_factory.mktemp("board-store"))
    try:
        yield st
    finally:
        stop_store(st)


@pytest.fixture(scope="module")
def board(store: Store) -> Iterator[Board]:
    """`lumo-hydra board --root STORE --port 0` over the module's store, stopped by its pid (exit 0)."""
    b = Board(store.root, store.env)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def open_page(chromium: Any) -> Iterator[Callable[..., Any]]:
    """``open_page(url)``: a fresh context and page (1280x800) at ``url``. Every failed request, console
    error and uncaught page error is collected; the test fails on any (checked at teardown, and by
    ``page.lumo_problems.check()`` whenever a test wants it earlier)."""
    problems = Problems()
    contexts: list[Any] = []

    def open_(url: str | None = None, *, wait: str = "load") -> Any:
        ctx = chromium.new_context(viewport=VIEWPORT)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT * 1000)
        page.on("request", lambda r: problems.request(r.url))
        page.on("requestfailed", lambda r: problems.failed.append(f"{r.url} ({r.failure})"))
        page.on("console", lambda m: m.type == "error" and problems.console.append(f"{m.text} at {m.location}"))
        page.on("pageerror", lambda e: problems.console.append(f"uncaught: {e}"))
        page.lumo_problems = problems
        if url:
            page.goto(url, wait_until=wait)
        return page

    yield open_
    try:
        problems.check()
    finally:
        for ctx in contexts:
            ctx.close()
