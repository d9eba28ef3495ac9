"""The IndexerService against a real `panoptic indexer` process and PostgreSQL, over gRPC.

One indexer serves the module, with a small batch maximum and message size limit so that both
refusals are cheap to provoke. What the service says is checked against what the database holds,
read with the owner's connection.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.protobuf import timestamp_pb2

from panoptic.core.consistency import ConsistencyTokens
from panoptic.core.db import DatabaseUrl
from panoptic.core.settings import DEVELOPMENT_CONSISTENCY_TOKEN_KEY
from panoptic.core.timestamps import timestamp
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc, resources_pb2
from tests.conftest import random_id
from tests.support.indexer import (
    STATED_AT,
    Metadata,
    actor,
    address_of,
    bearer,
    claim,
    error_reason,
    index_request,
    revision_counts,
    running_indexer,
    scrape,
    stored_claim_ids,
    topic,
    value,
    violated_fields,
)
from tests.support.processes import service_env

pytestmark = pytest.mark.slow

MAX_BATCH_CLAIMS = 25
MAX_MESSAGE_BYTES = 65_536
CREATED = indexer_service_pb2.INDEX_OUTCOME_CREATED
UPDATED = indexer_service_pb2.INDEX_OUTCOME_UPDATED
UNCHANGED = indexer_service_pb2.INDEX_OUTCOME_UNCHANGED


@pytest.fixture(scope="module")
def services_env(
    database_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The module's indexer environment: the session database and small limits."""
    return service_env(
        database_url.value,
        tmp_path_factory.mktemp("indexer-data"),
        PANOPTIC_INDEXER_MAX_BATCH_CLAIMS=str(MAX_BATCH_CLAIMS),
        PANOPTIC_MAX_MESSAGE_BYTES=str(MAX_MESSAGE_BYTES),
    )


@pytest_asyncio.fixture(loop_scope="session")
async def stub(indexer: str) -> AsyncIterator[indexer_service_pb2_grpc.IndexerServiceStub]:
    """An IndexerService client on a channel of the test's own."""
    async with grpc.aio.insecure_channel(indexer) as channel:
        yield indexer_service_pb2_grpc.IndexerServiceStub(channel)


@pytest_asyncio.fixture(loop_scope="session")
async def db(database_url: DatabaseUrl) -> AsyncIterator[asyncpg.Connection]:
    """The owner's connection to the session database, to check what was written."""
    connection = await asyncpg.connect(database_url.value)
    try:
        yield connection
    finally:
        await connection.close()


async def failure(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """The error a call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def edited(original: resources_pb2.Claim, **fields: Any) -> resources_pb2.Claim:
    """A copy of a claim with some scalar fields changed."""
    copy = resources_pb2.Claim()
    copy.CopyFrom(original)
    for name, new_value in fields.items():
        setattr(copy, name, new_value)
    return copy


async def history(db: asyncpg.Connection, claim_id: str) -> list[asyncpg.Record]:
    """A claim's revisions, oldest first."""
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT revision, change, text, state, topic_ids, reason, request_id"
        " FROM claim_revisions WHERE claim_id = $1 ORDER BY revision",
        claim_id,
    )
    return rows


async def claim_counts(db: asyncpg.Connection, table: str, ids: list[str]) -> dict[str, int]:
    """The claim_count of these actors or topics."""
    rows = await db.fetch(f"SELECT id, claim_count FROM {table} WHERE id = ANY($1::text[])", ids)
    return {row["id"]: row["claim_count"] for row in rows}


async def written_rows(db: asyncpg.Connection) -> dict[str, int]:
    """Row counts of every table the indexer writes."""
    tables = ("actors", "topics", "claims", "claim_topics", "claim_revisions", "idempotency_keys")
    return {table: await db.fetchval(f"SELECT count(*) FROM {table}") for table in tables}


# --- creating, updating, unchanged -------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_new_claims_are_created_at_revision_one(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """A batch with a new actor, topic and claims creates them all, each claim at revision 1."""
    jane, energy = actor(), topic()
    first, second = claim(jane.id, [energy.id]), claim(jane.id, [energy.id], language="pt-br")
    request = index_request(first, second, actors=(jane,), topics=(energy,))
    response = await stub.IndexClaims(request, metadata=token, timeout=10)

    assert (response.created, response.updated, response.unchanged) == (2, 0, 0)
    assert (response.actors_upserted, response.topics_upserted, response.batches) == (1, 1, 1)
    assert [(c.claim_id, c.revision, c.outcome) for c in response.claims] == [
        (first.id, 1, CREATED),
        (second.id, 1, CREATED),
    ]
    row = await db.fetchrow("SELECT * FROM claims WHERE id = $1", second.id)
    assert (row["actor_id"], row["topic_ids"], row["revision"]) == (jane.id, [energy.id], 1)
    assert row["language"] == "pt-BR"  # stored in its canonical spelling
    assert row["stated_at"] == STATED_AT
    assert row["state"] == "ACTIVE"
    revisions = await history(db, first.id)
    assert [(r["revision"], r["change"], r["request_id"]) for r in revisions] == [
        (1, "CREATED", request.request_id)
    ]


@pytest.mark.asyncio(loop_scope="session")
async def test_changes_add_revisions_and_identical_content_is_unchanged(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """Each change is a new revision kept in the history; identical content writes nothing."""
    jane, energy = actor(), topic()
    first = claim(jane.id, [energy.id], text="First wording.")
    second = edited(first, text="Second wording.")
    versions = [first, second, edited(second, confidence=0.5)]
    claim_id = first.id

    outcomes = []
    for version in versions:
        response = await stub.IndexClaims(
            index_request(version, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
        )
        outcomes.append((response.claims[0].revision, response.claims[0].outcome))
    again = await stub.IndexClaims(
        index_request(versions[2], actors=(jane,), topics=(energy,)), metadata=token, timeout=10
    )

    assert outcomes == [(1, CREATED), (2, UPDATED), (3, UPDATED)]
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert (again.claims[0].revision, again.claims[0].outcome) == (3, UNCHANGED)
    assert (again.actors_upserted, again.topics_upserted) == (0, 0)  # unchanged too
    revisions = await history(db, claim_id)
    assert [(r["revision"], r["change"], r["text"]) for r in revisions] == [
        (1, "CREATED", "First wording."),
        (2, "UPDATED", "Second wording."),
        (3, "UPDATED", "Second wording."),
    ]
    current = await db.fetchrow(
        "SELECT revision, text, confidence FROM claims WHERE id = $1", claim_id
    )
    assert tuple(current) == (3, "Second wording.", 0.5)


@pytest.mark.asyncio(loop_scope="session")
async def test_retraction_is_a_revision_and_reindexing_restores(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """RetractClaim adds a RETRACTED revision (once); indexing the claim again RESTORES it."""
    jane, energy = actor(), topic()
    original = claim(jane.id, [energy.id])
    await stub.IndexClaims(
        index_request(original, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
    )
    retract = indexer_service_pb2.RetractClaimRequest(
        claim_id=original.id, reason="misattributed", request_id=random_id("req")
    )
    retracted = await stub.RetractClaim(retract, metadata=token, timeout=10)
    assert (retracted.state, retracted.revision) == (resources_pb2.CLAIM_STATE_RETRACTED, 2)
    assert (retracted.text, retracted.actor_id) == (original.text, jane.id)
    assert await claim_counts(db, "actors", [jane.id]) == {jane.id: 0}

    stored = await db.fetchrow(
        "SELECT create_time, update_time FROM claims WHERE id = $1", original.id
    )
    assert retracted.create_time.ToDatetime(tzinfo=dt.UTC) == stored["create_time"]
    assert retracted.update_time.ToDatetime(tzinfo=dt.UTC) == stored["update_time"]

    retract.request_id = random_id("req")
    twice = await stub.RetractClaim(retract, metadata=token, timeout=10)
    assert (twice.state, twice.revision) == (resources_pb2.CLAIM_STATE_RETRACTED, 2)
    assert twice == retracted

    restored = await stub.IndexClaims(index_request(original), metadata=token, timeout=10)
    assert (restored.claims[0].revision, restored.claims[0].outcome) == (3, UPDATED)
    revisions = await history(db, original.id)
    assert [(r["revision"], r["change"], r["state"], r["reason"]) for r in revisions] == [
        (1, "CREATED", "ACTIVE", ""),
        (2, "RETRACTED", "RETRACTED", "misattributed"),
        (3, "RESTORED", "ACTIVE", ""),
    ]
    assert await claim_counts(db, "actors", [jane.id]) == {jane.id: 1}


@pytest.mark.asyncio(loop_scope="session")
async def test_indexing_a_claim_as_retracted_retracts_it(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """A claim re-sent with state RETRACTED gets a RETRACTED revision and stops being counted."""
    jane, energy = actor(), topic()
    original = claim(jane.id, [energy.id])
    await stub.IndexClaims(
        index_request(original, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
    )
    withdrawn = edited(original, state=resources_pb2.CLAIM_STATE_RETRACTED)
    response = await stub.IndexClaims(index_request(withdrawn), metadata=token, timeout=10)
    assert (response.updated, response.claims[0].revision) == (1, 2)
    assert [r["change"] for r in await history(db, original.id)] == ["CREATED", "RETRACTED"]
    assert await claim_counts(db, "topics", [energy.id]) == {energy.id: 0}


@pytest.mark.asyncio(loop_scope="session")
async def test_retracting_an_unknown_claim_is_not_found(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata
) -> None:
    """RetractClaim of a claim that does not exist fails with NOT_FOUND and CLAIM_NOT_FOUND."""
    request = indexer_service_pb2.RetractClaimRequest(
        claim_id=random_id("missing"), request_id=random_id("req")
    )
    error = await failure(stub.RetractClaim(request, metadata=token, timeout=10))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(error) == "CLAIM_NOT_FOUND"


# --- counts and topic links --------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_claim_counts_follow_actors_and_topics(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """Actors and topics count their active claims through creation, moves and retraction."""
    jane, john = actor(), actor(display_name="John Roe")
    energy, health, schools = topic(), topic(), topic()
    x = claim(jane.id, [energy.id, health.id])
    y = claim(jane.id, [energy.id])
    z = claim(john.id, [schools.id], state=resources_pb2.CLAIM_STATE_RETRACTED)
    await stub.IndexClaims(
        index_request(x, y, z, actors=(jane, john), topics=(energy, health, schools)),
        metadata=token,
        timeout=10,
    )
    people, subjects = [jane.id, john.id], [energy.id, health.id, schools.id]
    assert await claim_counts(db, "actors", people) == {jane.id: 2, john.id: 0}
    assert await claim_counts(db, "topics", subjects) == {energy.id: 2, health.id: 1, schools.id: 0}

    moved = claim(john.id, [schools.id], x.id)
    await stub.IndexClaims(index_request(moved), metadata=token, timeout=10)
    assert await claim_counts(db, "actors", people) == {jane.id: 1, john.id: 1}
    assert await claim_counts(db, "topics", subjects) == {energy.id: 1, health.id: 0, schools.id: 1}

    retract = indexer_service_pb2.RetractClaimRequest(claim_id=y.id, request_id=random_id("req"))
    await stub.RetractClaim(retract, metadata=token, timeout=10)
    assert await claim_counts(db, "actors", people) == {jane.id: 0, john.id: 1}
    assert await claim_counts(db, "topics", subjects) == {energy.id: 0, health.id: 0, schools.id: 1}


@pytest.mark.asyncio(loop_scope="session")
async def test_a_topic_change_retires_the_old_links(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """Moving a claim to other topics keeps the old links, no longer current, for history."""
    jane, energy, health, schools = actor(), topic(), topic(), topic()
    original = claim(jane.id, [energy.id, health.id])
    await stub.IndexClaims(
        index_request(original, actors=(jane,), topics=(energy, health, schools)),
        metadata=token,
        timeout=10,
    )
    moved = claim(jane.id, [health.id, schools.id], original.id)
    await stub.IndexClaims(index_request(moved), metadata=token, timeout=10)
    links = await db.fetch(
        "SELECT topic_id, is_current FROM claim_topics WHERE claim_id = $1", original.id
    )
    assert {row["topic_id"]: row["is_current"] for row in links} == {
        energy.id: False,
        health.id: True,
        schools.id: True,
    }


# --- idempotency ---------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_a_replay_returns_the_first_response_and_writes_nothing(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """The same request id and payload again answers as the first time, even after a change;
    only its consistency token is fresher, standing for a log position at least as far."""
    jane, energy = actor(), topic()
    original = claim(jane.id, [energy.id])
    request = index_request(original, actors=(jane,), topics=(energy,))
    first = await stub.IndexClaims(request, metadata=token, timeout=10)
    changed = claim(jane.id, [energy.id], original.id, text="A later wording.")
    await stub.IndexClaims(index_request(changed), metadata=token, timeout=10)

    before = await written_rows(db)
    replayed = await stub.IndexClaims(request, metadata=token, timeout=10)
    tokens = ConsistencyTokens(DEVELOPMENT_CONSISTENCY_TOKEN_KEY.encode())
    assert tokens.open(replayed.consistency_token) > tokens.open(first.consistency_token)
    replayed.ClearField("consistency_token")
    first.ClearField("consistency_token")
    assert replayed.SerializeToString(deterministic=True) == first.SerializeToString(
        deterministic=True
    )
    assert (replayed.created, replayed.claims[0].revision) == (1, 1)
    assert await written_rows(db) == before
    assert await db.fetchval("SELECT revision FROM claims WHERE id = $1", original.id) == 2


@pytest.mark.asyncio(loop_scope="session")
async def test_a_retraction_replay_returns_the_first_response(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """Replaying a RetractClaim returns the claim as the first call did and adds no revision."""
    jane, energy = actor(), topic()
    original = claim(jane.id, [energy.id])
    await stub.IndexClaims(
        index_request(original, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
    )
    retract = indexer_service_pb2.RetractClaimRequest(
        claim_id=original.id, reason="duplicate", request_id=random_id("req")
    )
    first = await stub.RetractClaim(retract, metadata=token, timeout=10)
    replayed = await stub.RetractClaim(retract, metadata=token, timeout=10)
    assert replayed == first
    assert await revision_counts(db, [original.id]) == {original.id: 2}


@pytest.mark.asyncio(loop_scope="session")
async def test_a_reused_request_id_with_another_payload_is_refused(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """A request id used for a different payload or method is FAILED_PRECONDITION, unwritten."""
    jane, energy = actor(), topic()
    request = index_request(claim(jane.id, [energy.id]), actors=(jane,), topics=(energy,))
    await stub.IndexClaims(request, metadata=token, timeout=10)

    other = index_request(claim(jane.id, [energy.id]), request_id=request.request_id)
    error = await failure(stub.IndexClaims(other, metadata=token, timeout=10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(error) == "REQUEST_ID_REUSED"
    assert await stored_claim_ids(db, [other.claims[0].id]) == set()

    retract = indexer_service_pb2.RetractClaimRequest(
        claim_id=request.claims[0].id, request_id=request.request_id
    )
    error = await failure(stub.RetractClaim(retract, metadata=token, timeout=10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(error) == "REQUEST_ID_REUSED"
    assert await revision_counts(db, [request.claims[0].id]) == {request.claims[0].id: 1}


# --- bad input -----------------------------------------------------------------------------------

FUTURE = timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(days=2))


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"text": ""}, "claims[1].text"),
        ({"text": "x" * 20_001}, "claims[1].text"),
        ({"stated_at": FUTURE}, "claims[1].statedAt"),
        ({"stated_at": None}, "claims[1].statedAt"),
        ({"language": "english"}, "claims[1].language"),
        ({"confidence": 1.5}, "claims[1].confidence"),
        ({"confidence": -0.5}, "claims[1].confidence"),
        ({"actor_id": ""}, "claims[1].actorId"),
        ({"topic_ids": []}, "claims[1].topicIds"),
        ({"id": "copy"}, "claims[1].id"),
        ({"request_id": ""}, "requestId"),
    ],
    ids=[
        "empty-text",
        "text-too-long",
        "future",
        "no-stated-at",
        "bad-language",
        "confidence-high",
        "confidence-low",
        "no-actor",
        "no-topic",
        "duplicate-id",
        "no-request-id",
    ],
)
@pytest.mark.asyncio(loop_scope="session")
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    stub: indexer_service_pb2_grpc.IndexerServiceStub,
    token: Metadata,
    db: asyncpg.Connection,
    bad: dict[str, Any],
    field: str,
) -> None:
    """One bad claim refuses the batch with INVALID_ARGUMENT naming it; none of it is stored."""
    jane, energy = actor(), topic()
    good = claim(jane.id, [energy.id])
    fields = {"actor_id": jane.id, "topic_ids": [energy.id]} | bad
    request_id = fields.pop("request_id", random_id("req"))
    if fields.get("id") == "copy":
        fields["id"] = good.id
    wrong = claim(**fields)
    request = index_request(good, wrong, actors=(jane,), topics=(energy,), request_id=request_id)

    error = await failure(stub.IndexClaims(request, metadata=token, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(error) == "INVALID_ARGUMENT"
    assert violated_fields(error) == [field]
    assert field in (error.details() or "")
    assert await stored_claim_ids(db, [good.id, wrong.id]) == set()
    assert await db.fetchval("SELECT count(*) FROM actors WHERE id = $1", jane.id) == 0
    assert await db.fetchval("SELECT count(*) FROM topics WHERE id = $1", energy.id) == 0


@pytest.mark.asyncio(loop_scope="session")
async def test_every_problem_of_a_batch_is_reported_at_once(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata
) -> None:
    """Problems in several claims come back together, each by its path, in one BadRequest."""
    jane, energy = actor(), topic()
    claims = [claim(jane.id, [energy.id]) for _ in range(5)]
    claims[1].text = ""
    claims[3].stated_at.CopyFrom(FUTURE)
    claims[3].confidence = 7
    claims[4].language = "x"
    error = await failure(
        stub.IndexClaims(
            index_request(*claims, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(violated_fields(error)) == [
        "claims[1].text",
        "claims[3].confidence",
        "claims[3].statedAt",
        "claims[4].language",
    ]


def _time(text: str) -> timestamp_pb2.Timestamp:
    moment = timestamp_pb2.Timestamp()
    moment.FromJsonString(text)
    return moment


def _with_source_time(original: resources_pb2.Claim, published_at: Any) -> resources_pb2.Claim:
    copy = edited(original)
    copy.source.published_at.CopyFrom(published_at)
    return copy


@pytest.mark.parametrize(
    ("statedAt", "publishedAt", "field"),
    [
        (_time("0001-01-01T00:00:00Z"), None, "claims[0].statedAt"),
        (_time("0001-01-01T23:59:59.999999999Z"), None, "claims[0].statedAt"),
        (
            timestamp_pb2.Timestamp(seconds=-62135596801),
            None,
            "claims[0].statedAt",
        ),
        (
            timestamp_pb2.Timestamp(seconds=0, nanos=-1),
            None,
            "claims[0].statedAt",
        ),
        (
            timestamp_pb2.Timestamp(seconds=0, nanos=1_000_000_000),
            None,
            "claims[0].statedAt",
        ),
        (None, _time("0001-01-01T00:00:00Z"), "claims[0].source.publishedAt"),
        (None, _time("9999-12-31T00:00:00Z"), "claims[0].source.publishedAt"),
        (None, _time("9999-12-31T23:59:59.999999999Z"), "claims[0].source.publishedAt"),
    ],
    ids=[
        "stated-year-1",
        "stated-last-of-first-day",
        "stated-before-protobuf",
        "stated-negative-nanos",
        "stated-nanos-overflow",
        "published-year-1",
        "published-end",
        "published-last-nanosecond",
    ],
)
@pytest.mark.asyncio(loop_scope="session")
async def test_times_outside_the_accepted_range_are_refused_naming_the_field(
    stub: indexer_service_pb2_grpc.IndexerServiceStub,
    token: Metadata,
    db: asyncpg.Connection,
    statedAt: Any,  # noqa: N803 - named as the field
    publishedAt: Any,  # noqa: N803 - named as the field
    field: str,
) -> None:
    """A time outside [0001-01-02T00:00:00Z, 9999-12-31T00:00:00Z), or with nanos outside
    0..999999999, is INVALID_ARGUMENT naming the field and stating the range; nothing is
    written (0001-01-01T00:00:00Z used to be stored as -infinity)."""
    jane, energy = actor(), topic()
    wrong = claim(jane.id, [energy.id])
    if statedAt is not None:
        wrong.stated_at.CopyFrom(statedAt)
    if publishedAt is not None:
        wrong = _with_source_time(wrong, publishedAt)

    error = await failure(
        stub.IndexClaims(
            index_request(wrong, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == [field]
    assert await stored_claim_ids(db, [wrong.id]) == set()


@pytest.mark.asyncio(loop_scope="session")
async def test_the_ends_of_the_accepted_range_are_stored_exactly(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """The first accepted microsecond and the last one are stored as those times, not as
    infinities, and the claim can be retracted (its day counted and uncounted)."""
    jane, energy = actor(), topic()
    first = claim(jane.id, [energy.id], stated_at=_time("0001-01-02T00:00:00Z"))
    first = _with_source_time(first, _time("9999-12-30T23:59:59.999999999Z"))
    await stub.IndexClaims(
        index_request(first, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
    )
    row = await db.fetchrow(
        "SELECT stated_at = '0001-01-02 00:00:00+00' AS first,"
        " source_published_at = '9999-12-30 23:59:59.999999+00' AS last"
        " FROM claims WHERE id = $1",
        first.id,
    )
    assert row is not None
    assert (row["first"], row["last"]) == (True, True)
    retract = indexer_service_pb2.RetractClaimRequest(
        claim_id=first.id, reason="placeholder date", request_id=random_id("req")
    )
    retracted = await stub.RetractClaim(retract, metadata=token, timeout=10)
    assert retracted.state == resources_pb2.CLAIM_STATE_RETRACTED
    assert retracted.stated_at == _time("0001-01-02T00:00:00Z")


_NUL = "bad\x00value"


@pytest.mark.parametrize(
    "field",
    [
        "actors[0].displayName",
        "actors[0].aliases[1]",
        "actors[0].description",
        "topics[0].displayName",
        "claims[0].text",
        "claims[0].source.title",
        "claims[0].source.publisher",
        "claims[0].source.url",
    ],
)
@pytest.mark.asyncio(loop_scope="session")
async def test_a_nul_character_in_any_string_is_refused_naming_the_field(
    stub: indexer_service_pb2_grpc.IndexerServiceStub,
    token: Metadata,
    db: asyncpg.Connection,
    services_env: dict[str, str],
    field: str,
) -> None:
    """A NUL, which PostgreSQL cannot store, is INVALID_ARGUMENT naming the field, counted as a
    rejected batch and not a failed one; nothing is written (it used to be INTERNAL)."""
    jane = actor(aliases=["JD", "Jane"], description="Senator")
    energy = topic()
    good = claim(jane.id, [energy.id])
    setters = {
        "actors[0].displayName": lambda: setattr(jane, "display_name", _NUL),
        "actors[0].aliases[1]": lambda: jane.aliases.__setitem__(1, _NUL),
        "actors[0].description": lambda: setattr(jane, "description", _NUL),
        "topics[0].displayName": lambda: setattr(energy, "display_name", _NUL),
        "claims[0].text": lambda: setattr(good, "text", _NUL),
        "claims[0].source.title": lambda: setattr(good.source, "title", _NUL),
        "claims[0].source.publisher": lambda: setattr(good.source, "publisher", _NUL),
        "claims[0].source.url": lambda: setattr(good.source, "url", "https://x.example/" + _NUL),
    }
    setters[field]()
    port = services_env["PANOPTIC_INDEXER_METRICS_PORT"]
    failed_before = value(scrape(port), "panoptic_indexer_batches_total", result="failed")

    error = await failure(
        stub.IndexClaims(
            index_request(good, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violated_fields(error)
    assert await stored_claim_ids(db, [good.id]) == set()
    assert value(scrape(port), "panoptic_indexer_batches_total", result="failed") == failed_before


@pytest.mark.asyncio(loop_scope="session")
async def test_a_nul_character_in_a_retraction_reason_is_refused_naming_it(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """RetractClaim with a NUL in its reason is INVALID_ARGUMENT naming `reason`; the claim
    stays active."""
    jane, energy = actor(), topic()
    standing = claim(jane.id, [energy.id])
    await stub.IndexClaims(
        index_request(standing, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
    )
    request = indexer_service_pb2.RetractClaimRequest(
        claim_id=standing.id, reason=_NUL, request_id=random_id("req")
    )

    error = await failure(stub.RetractClaim(request, metadata=token, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["reason"]
    assert await db.fetchval("SELECT state FROM claims WHERE id = $1", standing.id) == "ACTIVE"


@pytest.mark.asyncio(loop_scope="session")
async def test_field_errors_and_unknown_references_come_back_in_one_answer(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """A batch with bad fields and unknown actors or topics names all of them in one
    BadRequest; references are checked on the well-formed ids, and nothing is written."""
    jane, energy = actor(), topic()
    orphan = topic(parent_id=random_id("no-parent"))
    claims = [
        claim(jane.id, [energy.id], text=""),
        claim(random_id("nobody"), [energy.id]),
        claim(jane.id, [energy.id, random_id("nowhere"), "Not A Slug"]),
    ]

    error = await failure(
        stub.IndexClaims(
            index_request(*claims, actors=(jane,), topics=(energy, orphan)),
            metadata=token,
            timeout=10,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(violated_fields(error)) == [
        "claims[0].text",
        "claims[1].actorId",
        "claims[2].topicIds[1]",
        "claims[2].topicIds[2]",
        "topics[1].parentId",
    ]
    assert await stored_claim_ids(db, [c.id for c in claims]) == set()


@pytest.mark.asyncio(loop_scope="session")
async def test_unknown_actors_and_topics_refuse_the_whole_batch(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """Claims naming an unknown actor or topic refuse the batch; its valid parts are not written.

    The request id is not used up: the corrected batch with the same id then succeeds.
    """
    jane, energy = actor(), topic()
    valid = [claim(jane.id, [energy.id]) for _ in range(3)]
    nobody = claim(random_id("nobody"), [energy.id])
    nowhere = claim(jane.id, [energy.id, random_id("nowhere")])
    request = index_request(
        valid[0], nobody, valid[1], nowhere, valid[2], actors=(jane,), topics=(energy,)
    )

    error = await failure(stub.IndexClaims(request, metadata=token, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(error) == "UNKNOWN_REFERENCE"
    assert violated_fields(error) == ["claims[1].actorId", "claims[3].topicIds[1]"]
    ids = [c.id for c in request.claims]
    assert await stored_claim_ids(db, ids) == set()
    assert await db.fetchval("SELECT count(*) FROM actors WHERE id = $1", jane.id) == 0
    assert await db.fetchval("SELECT count(*) FROM topics WHERE id = $1", energy.id) == 0

    corrected = index_request(
        *valid, actors=(jane,), topics=(energy,), request_id=request.request_id
    )
    response = await stub.IndexClaims(corrected, metadata=token, timeout=10)
    assert response.created == 3


@pytest.mark.asyncio(loop_scope="session")
async def test_a_batch_above_the_configured_maximum_is_refused(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """More claims than PANOPTIC_INDEXER_MAX_BATCH_CLAIMS is INVALID_ARGUMENT, BATCH_TOO_LARGE."""
    jane, energy = actor(), topic()
    claims = [claim(jane.id, [energy.id]) for _ in range(MAX_BATCH_CLAIMS + 1)]
    request = index_request(*claims, actors=(jane,), topics=(energy,))
    error = await failure(stub.IndexClaims(request, metadata=token, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(error) == "BATCH_TOO_LARGE"
    assert violated_fields(error) == ["claims"]
    assert await stored_claim_ids(db, [c.id for c in claims]) == set()

    del request.claims[MAX_BATCH_CLAIMS:]
    response = await stub.IndexClaims(request, metadata=token, timeout=10)
    assert response.created == MAX_BATCH_CLAIMS


@pytest.mark.asyncio(loop_scope="session")
async def test_a_message_above_the_size_limit_is_refused_by_grpc(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """A request larger than PANOPTIC_MAX_MESSAGE_BYTES is RESOURCE_EXHAUSTED, and unwritten."""
    jane, energy = actor(), topic()
    claims = [claim(jane.id, [energy.id], text="y" * 8_000) for _ in range(10)]
    request = index_request(*claims, actors=(jane,), topics=(energy,))
    assert request.ByteSize() > MAX_MESSAGE_BYTES
    error = await failure(stub.IndexClaims(request, metadata=token, timeout=10))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await stored_claim_ids(db, [c.id for c in claims]) == set()


@pytest.mark.asyncio(loop_scope="session")
async def test_calls_without_the_token_are_refused_before_anything_runs(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, db: asyncpg.Connection
) -> None:
    """Every IndexerService method refuses a wrong token with UNAUTHENTICATED, writing nothing."""
    jane, energy = actor(), topic()
    request = index_request(claim(jane.id, [energy.id]), actors=(jane,), topics=(energy,))
    wrong = (("authorization", "Bearer not-the-token"),)
    calls = [
        stub.IndexClaims(request, metadata=wrong, timeout=10),
        stub.StreamIndexClaims(iter([request]), metadata=wrong, timeout=10),
        stub.RetractClaim(
            indexer_service_pb2.RetractClaimRequest(claim_id="c-1", request_id="r-1"),
            metadata=wrong,
            timeout=10,
        ),
    ]
    for call in calls:
        assert (await failure(call)).code() == grpc.StatusCode.UNAUTHENTICATED
    assert await stored_claim_ids(db, [request.claims[0].id]) == set()


# --- streams -------------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_a_stream_commits_each_batch_and_answers_with_totals(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """StreamIndexClaims adds up its batches; a replayed batch in a stream counts as before."""
    jane, energy = actor(), topic()
    first = index_request(
        *(claim(jane.id, [energy.id]) for _ in range(3)), actors=(jane,), topics=(energy,)
    )
    second = index_request(*(claim(jane.id, [energy.id]) for _ in range(2)))
    changed = claim(jane.id, [energy.id], first.claims[0].id, text="Reworded.")
    third = index_request(changed, second.claims[0])

    total = await stub.StreamIndexClaims(iter([first, second, third]), metadata=token, timeout=20)
    assert (total.created, total.updated, total.unchanged, total.batches) == (5, 1, 1, 3)
    assert (total.actors_upserted, total.topics_upserted) == (1, 1)
    assert list(total.claims) == []  # a stream gives counts only

    again = await stub.StreamIndexClaims(iter([second, third]), metadata=token, timeout=20)
    assert (again.created, again.updated, again.unchanged, again.batches) == (2, 1, 1, 2)
    ids = [c.id for request in (first, second) for c in request.claims]
    assert sum((await revision_counts(db, ids)).values()) == 6


@pytest.mark.asyncio(loop_scope="session")
async def test_a_bad_batch_ends_a_stream_after_the_batches_before_it(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """Batches before a bad one stay committed; the bad one and those after it are not."""
    jane, energy = actor(), topic()
    before = index_request(claim(jane.id, [energy.id]), actors=(jane,), topics=(energy,))
    bad = index_request(claim(jane.id, [energy.id]), claim(jane.id, [energy.id], language="??"))
    after = index_request(claim(jane.id, [energy.id]))

    error = await failure(
        stub.StreamIndexClaims(iter([before, bad, after]), metadata=token, timeout=20)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["claims[1].language"]
    ids = [c.id for request in (before, bad, after) for c in request.claims]
    assert await stored_claim_ids(db, ids) == {before.claims[0].id}


# --- concurrency ---------------------------------------------------------------------------------


@pytest.mark.parametrize("exists", [True, False], ids=["existing-claim", "new-claim"])
@pytest.mark.asyncio(loop_scope="session")
async def test_concurrent_writers_of_one_claim_lose_no_update(
    stub: indexer_service_pb2_grpc.IndexerServiceStub,
    token: Metadata,
    db: asyncpg.Connection,
    exists: bool,
) -> None:
    """Ten concurrent versions of one claim all become revisions, numbered without gaps."""
    jane, energy = actor(), topic()
    claim_id = random_id("contended")
    setup = index_request(
        *([claim(jane.id, [energy.id], claim_id, text="The original.")] if exists else []),
        actors=(jane,),
        topics=(energy,),
    )
    await stub.IndexClaims(setup, metadata=token, timeout=10)
    texts = [f"Version {number} of the statement." for number in range(10)]
    responses = await asyncio.gather(
        *(
            stub.IndexClaims(
                index_request(claim(jane.id, [energy.id], claim_id, text=text)),
                metadata=token,
                timeout=30,
            )
            for text in texts
        )
    )

    last = 11 if exists else 10
    first = 2 if exists else 1
    assert sorted(r.claims[0].revision for r in responses) == list(range(first, last + 1))
    assert sum(r.created for r in responses) == (0 if exists else 1)
    revisions = await history(db, claim_id)
    assert [r["revision"] for r in revisions] == list(range(1, last + 1))
    assert {r["text"] for r in revisions} == set(texts) | ({"The original."} if exists else set())
    for response, text in zip(responses, texts, strict=True):
        assert revisions[response.claims[0].revision - 1]["text"] == text
    current = await db.fetchrow("SELECT revision, text FROM claims WHERE id = $1", claim_id)
    assert tuple(current) == (last, revisions[-1]["text"])
    assert await claim_counts(db, "actors", [jane.id]) == {jane.id: 1}


# --- metrics -------------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_metrics_show_indexing_and_refusals(
    stub: indexer_service_pb2_grpc.IndexerServiceStub,
    token: Metadata,
    services_env: dict[str, str],
) -> None:
    """After traffic, /metrics shows claims by outcome, commits, refusals and gRPC codes."""
    jane, energy = actor(), topic()
    await stub.IndexClaims(
        index_request(claim(jane.id, [energy.id]), actors=(jane,), topics=(energy,)),
        metadata=token,
        timeout=10,
    )
    await failure(stub.IndexClaims(index_request(claim(jane.id, [])), metadata=token, timeout=10))

    samples = scrape(services_env["PANOPTIC_INDEXER_METRICS_PORT"])
    assert value(samples, "panoptic_indexer_claims_total", outcome="created") >= 1
    assert value(samples, "panoptic_indexer_batches_total", result="committed") >= 1
    assert value(samples, "panoptic_indexer_batch_seconds_count") >= 1
    assert abs(value(samples, "panoptic_indexer_last_commit_timestamp_seconds") - time.time()) < 60
    assert (
        value(samples, "panoptic_indexer_rejected_requests_total", reason="invalid_argument") >= 1
    )
    method = {"grpc_service": "panoptic.v1.IndexerService", "grpc_method": "IndexClaims"}
    assert value(samples, "grpc_server_started_total", **method, grpc_type="unary") >= 2
    assert value(samples, "grpc_server_handled_total", **method, grpc_code="OK") >= 1
    assert value(samples, "grpc_server_handled_total", **method, grpc_code="INVALID_ARGUMENT") >= 1
    assert value(samples, "grpc_server_handling_seconds_count", **method) >= 2


# --- mutual TLS ----------------------------------------------------------------------------------


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
    ip: str | None = None,
) -> x509.Certificate:
    """A certificate for `key`, signed by `issuer` or, for a CA, by itself."""
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _pem(item: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM)
    return item.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class ThrowawayPki:
    """A CA made for one test, with a server certificate for 127.0.0.1 and a client one."""

    def __init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _certificate("Panoptic test CA", self.ca_key, None)
        self.server_key = ec.generate_private_key(ec.SECP256R1())
        self.server = _certificate(
            "127.0.0.1",
            self.server_key,
            (self.ca, self.ca_key),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            ip="127.0.0.1",
        )
        self.client_key = ec.generate_private_key(ec.SECP256R1())
        self.client = _certificate(
            "pipeline",
            self.client_key,
            (self.ca, self.ca_key),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        )

    def credentials(self, *, with_client_certificate: bool = True) -> grpc.ChannelCredentials:
        """Client credentials trusting the CA, presenting the client certificate if asked."""
        if not with_client_certificate:
            return grpc.ssl_channel_credentials(root_certificates=_pem(self.ca))
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.ca),
            private_key=_pem(self.client_key),
            certificate_chain=_pem(self.client),
        )


@pytest.fixture(scope="module")
def pki() -> ThrowawayPki:
    """The module's throwaway CA and certificates."""
    return ThrowawayPki()


@pytest.fixture(scope="module")
def tls_indexer(
    database_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory, pki: ThrowawayPki
) -> Iterator[tuple[str, Metadata]]:
    """An indexer requiring client certificates from the throwaway CA: (address, token)."""
    directory: Path = tmp_path_factory.mktemp("tls")
    files = {
        "server.pem": _pem(pki.server),
        "server.key": _pem(pki.server_key),
        "ca.pem": _pem(pki.ca),
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    env = service_env(
        database_url.value,
        tmp_path_factory.mktemp("tls-data"),
        PANOPTIC_INDEXER_TLS_CERT=str(directory / "server.pem"),
        PANOPTIC_INDEXER_TLS_KEY=str(directory / "server.key"),
        PANOPTIC_INDEXER_TLS_CLIENT_CA=str(directory / "ca.pem"),
    )
    with running_indexer(env, directory / "indexer.log", pki.credentials()):
        yield address_of(env), bearer(env)


def test_mutual_tls_admits_a_client_with_a_certificate_from_the_ca(
    tls_indexer: tuple[str, Metadata], pki: ThrowawayPki
) -> None:
    """With mutual TLS on, a client presenting a certificate from the CA (and the token) indexes."""
    address, token = tls_indexer
    jane, energy = actor(), topic()
    request = index_request(claim(jane.id, [energy.id]), actors=(jane,), topics=(energy,))
    with grpc.secure_channel(address, pki.credentials()) as channel:
        response = indexer_service_pb2_grpc.IndexerServiceStub(channel).IndexClaims(
            request, metadata=token, timeout=10
        )
    assert response.created == 1


@pytest.mark.parametrize("client", ["no-certificate", "other-ca", "plaintext"])
def test_mutual_tls_refuses_clients_without_a_trusted_certificate(
    tls_indexer: tuple[str, Metadata], pki: ThrowawayPki, client: str
) -> None:
    """Without a client certificate from the CA, or without TLS, no call gets through."""
    address, token = tls_indexer
    if client == "no-certificate":
        channel = grpc.secure_channel(address, pki.credentials(with_client_certificate=False))
    elif client == "other-ca":
        stranger = ThrowawayPki()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_pem(pki.ca),
            private_key=_pem(stranger.client_key),
            certificate_chain=_pem(stranger.client),
        )
        channel = grpc.secure_channel(address, credentials)
    else:
        channel = grpc.insecure_channel(address)
    jane, energy = actor(), topic()
    request = index_request(claim(jane.id, [energy.id]), actors=(jane,), topics=(energy,))
    with channel, pytest.raises(grpc.RpcError) as refused:
        indexer_service_pb2_grpc.IndexerServiceStub(channel).IndexClaims(
            request, metadata=token, timeout=5
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio(loop_scope="session")
async def test_refused_batches_are_recorded_for_operators(
    stub: indexer_service_pb2_grpc.IndexerServiceStub, token: Metadata, db: asyncpg.Connection
) -> None:
    """Each refusal leaves one row in indexer_rejections: request id, reason, field count."""
    jane, energy = actor(), topic()
    bad = index_request(claim(jane.id, [energy.id], text="  "), actors=(jane,), topics=(energy,))
    unknown = index_request(claim(random_id("nobody"), [energy.id]), topics=(energy,))
    for request in (bad, unknown):
        await failure(stub.IndexClaims(request, metadata=token, timeout=10))
    rows = await db.fetch(
        "SELECT request_id, reason, field_count, summary FROM indexer_rejections"
        " WHERE request_id = ANY($1::text[]) ORDER BY id",
        [bad.request_id, unknown.request_id],
    )
    assert [(row["request_id"], row["reason"], row["field_count"]) for row in rows] == [
        (bad.request_id, "INVALID_ARGUMENT", 1),
        (unknown.request_id, "UNKNOWN_REFERENCE", 1),
    ]
    assert "claims[0].text" in rows[0]["summary"]
    assert "claims[0].actorId" in rows[1]["summary"]
