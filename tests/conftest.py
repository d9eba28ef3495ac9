"""Fixtures shared by every test level: one PostgreSQL per test session, migrated once.

The server is an embedded PostgreSQL in a temporary directory, or the one named by
`PANOPTIC_TEST_DATABASE_URL` (a role that may create databases), as CI does for its
compatibility run. Each session works in a database of its own with a random name, so runs
never meet; tests use random ids so they can share that database safely.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from panoptic.core.db import DatabaseUrl
from panoptic.suite.embedded_pg import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent


def random_id(prefix: str = "t") -> str:
    """A fresh id for test data, unique across tests sharing one database."""
    return f"{prefix}-{secrets.token_hex(6)}"


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres | None]:
    """The session's embedded server, or None when testing an external one."""
    if os.environ.get("PANOPTIC_TEST_DATABASE_URL"):
        yield None
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("embedded-pg") / "data")
    server.ensure_started()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_embedded_server_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test that leaves an embedded PostgreSQL running in its `tmp_path`, once it has
    stopped it: a server left behind outlives the run and holds its memory."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")
    yield
    servers = [EmbeddedPostgres(found.parent) for found in tmp_path.rglob("postmaster.pid")]
    left_running = [server for server in servers if server.is_running()]
    for server in left_running:
        server.stop("immediate")
    assert not left_running, f"left running: {[str(s.pgdata) for s in left_running]}"


@pytest.fixture(scope="session")
def postgres_server_url(embedded_server: EmbeddedPostgres | None) -> DatabaseUrl:
    """A URL of a role on the running server that may create databases and roles."""
    if embedded_server is None:
        return DatabaseUrl(os.environ["PANOPTIC_TEST_DATABASE_URL"])
    return DatabaseUrl(embedded_server.url())


async def create_database(server_url: DatabaseUrl, prefix: str = "panoptic_test") -> DatabaseUrl:
    """Creates an empty database with a random name and returns its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(server_url.value)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server_url.with_database(name)


async def drop_database(server_url: DatabaseUrl, url: DatabaseUrl) -> None:
    """Drops a database made by `create_database`, disconnecting whoever still uses it."""
    connection = await asyncpg.connect(server_url.value)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def migrated_database(
    server_url: DatabaseUrl, prefix: str = "panoptic_test"
) -> AsyncIterator[DatabaseUrl]:
    """A database made by `create_database` and migrated to head, dropped after the block."""
    from panoptic.suite import migrate

    url = await create_database(server_url, prefix)
    try:
        await migrate.upgrade_async(url)
        yield url
    finally:
        await drop_database(server_url, url)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(postgres_server_url: DatabaseUrl) -> AsyncIterator[DatabaseUrl]:
    """The owner's URL of the session's database, migrated to head once."""
    async with migrated_database(postgres_server_url) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def scratch_database_url(postgres_server_url: DatabaseUrl) -> AsyncIterator[DatabaseUrl]:
    """An empty database of the test's own, dropped afterwards."""
    url = await create_database(postgres_server_url, prefix="panoptic_scratch")
    yield url
    await drop_database(postgres_server_url, url)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:  # pragma: no cover - exercised only in CI
    """In CI a skipped test is a failure: whatever it needs, CI must have installed."""
    report = yield
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, where nothing may be skipped: {reason}"
    return report
