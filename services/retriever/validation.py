"""Reads RetrieverService requests into checked values, reporting every bad field at once.

Field names in violations are the proto3 JSON names a caller sends (`statedAfter`, `pageSize`),
through gRPC and through the gateway alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, Protocol

import langcodes
from google.protobuf import timestamp_pb2

from panoptic.core.consistency import ConsistencyTokens, InvalidConsistencyToken
from panoptic.core.refusals import InvalidArgument
from panoptic.core.timestamps import timestamp_problem, to_datetime
from panoptic.model.ids import CLAIM_ID, LANGUAGE_SHAPE, SLUG
from panoptic.reads import paging
from panoptic.reads.domain import (
    ClaimListing,
    ClaimSearch,
    ClaimView,
    Interval,
    PageRequest,
    TimelineRequest,
    Violations,
)
from panoptic.reads.queries import ClaimFilters
from panoptic.v1 import retriever_service_pb2 as api

MAX_SEARCH_QUERY_CHARS: Final = 1_000
MAX_ACTOR_QUERY_CHARS: Final = 200
DEFAULT_SAMPLE_SIZE: Final = 3
MAX_SAMPLE_SIZE: Final = 10
# AIP-231 leaves the limit to the API; a hundred is a few screens of a mobile app's feed.
MAX_BATCH_IDS: Final = 100

_ORDERS: Final = {"stated_at desc": True, "stated_at asc": False}
_VIEWS: Final[dict[int, ClaimView]] = {
    api.CLAIM_VIEW_UNSPECIFIED: ClaimView.BASIC,
    api.CLAIM_VIEW_BASIC: ClaimView.BASIC,
    api.CLAIM_VIEW_FULL: ClaimView.FULL,
}
_INTERVALS: Final = {
    api.TIMELINE_INTERVAL_DAY: Interval.DAY,
    api.TIMELINE_INTERVAL_WEEK: Interval.WEEK,
    api.TIMELINE_INTERVAL_MONTH: Interval.MONTH,
    api.TIMELINE_INTERVAL_YEAR: Interval.YEAR,
}


class ConsistentRead(Protocol):
    """Every read request: it may carry a consistency token."""

    @property
    def consistency_token(self) -> str: ...


def consistency_position(token: str, tokens: ConsistencyTokens) -> int | None:
    """The log position a consistency token stands for; None for no token."""
    if not token:
        return None
    try:
        return tokens.open(token)
    except InvalidConsistencyToken:
        raise InvalidArgument(
            [
                (
                    "consistencyToken",
                    "is not a token the indexer issued; pass the consistencyToken of an"
                    " indexer's answer unchanged, or leave it empty",
                )
            ],
            "INVALID_CONSISTENCY_TOKEN",
        ) from None


def claim_id(value: str, field_name: str = "claimId") -> str:
    """A required claim id."""
    problems = Violations()
    _check_claim_id(problems, field_name, value)
    problems.raise_if_any()
    return value


def get_claim(request: api.GetClaimRequest) -> tuple[str, ClaimView]:
    """A GetClaim request as (claim id, view)."""
    problems = Violations()
    _check_claim_id(problems, "claimId", request.claim_id)
    view = _view(problems, request.view)
    problems.raise_if_any()
    return request.claim_id, view


def resource_id(value: str, field_name: str) -> str:
    """A required actor or topic id (a slug)."""
    problems = Violations()
    _check_slug(problems, field_name, value, required=True)
    problems.raise_if_any()
    return value


def list_claims(request: api.ListClaimsRequest) -> ClaimListing:
    """A ListClaims request as values."""
    problems = Violations()
    filters = _filters(problems, request)
    order = " ".join(request.order_by.lower().split()) or "stated_at desc"
    if order not in _ORDERS:
        problems.add("orderBy", "must be `stated_at desc` (the default) or `stated_at asc`")
    page = _page(problems, request.page_size, request.page_token)
    view = _view(problems, request.view)
    problems.raise_if_any()
    return ClaimListing(filters, _ORDERS.get(order, True), page, view)


def search_claims(request: api.SearchClaimsRequest) -> ClaimSearch:
    """A SearchClaims request as values."""
    problems = Violations()
    query = request.query.strip()
    if not query:
        problems.add("query", 'required: words, "quoted phrases", `or` and -exclusions')
    elif len(query) > MAX_SEARCH_QUERY_CHARS:
        problems.add("query", f"longer than {MAX_SEARCH_QUERY_CHARS} characters")
    elif "\x00" in query:
        problems.add("query", "contains a NUL character")
    filters = _filters(problems, request)
    page = _page(problems, request.page_size, request.page_token)
    view = _view(problems, request.view)
    problems.raise_if_any()
    return ClaimSearch(query, filters, page, view)


def list_revisions(request: api.ListClaimRevisionsRequest) -> tuple[str, PageRequest]:
    """A ListClaimRevisions request as (claim id, page)."""
    problems = Violations()
    _check_claim_id(problems, "claimId", request.claim_id)
    page = _page(problems, request.page_size, request.page_token)
    problems.raise_if_any()
    return request.claim_id, page


def list_actors(request: api.ListActorsRequest) -> tuple[str | None, PageRequest]:
    """A ListActors request as (normalised name query or None, page)."""
    problems = Violations()
    query = " ".join(request.query.lower().split())
    if len(query) > MAX_ACTOR_QUERY_CHARS:
        problems.add("query", f"longer than {MAX_ACTOR_QUERY_CHARS} characters")
    elif "\x00" in query:
        problems.add("query", "contains a NUL character")
    page = _page(problems, request.page_size, request.page_token)
    problems.raise_if_any()
    return query or None, page


def actor_timeline(request: api.GetActorTimelineRequest) -> TimelineRequest:
    """A GetActorTimeline request as values."""
    problems = Violations()
    _check_slug(problems, "actorId", request.actor_id, required=True)
    _check_slug(problems, "topicId", request.topic_id, required=False)
    interval = _INTERVALS.get(request.interval)
    if interval is None:
        problems.add("interval", "required: DAY, WEEK, MONTH or YEAR")
    stated_after, stated_before = _time_range(problems, request)
    sample_size = DEFAULT_SAMPLE_SIZE
    if request.sample_size < 0:
        problems.add("sampleSize", "must not be negative")
    elif request.sample_size > 0:
        sample_size = min(request.sample_size, MAX_SAMPLE_SIZE)
    problems.raise_if_any()
    assert interval is not None
    return TimelineRequest(
        actor_id=request.actor_id,
        interval=interval,
        topic_id=request.topic_id or None,
        stated_after=stated_after,
        stated_before=stated_before,
        sample_size=sample_size,
    )


def list_topics(request: api.ListTopicsRequest) -> tuple[str | None, PageRequest]:
    """A ListTopics request as (parent id or None, page)."""
    problems = Violations()
    _check_slug(problems, "parentId", request.parent_id, required=False)
    page = _page(problems, request.page_size, request.page_token)
    problems.raise_if_any()
    return request.parent_id or None, page


def batch_ids(ids: Sequence[str]) -> list[str]:
    """The actor or topic ids of a BatchGet request: 1 to `MAX_BATCH_IDS` slugs, repeats
    allowed; each bad one named by its index (`ids[3]`), and the first beyond the limit."""
    problems = Violations()
    if not ids:
        problems.add("ids", f"required: 1 to {MAX_BATCH_IDS} ids")
    for index, value in enumerate(ids[:MAX_BATCH_IDS]):
        _check_slug(problems, f"ids[{index}]", value, required=True)
    if len(ids) > MAX_BATCH_IDS:
        problems.add(
            f"ids[{MAX_BATCH_IDS}]",
            f"is beyond the {MAX_BATCH_IDS} ids a call may ask for ({len(ids)} given);"
            " split the ids over several calls",
        )
    problems.raise_if_any()
    return list(ids)


# --- the parts ---------------------------------------------------------------------------------


def _filters(
    problems: Violations, request: api.ListClaimsRequest | api.SearchClaimsRequest
) -> ClaimFilters:
    _check_slug(problems, "actorId", request.actor_id, required=False)
    _check_slug(problems, "topicId", request.topic_id, required=False)
    stated_after, stated_before = _time_range(problems, request)
    return ClaimFilters(
        actor_id=request.actor_id or None,
        topic_id=request.topic_id or None,
        stated_after=stated_after,
        stated_before=stated_before,
        language=_language(problems, request.language),
        show_retracted=request.show_retracted,
    )


def _view(problems: Violations, value: int) -> ClaimView:
    view = _VIEWS.get(value)
    if view is None:
        problems.add("view", "must be CLAIM_VIEW_BASIC (the default) or CLAIM_VIEW_FULL")
        return ClaimView.BASIC
    return view


def _page(problems: Violations, size: int, token: str) -> PageRequest:
    try:
        return PageRequest(paging.page_size(size), token)
    except paging.NegativePageSize:
        problems.add("pageSize", "must not be negative (0 means the default of 50)")
        return PageRequest(paging.DEFAULT_PAGE_SIZE, token)


def _check_claim_id(problems: Violations, field_name: str, value: str) -> None:
    if not value:
        problems.add(field_name, "required")
    elif not CLAIM_ID.matches(value):
        problems.add(field_name, CLAIM_ID.rule)


def _check_slug(problems: Violations, field_name: str, value: str, *, required: bool) -> None:
    if not value:
        if required:
            problems.add(field_name, "required")
    elif not SLUG.matches(value):
        problems.add(field_name, SLUG.rule)


def _time_range(
    problems: Violations,
    request: api.ListClaimsRequest | api.SearchClaimsRequest | api.GetActorTimelineRequest,
) -> tuple[datetime | None, datetime | None]:
    after = _time(problems, "statedAfter", request, "stated_after")
    before = _time(problems, "statedBefore", request, "stated_before")
    if after is not None and before is not None and after >= before:
        problems.add("statedAfter", "must be before statedBefore")
    return after, before


def _time(
    problems: Violations,
    field_name: str,
    request: api.ListClaimsRequest | api.SearchClaimsRequest | api.GetActorTimelineRequest,
    attribute: str,
) -> datetime | None:
    if not request.HasField(attribute):
        return None
    value: timestamp_pb2.Timestamp = getattr(request, attribute)
    problem = timestamp_problem(value)
    if problem is not None:
        problems.add(field_name, problem)
        return None
    return to_datetime(value)


def _language(problems: Violations, tag: str) -> str | None:
    if not tag:
        return None
    if not LANGUAGE_SHAPE.matches(tag) or not langcodes.tag_is_valid(tag):
        problems.add("language", f"{tag!r} {LANGUAGE_SHAPE.rule}")
        return None
    # Stored as the indexer stores it: the canonical spelling (`pt-br` is `pt-BR`).
    return str(langcodes.standardize_tag(tag))
