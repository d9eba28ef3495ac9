"""The RetrieverService end to end: a real `panoptic retriever` on loopback, over gRPC.

The module loads its own corpus through the indexer's handler, every id prefixed with a random
slug so that it can share the session's database; expectations are computed from that corpus.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.protobuf import json_format, timestamp_pb2

from panoptic.core.db import SERVICE_ROLES, DatabaseUrl, KeptConnection, is_database_unavailable
from panoptic.core.refusals import DatabaseUnavailable, DeadlineExceeded, NotFound
from panoptic.core.replicas import ReadRouter
from panoptic.core.rpc_status import details_of
from panoptic.model.claims import claim_message
from panoptic.reads import queries
from panoptic.reads.handler import RetrieverHandler
from panoptic.reads.paging import PageTokenCodec
from panoptic.suite.demo import generate_corpus
from panoptic.v1 import (
    indexer_service_pb2,
    resources_pb2,
    retriever_service_pb2,
    retriever_service_pb2_grpc,
)
from services.indexer.domain import RetractRequest
from services.indexer.handler import IndexingHandler
from services.indexer.servicer import fingerprint
from tests.conftest import random_id
from tests.support.corpus import batches_of, index_requests
from tests.support.processes import free_port
from tests.support.roles import retriever_pool_holder

pytestmark = pytest.mark.slow

api = retriever_service_pb2
Stub = retriever_service_pb2_grpc.RetrieverServiceStub
RETRACTED = "CLAIM_STATE_RETRACTED"
SEARCH_TEXTS = {
    "bridge-repairs": "The harbour bridge needs urgent repairs before winter comes.",
    "old-bridge": "Repairs to the old bridge over the harbour were finished early this spring.",
    "ferry": "Ferry tickets will be cheaper for pensioners next year.",
    "script": 'The harbour bridge is <b>safe</b> & sound, says <script>alert("Ann")</script>.',
}


# --- the corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """What the module indexed: the demo corpus with prefixed ids, and a few hand-made records."""

    prefix: str
    claims: list[dict[str, Any]]
    actors: list[dict[str, Any]]
    topics: list[dict[str, Any]]

    @property
    def john(self) -> str:
        """The hand-made actor "John Smith"."""
        return f"{self.prefix}-john-smith"

    @property
    def maggie(self) -> str:
        """The hand-made actor known by the alias "The Iron Maggie"."""
        return f"{self.prefix}-margaret-oyelaran"

    @property
    def harbours(self) -> str:
        """The hand-made topic of John Smith's claims."""
        return f"{self.prefix}-harbours"

    def claim_id(self, name: str) -> str:
        """The id of a hand-made claim."""
        return f"{self.prefix}-{name}"

    def ranked_actors(self) -> list[str]:
        """The corpus's actors, most claims first."""
        counts = Counter(claim["actorId"] for claim in self.claims)
        return [actor for actor, _ in counts.most_common()]

    def ranked_topics(self) -> list[str]:
        """The corpus's topics, most claims first."""
        counts = Counter(topic for claim in self.claims for topic in claim["topicIds"])
        return [topic for topic, _ in counts.most_common()]

    def expected(
        self,
        *,
        actor: str | None = None,
        topic: str | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
        language: str | None = None,
        retracted: bool = False,
        descending: bool = True,
    ) -> list[str]:
        """The ids ListClaims should return for these filters, in order."""
        chosen = [
            claim
            for claim in self.claims
            if (actor is None or claim["actorId"] == actor)
            and (topic is None or topic in claim["topicIds"])
            and (after is None or stated(claim) >= after)
            and (before is None or stated(claim) < before)
            and (language is None or claim["language"] == language)
            and (retracted or claim.get("state") != RETRACTED)
        ]
        chosen.sort(key=lambda claim: (stated(claim), claim["id"]), reverse=descending)
        return [claim["id"] for claim in chosen]


def stated(claim: dict[str, Any]) -> datetime:
    """A claim record's statement time."""
    return datetime.fromisoformat(claim["statedAt"])


def _prefixed(records: Sequence[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The demo corpus with every id made unique to this module; every 20th claim retracted."""
    out = []
    claims = 0
    for record in records:
        if "topic" in record:
            topic = dict(record["topic"], id=f"{prefix}-{record['topic']['id']}")
            if "parentId" in topic:
                topic["parentId"] = f"{prefix}-{topic['parentId']}"
            out.append({"topic": topic})
        elif "actor" in record:
            out.append({"actor": dict(record["actor"], id=f"{prefix}-{record['actor']['id']}")})
        else:
            claim = dict(
                record["claim"],
                id=f"{prefix}-{record['claim']['id']}",
                actorId=f"{prefix}-{record['claim']['actorId']}",
                topicIds=[f"{prefix}-{topic}" for topic in record["claim"]["topicIds"]],
            )
            if claims % 20 == 0:
                claim["state"] = RETRACTED
            claims += 1
            out.append({"claim": claim})
    return out


def _hand_made(prefix: str) -> list[dict[str, Any]]:
    """Two actors to find by fuzzy names and claims to find by words, one with HTML in it."""
    base = datetime(2024, 3, 1, 12, tzinfo=UTC)
    records: list[dict[str, Any]] = [
        {
            "actor": {
                "id": f"{prefix}-john-smith",
                "displayName": "John Smith",
                "aliases": ["Johnny Smith"],
                "kind": "ACTOR_KIND_PERSON",
            }
        },
        {
            "actor": {
                "id": f"{prefix}-margaret-oyelaran",
                "displayName": "Margaret Oyelaran",
                "aliases": ["The Iron Maggie"],
                "kind": "ACTOR_KIND_PERSON",
            }
        },
        {"topic": {"id": f"{prefix}-harbours", "displayName": "Harbours"}},
    ]
    texts = [*SEARCH_TEXTS.items(), ("closed-bridge", "The harbour bridge will close forever.")]
    for offset, (name, text) in enumerate(texts):
        claim: dict[str, Any] = {
            "id": f"{prefix}-{name}",
            "actorId": f"{prefix}-john-smith",
            "topicIds": [f"{prefix}-harbours"],
            "text": text,
            "statedAt": _rfc3339(base + timedelta(days=offset)),
            "language": "en",
            "confidence": 0.9,
            "state": RETRACTED if name == "closed-bridge" else "CLAIM_STATE_ACTIVE",
        }
        records.append({"claim": claim})
    return records


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _claims_of(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record["claim"] for record in records if "claim" in record]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def corpus(database_url: DatabaseUrl) -> Corpus:
    """A 1,200-claim demo corpus and the hand-made records, indexed through the indexer."""
    prefix = random_id("r")
    demo = _prefixed(list(generate_corpus(seed=11, claims=1200, actors=12, topics=16)), prefix)
    made = _hand_made(prefix)
    await index_requests(database_url, batches_of([*demo, *made], prefix=prefix))
    return Corpus(
        prefix=prefix,
        claims=_claims_of(demo),
        actors=[record["actor"] for record in demo if "actor" in record],
        topics=[record["topic"] for record in demo if "topic" in record],
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stub(retriever: str, corpus: Corpus) -> AsyncIterator[Stub]:
    """A client of the module's retriever, once the corpus is loaded."""
    async with grpc.aio.insecure_channel(retriever) as channel:
        yield Stub(channel)


@pytest_asyncio.fixture(loop_scope="session")
async def retriever_pool(
    database_url: DatabaseUrl, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[asyncpg.Pool]:
    """A pool opened exactly as the retriever opens its own: its role, read-only."""
    holder = retriever_pool_holder(database_url, monkeypatch)
    await holder.open()
    try:
        yield holder.pool
    finally:
        await holder.close()


# --- helpers ---------------------------------------------------------------------------------


async def _refused(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """The status code, ErrorInfo reason and BadRequest violations of a failed call."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    reason = ""
    violations: dict[str, str] = {}
    for detail in details_of(failure.value):
        if hasattr(detail, "reason"):
            reason = detail.reason
        else:
            violations.update({v.field: v.description for v in detail.field_violations})
    return failure.value.code(), reason, violations


def _time(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def _pages(
    method: Callable[..., Awaitable[Any]], request: Any, field: str, page_size: int
) -> list[list[Any]]:
    """Every page of a List or Search call, following next_page_token to the end."""
    request.page_size = page_size
    pages = []
    while True:
        response = await method(request, timeout=30)
        pages.append(list(getattr(response, field)))
        if not response.next_page_token:
            return pages
        assert len(pages) < 10_000, "paging does not end"
        request.page_token = response.next_page_token


def _ids(items: Sequence[Any]) -> list[str]:
    return [item.claim.id if hasattr(item, "claim") else item.id for item in items]


async def _index_claims(database_url: DatabaseUrl, claims: Sequence[dict[str, Any]]) -> None:
    """Indexes claims in one batch through the indexer's handler."""
    request = indexer_service_pb2.IndexClaimsRequest(request_id=random_id("index"))
    for claim in claims:
        request.claims.append(json_format.ParseDict(claim, resources_pb2.Claim()))
    await index_requests(database_url, [request])


async def _new_speaker(database_url: DatabaseUrl) -> tuple[str, str]:
    """A new actor and topic of a test's own, so that what it adds changes no other test."""
    actor_id, topic_id = random_id("speaker"), random_id("subject")
    request = indexer_service_pb2.IndexClaimsRequest(
        request_id=random_id("index"),
        actors=[resources_pb2.Actor(id=actor_id, display_name="Ada Example")],
        topics=[resources_pb2.Topic(id=topic_id, display_name="Lighthouses")],
    )
    await index_requests(database_url, [request])
    return actor_id, topic_id


def _claim(actor_id: str, topic_id: str, text: str, moment: datetime) -> dict[str, Any]:
    """A claim record of a test's own speaker."""
    return {
        "id": random_id("claim"),
        "actorId": actor_id,
        "topicIds": [topic_id],
        "text": text,
        "statedAt": _rfc3339(moment),
        "language": "en",
        "confidence": 0.75,
    }


async def _retract(database_url: DatabaseUrl, claim_id: str, reason: str) -> str:
    """Retracts a claim through the indexer's handler, as RetractClaim does; returns its id."""
    pool = await asyncpg.create_pool(
        database_url.with_user(SERVICE_ROLES["indexer"]).value, min_size=1, max_size=1
    )
    request = indexer_service_pb2.RetractClaimRequest(
        request_id=random_id("retract"), claim_id=claim_id, reason=reason
    )
    try:
        await IndexingHandler(lambda: pool, timedelta(days=1)).retract(
            RetractRequest(request.request_id, request.claim_id, request.reason),
            fingerprint(request),
            lambda claim: claim_message(claim).SerializeToString(),
        )
    finally:
        await pool.close()
    return request.request_id


# --- GetClaim --------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_get_claim_returns_the_claim_as_indexed(stub: Stub, corpus: Corpus) -> None:
    """GetClaim returns every field the pipeline sent, plus revision and record times."""
    sent = corpus.claims[1]
    claim = await stub.GetClaim(api.GetClaimRequest(claim_id=sent["id"]), timeout=10)
    shown = json_format.MessageToDict(claim)
    for name in ("id", "actorId", "topicIds", "text", "statedAt", "source", "language"):
        assert shown[name] == sent[name], name
    assert claim.confidence == pytest.approx(sent["confidence"])
    assert claim.state == resources_pb2.CLAIM_STATE_ACTIVE
    assert claim.revision == 1
    assert claim.create_time.seconds > 0
    assert claim.update_time == claim.create_time


@pytest.mark.asyncio(loop_scope="session")
async def test_get_claim_returns_retracted_claims_too(stub: Stub, corpus: Corpus) -> None:
    """A retracted claim stays readable by id."""
    claim = await stub.GetClaim(api.GetClaimRequest(claim_id=corpus.claims[0]["id"]), timeout=10)
    assert claim.state == resources_pb2.CLAIM_STATE_RETRACTED


@pytest.mark.asyncio(loop_scope="session")
async def test_get_claim_of_an_unknown_id_is_not_found(stub: Stub) -> None:
    """An unknown claim id is NOT_FOUND with reason CLAIM_NOT_FOUND."""
    code, reason, _ = await _refused(stub.GetClaim(api.GetClaimRequest(claim_id=random_id("no"))))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CLAIM_NOT_FOUND")


@pytest.mark.asyncio(loop_scope="session")
async def test_concurrent_get_claims_share_queries_and_each_get_their_own_claim(
    stub: Stub, corpus: Corpus, retriever_pool: asyncpg.Pool
) -> None:
    """Calls in flight together are served by fewer queries than calls, and each caller gets
    its own claim, or NOT_FOUND, repeated and missing ids mixed in."""
    known = [claim["id"] for claim in corpus.claims[:150]]
    missing = [random_id("missing") for _ in range(10)]
    wanted = known + known[:20] + missing
    random.Random(7).shuffle(wanted)  # noqa: S311 - an order for a test, not a secret
    checkouts = 0

    def counted_pool() -> asyncpg.Pool:
        nonlocal checkouts
        checkouts += 1
        return retriever_pool

    router = ReadRouter.primary_only(counted_pool)
    handler = RetrieverHandler(lambda: router, PageTokenCodec(b"k" * 32))
    found = await asyncio.gather(
        *(handler.get_claim(claim_id, 10) for claim_id in wanted), return_exceptions=True
    )
    for claim_id, result in zip(wanted, found, strict=True):
        if claim_id in missing:
            assert isinstance(result, NotFound), claim_id
        else:
            assert not isinstance(result, BaseException), claim_id
            assert result.id == claim_id
    assert 1 <= checkouts < len(wanted) / 10

    answers = await asyncio.gather(
        *(stub.GetClaim(api.GetClaimRequest(claim_id=claim_id), timeout=10) for claim_id in known)
    )
    assert [answer.id for answer in answers] == known


async def _until_free(pool: asyncpg.Pool) -> None:
    """Waits (10 s at the most) until the pool's one connection is back in it."""
    for _ in range(200):
        try:
            async with pool.acquire(timeout=0.05):
                return
        except TimeoutError:
            continue
    raise AssertionError("the connection did not come back to the pool within 10 s")


@pytest.mark.asyncio(loop_scope="session")
async def test_a_kept_connection_serves_a_run_then_goes_back_and_is_replaced_when_broken(
    database_url: DatabaseUrl,
) -> None:
    """GetClaim's kept connection: one backend for consecutive statements, back in the pool
    once idle, given back at once after a failure, and a fresh one after its backend died."""
    pool = await asyncpg.create_pool(
        database_url.with_user(SERVICE_ROLES["retriever"]).value, min_size=0, max_size=1
    )
    # Idle for an hour at the most: what gives this one back within the test is a failure,
    # never its idle timer, however slowly the test runs.
    kept = KeptConnection(lambda: pool, idle_seconds=3600)

    async def backend() -> int:
        return int((await kept.fetch("SELECT pg_backend_pid()", timeout=5))[0][0])

    try:
        pids = [await backend() for _ in range(3)]
        assert len(set(pids)) == 1
        with pytest.raises(TimeoutError):  # kept between statements
            async with pool.acquire(timeout=0.05):
                pass

        owner = await asyncpg.connect(database_url.value)
        try:
            assert await owner.fetchval("SELECT pg_terminate_backend($1)", pids[0])
        finally:
            await owner.close()
        # The statement after the backend died fails with what says the database is
        # unavailable (which exception depends on when the client learns of it); the next works.
        with pytest.raises(Exception) as lost:  # noqa: PT011 - the predicate below decides
            await backend()
        assert is_database_unavailable(lost.value)
        assert await backend() != pids[0]

        with pytest.raises(asyncpg.DivisionByZeroError):
            await kept.fetch("SELECT 1 / $1::int", 0, timeout=5)
        await _until_free(pool)  # given back at once after a failure

        briefly_kept = KeptConnection(lambda: pool, idle_seconds=0.05)
        await briefly_kept.fetch("SELECT 1", timeout=5)
        await _until_free(pool)  # given back once idle
    finally:
        pool.terminate()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_kept_connection_prepares_its_statement_again_after_a_schema_change(
    database_url: DatabaseUrl,
) -> None:
    """A statement the kept connection prepared keeps working, with the new columns, after a
    migration changed the table under it."""
    table = random_id("kept_probe").replace("-", "_")
    owner = await asyncpg.connect(database_url.value)
    pool = await asyncpg.create_pool(
        database_url.with_user(SERVICE_ROLES["retriever"]).value, min_size=0, max_size=1
    )
    kept = KeptConnection(lambda: pool)
    try:
        await owner.execute(f"CREATE TABLE {table} (a int)")
        await owner.execute(f"INSERT INTO {table} VALUES (1)")
        await owner.execute(f"GRANT SELECT ON {table} TO {SERVICE_ROLES['retriever']}")
        query = f"SELECT * FROM {table} WHERE a = $1"
        assert [tuple(row) for row in await kept.fetch(query, 1, timeout=5)] == [(1,)]

        await owner.execute(f"ALTER TABLE {table} ADD COLUMN b text DEFAULT 'new'")

        assert [tuple(row) for row in await kept.fetch(query, 1, timeout=5)] == [(1, "new")]
    finally:
        await owner.execute(f"DROP TABLE IF EXISTS {table}")
        await owner.close()
        # Closing waits for the kept connection, which goes back once idle (0.1 s).
        await asyncio.wait_for(pool.close(), 5)


@pytest.mark.parametrize("claim_id", ["", "has space", "x" * 129, "slash/inside"])
@pytest.mark.asyncio(loop_scope="session")
async def test_get_claim_with_a_malformed_id_is_invalid(stub: Stub, claim_id: str) -> None:
    """A missing or malformed claim id is INVALID_ARGUMENT naming claimId."""
    code, reason, violations = await _refused(stub.GetClaim(api.GetClaimRequest(claim_id=claim_id)))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert list(violations) == ["claimId"]


_YEAR_ONE = timestamp_pb2.Timestamp(seconds=-62135596800)
_END = timestamp_pb2.Timestamp(seconds=253402214400)  # 9999-12-31T00:00:00Z
_BAD_NANOS = timestamp_pb2.Timestamp(seconds=0, nanos=-1)
_NUL = "en\x00"


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("ListClaims", api.ListClaimsRequest(stated_after=_YEAR_ONE), "statedAfter"),
        ("ListClaims", api.ListClaimsRequest(stated_before=_END), "statedBefore"),
        ("SearchClaims", api.SearchClaimsRequest(query="w", stated_after=_YEAR_ONE), "statedAfter"),
        ("SearchClaims", api.SearchClaimsRequest(query="w", stated_before=_END), "statedBefore"),
        (
            "GetActorTimeline",
            api.GetActorTimelineRequest(
                actor_id="jane", interval=api.TIMELINE_INTERVAL_DAY, stated_after=_YEAR_ONE
            ),
            "statedAfter",
        ),
        (
            "GetActorTimeline",
            api.GetActorTimelineRequest(
                actor_id="jane", interval=api.TIMELINE_INTERVAL_DAY, stated_before=_BAD_NANOS
            ),
            "statedBefore",
        ),
        ("ListClaims", api.ListClaimsRequest(language=_NUL), "language"),
        ("ListClaims", api.ListClaimsRequest(actor_id=_NUL), "actorId"),
        ("ListClaims", api.ListClaimsRequest(order_by=_NUL), "orderBy"),
        ("SearchClaims", api.SearchClaimsRequest(query=_NUL), "query"),
        ("ListActors", api.ListActorsRequest(query=_NUL), "query"),
        ("GetClaim", api.GetClaimRequest(claim_id=_NUL), "claimId"),
        ("ListTopics", api.ListTopicsRequest(parent_id=_NUL), "parentId"),
    ],
)
@pytest.mark.asyncio(loop_scope="session")
async def test_out_of_range_times_and_nul_characters_are_refused_naming_the_field(
    stub: Stub, method: str, request_: Any, field: str
) -> None:
    """A filter time outside [0001-01-02T00:00:00Z, 9999-12-31T00:00:00Z) or with bad nanos,
    and a NUL in any string parameter, is INVALID_ARGUMENT naming the field."""
    code, _, violations = await _refused(getattr(stub, method)(request_, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations


# --- ListClaims: filters and order -----------------------------------------------------------


async def _list(stub: Stub, **fields: Any) -> list[str]:
    pages = await _pages(stub.ListClaims, api.ListClaimsRequest(**fields), "claims", 1000)
    return [claim.id for page in pages for claim in page]


@pytest.mark.asyncio(loop_scope="session")
async def test_list_claims_by_actor(stub: Stub, corpus: Corpus) -> None:
    """actorId keeps that actor's active claims, newest statement first."""
    for actor in corpus.ranked_actors()[:3]:
        assert await _list(stub, actor_id=actor) == corpus.expected(actor=actor)


@pytest.mark.asyncio(loop_scope="session")
async def test_list_claims_by_topic(stub: Stub, corpus: Corpus) -> None:
    """topicId keeps the active claims on that topic, newest statement first."""
    for topic in corpus.ranked_topics()[:3]:
        assert await _list(stub, topic_id=topic) == corpus.expected(topic=topic)


@pytest.mark.asyncio(loop_scope="session")
async def test_list_claims_by_actor_and_topic_on_either_plan(stub: Stub, corpus: Corpus) -> None:
    """actorId with topicId gives the same answer whichever of the two drives the scan."""
    actors, topics = corpus.ranked_actors(), corpus.ranked_topics()
    pairs = [(actors[0], topics[-1]), (actors[-1], topics[0]), (actors[0], topics[0])]
    for actor, topic in pairs:
        expected = corpus.expected(actor=actor, topic=topic)
        assert await _list(stub, actor_id=actor, topic_id=topic) == expected
        ascending = corpus.expected(actor=actor, topic=topic, descending=False)
        listed = await _list(stub, actor_id=actor, topic_id=topic, order_by="stated_at asc")
        assert listed == ascending


@pytest.mark.asyncio(loop_scope="session")
async def test_list_claims_by_statement_time(stub: Stub, corpus: Corpus) -> None:
    """statedAfter is inclusive, statedBefore exclusive, each alone and together."""
    actor = corpus.ranked_actors()[0]
    moments = sorted(stated(claim) for claim in corpus.claims if claim["actorId"] == actor)
    after, before = moments[len(moments) // 4], moments[len(moments) // 2]
    assert await _list(stub, actor_id=actor, stated_after=_time(after)) == corpus.expected(
        actor=actor, after=after
    )
    assert await _list(stub, actor_id=actor, stated_before=_time(before)) == corpus.expected(
        actor=actor, before=before
    )
    both = await _list(stub, actor_id=actor, stated_after=_time(after), stated_before=_time(before))
    assert both == corpus.expected(actor=actor, after=after, before=before)
    assert after.isoformat() in {stated(c).isoformat() for c in corpus.claims if c["id"] in both}


@pytest.mark.asyncio(loop_scope="session")
async def test_list_claims_by_language(stub: Stub, corpus: Corpus) -> None:
    """language keeps claims in that language; the tag is matched in its canonical spelling."""
    topic = corpus.ranked_topics()[0]
    assert await _list(stub, topic_id=topic, language="fr") == corpus.expected(
        topic=topic, language="fr"
    )
    expected = corpus.expected(topic=topic, language="pt-BR")
    assert expected
    assert await _list(stub, topic_id=topic, language="pt-br") == expected


@pytest.mark.asyncio(loop_scope="session")
async def test_list_claims_shows_retracted_claims_only_when_asked(
    stub: Stub, corpus: Corpus
) -> None:
    """Retracted claims are left out by default and included with showRetracted."""
    actor = corpus.ranked_actors()[0]
    active = await _list(stub, actor_id=actor)
    everything = await _list(stub, actor_id=actor, show_retracted=True)
    assert everything == corpus.expected(actor=actor, retracted=True)
    assert set(active) < set(everything)


@pytest.mark.asyncio(loop_scope="session")
async def test_list_claims_orders_by_statement_time_either_way(stub: Stub, corpus: Corpus) -> None:
    """`stated_at desc` is the default; `stated_at asc` (any case or spacing) reverses it."""
    topic = corpus.ranked_topics()[1]
    newest_first = await _list(stub, topic_id=topic)
    assert await _list(stub, topic_id=topic, order_by="stated_at desc") == newest_first
    oldest_first = await _list(stub, topic_id=topic, order_by="  STATED_AT   asc ")
    assert (
        oldest_first
        == list(reversed(newest_first))
        == corpus.expected(topic=topic, descending=False)
    )


# --- ListClaims: paging ----------------------------------------------------------------------


@pytest.mark.parametrize("order_by", ["", "stated_at asc"])
@pytest.mark.asyncio(loop_scope="session")
async def test_paging_through_everything_equals_one_read(
    stub: Stub, corpus: Corpus, order_by: str
) -> None:
    """Small pages, concatenated, are exactly one big page: no duplicates, no gaps."""
    for filters in (
        {"actor_id": corpus.ranked_actors()[0]},
        {"topic_id": corpus.ranked_topics()[0]},
    ):
        request = api.ListClaimsRequest(order_by=order_by, **filters)
        pages = await _pages(stub.ListClaims, request, "claims", 7)
        single = await _pages(
            stub.ListClaims, api.ListClaimsRequest(order_by=order_by, **filters), "claims", 1000
        )
        assert len(single) == 1
        assert all(len(page) == 7 for page in pages[:-1])
        assert 1 <= len(pages[-1]) <= 7
        assert _ids([claim for page in pages for claim in page]) == _ids(single[0])


@pytest.mark.asyncio(loop_scope="session")
async def test_claims_inserted_between_pages_cause_no_duplicate_or_gap(
    stub: Stub, database_url: DatabaseUrl
) -> None:
    """Claims indexed mid-paging appear once if after the cursor, never twice; none go missing."""
    actor_id, topic_id = await _new_speaker(database_url)
    base = datetime(2023, 6, 1, tzinfo=UTC)
    claims = [
        _claim(actor_id, topic_id, f"Claim number {n}.", base + timedelta(hours=n))
        for n in range(25)
    ]
    await _index_claims(database_url, claims)
    before = [claim["id"] for claim in reversed(claims)]
    for round_, filters in enumerate(({"topic_id": topic_id}, {"actor_id": actor_id})):
        first = await stub.ListClaims(api.ListClaimsRequest(page_size=10, **filters), timeout=10)
        assert _ids(first.claims) == before[:10]
        later, earlier = base + timedelta(days=30 + round_), base - timedelta(days=30 + round_)
        newest = _claim(actor_id, topic_id, "Newer than all.", later)
        oldest = _claim(actor_id, topic_id, "Older than all.", earlier)
        await _index_claims(database_url, [newest, oldest])

        request = api.ListClaimsRequest(page_token=first.next_page_token, **filters)
        rest = await _pages(stub.ListClaims, request, "claims", 10)
        seen = _ids(first.claims) + _ids([claim for page in rest for claim in page])
        assert len(seen) == len(set(seen))
        assert seen == [*before, oldest["id"]]
        before = [newest["id"], *before, oldest["id"]]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_page_token_with_other_filters_is_refused(stub: Stub, corpus: Corpus) -> None:
    """A token is bound to its filters: another actor, topic or order is INVALID_PAGE_TOKEN."""
    actor = corpus.ranked_actors()[0]
    first = await stub.ListClaims(api.ListClaimsRequest(actor_id=actor, page_size=2), timeout=10)
    token = first.next_page_token
    assert token
    for changed in (
        {"actor_id": corpus.ranked_actors()[1]},
        {"actor_id": actor, "topic_id": corpus.ranked_topics()[0]},
        {"actor_id": actor, "order_by": "stated_at asc"},
        {"actor_id": actor, "show_retracted": True},
    ):
        code, reason, violations = await _refused(
            stub.ListClaims(api.ListClaimsRequest(page_token=token, **changed))
        )
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
        assert list(violations) == ["pageToken"]
    code, reason, _ = await _refused(
        stub.SearchClaims(
            api.SearchClaimsRequest(query="percent", actor_id=actor, page_token=token)
        )
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")


@pytest.mark.asyncio(loop_scope="session")
async def test_an_edited_page_token_is_refused(stub: Stub, corpus: Corpus) -> None:
    """Changing any character of a token makes it INVALID_PAGE_TOKEN."""
    actor = corpus.ranked_actors()[0]
    first = await stub.ListClaims(api.ListClaimsRequest(actor_id=actor, page_size=2), timeout=10)
    token = first.next_page_token
    for position in (0, len(token) // 2, len(token) - 1):
        replacement = "A" if token[position] != "A" else "B"
        edited = token[:position] + replacement + token[position + 1 :]
        code, reason, _ = await _refused(
            stub.ListClaims(api.ListClaimsRequest(actor_id=actor, page_token=edited))
        )
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")
    code, reason, _ = await _refused(
        stub.ListClaims(api.ListClaimsRequest(actor_id=actor, page_token="garbage"))
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")


@pytest.mark.asyncio(loop_scope="session")
async def test_page_size_defaults_to_50_and_is_clamped_to_1000(stub: Stub, corpus: Corpus) -> None:
    """pageSize 0 returns 50 claims, a pageSize above 1,000 returns 1,000, both with a token."""
    default = await stub.ListClaims(api.ListClaimsRequest(), timeout=10)
    assert len(default.claims) == 50
    assert default.next_page_token
    clamped = await stub.ListClaims(api.ListClaimsRequest(page_size=5000), timeout=30)
    assert len(clamped.claims) == 1000
    assert clamped.next_page_token


@pytest.mark.asyncio(loop_scope="session")
async def test_a_negative_page_size_is_invalid(stub: Stub) -> None:
    """A negative pageSize is INVALID_ARGUMENT naming pageSize, on every List and Search."""
    calls = [
        stub.ListClaims(api.ListClaimsRequest(page_size=-1)),
        stub.SearchClaims(api.SearchClaimsRequest(query="tax", page_size=-1)),
        stub.ListClaimRevisions(api.ListClaimRevisionsRequest(claim_id="c-1", page_size=-1)),
        stub.ListActors(api.ListActorsRequest(page_size=-1)),
        stub.ListTopics(api.ListTopicsRequest(page_size=-1)),
    ]
    for call in calls:
        code, _, violations = await _refused(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert list(violations) == ["pageSize"]


# --- ListClaims: bad filters -----------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_bad_filters_are_named_in_the_violations(stub: Stub) -> None:
    """Every bad filter is reported at once, by its JSON name."""
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    request = api.ListClaimsRequest(
        actor_id="Not A Slug",
        topic_id="-bad-",
        stated_after=_time(moment),
        stated_before=_time(moment),
        language="english please",
        order_by="text desc",
    )
    code, reason, violations = await _refused(stub.ListClaims(request))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert set(violations) == {"actorId", "topicId", "statedAfter", "language", "orderBy"}
    assert "statedBefore" in violations["statedAfter"]


@pytest.mark.parametrize("order_by", ["stated_at", "stated_at desc, id", "statedAt asc", "id"])
@pytest.mark.asyncio(loop_scope="session")
async def test_only_the_two_documented_orders_are_accepted(stub: Stub, order_by: str) -> None:
    """orderBy is `stated_at desc` or `stated_at asc`; anything else names orderBy."""
    code, _, violations = await _refused(stub.ListClaims(api.ListClaimsRequest(order_by=order_by)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations) == ["orderBy"]


@pytest.mark.asyncio(loop_scope="session")
async def test_list_claims_of_an_unknown_actor_or_topic_is_not_found(stub: Stub) -> None:
    """Filtering by an actor or topic that does not exist is NOT_FOUND, not an empty list."""
    code, reason, _ = await _refused(
        stub.ListClaims(api.ListClaimsRequest(actor_id=random_id("a")))
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ACTOR_NOT_FOUND")
    code, reason, _ = await _refused(
        stub.ListClaims(api.ListClaimsRequest(topic_id=random_id("t")))
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "TOPIC_NOT_FOUND")


# --- SearchClaims ----------------------------------------------------------------------------


async def _search(stub: Stub, corpus: Corpus, query: str, **fields: Any) -> list[str]:
    request = api.SearchClaimsRequest(query=query, actor_id=corpus.john, **fields)
    pages = await _pages(stub.SearchClaims, request, "results", 1000)
    return sorted(result.claim.id for page in pages for result in page)


@pytest.mark.asyncio(loop_scope="session")
async def test_search_finds_words_phrases_exclusions_and_alternatives(
    stub: Stub, corpus: Corpus
) -> None:
    """Web-search syntax: words (stemmed), "quoted phrases", -exclusions and `or`."""
    ids = corpus.claim_id
    assert await _search(stub, corpus, "harbour") == sorted(
        [ids("bridge-repairs"), ids("old-bridge"), ids("script")]
    )
    assert await _search(stub, corpus, "repair") == sorted(
        [ids("bridge-repairs"), ids("old-bridge")]
    )
    assert await _search(stub, corpus, '"harbour bridge"') == sorted(
        [ids("bridge-repairs"), ids("script")]
    )
    assert await _search(stub, corpus, "bridge -repairs") == [ids("script")]
    assert await _search(stub, corpus, "pensioners or winter") == sorted(
        [ids("bridge-repairs"), ids("ferry")]
    )
    assert await _search(stub, corpus, "zeppelin") == []


@pytest.mark.asyncio(loop_scope="session")
async def test_search_applies_the_list_filters(stub: Stub, corpus: Corpus) -> None:
    """Search honours showRetracted, topicId, statement time and language like ListClaims."""
    ids = corpus.claim_id
    found = await _search(stub, corpus, '"harbour bridge"', show_retracted=True)
    assert found == sorted([ids("bridge-repairs"), ids("script"), ids("closed-bridge")])
    assert await _search(stub, corpus, "harbour", topic_id=corpus.harbours) == sorted(
        [ids("bridge-repairs"), ids("old-bridge"), ids("script")]
    )
    after = _time(datetime(2024, 3, 2, tzinfo=UTC))
    assert await _search(stub, corpus, "harbour", stated_after=after) == sorted(
        [ids("old-bridge"), ids("script")]
    )
    assert await _search(stub, corpus, "harbour", language="fr") == []
    topic = corpus.ranked_topics()[0]
    request = api.SearchClaimsRequest(
        query="percent", topic_id=topic, language="en", page_size=1000
    )
    response = await stub.SearchClaims(request, timeout=30)
    matching = {claim["id"] for claim in corpus.claims if "percent" in claim["text"].lower()}
    expected = set(corpus.expected(topic=topic, language="en")) & matching
    assert {result.claim.id for result in response.results} == expected


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("percent", queries.ClaimFilters()),
        ("people", queries.ClaimFilters()),
        ("government or health", queries.ClaimFilters()),
        (
            "percent",
            queries.ClaimFilters(
                stated_after=datetime(2019, 6, 1, tzinfo=UTC),
                stated_before=datetime(2023, 3, 1, tzinfo=UTC),
            ),
        ),
        ("people", queries.ClaimFilters(language="en", show_retracted=True)),
    ],
)
@pytest.mark.asyncio(loop_scope="session")
async def test_every_way_of_finding_candidates_finds_the_same_newest_matches(
    retriever_pool: asyncpg.Pool,
    corpus: Corpus,
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    filters: queries.ClaimFilters,
) -> None:
    """Whichever way the first page finds the newest matches (walking, gathering, gathering
    month by month or year by year; chosen from estimates), it ranks the same candidates: every
    way gives the same page and floor, within the filters' statement-time range."""
    pages = []
    findings = [
        finding for finding in queries._Finding if finding is not queries._Finding.AFTER_FLOOR
    ]
    for finding in findings:

        async def chosen(*_: object, finding: queries._Finding = finding) -> queries._Finding:
            return finding

        monkeypatch.setattr(queries, "_cheapest_finding", chosen)
        async with queries.reading(retriever_pool, 10, custom_plans=True) as connection:
            page = await queries.search_claims(
                connection, query, filters, window=50, floor=None, after=None, limit=20
            )
        pages.append(([hit.claim.id for hit in page.hits], page.floor))
    assert all(page == pages[0] for page in pages[1:])
    assert len(pages) == len(findings)
    assert len(pages[0][0]) == 20
    floor = pages[0][1]
    assert floor is not None
    if filters.stated_after is not None:
        assert floor.stated_at >= filters.stated_after


@pytest.mark.asyncio(loop_scope="session")
async def test_search_ranks_by_relevance(stub: Stub, corpus: Corpus) -> None:
    """Results come most relevant first: scores never increase down the list."""
    topic = corpus.ranked_topics()[0]
    request = api.SearchClaimsRequest(query="percent or tax", topic_id=topic, page_size=1000)
    response = await stub.SearchClaims(request, timeout=30)
    scores = [result.score for result in response.results]
    assert len(scores) > 10
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1] > 0


@pytest.mark.asyncio(loop_scope="session")
async def test_highlight_marks_matches_and_escapes_html(stub: Stub, corpus: Corpus) -> None:
    """The highlight wraps matched words in <mark> and escapes the claim's own HTML."""
    request = api.SearchClaimsRequest(query="harbour bridge", actor_id=corpus.john)
    response = await stub.SearchClaims(request, timeout=10)
    highlights = {result.claim.id: result.highlight for result in response.results}
    script = highlights[corpus.claim_id("script")]
    assert "<mark>harbour</mark>" in script
    assert "<mark>bridge</mark>" in script
    assert "&lt;script&gt;" in script
    assert "&lt;b&gt;" in script
    assert "&amp;" in script
    without_marks = re.sub(r"</?mark>", "", script)
    assert "<" not in without_marks
    assert ">" not in without_marks
    assert html.unescape(without_marks) in SEARCH_TEXTS["script"]
    for highlight in highlights.values():
        assert "<mark>" in highlight


@pytest.mark.asyncio(loop_scope="session")
async def test_search_pages_are_complete_and_stable(
    stub: Stub, corpus: Corpus, database_url: DatabaseUrl
) -> None:
    """Paged search equals one read; a claim indexed mid-paging causes no duplicate or gap."""
    topic = corpus.ranked_topics()[0]
    query = "percent or tax"
    single = await _pages(
        stub.SearchClaims, api.SearchClaimsRequest(query=query, topic_id=topic), "results", 1000
    )
    paged = await _pages(
        stub.SearchClaims, api.SearchClaimsRequest(query=query, topic_id=topic), "results", 9
    )
    assert _ids([hit for page in paged for hit in page]) == _ids(single[0])

    actor_id, topic_id = await _new_speaker(database_url)
    base = datetime(2022, 1, 1, tzinfo=UTC)
    claims = [
        _claim(
            actor_id, topic_id, "lighthouse " * n + "keepers are back.", base + timedelta(days=n)
        )
        for n in range(1, 7)
    ]
    await _index_claims(database_url, claims)
    request = api.SearchClaimsRequest(query="lighthouse", actor_id=actor_id, page_size=2)
    first = await stub.SearchClaims(request, timeout=10)
    newcomer = _claim(
        actor_id, topic_id, "Lighthouse lighthouse lighthouse lighthouse lighthouse!", base
    )
    await _index_claims(database_url, [newcomer])
    request = api.SearchClaimsRequest(
        query="lighthouse", actor_id=actor_id, page_token=first.next_page_token
    )
    rest = await _pages(stub.SearchClaims, request, "results", 2)
    seen = _ids(first.results) + _ids([hit for page in rest for hit in page])
    assert len(seen) == len(set(seen))
    assert {claim["id"] for claim in claims} <= set(seen) <= {c["id"] for c in [*claims, newcomer]}


@pytest.mark.asyncio(loop_scope="session")
async def test_a_search_token_is_bound_to_its_query(stub: Stub, corpus: Corpus) -> None:
    """A SearchClaims token used with another query is INVALID_PAGE_TOKEN."""
    first = await stub.SearchClaims(
        api.SearchClaimsRequest(query="harbour", actor_id=corpus.john, page_size=1), timeout=10
    )
    request = api.SearchClaimsRequest(
        query="bridge", actor_id=corpus.john, page_token=first.next_page_token
    )
    code, reason, _ = await _refused(stub.SearchClaims(request))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN")


@pytest.mark.parametrize("query", ["", "   ", "x" * 1001])
@pytest.mark.asyncio(loop_scope="session")
async def test_search_needs_a_query(stub: Stub, query: str) -> None:
    """An empty, blank or overlong query is INVALID_ARGUMENT naming query."""
    code, _, violations = await _refused(stub.SearchClaims(api.SearchClaimsRequest(query=query)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations) == ["query"]


@pytest.mark.asyncio(loop_scope="session")
async def test_search_with_bad_filters_is_invalid(stub: Stub) -> None:
    """SearchClaims checks its filters as ListClaims does."""
    request = api.SearchClaimsRequest(query="tax", language="??", actor_id="UPPER")
    code, _, violations = await _refused(stub.SearchClaims(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations) == {"language", "actorId"}


# --- revisions -------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_revisions_record_creation_update_and_retraction(
    stub: Stub, corpus: Corpus, database_url: DatabaseUrl
) -> None:
    """Each revision carries the claim as it was, its change, time, request id and reason."""
    actor_id, topic_id = await _new_speaker(database_url)
    original = _claim(
        actor_id,
        topic_id,
        "The harbour will get a new lighthouse.",
        datetime(2024, 5, 1, tzinfo=UTC),
    )
    claim_id = original["id"]
    changed = dict(original, text="The harbour will get two new lighthouses.", confidence=0.9)
    await _index_claims(database_url, [original])
    await _index_claims(database_url, [changed])
    retraction = await _retract(database_url, claim_id, "misattributed quote")

    response = await stub.ListClaimRevisions(
        api.ListClaimRevisionsRequest(claim_id=claim_id), timeout=10
    )
    revisions = list(response.revisions)
    assert [r.revision for r in revisions] == [1, 2, 3]
    assert [r.change for r in revisions] == [
        resources_pb2.CLAIM_CHANGE_CREATED,
        resources_pb2.CLAIM_CHANGE_UPDATED,
        resources_pb2.CLAIM_CHANGE_RETRACTED,
    ]
    assert [r.claim.text for r in revisions] == [original["text"], changed["text"], changed["text"]]
    assert [r.claim.state for r in revisions] == [
        resources_pb2.CLAIM_STATE_ACTIVE,
        resources_pb2.CLAIM_STATE_ACTIVE,
        resources_pb2.CLAIM_STATE_RETRACTED,
    ]
    assert [r.claim.revision for r in revisions] == [1, 2, 3]
    assert revisions[2].request_id == retraction
    assert revisions[2].reason == "misattributed quote"
    assert revisions[0].reason == ""
    assert revisions[0].request_id
    times = [r.record_time.ToDatetime() for r in revisions]
    assert times == sorted(times)
    assert not response.next_page_token

    current = await stub.GetClaim(api.GetClaimRequest(claim_id=claim_id), timeout=10)
    assert (current.state, current.revision) == (resources_pb2.CLAIM_STATE_RETRACTED, 3)
    assert await _list(stub, actor_id=actor_id) == []
    assert await _list(stub, actor_id=actor_id, show_retracted=True) == [claim_id]

    pages = await _pages(
        stub.ListClaimRevisions, api.ListClaimRevisionsRequest(claim_id=claim_id), "revisions", 1
    )
    assert [[r.revision for r in page] for page in pages] == [[1], [2], [3]]


@pytest.mark.asyncio(loop_scope="session")
async def test_revisions_of_an_unknown_claim_are_not_found(stub: Stub) -> None:
    """ListClaimRevisions of an unknown claim is NOT_FOUND, not an empty history."""
    request = api.ListClaimRevisionsRequest(claim_id=random_id("missing"))
    code, reason, _ = await _refused(stub.ListClaimRevisions(request))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CLAIM_NOT_FOUND")


# --- actors ----------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_get_actor_counts_active_claims(stub: Stub, corpus: Corpus) -> None:
    """GetActor returns the actor with claimCount equal to its active claims."""
    sent = corpus.actors[0]
    actor = await stub.GetActor(api.GetActorRequest(actor_id=sent["id"]), timeout=10)
    assert (actor.id, actor.display_name) == (sent["id"], sent["displayName"])
    assert list(actor.aliases) == sent.get("aliases", [])
    assert actor.description == sent["description"]
    assert actor.claim_count == len(corpus.expected(actor=sent["id"]))
    assert actor.kind != resources_pb2.ACTOR_KIND_UNSPECIFIED


@pytest.mark.asyncio(loop_scope="session")
async def test_get_actor_errors(stub: Stub) -> None:
    """An unknown actor is ACTOR_NOT_FOUND; a malformed id is INVALID_ARGUMENT on actorId."""
    code, reason, _ = await _refused(stub.GetActor(api.GetActorRequest(actor_id=random_id("a"))))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ACTOR_NOT_FOUND")
    code, _, violations = await _refused(stub.GetActor(api.GetActorRequest(actor_id="Bad Id")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations) == ["actorId"]


async def _actor_search(stub: Stub, query: str) -> list[str]:
    response = await stub.ListActors(api.ListActorsRequest(query=query, page_size=1000), timeout=10)
    return [actor.id for actor in response.actors]


@pytest.mark.asyncio(loop_scope="session")
async def test_list_actors_tolerates_typos_partial_names_and_aliases(
    stub: Stub, corpus: Corpus
) -> None:
    """ "jon smiht" finds John Smith, "smith" too, and "iron magie" finds an alias."""
    assert corpus.john in await _actor_search(stub, "jon smiht")
    assert corpus.john in await _actor_search(stub, "  SMITH ")
    assert corpus.maggie in await _actor_search(stub, "iron magie")
    assert corpus.maggie not in await _actor_search(stub, "jon smiht")
    assert await _actor_search(stub, "qqqqxxzzz") == []


@pytest.mark.asyncio(loop_scope="session")
async def test_list_actors_by_query_ranks_the_best_match_first(stub: Stub, corpus: Corpus) -> None:
    """An exact name ranks above weaker matches, and paging by similarity loses nothing."""
    assert (await _actor_search(stub, "margaret oyelaran"))[0] == corpus.maggie
    single = await _actor_search(stub, "smith")
    pages = await _pages(stub.ListActors, api.ListActorsRequest(query="smith"), "actors", 1)
    assert [actor.id for page in pages for actor in page] == single


@pytest.mark.asyncio(loop_scope="session")
async def test_list_actors_without_a_query_pages_by_id(stub: Stub, corpus: Corpus) -> None:
    """Without a query actors come by id; pages join up with nothing missing or repeated."""
    pages = await _pages(stub.ListActors, api.ListActorsRequest(), "actors", 5)
    ids = [actor.id for page in pages for actor in page]
    assert len(ids) == len(set(ids))
    assert {actor["id"] for actor in corpus.actors} | {corpus.john, corpus.maggie} <= set(ids)
    response = await stub.ListActors(api.ListActorsRequest(page_size=1000), timeout=10)
    assert [actor.id for actor in response.actors] == ids[:1000]


# --- timelines -------------------------------------------------------------------------------


_INTERVALS = {
    api.TIMELINE_INTERVAL_DAY: lambda t: t.replace(hour=0, minute=0, second=0, microsecond=0),
    api.TIMELINE_INTERVAL_WEEK: lambda t: (t - timedelta(days=t.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    ),
    api.TIMELINE_INTERVAL_MONTH: lambda t: t.replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    ),
    api.TIMELINE_INTERVAL_YEAR: lambda t: t.replace(
        month=1, day=1, hour=0, minute=0, second=0, microsecond=0
    ),
}


@pytest.mark.parametrize("interval", list(_INTERVALS), ids=api.TimelineInterval.Name)
@pytest.mark.asyncio(loop_scope="session")
async def test_timeline_buckets_add_up_to_the_actor_claim_count(
    stub: Stub, corpus: Corpus, interval: int
) -> None:
    """Bucket counts add up to claimCount; each bucket is right and its samples newest first."""
    actor_id = corpus.ranked_actors()[1]
    actor = await stub.GetActor(api.GetActorRequest(actor_id=actor_id), timeout=10)
    request = api.GetActorTimelineRequest(actor_id=actor_id, interval=interval, sample_size=4)
    timeline = await stub.GetActorTimeline(request, timeout=30)
    assert (timeline.actor_id, timeline.interval) == (actor_id, interval)
    assert sum(bucket.claim_count for bucket in timeline.buckets) == actor.claim_count

    truncate = _INTERVALS[interval]
    expected = Counter(
        truncate(stated(claim))
        for claim in corpus.claims
        if claim["actorId"] == actor_id and claim.get("state") != RETRACTED
    )
    starts = [bucket.start_time.ToDatetime(tzinfo=UTC) for bucket in timeline.buckets]
    assert starts == sorted(expected)
    assert [bucket.claim_count for bucket in timeline.buckets] == [expected[s] for s in starts]
    for start, bucket in zip(starts, timeline.buckets, strict=True):
        samples = [claim.stated_at.ToDatetime(tzinfo=UTC) for claim in bucket.sample_claims]
        assert len(samples) == min(4, bucket.claim_count)
        assert samples == sorted(samples, reverse=True)
        assert all(truncate(moment) == start for moment in samples)
        assert all(c.state == resources_pb2.CLAIM_STATE_ACTIVE for c in bucket.sample_claims)


@pytest.mark.asyncio(loop_scope="session")
async def test_timeline_per_topic_counts_that_topic_only(stub: Stub, corpus: Corpus) -> None:
    """With topicId the buckets add up to the actor's active claims on that topic."""
    actor_id = corpus.ranked_actors()[0]
    for topic in corpus.ranked_topics()[:4]:
        request = api.GetActorTimelineRequest(
            actor_id=actor_id, topic_id=topic, interval=api.TIMELINE_INTERVAL_MONTH
        )
        timeline = await stub.GetActorTimeline(request, timeout=30)
        assert timeline.topic_id == topic
        total = sum(bucket.claim_count for bucket in timeline.buckets)
        assert total == len(corpus.expected(actor=actor_id, topic=topic))
        assert all(len(b.sample_claims) == min(3, b.claim_count) for b in timeline.buckets)
        assert all(topic in c.topic_ids for b in timeline.buckets for c in b.sample_claims)


@pytest.mark.asyncio(loop_scope="session")
async def test_timeline_honours_the_time_range_and_sample_cap(stub: Stub, corpus: Corpus) -> None:
    """statedAfter/statedBefore bound the counted claims; sampleSize is capped at 10."""
    actor_id = corpus.ranked_actors()[0]
    after, before = datetime(2020, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)
    request = api.GetActorTimelineRequest(
        actor_id=actor_id,
        interval=api.TIMELINE_INTERVAL_YEAR,
        stated_after=_time(after),
        stated_before=_time(before),
        sample_size=50,
    )
    timeline = await stub.GetActorTimeline(request, timeout=30)
    assert [b.start_time.ToDatetime(tzinfo=UTC).year for b in timeline.buckets] == [2020, 2021]
    assert sum(b.claim_count for b in timeline.buckets) == len(
        corpus.expected(actor=actor_id, after=after, before=before)
    )
    assert all(len(b.sample_claims) == 10 for b in timeline.buckets)


async def _day_counts(
    stub: Stub,
    actor_id: str,
    topic_id: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
) -> dict[str, int]:
    """A DAY timeline as {"YYYY-MM-DD": claimCount}."""
    request = api.GetActorTimelineRequest(
        actor_id=actor_id, topic_id=topic_id or "", interval=api.TIMELINE_INTERVAL_DAY
    )
    if after is not None:
        request.stated_after.CopyFrom(_time(after))
    if before is not None:
        request.stated_before.CopyFrom(_time(before))
    timeline = await stub.GetActorTimeline(request, timeout=30)
    return {
        bucket.start_time.ToDatetime(tzinfo=UTC).date().isoformat(): bucket.claim_count
        for bucket in timeline.buckets
    }


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2024 (UTC)."""
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "before", "expected"),
    [
        (None, None, {"2024-03-09": 1, "2024-03-10": 3, "2024-03-11": 1}),
        # Cut inside a day at either end, or both: those parts are counted claim by claim.
        (_at(10, 10), _at(10, 20), {"2024-03-10": 2}),
        (_at(10, 0), _at(10, 12), {"2024-03-10": 1}),
        (_at(10, 12), _at(11, 0), {"2024-03-10": 2}),
        (_at(9, 22, 30), _at(11, 0, 30), {"2024-03-09": 1, "2024-03-10": 3}),
        (_at(9, 23, 30), _at(11, 1, 30), {"2024-03-10": 3, "2024-03-11": 1}),
        (_at(10, 8), _at(10, 8, 1), {"2024-03-10": 1}),
        (_at(10, 19), None, {"2024-03-11": 1}),
        (None, _at(10, 8), {"2024-03-09": 1}),
        (_at(10, 0), _at(11, 0), {"2024-03-10": 3}),
    ],
)
@pytest.mark.asyncio(loop_scope="session")
async def test_timeline_counts_the_parts_of_days_a_time_range_cuts(
    stub: Stub,
    database_url: DatabaseUrl,
    after: datetime | None,
    before: datetime | None,
    expected: dict[str, int],
) -> None:
    """Whole days come from the day counts; where statedAfter or statedBefore falls inside a
    day, only that day's claims within the range count, with or without a topic."""
    actor_id, topic_id = await _new_speaker(database_url)
    moments = [_at(9, 23), _at(10, 8), _at(10, 12), _at(10, 18), _at(11, 1)]
    await _index_claims(
        database_url,
        [
            _claim(actor_id, topic_id, f"The pier opens, part {n}.", m)
            for n, m in enumerate(moments)
        ],
    )

    assert await _day_counts(stub, actor_id, after=after, before=before) == expected
    assert await _day_counts(stub, actor_id, topic_id, after=after, before=before) == expected


@pytest.mark.asyncio(loop_scope="session")
async def test_day_counts_follow_updates_moves_retractions_and_restorations(
    stub: Stub, database_url: DatabaseUrl
) -> None:
    """A claim moved to another day, topic or actor, retracted or restored leaves every count,
    and the actor+topic lists, as a recount would."""
    actor_id, first_topic = await _new_speaker(database_url)
    other_actor, second_topic = await _new_speaker(database_url)
    a = _claim(actor_id, first_topic, "The ferry will run at night.", _at(1, 9))
    b = dict(_claim(actor_id, first_topic, "Fares will fall.", _at(1, 15)))
    b["topicIds"] = [first_topic, second_topic]
    c = _claim(actor_id, second_topic, "The quay will be rebuilt.", _at(2, 9))
    await _index_claims(database_url, [a, b, c])
    assert await _day_counts(stub, actor_id) == {"2024-03-01": 2, "2024-03-02": 1}
    assert await _day_counts(stub, actor_id, second_topic) == {"2024-03-01": 1, "2024-03-02": 1}

    # b moves to another day and loses a topic.
    await _index_claims(
        database_url, [dict(b, statedAt=_rfc3339(_at(3, 9)), topicIds=[first_topic])]
    )
    assert await _day_counts(stub, actor_id) == {"2024-03-01": 1, "2024-03-02": 1, "2024-03-03": 1}
    assert await _day_counts(stub, actor_id, first_topic) == {"2024-03-01": 1, "2024-03-03": 1}
    assert await _day_counts(stub, actor_id, second_topic) == {"2024-03-02": 1}

    # c is retracted, then restored.
    await _retract(database_url, c["id"], "wrong speaker")
    assert await _day_counts(stub, actor_id, second_topic) == {}
    assert await _day_counts(stub, actor_id) == {"2024-03-01": 1, "2024-03-03": 1}
    await _index_claims(database_url, [c])
    assert await _day_counts(stub, actor_id, second_topic) == {"2024-03-02": 1}

    # a moves to the other actor: its counts and its place in actor+topic lists follow it.
    await _index_claims(database_url, [dict(a, actorId=other_actor)])
    assert await _day_counts(stub, actor_id) == {"2024-03-02": 1, "2024-03-03": 1}
    assert await _day_counts(stub, other_actor, first_topic) == {"2024-03-01": 1}
    assert await _list(stub, actor_id=other_actor, topic_id=first_topic) == [a["id"]]
    assert await _list(stub, actor_id=actor_id, topic_id=first_topic) == [b["id"]]


@pytest.mark.asyncio(loop_scope="session")
async def test_day_counts_equal_a_recount_of_the_claims(
    corpus: Corpus, database_url: DatabaseUrl
) -> None:
    """After everything this module indexed, the kept counts are exactly a recount.

    Other modules share the database and insert claims as the owner, past the indexer; only the
    actors indexed here (the corpus's and the tests' own speakers) are compared.
    """

    def ours(column: str) -> str:
        return f"({column} LIKE '{corpus.prefix}-%' OR {column} LIKE 'speaker-%')"

    owner = await asyncpg.connect(database_url.value)
    try:
        for kept, recount in (
            (
                "SELECT actor_id, day, claim_count FROM actor_day_counts"
                f" WHERE claim_count <> 0 AND {ours('actor_id')}",
                "SELECT actor_id, (stated_at AT TIME ZONE 'UTC')::date, count(*) FROM claims"
                f" WHERE state = 'ACTIVE' AND {ours('actor_id')} GROUP BY 1, 2",
            ),
            (
                "SELECT actor_id, topic_id, day, claim_count FROM actor_topic_day_counts"
                f" WHERE claim_count <> 0 AND {ours('actor_id')}",
                "SELECT c.actor_id, l.topic_id, (c.stated_at AT TIME ZONE 'UTC')::date, count(*)"
                " FROM claims c JOIN claim_topics l ON l.claim_id = c.id AND l.is_current"
                f" WHERE c.state = 'ACTIVE' AND {ours('c.actor_id')}"
                " GROUP BY 1, 2, 3",
            ),
        ):
            kept_rows = {tuple(row) for row in await owner.fetch(kept)}
            assert len(kept_rows) > 100
            assert kept_rows == {tuple(row) for row in await owner.fetch(recount)}
        stale_links = await owner.fetchval(
            "SELECT count(*) FROM claim_topics l JOIN claims c ON c.id = l.claim_id"
            " WHERE l.is_current AND (l.actor_id <> c.actor_id OR l.stated_at <> c.stated_at)"
        )
        assert stale_links == 0
    finally:
        await owner.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_timeline_errors(stub: Stub, corpus: Corpus) -> None:
    """No interval or a negative sampleSize is INVALID_ARGUMENT; an unknown actor NOT_FOUND."""
    request = api.GetActorTimelineRequest(actor_id=corpus.john, sample_size=-1)
    code, _, violations = await _refused(stub.GetActorTimeline(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations) == {"interval", "sampleSize"}
    request = api.GetActorTimelineRequest(
        actor_id=random_id("a"), interval=api.TIMELINE_INTERVAL_DAY
    )
    code, reason, _ = await _refused(stub.GetActorTimeline(request))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ACTOR_NOT_FOUND")
    request = api.GetActorTimelineRequest(
        actor_id=corpus.john, topic_id=random_id("t"), interval=api.TIMELINE_INTERVAL_DAY
    )
    code, reason, _ = await _refused(stub.GetActorTimeline(request))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "TOPIC_NOT_FOUND")


# --- topics ----------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_get_topic_counts_active_claims(stub: Stub, corpus: Corpus) -> None:
    """GetTopic returns the topic, its parent and its count of active claims."""
    child = next(topic for topic in corpus.topics if "parentId" in topic)
    topic = await stub.GetTopic(api.GetTopicRequest(topic_id=child["id"]), timeout=10)
    assert (topic.id, topic.display_name, topic.parent_id) == (
        child["id"],
        child["displayName"],
        child["parentId"],
    )
    assert topic.claim_count == len(corpus.expected(topic=child["id"]))


@pytest.mark.asyncio(loop_scope="session")
async def test_get_topic_errors(stub: Stub) -> None:
    """An unknown topic is TOPIC_NOT_FOUND; a malformed id is INVALID_ARGUMENT on topicId."""
    code, reason, _ = await _refused(stub.GetTopic(api.GetTopicRequest(topic_id=random_id("t"))))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "TOPIC_NOT_FOUND")
    code, _, violations = await _refused(stub.GetTopic(api.GetTopicRequest(topic_id="a--b_c")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations) == ["topicId"]


@pytest.mark.asyncio(loop_scope="session")
async def test_list_topics_by_parent(stub: Stub, corpus: Corpus) -> None:
    """parentId lists that topic's direct children by id; an unknown parent is NOT_FOUND."""
    parent = next(topic["parentId"] for topic in corpus.topics if "parentId" in topic)
    children = sorted(t["id"] for t in corpus.topics if t.get("parentId") == parent)
    pages = await _pages(stub.ListTopics, api.ListTopicsRequest(parent_id=parent), "topics", 2)
    assert [topic.id for page in pages for topic in page] == children
    everything = await _pages(stub.ListTopics, api.ListTopicsRequest(), "topics", 4)
    ids = [topic.id for page in everything for topic in page]
    assert ids == sorted(set(ids))
    assert {t["id"] for t in corpus.topics} <= set(ids)
    code, reason, _ = await _refused(
        stub.ListTopics(api.ListTopicsRequest(parent_id=random_id("t")))
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "TOPIC_NOT_FOUND")


# --- deadlines, failures, privileges, metrics ------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_the_statement_timeout_cancels_a_slow_statement(
    retriever_pool: asyncpg.Pool,
) -> None:
    """Inside `reading`, a statement running past the time allowed is cancelled by PostgreSQL."""
    async with queries.reading(retriever_pool, 0.05) as connection:
        assert await connection.fetchval("SHOW statement_timeout") == "50ms"
        assert await connection.fetchval("SHOW transaction_read_only") == "on"
        with pytest.raises(asyncpg.QueryCanceledError):
            await connection.execute("SELECT pg_sleep(2)")


@pytest.mark.asyncio(loop_scope="session")
async def test_a_read_past_the_deadline_is_deadline_exceeded(
    retriever_pool: asyncpg.Pool, database_url: DatabaseUrl, corpus: Corpus
) -> None:
    """A read blocked past the caller's deadline is cancelled and reported as DEADLINE_EXCEEDED."""
    router = ReadRouter.primary_only(lambda: retriever_pool)
    handler = RetrieverHandler(lambda: router, PageTokenCodec(b"k" * 32))
    owner = await asyncpg.connect(database_url.value)
    try:
        async with owner.transaction():
            await owner.execute("LOCK TABLE claims IN ACCESS EXCLUSIVE MODE")
            started = asyncio.get_running_loop().time()
            with pytest.raises(DeadlineExceeded):
                await handler.get_claim(corpus.claims[1]["id"], time_left=0.3)
            assert asyncio.get_running_loop().time() - started < 2
    finally:
        await owner.close()
    with pytest.raises(DeadlineExceeded):
        await handler.get_claim(corpus.claims[1]["id"], time_left=0.0001)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_tiny_grpc_deadline_stops_the_query_in_the_database(
    stub: Stub, database_url: DatabaseUrl, corpus: Corpus
) -> None:
    """A call whose deadline passes is DEADLINE_EXCEEDED and leaves no statement running."""
    owner = await asyncpg.connect(database_url.value)
    try:
        async with owner.transaction():
            await owner.execute("LOCK TABLE claims IN ACCESS EXCLUSIVE MODE")
            request = api.SearchClaimsRequest(query="percent", topic_id=corpus.ranked_topics()[0])
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await stub.SearchClaims(request, timeout=0.3)
            assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            waiting = 1
            for _ in range(40):
                waiting = await owner.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'panoptic-retriever' AND wait_event_type = 'Lock'"
                )
                if waiting == 0:
                    break
                await asyncio.sleep(0.1)
            assert waiting == 0
    finally:
        await owner.close()
    claim = await stub.GetClaim(api.GetClaimRequest(claim_id=corpus.claims[1]["id"]), timeout=10)
    assert claim.id == corpus.claims[1]["id"]


@pytest.mark.asyncio(loop_scope="session")
async def test_an_unreachable_database_is_unavailable() -> None:
    """When no connection can be made the handler reports the database unavailable."""
    pool = await asyncpg.create_pool(
        f"postgresql://nobody@127.0.0.1:{free_port()}/none", min_size=0, max_size=1
    )
    router = ReadRouter.primary_only(lambda: pool)
    handler = RetrieverHandler(lambda: router, PageTokenCodec(b"k" * 32))
    try:
        with pytest.raises(DatabaseUnavailable):
            await handler.get_claim("c-1", time_left=5)
    finally:
        await pool.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_the_retriever_role_cannot_write(retriever_pool: asyncpg.Pool) -> None:
    """PostgreSQL refuses the retriever's writes, even in a transaction declared read-write."""
    async with retriever_pool.acquire() as connection:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await connection.execute(
                "INSERT INTO topics (id, display_name) VALUES ($1, 'x')", random_id("t")
            )
        async with connection.transaction():
            await connection.execute("SET TRANSACTION READ WRITE")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(
                    "INSERT INTO topics (id, display_name) VALUES ($1, 'x')", random_id("t")
                )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.fetch("SELECT * FROM idempotency_keys LIMIT 1")


@pytest.mark.asyncio(loop_scope="session")
async def test_pool_gauges_are_exported(stub: Stub, services_env: dict[str, str]) -> None:
    """/metrics reports the retriever's database pool beside the gRPC metrics."""
    await stub.ListTopics(api.ListTopicsRequest(), timeout=10)
    port = services_env["PANOPTIC_RETRIEVER_METRICS_PORT"]

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    body = await asyncio.to_thread(scrape)
    for gauge in ("panoptic_db_pool_size", "panoptic_db_pool_idle", "panoptic_db_pool_max_size"):
        assert re.search(rf'^{gauge}{{service="retriever"}} \d', body, re.MULTILINE), gauge
    assert 'grpc_method="ListTopics"' in body
