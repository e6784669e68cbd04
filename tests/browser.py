"""A real browser for tests: Playwright driving Debian's `chromium` (a Playwright browser
download is not possible here), a watch over a page's errors, and screenshots for the README."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.harness import ROOT

SCREENSHOTS = ROOT / "reports" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}


def chromium_path() -> str:
    """The chromium executable on PATH; the test fails with what to install when it is absent."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "the browser tests drive Debian's chromium, which is not on PATH: install the "
            "package `chromium` (apt-get install chromium); Playwright's own browser download "
            "is not used."
        )
    return path


@contextmanager
def chromium(timeout_ms: float = 30_000) -> Iterator[BrowserContext]:
    """A fresh browser context of a headless chromium, closed (and the browser ended) on exit.
    Every wait, action and `expect` of its pages gives up after `timeout_ms`."""
    expect.set_options(timeout=timeout_ms)  # its own default is 5 s, too short on a busy machine
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORT, timezone_id="UTC")
            context.set_default_timeout(timeout_ms)
            yield context
        finally:
            browser.close()


@dataclass
class PageProblems:
    """What went wrong on a page while it was watched: uncaught exceptions, console errors and
    requests that got no answer."""

    found: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda error: self.found.append(f"page error: {error}"))
        page.on("console", self._console)
        page.on("requestfailed", self._request_failed)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        # The browser itself asks every site for /favicon.ico; a service without one answers
        # 404, which chromium logs as a console error of no page's making.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            self.found.append(f"console error: {message.text} ({message.location})")

    def _request_failed(self, request: Request) -> None:
        self.found.append(f"request failed: {request.method} {request.url} ({request.failure})")


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save what the page shows to reports/screenshots/`name`.png; its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=full_page, animations="disabled", caret="hide")
    return path
