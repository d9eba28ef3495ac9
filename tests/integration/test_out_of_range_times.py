"""Claims stored with times outside the accepted range, as before migration 0007: every read
still answers, the indexer corrects and retracts them, and 0007 repairs what it may.

The rows go into a scratch database migrated to 0006 (no CHECK yet), written by the owner, and
are read and changed through real `panoptic retriever` and `panoptic indexer` processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import grpc
import pytest
import pytest_asyncio

from panoptic.core.db import DatabaseUrl
from panoptic.core.timestamps import timestamp
from panoptic.suite import migrate
from panoptic.v1 import (
    indexer_service_pb2,
    indexer_service_pb2_grpc,
    resources_pb2,
    retriever_service_pb2,
    retriever_service_pb2_grpc,
)
from tests.conftest import random_id
from tests.support.indexer import bearer, claim, index_request, running_indexer
from tests.support.processes import running_grpc_service, service_env

pytestmark = pytest.mark.slow

# Values a timestamptz column allows that the API does not: asyncpg reads the infinities as
# naive datetime.min and max, and fails on years it cannot represent.
STORED = {
    "minus-infinity": "-infinity",
    "infinity": "infinity",
    "year-294276": "294276-01-01 00:00:00+00",
    "before-christ": "4713-01-01 00:00:00+00 BC",
}
# Enough claims matching the search word that the search planner looks at the table's span.
MATCHING_CLAIMS = 2_500
PAGE = 1000


async def _store(connection: asyncpg.Connection, actor_id: str, topic_id: str) -> dict[str, str]:
    """The actor, topic, many ordinary claims and one claim per odd time, as the owner."""
    await connection.execute(
        "INSERT INTO actors (id, display_name, kind) VALUES ($1, 'Jane Doe', 'PERSON')", actor_id
    )
    await connection.execute(
        "INSERT INTO topics (id, display_name) VALUES ($1, 'Energy')", topic_id
    )
    claim_ids = {name: random_id("odd") for name in STORED}
    rows = [(f"c-{n}", "2024-05-01 12:00:00+00") for n in range(MATCHING_CLAIMS)]
    rows += [(claim_ids[name], moment) for name, moment in STORED.items()]
    await connection.execute(
        "INSERT INTO claims (id, actor_id, topic_ids, text, stated_at, source_published_at,"
        " language, confidence, state, revision, content_hash)"
        " SELECT u.id, $3, ARRAY[$4], 'Wind farms everywhere.', u.at::timestamptz,"
        " u.at::timestamptz, 'en', 0.5, 'ACTIVE', 1, '\\x01'"
        " FROM unnest($1::text[], $2::text[]) AS u(id, at)",
        [row[0] for row in rows],
        [row[1] for row in rows],
        actor_id,
        topic_id,
    )
    await connection.execute(
        "INSERT INTO claim_topics (claim_id, topic_id, actor_id, stated_at)"
        " SELECT id, $2, actor_id, stated_at FROM claims WHERE id = ANY($1::text[])",
        list(claim_ids.values()),
        topic_id,
    )
    await connection.execute(
        "INSERT INTO claim_revisions (claim_id, revision, change, actor_id, topic_ids, text,"
        " stated_at, source_url, source_title, source_publisher, source_published_at,"
        " language, confidence, state, request_id)"
        " SELECT id, 1, 'CREATED', actor_id, topic_ids, text, stated_at, '', '', '',"
        " source_published_at, language, confidence, state, 'r-odd'"
        " FROM claims WHERE id = ANY($1::text[])",
        list(claim_ids.values()),
    )
    # The counts the indexer keeps beside them, so that a retraction has one to take away.
    await connection.execute(
        "UPDATE actors SET claim_count = $2 WHERE id = $1", actor_id, len(rows)
    )
    await connection.execute(
        "UPDATE topics SET claim_count = $2 WHERE id = $1", topic_id, len(rows)
    )
    await connection.execute("ANALYZE claims")
    return claim_ids


class Stored:
    """The scratch database and what it holds."""

    def __init__(self, url: DatabaseUrl, actor_id: str, topic_id: str, claims: dict[str, str]):
        self.url, self.actor_id, self.topic_id, self.claims = url, actor_id, topic_id, claims


@pytest_asyncio.fixture(loop_scope="session")
async def stored(scratch_database_url: DatabaseUrl) -> AsyncIterator[Stored]:
    """A database at 0006 holding a claim at each odd time."""
    await migrate.upgrade_async(scratch_database_url, "0006")
    actor_id, topic_id = random_id("actor"), random_id("topic")
    connection = await asyncpg.connect(scratch_database_url.value)
    try:
        claims = await _store(connection, actor_id, topic_id)
    finally:
        await connection.close()
    yield Stored(scratch_database_url, actor_id, topic_id, claims)


@pytest.fixture
def retriever(
    stored: Stored, tmp_path: Path
) -> Iterator[retriever_service_pb2_grpc.RetrieverServiceStub]:
    """A retriever on the scratch database, and a client of it."""
    env = service_env(stored.url.value, tmp_path / "data", PANOPTIC_RETRIEVER_WORKERS="1")
    with (
        running_grpc_service("retriever", env, tmp_path / "retriever.log") as address,
        grpc.insecure_channel(address) as channel,
    ):
        yield retriever_service_pb2_grpc.RetrieverServiceStub(channel)


def test_every_read_answers_whatever_time_a_row_holds(
    stored: Stored, retriever: retriever_service_pb2_grpc.RetrieverServiceStub
) -> None:
    """GetClaim, ListClaims (all, by actor, by topic, both orders), SearchClaims over many
    matches, revisions and timelines all answer OK with such rows, showing -infinity and years
    before 1 as 0001-01-01T00:00:00Z and the others as 9999-12-31T23:59:59.999999Z."""
    api = retriever_service_pb2
    earliest, latest = (
        timestamp(datetime.min.replace(tzinfo=UTC)),
        timestamp(datetime.max.replace(tzinfo=UTC)),
    )
    for name, claim_id in stored.claims.items():
        found = retriever.GetClaim(api.GetClaimRequest(claim_id=claim_id), timeout=10)
        expected = earliest if name in ("minus-infinity", "before-christ") else latest
        assert found.stated_at == expected
        assert found.source.published_at == expected
        revisions = retriever.ListClaimRevisions(
            api.ListClaimRevisionsRequest(claim_id=claim_id), timeout=10
        )
        assert revisions.revisions[0].claim.stated_at == expected
    for order in ("stated_at desc", "stated_at asc"):
        for filters in ({}, {"actor_id": stored.actor_id}, {"topic_id": stored.topic_id}):
            listed = retriever.ListClaims(
                api.ListClaimsRequest(order_by=order, page_size=PAGE, **filters), timeout=10
            )
            if "topic_id" in filters:  # only the odd claims are on the topic
                assert {c.id for c in listed.claims} == set(stored.claims.values())
    searched = retriever.SearchClaims(api.SearchClaimsRequest(query="wind farms"), timeout=20)
    assert searched.results
    for interval in api.TimelineInterval.values()[1:]:
        timeline = retriever.GetActorTimeline(
            api.GetActorTimelineRequest(actor_id=stored.actor_id, interval=interval), timeout=20
        )
        assert list(timeline.buckets) == []  # the owner's rows were never counted by day


@pytest.mark.asyncio(loop_scope="session")
async def test_the_indexer_corrects_and_retracts_such_claims(
    stored: Stored, tmp_path: Path
) -> None:
    """IndexClaims with a valid statedAt updates each such claim (a new revision) and
    RetractClaim retracts one; neither fails on the stored time (both used to be INTERNAL)."""
    env = service_env(stored.url.value, tmp_path / "data")
    with running_indexer(env, tmp_path / "indexer.log"):
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{env['PANOPTIC_INDEXER_PORT']}"
        ) as channel:
            stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
            names = list(stored.claims)
            corrected = [
                claim(stored.actor_id, [stored.topic_id], stored.claims[name]) for name in names[:2]
            ]
            response = await stub.IndexClaims(
                index_request(*corrected), metadata=bearer(env), timeout=10
            )
            assert [c.revision for c in response.claims] == [2, 2]
            for name in names[2:]:
                retracted = await stub.RetractClaim(
                    indexer_service_pb2.RetractClaimRequest(
                        claim_id=stored.claims[name], reason="bad date", request_id=random_id("r")
                    ),
                    metadata=bearer(env),
                    timeout=10,
                )
                assert retracted.state == resources_pb2.CLAIM_STATE_RETRACTED
                assert retracted.revision == 2


@pytest.mark.asyncio(loop_scope="session")
async def test_0007_repairs_current_state_and_keeps_history(stored: Stored) -> None:
    """Migrating such a database to 0007 brings claims and links into the range, recounts the
    actor's days from its claims, validates their constraints, keeps the recorded history and
    leaves its constraint NOT VALID; new out-of-range rows are then refused."""
    await migrate.upgrade_async(stored.url)

    connection = await asyncpg.connect(stored.url.value)
    try:
        outside = await connection.fetchval(
            "SELECT count(*) FROM claims WHERE stated_at < '0001-01-02 00:00:00+00'"
            " OR stated_at >= '9999-12-31 00:00:00+00'"
            " OR source_published_at < '0001-01-02 00:00:00+00'"
            " OR source_published_at >= '9999-12-31 00:00:00+00'"
        )
        assert outside == 0
        days = await connection.fetch(
            "SELECT day, claim_count FROM actor_day_counts WHERE actor_id = $1 ORDER BY day",
            stored.actor_id,
        )
        assert [(row["day"], row["claim_count"]) for row in days] == [
            (date(1, 1, 2), 2),
            (date(2024, 5, 1), MATCHING_CLAIMS),
            (date(9999, 12, 30), 2),
        ]
        validated = dict(
            await connection.fetch(
                "SELECT conname, convalidated FROM pg_constraint"
                " WHERE conname LIKE 'ck_%_times_in_range'"
            )
        )
        assert validated == {
            "ck_claims_times_in_range": True,
            "ck_claim_topics_times_in_range": True,
            "ck_claim_revisions_times_in_range": False,
        }
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM claim_revisions WHERE stated_at = '-infinity'"
            )
            == 1
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "UPDATE claims SET stated_at = '-infinity' WHERE id = $1",
                stored.claims["infinity"],
            )
    finally:
        await connection.close()
