"""The dashboard's database page on a replicated database: a real `panoptic dashboard` given the
two streaming replicas of an embedded primary (made by the suite's `ensure_replicas`) lists them
with the reads each served, and shows a replica taken out once its server stops, and back once
it runs again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser

import httpx
import pytest
import pytest_asyncio

from panoptic.core.replicas import replica_name
from panoptic.suite.embedded_pg import DATABASE, ensure_replicas
from tests.support.dashboard import dashboard_env, dashboard_url, log_in, running_dashboard
from tests.support.processes import service_env, wait_for
from tests.support.replication import ReplicatedDatabase, replica_env, replicated_database

pytestmark = pytest.mark.slow


class _ReplicaRows(HTMLParser):
    """The rows of the database page's Replicas table: each row's cells, as text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_section = self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._in_section = ("aria-labelledby", "replicas-heading") in attrs
        elif self._in_section and tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "section":
            self._in_section = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def replica_rows(client: httpx.Client) -> dict[str, list[str]]:
    """The Replicas table of the database page, by server name: state, lag, bytes, reads."""
    page = client.get("/database")
    assert page.status_code == 200, page.text
    parser = _ReplicaRows()
    parser.feed(page.text)
    return {row[0]: row[1:] for row in parser.rows}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ReplicatedDatabase]:
    """A migrated primary with two streaming replicas."""
    base = tmp_path_factory.mktemp("replicated")
    async with replicated_database(base, replicas=2) as database:
        yield database


@pytest.fixture(scope="module")
def names(database: ReplicatedDatabase) -> list[str]:
    """The replicas' names, as the dashboard shows them."""
    return [replica_name(replica.url(database=DATABASE)) for replica in database.replicas]


@pytest.fixture(scope="module")
def operator(
    database: ReplicatedDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """A logged-in client of a dashboard that reads the primary and both replicas."""
    base = tmp_path_factory.mktemp("dashboard")
    reading_replicas = service_env(database.owner_url.value, base / "data", **replica_env(database))
    env = dashboard_env(reading_replicas)
    with (
        running_dashboard(env, base / "dashboard.log"),
        httpx.Client(base_url=dashboard_url(env), timeout=10, follow_redirects=False) as client,
    ):
        assert log_in(client).status_code == 303
        yield client


def serving(client: httpx.Client, name: str) -> bool:
    """Whether the database page shows the replica `name` serving reads."""
    return replica_rows(client)[name][0] == "serving"


def test_the_database_page_lists_both_replicas_and_the_reads_each_served(
    operator: httpx.Client, names: list[str]
) -> None:
    """Each replica is listed, serving, with its lag in seconds and bytes, and the claim pages'
    reads are counted on the replicas that served them; the primary is listed last."""
    for name in names:
        wait_for(lambda name=name: serving(operator, name), timeout=30)
    for _ in range(4):
        assert operator.get("/claims").status_code == 200
    rows = replica_rows(operator)
    assert list(rows) == [*names, "primary"]
    for name in names:
        state, lag_seconds, lag_bytes, reads = rows[name]
        assert state == "serving"
        assert lag_seconds.endswith(" s"), lag_seconds
        assert lag_bytes.endswith("B"), lag_bytes
        assert int(reads) > 0, f"{name} served no read of the claim pages"
    assert rows["primary"][0].startswith("serving")


def test_a_stopped_replica_is_taken_out_and_put_back(
    operator: httpx.Client, database: ReplicatedDatabase, names: list[str]
) -> None:
    """Once a replica's server stops, the page shows it taken out because it does not answer,
    the other one serving; once it runs again, serving again."""
    stopped, other = names
    for name in names:
        wait_for(lambda name=name: serving(operator, name), timeout=30)
    database.replicas[0].stop()
    try:
        wait_for(lambda: not serving(operator, stopped), timeout=30)
        state, lag_seconds, lag_bytes, _ = replica_rows(operator)[stopped]
        assert state == "taken out not answering, or not a standby"
        assert (lag_seconds, lag_bytes) == ("—", "—"), "a replica that does not answer lags by?"
        assert serving(operator, other)
    finally:
        ensure_replicas(database.primary, len(database.replicas))
    wait_for(lambda: serving(operator, stopped), timeout=30)
