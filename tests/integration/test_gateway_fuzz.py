"""A bounded schemathesis run against the gateway's own /openapi.json, over a real retriever.

Every operation gets generated requests, valid and invalid, and every answer goes through every
check schemathesis has: no 5xx; status, content type, headers and body as documented; every
request the document calls valid is served (not refused with a 400), and every request it calls
invalid is refused. So the document states exactly what the API accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import schemathesis
from google.protobuf import timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from panoptic.core.consistency import ConsistencyTokens
from panoptic.core.settings import DEVELOPMENT_CONSISTENCY_TOKEN_KEY
from tests.support.gateway import GatewayCorpus

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 120
MIN_CASES = 1_000
# Values of the document's own formats, which schemathesis cannot make up: the only page token
# valid for any request without a previous call is the empty one (the first page), consistency
# tokens are the indexer's (signed with the development key the suite runs with here; the
# position of an empty log is seen by every server), and language filters are valid BCP-47
# tags (or empty).
FORMATS = {
    "page-token": st.just(""),
    "consistency-token": st.sampled_from(
        ["", ConsistencyTokens(DEVELOPMENT_CONSISTENCY_TOKEN_KEY.encode()).issue(0)]
    ),
    "bcp47": st.sampled_from(["", "en", "fr", "de", "pt-BR", "pt-br", "zh-Hant", "es-419"]),
}


def _time(text: str) -> int:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(text)
    return stamp.ToNanoseconds()


def _keeps_order(case: schemathesis.Case, after_rules: Mapping[str, str]) -> bool:
    """Whether a case keeps the document's `x-after` rules, which OpenAPI cannot express."""
    query: Mapping[str, Any] = case.query or {}
    return all(
        later not in query or earlier not in query or _time(query[later]) > _time(query[earlier])
        for later, earlier in after_rules.items()
    )


def test_generated_requests_pass_every_check(gateway: str, corpus: GatewayCorpus) -> None:
    """Valid and invalid cases for every operation pass every check schemathesis has."""
    for name, strategy in FORMATS.items():
        schemathesis.openapi.format(name, strategy)
    load_all_checks()
    checks = CHECKS.get_all()
    assert {"positive_data_acceptance", "negative_data_rejection"} <= {c.__name__ for c in checks}
    schema = schemathesis.openapi.from_url(f"{gateway}/openapi.json")
    # A request line past the gateway's limit is refused with 414 (documented), valid or not:
    # 1,000 characters of a search query take up to 12,000 bytes once percent-encoded.
    for config in (
        schema.config.checks.positive_data_acceptance,
        schema.config.checks.negative_data_rejection,
    ):
        config.expected_statuses = [*config.expected_statuses, "414"]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12
    cases = 0
    for operation in operations:
        after_rules = {
            parameter["name"]: parameter["x-after"]
            for parameter in operation.definition.raw.get("parameters", [])
            if "x-after" in parameter
        }
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE).filter(
                lambda case, rules=after_rules: _keeps_order(case, rules)  # type: ignore[misc]
            ),
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
            nonlocal cases
            cases += 1
            case.call_and_validate(base_url=gateway, checks=checks)

        check()
    assert cases >= MIN_CASES
