"""Fixtures several integration modules build the same way: a module's services on the
session's database, the gateway's small corpus behind a running gateway, and a database of a
test's own.

A module that needs other settings overrides `services_env` (or `gateway_env`), and one that
reads other records overrides `corpus`; the fixtures that start processes then use those.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from panoptic.core.db import DatabaseUrl
from tests.conftest import migrated_database
from tests.support.gateway import GatewayCorpus, load_corpus, running_stack
from tests.support.indexer import Metadata, bearer
from tests.support.processes import running_grpc_service, service_env


@pytest.fixture(scope="module")
def services_env(
    database_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The environment of the module's service processes: the session's database, free ports."""
    return service_env(database_url.value, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def retriever(
    services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The address of the module's running `panoptic retriever`."""
    log = tmp_path_factory.mktemp("logs") / "retriever.log"
    with running_grpc_service("retriever", services_env, log) as address:
        yield address


@pytest.fixture(scope="module")
def indexer(
    services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The address of the module's running `panoptic indexer`."""
    log = tmp_path_factory.mktemp("logs") / "indexer.log"
    with running_grpc_service("indexer", services_env, log) as address:
        yield address


@pytest.fixture(scope="module")
def token(services_env: dict[str, str]) -> Metadata:
    """The metadata that authenticates a call to the module's indexer."""
    return bearer(services_env)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def corpus(database_url: DatabaseUrl) -> GatewayCorpus:
    """The module's records, indexed before its services start: the gateway's small hand-made
    corpus, unless the module overrides this fixture with a corpus of its own."""
    return await load_corpus(database_url)


@pytest.fixture(scope="module")
def gateway_env(services_env: dict[str, str]) -> dict[str, str]:
    """`services_env` without a rate limit, so that no test of the module meets a 429."""
    return {**services_env, "PANOPTIC_GATEWAY_RATE_LIMIT_PER_SECOND": "0"}


@pytest.fixture(scope="module")
def gateway(
    corpus: GatewayCorpus,
    gateway_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The base URL of the module's gateway, with a retriever behind it, once the corpus is in."""
    with running_stack(gateway_env, tmp_path_factory.mktemp("logs")) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_database(postgres_server_url: DatabaseUrl) -> AsyncIterator[DatabaseUrl]:
    """A database of the test's own, migrated to head and dropped afterwards: the demo corpus's
    fixed ids clash with no one, and a test may count every row. Its URL is the server role's
    that made it, which may also terminate other backends."""
    async with migrated_database(postgres_server_url, prefix="panoptic_fresh") as url:
        yield url
