"""A bounded schemathesis run against the gateway's own /openapi.json, over a real retriever.

Every operation gets a few dozen generated requests, valid and invalid: no answer may be a 5xx,
and every answer must match the document (status, content type, body schema).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from panoptic.core.db import DatabaseUrl
from tests.support.gateway import GatewayCorpus, load_corpus, running_stack
from tests.support.processes import service_env

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 25
TIME_BUDGET_SECONDS = 60
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def corpus(database_url: DatabaseUrl) -> GatewayCorpus:
    """Some records, so that generated requests sometimes find something."""
    return await load_corpus(database_url)


@pytest.fixture(scope="module")
def gateway(
    corpus: GatewayCorpus, database_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A retriever and a gateway without a rate limit; the gateway's base URL."""
    env = service_env(
        database_url.value,
        tmp_path_factory.mktemp("data"),
        PANOPTIC_GATEWAY_RATE_LIMIT_PER_SECOND="0",
    )
    with running_stack(env, tmp_path_factory.mktemp("logs")) as url:
        yield url


def _without_fields(case: schemathesis.Case) -> schemathesis.Case:
    if case.query:
        case.query.pop("fields", None)
    return case


def test_generated_requests_get_no_5xx_and_match_the_document(
    gateway: str, corpus: GatewayCorpus
) -> None:
    """Positive and negative cases for every operation: no 5xx, every response as documented."""
    schema = schemathesis.openapi.from_url(f"{gateway}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 10
    started = time.monotonic()
    for operation in operations:
        strategy = st.one_of(
            # Random `fields=` masks are nearly always invalid; valid cases leave them out so
            # they reach the retriever (masks have tests of their own).
            operation.as_strategy(GenerationMode.POSITIVE).map(_without_fields),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=gateway, checks=CHECKS)

        check()
        assert time.monotonic() - started < TIME_BUDGET_SECONDS, operation.label
