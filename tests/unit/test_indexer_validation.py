"""The indexer's input checks, without a database: every bad input found, all at once, by path."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
from google.protobuf import timestamp_pb2
from hypothesis import example, given, settings
from hypothesis import strategies as st

from panoptic.core.timestamps import timestamp, timestamp_problem
from panoptic.v1 import indexer_service_pb2, resources_pb2
from services.indexer.convert import batch_from_request, references_from_request
from services.indexer.domain import IndexBatch, References
from services.indexer.handler import _unknown_references
from services.indexer.repository import IndexRepository
from services.indexer.validation import (
    CLOCK_SKEW,
    Limits,
    character_problems,
    is_web_url,
    validate_index_request,
    validate_retract_request,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
LIMITS = Limits()


def claim(claim_id: str = "c-1", **fields: object) -> resources_pb2.Claim:
    """A valid claim, with `fields` replaced (None leaves a field unset)."""
    values: dict[str, object] = {
        "id": claim_id,
        "actor_id": "jane-doe",
        "topic_ids": ["energy"],
        "text": "We will double the wind farms by 2030.",
        "stated_at": timestamp(NOW - timedelta(days=3)),
        "language": "en",
        "confidence": 0.9,
        "source": resources_pb2.Source(url="https://news.example/1", title="Wind"),
    }
    values.update(fields)
    return resources_pb2.Claim(**values)  # type: ignore[arg-type]


def request(
    *claims: resources_pb2.Claim, request_id: str = "r-1"
) -> indexer_service_pb2.IndexClaimsRequest:
    """A request for `claims` that defines the actor and the topic they use."""
    return indexer_service_pb2.IndexClaimsRequest(
        request_id=request_id,
        actors=[
            resources_pb2.Actor(
                id="jane-doe", display_name="Jane Doe", kind=resources_pb2.ACTOR_KIND_PERSON
            )
        ],
        topics=[resources_pb2.Topic(id="energy", display_name="Energy")],
        claims=list(claims) or [claim()],
    )


def problems(
    message: indexer_service_pb2.IndexClaimsRequest, limits: Limits = LIMITS
) -> dict[str, str]:
    """The violations of a request as {field: reason}."""
    found = validate_index_request(message, limits, NOW)
    fields = [violation.field for violation in found]
    assert len(fields) == len(set(fields)), f"a field reported twice: {found}"
    return {violation.field: violation.reason for violation in found}


# --- good input ------------------------------------------------------------------------------


def test_a_well_formed_request_has_no_problems() -> None:
    """A batch with an actor, a topic and claims using them passes validation."""
    message = request(claim("c-1"), claim("c-2", language="pt-BR", confidence=1.0))
    assert validate_index_request(message, LIMITS, NOW) == []


@pytest.mark.parametrize("confidence", [0.0, 0.5, 1.0])
def test_confidence_bounds_are_inclusive(confidence: float) -> None:
    """Confidence 0 and 1 are both allowed."""
    assert problems(request(claim(confidence=confidence))) == {}


def test_text_of_exactly_the_limit_passes() -> None:
    """A text of exactly the default 20,000 characters is accepted."""
    assert LIMITS.max_text_chars == 20_000
    assert problems(request(claim(text="x" * 20_000))) == {}


def test_a_statement_just_ahead_of_our_clock_passes() -> None:
    """A statement time within the allowed clock skew is not "in the future"."""
    ahead = NOW + CLOCK_SKEW - timedelta(seconds=1)
    assert problems(request(claim(stated_at=timestamp(ahead)))) == {}


@pytest.mark.parametrize("tag", ["en", "pt-BR", "pt-br", "zh-Hant-TW", "de-CH"])
def test_valid_language_tags_pass(tag: str) -> None:
    """Well-formed BCP-47 tags are accepted in any letter case."""
    assert problems(request(claim(language=tag))) == {}


def test_a_batch_of_exactly_the_maximum_passes() -> None:
    """A batch holding exactly the configured maximum of claims is accepted."""
    limits = Limits(max_batch_claims=5)
    message = request(*(claim(f"c-{index}") for index in range(5)))
    assert problems(message, limits) == {}


# --- each bad input, alone -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path", "reason"),
    [
        ({"actor_id": ""}, "claims[0].actorId", "REQUIRED"),
        ({"actor_id": "Jane Doe"}, "claims[0].actorId", "INVALID_FIELD"),
        ({"topic_ids": []}, "claims[0].topicIds", "REQUIRED"),
        ({"topic_ids": ["energy", "Not A Slug"]}, "claims[0].topicIds[1]", "INVALID_FIELD"),
        ({"topic_ids": ["energy", "energy"]}, "claims[0].topicIds", "INVALID_FIELD"),
        ({"text": ""}, "claims[0].text", "REQUIRED"),
        ({"text": "   \n\t"}, "claims[0].text", "REQUIRED"),
        ({"text": "x" * 20_001}, "claims[0].text", "TEXT_TOO_LONG"),
        ({"text": "nul \x00 inside"}, "claims[0].text", "INVALID_FIELD"),
        ({"stated_at": None}, "claims[0].statedAt", "REQUIRED"),
        ({"stated_at": timestamp(NOW + timedelta(days=1))}, "claims[0].statedAt", "IN_FUTURE"),
        ({"language": ""}, "claims[0].language", "REQUIRED"),
        ({"language": "english"}, "claims[0].language", "INVALID_FIELD"),
        ({"language": "en_US"}, "claims[0].language", "INVALID_FIELD"),
        ({"language": "xx"}, "claims[0].language", "INVALID_FIELD"),
        ({"confidence": -0.01}, "claims[0].confidence", "INVALID_FIELD"),
        ({"confidence": 1.01}, "claims[0].confidence", "INVALID_FIELD"),
        ({"confidence": math.nan}, "claims[0].confidence", "INVALID_FIELD"),
        ({"confidence": math.inf}, "claims[0].confidence", "INVALID_FIELD"),
        ({"id": ""}, "claims[0].id", "REQUIRED"),
        ({"id": "has space"}, "claims[0].id", "INVALID_FIELD"),
        (
            {"source": resources_pb2.Source(url="ftp://files.example/x")},
            "claims[0].source.url",
            "INVALID_FIELD",
        ),
    ],
    ids=[
        "actor-missing",
        "actor-not-slug",
        "topics-missing",
        "topic-not-slug",
        "topic-repeated",
        "text-empty",
        "text-blank",
        "text-too-long",
        "text-nul",
        "stated-at-missing",
        "stated-at-future",
        "language-missing",
        "language-word",
        "language-underscore",
        "language-unknown",
        "confidence-negative",
        "confidence-above-one",
        "confidence-nan",
        "confidence-infinite",
        "id-missing",
        "id-bad-characters",
        "source-url-not-http",
    ],
)
def test_each_bad_claim_field_is_named(fields: dict[str, Any], path: str, reason: str) -> None:
    """One bad claim field gives exactly one violation, naming that field with its reason."""
    assert problems(request(claim(**fields))) == {path: reason}


def test_text_limit_is_configurable() -> None:
    """A smaller configured text limit refuses texts above it, and says the limit."""
    found = validate_index_request(request(claim(text="x" * 101)), Limits(max_text_chars=100), NOW)
    assert [(v.field, v.reason) for v in found] == [("claims[0].text", "TEXT_TOO_LONG")]
    assert "100" in found[0].description


def test_a_missing_request_id_is_refused() -> None:
    """Without a requestId (the idempotency key) the request is invalid."""
    assert problems(request(request_id="")) == {"requestId": "REQUIRED"}


@pytest.mark.parametrize("request_id", ["has space", "x" * 129, "é"])
def test_a_malformed_request_id_is_refused(request_id: str) -> None:
    """A requestId with characters outside the allowed set, or too long, is invalid."""
    assert problems(request(request_id=request_id)) == {"requestId": "INVALID_FIELD"}


def test_duplicate_claim_ids_are_refused_at_each_repeat() -> None:
    """A claim id repeated in one batch is reported at every repeat after the first."""
    message = request(claim("c-1"), claim("c-2"), claim("c-1"), claim("c-1"))
    assert problems(message) == {"claims[2].id": "DUPLICATE_ID", "claims[3].id": "DUPLICATE_ID"}


def test_duplicate_actor_and_topic_ids_are_refused() -> None:
    """An actor or topic defined twice in one batch is reported at the repeat."""
    message = request()
    message.actors.append(message.actors[0])
    message.topics.append(message.topics[0])
    assert problems(message) == {"actors[1].id": "DUPLICATE_ID", "topics[1].id": "DUPLICATE_ID"}


def test_a_batch_above_the_maximum_is_refused_as_a_whole() -> None:
    """More claims than the configured maximum is one BATCH_TOO_LARGE violation on `claims`."""
    limits = Limits(max_batch_claims=5)
    found = validate_index_request(
        request(*(claim(f"c-{index}") for index in range(6))), limits, NOW
    )
    assert [(v.field, v.reason) for v in found] == [("claims", "BATCH_TOO_LARGE")]
    assert "5" in found[0].description


def test_the_default_maximum_is_a_thousand_claims() -> None:
    """With default limits, 1,000 claims pass and 1,001 do not."""
    thousand = request(*(claim(f"c-{index}") for index in range(1_000)))
    assert problems(thousand) == {}
    thousand.claims.append(claim("c-1000"))
    assert problems(thousand) == {"claims": "BATCH_TOO_LARGE"}


def test_bad_actors_and_topics_are_named() -> None:
    """Actors and topics are checked too: ids, names, and parents forming a cycle."""
    message = request()
    message.actors.append(resources_pb2.Actor(id="Bad Id", display_name=" "))
    message.topics.extend(
        [
            resources_pb2.Topic(id="loop-a", display_name="A", parent_id="loop-b"),
            resources_pb2.Topic(id="loop-b", display_name="B", parent_id="loop-a"),
            resources_pb2.Topic(id="self", display_name="Self", parent_id="self"),
        ]
    )
    assert problems(message) == {
        "actors[1].id": "INVALID_FIELD",
        "actors[1].displayName": "REQUIRED",
        "topics[1].parentId": "INVALID_FIELD",
        "topics[2].parentId": "INVALID_FIELD",
        "topics[3].parentId": "INVALID_FIELD",
    }


# --- all at once -----------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_exact_paths() -> None:
    """A batch with many problems in many claims gets all of them in one answer, each by path."""
    message = request(
        claim("c-0"),
        claim("c-1", text=""),
        claim("c-2"),
        claim(
            "c-3",
            stated_at=timestamp(NOW + timedelta(hours=1)),
            language="not a tag",
            confidence=2.0,
        ),
        claim("c-4", actor_id="", topic_ids=[]),
        claim("c-2"),
        request_id="",
    )
    assert problems(message) == {
        "requestId": "REQUIRED",
        "claims[1].text": "REQUIRED",
        "claims[3].statedAt": "IN_FUTURE",
        "claims[3].language": "INVALID_FIELD",
        "claims[3].confidence": "INVALID_FIELD",
        "claims[4].actorId": "REQUIRED",
        "claims[4].topicIds": "REQUIRED",
        "claims[5].id": "DUPLICATE_ID",
    }


def test_a_batch_too_large_still_reports_its_other_problems() -> None:
    """BATCH_TOO_LARGE does not hide the problems of the claims themselves."""
    message = request(claim("c-0"), claim("c-1", language=""), claim("c-2"))
    assert problems(message, Limits(max_batch_claims=2)) == {
        "claims": "BATCH_TOO_LARGE",
        "claims[1].language": "REQUIRED",
    }


# --- retractions -----------------------------------------------------------------------------


def test_a_well_formed_retraction_has_no_problems() -> None:
    """A retraction with a claim id, a reason and a request id passes."""
    retraction = indexer_service_pb2.RetractClaimRequest(
        claim_id="c-1", reason="misattributed", request_id="r-9"
    )
    assert validate_retract_request(retraction) == []


def test_a_bad_retraction_reports_every_problem() -> None:
    """A retraction without ids and with an over-long reason names all three fields."""
    retraction = indexer_service_pb2.RetractClaimRequest(reason="x" * 2_001)
    found = validate_retract_request(retraction)
    assert {(v.field, v.reason) for v in found} == {
        ("requestId", "REQUIRED"),
        ("claimId", "REQUIRED"),
        ("reason", "INVALID_FIELD"),
    }


# --- references, against a faked repository -------------------------------------------------


class FakeReferences:
    """The two reads reference checking makes, answered from fixed stored actors and topics."""

    def __init__(self, actors: set[str], topics: dict[str, str | None]) -> None:
        self._actors = actors
        self._topics = topics

    async def existing_actor_ids(self, ids: set[str]) -> set[str]:
        return self._actors & set(ids)

    async def topic_ancestry(self, ids: set[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        pending = [topic for topic in ids if topic in self._topics]
        while pending:
            topic = pending.pop()
            found[topic] = self._topics[topic]
            parent = self._topics[topic]
            if parent and parent not in found:
                pending.append(parent)
        return found


def batch(*claims: resources_pb2.Claim) -> IndexBatch:
    message = request(*claims)
    assert validate_index_request(message, LIMITS, NOW) == []
    return batch_from_request(message)


@pytest.mark.asyncio
async def test_references_to_stored_or_batch_actors_and_topics_pass() -> None:
    """Claims may name actors and topics from the batch or from the database."""
    stored = FakeReferences({"old-actor"}, {"old-topic": None})
    unknown = await _unknown_references(
        cast(IndexRepository, stored),
        References.of(
            batch(claim("c-1"), claim("c-2", actor_id="old-actor", topic_ids=["old-topic"]))
        ),
    )
    assert unknown == []


@pytest.mark.asyncio
async def test_unknown_actors_and_topics_are_all_named() -> None:
    """Every claim naming an actor or topic that exists nowhere is reported, by path."""
    stored = FakeReferences({"old-actor"}, {"old-topic": None})
    unknown = await _unknown_references(
        cast(IndexRepository, stored),
        References.of(
            batch(
                claim("c-0"),
                claim("c-1", actor_id="nobody"),
                claim("c-2", topic_ids=["energy", "nowhere"]),
                claim("c-3", actor_id="old-actor", topic_ids=["old-topic"]),
            )
        ),
    )
    assert [field for field, _ in unknown] == [
        "claims[1].actorId",
        "claims[2].topicIds[1]",
    ]


@pytest.mark.asyncio
async def test_a_refused_request_has_its_well_formed_references_checked() -> None:
    """References of a request that fails validation are checked where their ids are
    well-formed, by their positions in the request; malformed ids are left to validation."""
    stored = FakeReferences(set(), {"energy": None})
    message = request(
        claim("c-0", text="", actor_id="nobody"),
        claim("c-1", actor_id="Not A Slug", topic_ids=["nowhere", "Bad Topic"]),
    )
    unknown = await _unknown_references(
        cast(IndexRepository, stored), references_from_request(message)
    )
    assert [field for field, _ in unknown] == [
        "claims[0].actorId",
        "claims[1].topicIds[0]",
    ]


def test_every_string_field_is_checked_for_nul_however_deep() -> None:
    """`character_problems` names a NUL in nested, repeated and top-level strings by path."""
    message = request(claim("c-0", text="a\x00b"), request_id="r\x00")
    message.claims[0].source.title = "\x00"
    message.claims[0].topic_ids.append("x\x00")
    assert sorted(v.field for v in character_problems(message)) == [
        "claims[0].source.title",
        "claims[0].text",
        "claims[0].topicIds[1]",
        "requestId",
    ]


@pytest.mark.parametrize(
    ("seconds", "nanos", "accepted"),
    [
        (-62135596800, 0, False),  # 0001-01-01T00:00:00Z, which asyncpg stores as -infinity
        (-62135510401, 999_999_999, False),  # the last nanosecond of 0001-01-01
        (-62135510400, 0, True),  # 0001-01-02T00:00:00Z
        (253402214399, 999_999_999, True),  # the last nanosecond before 9999-12-31
        (253402214400, 0, False),  # 9999-12-31T00:00:00Z
        (0, -1, False),
        (0, 1_000_000_000, False),
    ],
)
def test_the_accepted_time_range(seconds: int, nanos: int, accepted: bool) -> None:
    """Times are accepted from 0001-01-02T00:00:00Z up to, not including, 9999-12-31, with
    nanos in 0..999999999."""
    value = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert (timestamp_problem(value) is None) is accepted


# Pieces URLs are made of, the plain and the odd: schemes spelt several ways, hosts with ports,
# user info and IPv6 brackets, and the characters urlsplit strips or removes.
_URL_PIECES = (
    *("http", "https", "HTTP", "Https", "ftp", "http:", "https:", "//", "/", ":", "://"),
    *("news.example", "a", ".", "-", "[::1]", "[", "]", "user@", ":8080", ":", "é", "xn--e"),
    *("?", "#", "?q=1", "#top", "/path", " ", "\t", "\n", "\r", "\x00", "\x01", "\u3000"),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_URL_PIECES), max_size=8).map("".join) | st.text(max_size=30))
@example("https://news.example/1")
@example("http://news.example:8080?q=1#top")
@example(" http://news.example/")
@example("http://news.example/a b")
@example("http://[::1]/")
@example("http:///path")
@example("HTTP://news.example")
def test_the_url_check_answers_as_urlsplit_does(url: str) -> None:
    """`is_web_url`, whose quick pattern spares most URLs a full parse, accepts exactly the
    URLs whose scheme urlsplit reads as http or https and whose host it reads as not empty."""
    try:
        parts = urlsplit(url)
    except ValueError as refused:  # a bracketed host urlsplit refuses: the check raises alike
        with pytest.raises(ValueError, match=re.escape(str(refused))):
            is_web_url(url)
        return
    assert is_web_url(url) == (parts.scheme in ("http", "https") and bool(parts.netloc))
