"""The API pages render in a real headless Chromium with every request off this host blocked.

Uses Debian's ``chromium`` (``.ci/run`` installs it); Playwright never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.live import live_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("api-page")) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is required under CI (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def open_offline(browser: object, url: str) -> tuple[object, list[str]]:
    """A page on which every request to a host other than 127.0.0.1 fails (and is noted)."""
    page = browser.new_page()  # type: ignore[attr-defined]
    blocked: list[str] = []

    def only_local(route: object, request: object) -> None:
        if urlsplit(request.url).hostname == "127.0.0.1":  # type: ignore[attr-defined]
            route.continue_()  # type: ignore[attr-defined]
        else:
            blocked.append(request.url)  # type: ignore[attr-defined]
            route.abort()  # type: ignore[attr-defined]

    page.route("**/*", only_local)
    page.goto(url)
    return page, blocked


def test_swagger_ui_renders_the_operations_offline(browser: object, server: str) -> None:
    page, blocked = open_offline(browser, f"{server}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)  # type: ignore[attr-defined]
    summaries = page.locator(".opblock-summary-path").all_inner_texts()  # type: ignore[attr-defined]
    assert "/uows" in summaries and "/workflow/checkout" in summaries, summaries
    assert len(summaries) >= 30
    assert blocked == []


def test_redoc_is_off(server: str) -> None:
    # Its page loads its logo from a CDN; /docs is the API page.
    assert httpx.get(f"{server}/redoc").status_code == 404
