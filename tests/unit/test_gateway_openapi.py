"""The OpenAPI document states what the API accepts: ranges, patterns, enums, formats, masks."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from google.protobuf import json_format, timestamp_pb2
from hypothesis import example, given, settings
from hypothesis import strategies as st

from panoptic.v1 import field_rules_pb2, retriever_service_pb2
from services.gateway.descriptors import PACKAGED_DESCRIPTOR_SET, build, load_descriptor_set
from services.gateway.openapi import TIMESTAMP_PATTERN, build_openapi
from services.gateway.rules import exposed_routes
from services.gateway.transcode import QueryError, field_mask_pattern, parse_field_mask
from services.retriever import validation

_EARLIEST = -62135510400  # 0001-01-02T00:00:00Z, in seconds from the epoch
_END = 253402214400  # 9999-12-31T00:00:00Z


def _document() -> dict[str, Any]:
    loaded = build(load_descriptor_set(PACKAGED_DESCRIPTOR_SET))
    return build_openapi(exposed_routes(loaded.pool, ["panoptic.v1.RetrieverService"]), loaded)


def _parameters(path: str) -> dict[str, dict[str, Any]]:
    operation = _document()["paths"][path]["get"]
    return {parameter["name"]: parameter for parameter in operation["parameters"]}


def _rules(message: Any, field: str) -> field_rules_pb2.FieldRules:
    options = message.DESCRIPTOR.fields_by_name[field].GetOptions()
    rules: field_rules_pb2.FieldRules = options.Extensions[field_rules_pb2.field_rules]
    return rules


def test_parameters_state_the_ranges_patterns_and_enums_the_retriever_enforces() -> None:
    """Page sizes from 0, ids with their grammar, a required enum without UNSPECIFIED."""
    listing = _parameters("/v1/claims")
    assert listing["pageSize"]["schema"]["minimum"] == 0
    assert listing["pageSize"]["schema"]["maximum"] == 2**31 - 1
    assert re.search(listing["actorId"]["schema"]["pattern"], "")  # empty: no filter
    assert not re.search(listing["actorId"]["schema"]["pattern"], "Ann")
    assert listing["pageToken"]["schema"]["format"] == "page-token"
    assert listing["language"]["schema"]["format"] == "bcp47"
    assert listing["statedBefore"]["x-after"] == "statedAfter"
    assert "must be after" in listing["statedBefore"]["description"]
    claim = _parameters("/v1/claims/{claim_id}")["claim_id"]["schema"]
    assert claim["pattern"] == validation.CLAIM_ID.pattern
    timeline = _parameters("/v1/actors/{actor_id}/timeline")
    assert timeline["actor_id"]["schema"]["pattern"] == validation.SLUG.pattern
    assert timeline["interval"]["schema"]["enum"] == [
        "TIMELINE_INTERVAL_DAY",
        "TIMELINE_INTERVAL_WEEK",
        "TIMELINE_INTERVAL_MONTH",
        "TIMELINE_INTERVAL_YEAR",
    ]
    assert timeline["sampleSize"]["schema"]["minimum"] == 0
    search = _parameters("/v1/claims:search")["query"]["schema"]
    assert search["maxLength"] == validation.MAX_SEARCH_QUERY_CHARS
    assert not re.search(search["pattern"], " \t ")


def test_the_protos_rules_are_the_retrievers_own() -> None:
    """Each id and length rule in the protos is the one the retriever's validation applies."""
    api = retriever_service_pb2
    assert _rules(api.GetClaimRequest, "claim_id").pattern == validation.CLAIM_ID.pattern
    assert _rules(api.ListClaimRevisionsRequest, "claim_id").pattern == validation.CLAIM_ID.pattern
    for message, field in [(api.GetActorRequest, "actor_id"), (api.GetTopicRequest, "topic_id")]:
        assert _rules(message, field).pattern == validation.SLUG.pattern
    slug_body = validation.SLUG.pattern.removeprefix("^").removesuffix("$")
    for message, field in [
        (api.ListClaimsRequest, "topic_id"),
        (api.SearchClaimsRequest, "actor_id"),
        (api.ListTopicsRequest, "parent_id"),
    ]:
        assert _rules(message, field).pattern == f"^(?:{slug_body})?$"
    language = _rules(api.ListClaimsRequest, "language").pattern
    assert language == f"^(?:{validation.LANGUAGE_SHAPE.pattern[1:-1]})?$"
    assert _rules(api.SearchClaimsRequest, "query").max_length == validation.MAX_SEARCH_QUERY_CHARS
    assert _rules(api.ListActorsRequest, "query").max_length == validation.MAX_ACTOR_QUERY_CHARS
    for batch in (api.BatchGetActorsRequest, api.BatchGetTopicsRequest):
        assert _rules(batch, "ids").pattern == validation.SLUG.pattern
        assert _rules(batch, "ids").max_items == validation.MAX_BATCH_IDS


def _real_date(text: str) -> bool:
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(st.from_regex(TIMESTAMP_PATTERN).filter(_real_date))  # `format: date-time` does the same
def test_every_time_the_timestamp_pattern_matches_is_in_the_accepted_range(text: str) -> None:
    """A time the document calls valid parses as protobuf does and lies in the accepted range."""
    stamp = timestamp_pb2.Timestamp()
    json_format.ParseDict(text, stamp)
    assert _EARLIEST <= stamp.seconds < _END


def test_the_timestamp_pattern_takes_ordinary_times_and_refuses_the_ends() -> None:
    """Offsets and fractions are fine; the first and last days, and lower-case t or z, are not."""
    for good in [
        "2024-05-01T12:30:00Z",
        "1999-12-31T23:59:59.123456789+05:30",
        "0001-01-02T00:00:00Z",
    ]:
        assert re.search(TIMESTAMP_PATTERN, good), good
    for bad in [
        "0001-01-01T12:00:00Z",
        "9999-12-31T00:00:00Z",
        "2024-05-01t12:30:00z",
        "0000-05-01T00:00:00Z",
        "2024-05-01T12:30:00Z\n",
    ]:
        assert not re.search(TIMESTAMP_PATTERN, bad), bad


_MASK_PIECES = [
    "claims",
    "id",
    "actorId",
    "actor_id",
    "source",
    "url",
    "nextPageToken",
    "statedAt",
    "nanos",
    "*",
    ".",
    ",",
    " ",
    "x",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_MASK_PIECES), max_size=8).map("".join))
# Once found at random: a path below one already selected whole went unchecked.
@example("claims,claims.")
@example("claims,claims.x")
def test_the_fields_pattern_matches_exactly_the_masks_the_gateway_accepts(mask: str) -> None:
    """`fields=` values the document allows are accepted, and the others refused, alike."""
    response = retriever_service_pb2.ListClaimsResponse.DESCRIPTOR
    try:
        parse_field_mask((mask,), response)
        accepted = True
    except QueryError:
        accepted = False
    assert (re.search(field_mask_pattern(response), mask) is not None) == accepted
