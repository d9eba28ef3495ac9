"""Driving Debian's headless Chromium through Playwright: the browser, and a visit that records
every request, console error, uncaught exception and Content-Security-Policy violation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
# Runs in every page before its own scripts (Playwright injects it past the page's CSP): a
# violation becomes a console error the visit records, whether or not Chromium logs one too.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@contextlib.contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, with no network of its own (no updates, no sync); the test
    skips without it.

    Playwright's sync API runs an event loop of its own, so a fixture that calls this must
    depend on the async fixtures that load data, which must be done before it starts.
    """
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (`make system-deps`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """One browser context on one site: records requests, console errors, uncaught exceptions
    and CSP violations, and keeps screenshots under `test-artifacts/<artifacts>/`."""

    def __init__(
        self, browser: Any, base_url: str, viewport: dict[str, int], artifacts: str
    ) -> None:
        self.base_url = base_url
        self.artifacts = ARTIFACTS / artifacts
        self.context = browser.new_context(viewport=viewport, base_url=base_url)
        self.context.add_init_script(_REPORT_VIOLATIONS)
        self.page = self.context.new_page()
        self.requested: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.page.on(
            "console",
            lambda message: self.problems.append(message.text) if message.type == "error" else None,
        )
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        """A screenshot (of the whole page, or of what the screen shows) kept as an artifact."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        """Closes the context; every request must have stayed on the site, error-free."""
        self.context.close()
        foreign = [url for url in self.requested if not url.startswith(self.base_url)]
        assert foreign == [], foreign
        assert self.problems == [], self.problems
