"""Claim views (AIP-157) and batch gets (AIP-231), over gRPC against a real retriever and over
REST through a real gateway, on the gateway's small hand-made corpus (random ids).

What a FULL page costs is counted in statements, on the handler with a pool whose connections
count what they run: never in time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
import grpc
import httpx
import pytest
import pytest_asyncio
from google.protobuf import json_format

from panoptic.core.db import DatabaseUrl
from panoptic.core.replicas import ReadRouter
from panoptic.core.rpc_status import details_of
from panoptic.reads.domain import ClaimListing, ClaimSearch, ClaimView, PageRequest
from panoptic.reads.handler import RetrieverHandler
from panoptic.reads.paging import PageTokenCodec
from panoptic.reads.queries import ClaimFilters
from panoptic.v1 import (
    indexer_service_pb2,
    resources_pb2,
    retriever_service_pb2,
    retriever_service_pb2_grpc,
)
from tests.conftest import random_id
from tests.support.corpus import index_requests
from tests.support.gateway import GatewayCorpus
from tests.support.roles import retriever_pool_holder

pytestmark = pytest.mark.slow

api = retriever_service_pb2
Stub = retriever_service_pb2_grpc.RetrieverServiceStub
FULL = api.CLAIM_VIEW_FULL
BASIC = api.CLAIM_VIEW_BASIC


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stub(retriever: str, corpus: GatewayCorpus) -> AsyncIterator[Stub]:
    """A client of the module's retriever, once the corpus is loaded."""
    async with grpc.aio.insecure_channel(retriever) as channel:
        yield Stub(channel)


@pytest.fixture(scope="module")
def client(gateway: str) -> Iterator[httpx.Client]:
    """An HTTP client on the module's running gateway."""
    with httpx.Client(base_url=gateway, timeout=10) as http:
        yield http


def _names(claim: resources_pb2.Claim) -> tuple[tuple[str, str, int], list[tuple[str, str]]]:
    """What a FULL claim embeds: (actor id, name, kind) and each topic's (id, name)."""
    actor = claim.referents.actor
    topics = [(topic.id, topic.display_name) for topic in claim.referents.topics]
    return (actor.id, actor.display_name, actor.kind), topics


async def _refused(call: Any) -> tuple[grpc.StatusCode, str, dict[str, str], str]:
    """The status code, ErrorInfo reason, BadRequest violations and message of a failed call."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    reason = ""
    violations: dict[str, str] = {}
    for detail in details_of(failure.value):
        if hasattr(detail, "reason"):
            reason = detail.reason
        else:
            violations.update({v.field: v.description for v in detail.field_violations})
    return failure.value.code(), reason, violations, failure.value.details() or ""


async def _new_actor(database_url: DatabaseUrl, name: str) -> tuple[str, str]:
    """An actor and topic of the test's own with one claim, so that what it adds changes no
    other test: (actor id, claim id)."""
    actor_id, topic_id, claim_id = random_id("speaker"), random_id("subject"), random_id("claim")
    request = indexer_service_pb2.IndexClaimsRequest(
        request_id=random_id("index"),
        actors=[resources_pb2.Actor(id=actor_id, display_name=name)],
        topics=[resources_pb2.Topic(id=topic_id, display_name="Lighthouses")],
        claims=[
            json_format.ParseDict(
                {
                    "id": claim_id,
                    "actorId": actor_id,
                    "topicIds": [topic_id],
                    "text": "Lighthouses will run on wind.",
                    "statedAt": "2024-07-01T00:00:00Z",
                    "language": "en",
                },
                resources_pb2.Claim(),
            )
        ],
    )
    await index_requests(database_url, [request])
    return actor_id, claim_id


async def _rename(database_url: DatabaseUrl, actor_id: str, name: str) -> None:
    """Indexes the actor again under another name, as an organisation."""
    actor = resources_pb2.Actor(
        id=actor_id, display_name=name, kind=resources_pb2.ACTOR_KIND_ORGANISATION
    )
    request = indexer_service_pb2.IndexClaimsRequest(request_id=random_id("rename"), actors=[actor])
    await index_requests(database_url, [request])


# --- views over gRPC -----------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_the_basic_view_is_the_default_and_embeds_nothing(
    stub: Stub, corpus: GatewayCorpus
) -> None:
    """Without a view, or with BASIC, a claim is as before views: no referents, in GetClaim,
    ListClaims and SearchClaims alike, and the same message either way."""
    for view in (api.CLAIM_VIEW_UNSPECIFIED, BASIC):
        claim = await stub.GetClaim(api.GetClaimRequest(claim_id=corpus.claim(2), view=view))
        assert not claim.HasField("referents")
        listed = await stub.ListClaims(api.ListClaimsRequest(actor_id=corpus.ann, view=view))
        assert listed.claims
        assert not any(item.HasField("referents") for item in listed.claims)
        found = await stub.SearchClaims(api.SearchClaimsRequest(query="wind", view=view))
        assert found.results
        assert not any(hit.claim.HasField("referents") for hit in found.results)
    default = await stub.GetClaim(api.GetClaimRequest(claim_id=corpus.claim(2)))
    assert default == await stub.GetClaim(api.GetClaimRequest(claim_id=corpus.claim(2), view=BASIC))


@pytest.mark.asyncio(loop_scope="session")
async def test_the_full_view_names_each_claims_actor_and_topics_in_order(
    stub: Stub, corpus: GatewayCorpus
) -> None:
    """FULL embeds the actor's display name and kind and each topic's display name, topics in
    the order of topicIds, and leaves the claim's own fields as BASIC shows them."""
    ann = (corpus.ann, f"Annabel Quixotic {corpus.prefix}", resources_pb2.ACTOR_KIND_PERSON)
    bob = (corpus.bob, "Bob", resources_pb2.ACTOR_KIND_ORGANISATION)
    energy, wind = (corpus.energy, "Energy"), (corpus.wind, "Wind")

    full = await stub.GetClaim(api.GetClaimRequest(claim_id=corpus.claim(2), view=FULL))
    assert _names(full) == (ann, [energy, wind])
    basic = await stub.GetClaim(api.GetClaimRequest(claim_id=corpus.claim(2)))
    full.ClearField("referents")
    assert full == basic

    listed = await stub.ListClaims(api.ListClaimsRequest(topic_id=corpus.wind, view=FULL))
    assert {claim.id: _names(claim) for claim in listed.claims} == {
        corpus.claim(6): (bob, [wind]),
        corpus.claim(3): (ann, [wind]),
        corpus.claim(2): (ann, [energy, wind]),
    }
    found = await stub.SearchClaims(
        api.SearchClaimsRequest(query="offshore", actor_id=corpus.bob, view=FULL)
    )
    assert [_names(hit.claim) for hit in found.results] == [(bob, [wind])]


@pytest.mark.asyncio(loop_scope="session")
async def test_full_pages_page_as_basic_ones(stub: Stub, corpus: GatewayCorpus) -> None:
    """A FULL list pages through the same claims as a BASIC one, each page naming its own
    claims' actors; a token from a BASIC page serves a FULL one."""
    request = api.ListClaimsRequest(actor_id=corpus.ann, page_size=2, show_retracted=True)
    basic_ids, full_ids = [], []
    for view, seen in ((BASIC, basic_ids), (FULL, full_ids)):
        request.view, request.page_token = view, ""
        while True:
            page = await stub.ListClaims(request)
            seen.extend(claim.id for claim in page.claims)
            if view == FULL:
                assert all(claim.referents.actor.id == corpus.ann for claim in page.claims)
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
    assert full_ids == basic_ids
    assert len(full_ids) == 5
    request.view, request.page_token = BASIC, ""
    first = await stub.ListClaims(request)
    request.view, request.page_token = FULL, first.next_page_token
    second = await stub.ListClaims(request)
    assert [claim.id for claim in second.claims] == basic_ids[2:4]
    assert all(claim.HasField("referents") for claim in second.claims)


@pytest.mark.asyncio(loop_scope="session")
async def test_embedded_names_follow_a_renamed_actor(
    stub: Stub, corpus: GatewayCorpus, database_url: DatabaseUrl
) -> None:
    """The names are read with the claims, never copied into them: after an actor is indexed
    under a new name and kind, every FULL read shows the new ones."""
    actor_id, claim_id = await _new_actor(database_url, "Ada Example")
    before = await stub.GetClaim(api.GetClaimRequest(claim_id=claim_id, view=FULL))
    assert before.referents.actor.display_name == "Ada Example"
    await _rename(database_url, actor_id, "Ada Lighthouse Trust")
    after = await stub.GetClaim(api.GetClaimRequest(claim_id=claim_id, view=FULL))
    listed = await stub.ListClaims(api.ListClaimsRequest(actor_id=actor_id, view=FULL))
    for claim in (after, *listed.claims):
        assert claim.referents.actor.display_name == "Ada Lighthouse Trust"
        assert claim.referents.actor.kind == resources_pb2.ACTOR_KIND_ORGANISATION
    assert [claim.id for claim in listed.claims] == [claim_id]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_view_that_is_not_one_of_the_enum_is_invalid(
    stub: Stub, corpus: GatewayCorpus
) -> None:
    """An unnamed enum number in `view` is INVALID_ARGUMENT naming `view`, on each method, with
    the request's other bad fields named as well."""
    calls = [
        stub.GetClaim(api.GetClaimRequest(claim_id="bad id", view=7)),
        stub.ListClaims(api.ListClaimsRequest(view=7, page_size=-1)),
        stub.SearchClaims(api.SearchClaimsRequest(query="wind", view=-3)),
    ]
    expected = [{"claimId", "view"}, {"pageSize", "view"}, {"view"}]
    for call, fields in zip(calls, expected, strict=True):
        code, _, violations, _ = await _refused(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert set(violations) == fields


@pytest.mark.asyncio(loop_scope="session")
async def test_a_full_get_of_a_missing_claim_is_not_found(stub: Stub) -> None:
    """GetClaim in the FULL view of an unknown id is CLAIM_NOT_FOUND, as in BASIC."""
    missing = random_id("missing")
    code, reason, _, _ = await _refused(
        stub.GetClaim(api.GetClaimRequest(claim_id=missing, view=FULL))
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CLAIM_NOT_FOUND")


# --- what a FULL page costs ----------------------------------------------------------------------

_STATEMENTS = frozenset({"execute", "fetch", "fetchrow", "fetchval"})


class _CountingConnection:
    """A connection that records each statement method asked of it (the way the queries run
    every statement), passing everything else through."""

    def __init__(self, connection: asyncpg.Connection, statements: list[str]) -> None:
        self._connection = connection
        self._statements = statements

    def __getattr__(self, name: str) -> Any:
        if name in _STATEMENTS:
            self._statements.append(name)
        return getattr(self._connection, name)


class _CountingPool:
    """A pool whose connections count the statements run on them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.statements: list[str] = []

    @asynccontextmanager
    async def acquire(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """A counting connection of the pool for the block."""
        async with self._pool.acquire(timeout=timeout) as connection:
            yield _CountingConnection(connection, self.statements)


@pytest_asyncio.fixture(loop_scope="session")
async def counted(
    database_url: DatabaseUrl, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RetrieverHandler, _CountingPool]]:
    """A handler reading through a statement-counting pool on the retriever's own role."""
    holder = retriever_pool_holder(database_url, monkeypatch)
    await holder.open()
    counting = _CountingPool(holder.pool)
    router = ReadRouter.primary_only(lambda: cast(asyncpg.Pool, counting))
    try:
        yield RetrieverHandler(lambda: router, PageTokenCodec(b"k" * 32)), counting
    finally:
        await holder.close()


async def _index_feed(database_url: DatabaseUrl, count: int) -> str:
    """`count` claims on a topic of their own, each by an actor of its own on that topic and
    two more of its own: a page of them names as many actors, and twice as many topics again,
    as claims. Returns the shared topic's id."""
    shared = random_id("feed")
    request = indexer_service_pb2.IndexClaimsRequest(
        request_id=random_id("index"),
        topics=[resources_pb2.Topic(id=shared, display_name="Feed")],
    )
    for number in range(count):
        actor_id, extra = f"{shared}-a{number}", [f"{shared}-t{number}", f"{shared}-u{number}"]
        request.actors.append(resources_pb2.Actor(id=actor_id, display_name=f"Actor {number}"))
        request.topics.extend(resources_pb2.Topic(id=t, display_name=t.upper()) for t in extra)
        claim = {
            "id": f"{shared}-c{number}",
            "actorId": actor_id,
            "topicIds": [shared, *extra],
            "text": f"Harbour number {number} opens.",
            "statedAt": f"2024-01-{number + 1:02d}T00:00:00Z",
            "language": "en",
        }
        request.claims.append(json_format.ParseDict(claim, resources_pb2.Claim()))
    await index_requests(database_url, [request])
    return shared


@pytest.mark.asyncio(loop_scope="session")
async def test_a_full_page_costs_two_statements_more_than_a_basic_one_whatever_its_size(
    counted: tuple[RetrieverHandler, _CountingPool], database_url: DatabaseUrl
) -> None:
    """A FULL page of 20 claims by 20 actors on 41 topics runs exactly two statements more than
    its BASIC page (one for the actors, one for the topics), as a page of 1 does: never one
    per claim. Search and GetClaim alike."""
    handler, pool = counted
    topic = await _index_feed(database_url, 20)

    async def statements(read: Any) -> tuple[int, Any]:
        pool.statements.clear()
        result = await read
        return len(pool.statements), result

    costs: dict[tuple[int, ClaimView], int] = {}
    for size in (1, 20):
        for view in ClaimView:
            listing = ClaimListing(ClaimFilters(topic_id=topic), True, PageRequest(size), view)
            costs[size, view], page = await statements(handler.list_claims(listing, 10))
            assert len(page.items) == size
            if view is ClaimView.FULL:
                assert page.referents is not None
                assert len(page.referents.actors) == size
                assert len(page.referents.topics) == 1 + 2 * size
    assert costs[20, ClaimView.FULL] == costs[20, ClaimView.BASIC] + 2
    assert costs[1, ClaimView.FULL] == costs[20, ClaimView.FULL]

    searches = {}
    for view in ClaimView:
        search = ClaimSearch("harbour", ClaimFilters(topic_id=topic), PageRequest(20), view)
        searches[view], found = await statements(handler.search_claims(search, 10))
        assert len(found.items) == 20
    assert searches[ClaimView.FULL] == searches[ClaimView.BASIC] + 2

    count, (claim, referents) = await statements(handler.get_full_claim(f"{topic}-c3", 10))
    assert claim.id == f"{topic}-c3"
    assert set(referents.topics) == {topic, f"{topic}-t3", f"{topic}-u3"}
    assert count == costs[1, ClaimView.FULL]  # the claim by id where a list reads its page


# --- batch gets over gRPC ------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_batch_gets_answer_in_the_order_asked_repeats_included(
    stub: Stub, corpus: GatewayCorpus
) -> None:
    """BatchGetActors and BatchGetTopics return whole resources, one per id asked, in the
    request's order, an id asked twice answered twice."""
    actors = await stub.BatchGetActors(
        api.BatchGetActorsRequest(ids=[corpus.bob, corpus.ann, corpus.bob])
    )
    assert [actor.id for actor in actors.actors] == [corpus.bob, corpus.ann, corpus.bob]
    single = await stub.GetActor(api.GetActorRequest(actor_id=corpus.ann))
    assert actors.actors[1] == single
    assert actors.actors[0] == actors.actors[2]
    topics = await stub.BatchGetTopics(
        api.BatchGetTopicsRequest(ids=[corpus.wind, corpus.energy, corpus.wind, corpus.wind])
    )
    assert [topic.id for topic in topics.topics] == [
        corpus.wind,
        corpus.energy,
        corpus.wind,
        corpus.wind,
    ]
    assert topics.topics[0] == await stub.GetTopic(api.GetTopicRequest(topic_id=corpus.wind))


@pytest.mark.asyncio(loop_scope="session")
async def test_a_batch_get_with_a_missing_id_is_not_found_naming_it(
    stub: Stub, corpus: GatewayCorpus
) -> None:
    """One unknown id makes the whole call NOT_FOUND, naming the first unknown id asked."""
    missing, later = random_id("nobody"), random_id("nobody")
    code, reason, _, message = await _refused(
        stub.BatchGetActors(api.BatchGetActorsRequest(ids=[corpus.ann, missing, later]))
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ACTOR_NOT_FOUND")
    assert missing in message
    assert later not in message
    code, reason, _, message = await _refused(
        stub.BatchGetTopics(api.BatchGetTopicsRequest(ids=[missing, corpus.wind]))
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "TOPIC_NOT_FOUND")
    assert missing in message


@pytest.mark.asyncio(loop_scope="session")
async def test_batch_gets_refuse_bad_ids_by_index_and_more_than_a_hundred(
    stub: Stub, corpus: GatewayCorpus
) -> None:
    """Malformed ids are INVALID_ARGUMENT naming each by its index; none at all names `ids`;
    a hundred are served and a hundred and one refused, naming the one beyond."""
    code, _, violations, _ = await _refused(
        stub.BatchGetActors(
            api.BatchGetActorsRequest(ids=[corpus.ann, corpus.bob, corpus.ann, "Not A Slug", ""])
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations) == ["ids[3]", "ids[4]"]
    code, _, violations, _ = await _refused(stub.BatchGetTopics(api.BatchGetTopicsRequest()))
    assert (code, list(violations)) == (grpc.StatusCode.INVALID_ARGUMENT, ["ids"])

    hundred = [corpus.energy, corpus.wind] * 50
    served = await stub.BatchGetTopics(api.BatchGetTopicsRequest(ids=hundred))
    assert [topic.id for topic in served.topics] == hundred
    code, _, violations, _ = await _refused(
        stub.BatchGetTopics(api.BatchGetTopicsRequest(ids=[*hundred, corpus.wind]))
    )
    assert (code, list(violations)) == (grpc.StatusCode.INVALID_ARGUMENT, ["ids[100]"])
    assert "101 given" in violations["ids[100]"]


@pytest.mark.asyncio(loop_scope="session")
async def test_batch_gets_take_a_consistency_token_like_every_read(
    stub: Stub, corpus: GatewayCorpus
) -> None:
    """A token the indexer did not issue is INVALID_ARGUMENT naming consistencyToken."""
    for call in (
        stub.BatchGetActors(
            api.BatchGetActorsRequest(ids=[corpus.ann], consistency_token="forged")
        ),
        stub.BatchGetTopics(
            api.BatchGetTopicsRequest(ids=[corpus.wind], consistency_token="forged")
        ),
    ):
        code, reason, violations, _ = await _refused(call)
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_CONSISTENCY_TOKEN")
        assert list(violations) == ["consistencyToken"]


# --- over REST -----------------------------------------------------------------------------------


def _json(client: httpx.Client, path: str, **params: Any) -> Any:
    """GET that must succeed; the JSON body."""
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _error(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    """GET that must fail; the AIP-193 error with the status code."""
    response = client.get(path, params=params)
    assert response.status_code >= 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == response.status_code
    return error


def test_rest_basic_json_is_unchanged_and_full_json_embeds_the_names(
    client: httpx.Client, corpus: GatewayCorpus
) -> None:
    """`?view=FULL` (or the enum's full name, any case) adds a `referents` object; without a
    view, or with BASIC, the claim's JSON has exactly the keys it had before views."""
    before_views = {
        "id",
        "actorId",
        "topicIds",
        "text",
        "statedAt",
        "source",
        "language",
        "confidence",
        "state",
        "revision",
        "createTime",
        "updateTime",
    }
    path = f"/v1/claims/{corpus.claim(2)}"
    basic = _json(client, path)
    assert set(basic) == before_views
    assert _json(client, path, view="BASIC") == basic
    for spelling in ("FULL", "full", "CLAIM_VIEW_FULL", "2"):
        full = _json(client, path, view=spelling)
        assert full.pop("referents") == {
            "actor": {
                "id": corpus.ann,
                "displayName": f"Annabel Quixotic {corpus.prefix}",
                "kind": "ACTOR_KIND_PERSON",
            },
            "topics": [
                {"id": corpus.energy, "displayName": "Energy"},
                {"id": corpus.wind, "displayName": "Wind"},
            ],
        }, spelling
        assert full == basic

    listed = _json(client, f"/v1/actors/{corpus.bob}/claims", view="FULL")
    assert [claim["referents"]["actor"]["displayName"] for claim in listed["claims"]] == ["Bob"]
    assert all("referents" not in c for c in _json(client, "/v1/claims")["claims"])
    found = _json(client, "/v1/claims:search", query="offshore", actorId=corpus.bob, view="full")
    assert found["results"][0]["claim"]["referents"]["topics"] == [
        {"id": corpus.wind, "displayName": "Wind"}
    ]
    masked = _json(
        client,
        "/v1/claims",
        topicId=corpus.wind,
        view="FULL",
        fields="claims.referents.actor.displayName",
    )
    assert {claim["referents"]["actor"]["displayName"] for claim in masked["claims"]} == {
        "Bob",
        f"Annabel Quixotic {corpus.prefix}",
    }


@pytest.mark.asyncio(loop_scope="session")
async def test_rest_full_view_follows_a_renamed_actor(
    gateway: str, corpus: GatewayCorpus, database_url: DatabaseUrl
) -> None:
    """Through the gateway too, a FULL claim names its actor as it is now (asked with
    `Cache-Control: no-cache`, past the gateway's response cache)."""
    actor_id, claim_id = await _new_actor(database_url, "Ada Example")
    path, fresh = f"/v1/claims/{claim_id}", {"Cache-Control": "no-cache"}
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as http:
        before = await http.get(path, params={"view": "FULL"})
        assert before.json()["referents"]["actor"]["displayName"] == "Ada Example"
        await _rename(database_url, actor_id, "Ada Lighthouse Trust")
        after = await http.get(path, params={"view": "FULL"}, headers=fresh)
    assert after.status_code == 200
    assert after.json()["referents"]["actor"] == {
        "id": actor_id,
        "displayName": "Ada Lighthouse Trust",
        "kind": "ACTOR_KIND_ORGANISATION",
    }


def test_rest_an_unknown_view_is_a_400_naming_it(
    client: httpx.Client, corpus: GatewayCorpus
) -> None:
    """`view=WIDE` is refused before any call, naming the parameter and the views there are."""
    error = _error(client, f"/v1/claims/{corpus.claim(1)}", view="WIDE")
    assert error["code"] == 400
    assert "view" in error["message"]
    assert "CLAIM_VIEW_FULL" in error["message"]


def test_rest_batch_gets_take_repeated_ids(client: httpx.Client, corpus: GatewayCorpus) -> None:
    """GET /v1/actors:batchGet and /v1/topics:batchGet take `ids` repeated, answer in order with
    repeats, cacheable as long as the single gets; 404 naming a missing id, 400 naming a bad one
    by index or the 101st."""
    actors = client.get(
        "/v1/actors:batchGet",
        params=[("ids", corpus.bob), ("ids", corpus.ann), ("ids", corpus.bob)],
    )
    assert actors.status_code == 200, actors.text
    assert actors.headers["cache-control"] == "public, max-age=30"  # as GetActor's
    assert [actor["id"] for actor in actors.json()["actors"]] == [
        corpus.bob,
        corpus.ann,
        corpus.bob,
    ]
    assert actors.json()["actors"][1]["displayName"] == f"Annabel Quixotic {corpus.prefix}"
    topics = _json(client, "/v1/topics:batchGet", ids=corpus.energy)
    assert (
        client.get("/v1/topics:batchGet", params={"ids": corpus.energy}).headers["cache-control"]
        == "public, max-age=300"
    )  # as GetTopic's
    assert [topic["displayName"] for topic in topics["topics"]] == ["Energy"]

    missing = random_id("nobody")
    error = _error(client, "/v1/topics:batchGet", ids=[corpus.wind, missing])
    assert (error["code"], error["status"]) == (404, "NOT_FOUND")
    assert missing in error["message"]
    info = next(d for d in error["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "TOPIC_NOT_FOUND"

    error = _error(client, "/v1/actors:batchGet", ids=[corpus.ann, "Bad!"])
    request = next(d for d in error["details"] if d["@type"].endswith("BadRequest"))
    assert [v["field"] for v in request["fieldViolations"]] == ["ids[1]"]
    error = _error(client, "/v1/actors:batchGet", ids=[corpus.ann] * 101)
    request = next(d for d in error["details"] if d["@type"].endswith("BadRequest"))
    assert [v["field"] for v in request["fieldViolations"]] == ["ids[100]"]
    assert _error(client, "/v1/actors:batchGet")["code"] == 400


def test_rest_the_openapi_document_lists_the_new_routes_and_the_view(
    client: httpx.Client,
) -> None:
    """The served document has both batch gets, `ids` as an exploded array of 1 to 100, and
    `view` with its enum on the three claim reads."""
    document = _json(client, "/openapi.json")
    for path in ("/v1/actors:batchGet", "/v1/topics:batchGet"):
        ids = document["paths"][path]["get"]["parameters"][0]
        assert (ids["name"], ids["schema"]["minItems"], ids["schema"]["maxItems"]) == (
            "ids",
            1,
            100,
        )
    for path in ("/v1/claims/{claim_id}", "/v1/claims", "/v1/claims:search"):
        parameters = document["paths"][path]["get"]["parameters"]
        view = next(p for p in parameters if p["name"] == "view")
        assert view["schema"]["enum"] == [
            "CLAIM_VIEW_UNSPECIFIED",
            "CLAIM_VIEW_BASIC",
            "CLAIM_VIEW_FULL",
        ]
