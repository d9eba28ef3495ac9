"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): an operator's walk.

Screenshots of every page, on a laptop-sized and a phone-sized screen, are kept under
`test-artifacts/dashboard/` for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_asyncio

from panoptic.core.db import DatabaseUrl
from tests.support.browser import LAPTOP, PHONE, Visit, launched_chromium
from tests.support.dashboard import (
    PASSWORD,
    USER,
    dashboard_env,
    dashboard_url,
    load_dashboard_data,
    running_dashboard,
)
from tests.support.gateway import GatewayCorpus
from tests.support.processes import service_env

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def corpus(database_url: DatabaseUrl) -> GatewayCorpus:
    """Hand-made claims with history, a slice of the demo corpus, and refused batches."""
    return await load_dashboard_data(database_url, demo_claims=1500)


@pytest.fixture(scope="module")
def base_url(
    corpus: GatewayCorpus, database_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A running dashboard's address."""
    env = dashboard_env(service_env(database_url.value, tmp_path_factory.mktemp("data")))
    with running_dashboard(env, tmp_path_factory.mktemp("logs") / "dashboard.log"):
        yield dashboard_url(env)


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[Any]:
    """Debian's Chromium, once the dashboard (and so its data) is up."""
    with launched_chromium() as chromium:
        yield chromium


class DashboardVisit(Visit):
    """A visit to the dashboard, with its screenshots under `test-artifacts/dashboard/`."""

    def __init__(self, browser: Any, base_url: str, viewport: dict[str, int]) -> None:
        super().__init__(browser, base_url, viewport, "dashboard")

    def log_in(self, path: str = "/") -> None:
        """Opens `path`, is sent to the login page, signs in with the keyboard."""
        self.page.goto(path)
        assert "/login" in self.page.url
        self.page.fill("#user", USER)
        self.page.fill("#password", PASSWORD)
        with self.page.expect_navigation():
            self.page.press("#password", "Enter")

    def no_horizontal_overflow(self) -> bool:
        """Whether the page fits the viewport's width (tables scroll inside their boxes)."""
        return bool(
            self.page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
        )


@pytest.fixture
def laptop(browser: Any, base_url: str) -> Iterator[DashboardVisit]:
    """A laptop-sized window on the dashboard."""
    visit = DashboardVisit(browser, base_url, LAPTOP)
    try:
        yield visit
    finally:
        visit.close()


@pytest.fixture
def phone(browser: Any, base_url: str) -> Iterator[DashboardVisit]:
    """A phone-sized window on the dashboard."""
    visit = DashboardVisit(browser, base_url, PHONE)
    try:
        yield visit
    finally:
        visit.close()


def _search_by_keyboard(laptop: DashboardVisit, corpus: GatewayCorpus) -> Any:
    """Keyboard only: the skip link, into the content, Tab to the search field, type, Tab to
    the actor field (other tests' claims share the database), type, Enter; the first hit."""
    page = laptop.page
    page.goto("/claims")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("school hospital roof")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "actor"
    page.keyboard.type(corpus.ann)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "q=school+hospital+roof" in page.url
    result = page.locator("table.claims tbody tr").first
    assert result.locator("mark").count() > 0
    laptop.screenshot("03-claims-search")
    return result


def _claim_history_then_actor(laptop: DashboardVisit, corpus: GatewayCorpus, result: Any) -> None:
    """From a search hit to its claim, its history diff and two revisions compared, then to its
    actor's timeline narrowed to one topic."""
    page = laptop.page
    result.locator("td.text a").click()
    page.wait_for_load_state()
    assert corpus.claim(5) in page.url
    assert page.locator(".revision").count() == 2
    assert page.locator("#revision-2 ins").first.inner_text().strip() == "and hospital"
    page.select_option("#compare-from", "1")
    page.select_option("#compare-to", "2")
    page.locator("#compare-heading + form button").click()
    page.wait_for_load_state()
    assert "Revision 1 → 2" in page.locator("#comparison").inner_text()
    laptop.screenshot("04-claim-history")

    page.locator("dl.facts a", has_text="Annabel").click()
    page.wait_for_load_state()
    assert corpus.ann in page.url
    assert page.locator(".timeline-main svg.chart rect.series-0").count() > 0
    page.locator("nav.chips a.chip", has_text="Wind").click()
    page.wait_for_load_state()
    assert f"topic={corpus.wind}" in page.url
    assert page.locator("table.claims tbody tr").count() == 2
    laptop.screenshot("05-actor-timeline")


def test_an_operator_walks_through_every_page(
    laptop: DashboardVisit, corpus: GatewayCorpus
) -> None:
    """Log in, overview, keyboard search, a claim and its history diff, an actor's timeline,
    database health and logout all work in Chromium, with nothing loaded from elsewhere."""
    page = laptop.page
    page.goto("/claims")
    assert "/login?next=%2Fclaims" in page.url
    laptop.screenshot("01-login")

    laptop.log_in()
    assert page.url.rstrip("/") == laptop.base_url
    assert page.locator("h1").inner_text() == "Overview"
    assert page.locator(".stat-value").first.inner_text().replace("\u202f", "").isdigit()
    assert page.locator("svg.chart rect.series-0").count() > 0
    assert "INVALID_ARGUMENT" in page.locator("#rejected-heading + .table-wrap").inner_text()
    laptop.screenshot("02-overview")

    _claim_history_then_actor(laptop, corpus, _search_by_keyboard(laptop, corpus))

    page.goto("/actors?q=anabel+quixotc")
    assert page.locator("tbody tr a", has_text=f"Annabel Quixotic {corpus.prefix}").count() == 1
    laptop.screenshot("06-actors-typo-search")

    page.goto("/topics")
    laptop.screenshot("07-topics")

    page.goto("/database")
    tables = page.locator("#tables-heading + .table-wrap").inner_text()
    assert "claim_revisions" in tables
    assert "indexer_rejections" in tables
    assert page.locator("section[aria-labelledby=statements-heading] code.sql").count() > 0
    laptop.screenshot("08-database")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert "You have signed out" in page.inner_text("main")
    page.goto("/")
    assert "/login" in page.url


def test_pages_fit_a_phone_screen(phone: DashboardVisit, corpus: GatewayCorpus) -> None:
    """On a phone-sized screen no page is wider than the screen; tables scroll in place."""
    phone.log_in()
    for name, path in [
        ("overview", "/"),
        ("claims", "/claims?q=wind"),
        ("claim", f"/claims/{corpus.claim(5)}"),
        ("actor", f"/actors/{corpus.ann}"),
        ("database", "/database"),
    ]:
        phone.page.goto(path)
        assert phone.no_horizontal_overflow(), name
        phone.screenshot(f"phone-{name}", full_page=False)
