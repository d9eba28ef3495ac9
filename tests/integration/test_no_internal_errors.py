"""No client input gets INTERNAL or UNKNOWN: generated requests against a real indexer and
retriever, on a PostgreSQL database of the module's own.

Hypothesis generates every request type of both services, mostly valid requests with one part
replaced by any value (`tests.support.strategies`), and raw bytes that are not a valid message.
Every answer must be OK or a documented client error, and an indexing request is written whole
or not at all. The database is the module's own because what the generator finds may break
reads for whoever shares it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panoptic.core.db import DatabaseUrl
from panoptic.v1 import (
    indexer_service_pb2,
    indexer_service_pb2_grpc,
    retriever_service_pb2,
    retriever_service_pb2_grpc,
)
from tests.conftest import migrated_database, random_id
from tests.support.indexer import (
    Metadata,
    actor,
    claim,
    error_reason,
    index_request,
    topic,
    violated_fields,
)
from tests.support.processes import grpc_serving, running_grpc_service, service_env
from tests.support.strategies import (
    Known,
    index_requests,
    retract_requests,
    retriever_requests,
)

pytestmark = pytest.mark.slow

# What a client may be told about its own request; anything else (INTERNAL, UNKNOWN) is a bug.
CLIENT_ERRORS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
# Words of the known claims, so that generated searches match something.
WORDS = ("harbour", "bridge", "repairs", "wind", "farms", "tax", "winter", "ferry")
# Deterministic in CI, so that a run there cannot pass or fail by luck; exploring elsewhere.
GENERATION = settings(
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
INDEXER = indexer_service_pb2.DESCRIPTOR.services_by_name["IndexerService"]
RETRIEVER = retriever_service_pb2.DESCRIPTOR.services_by_name["RetrieverService"]
CALL_SECONDS = 30


# --- the servers --------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_database(postgres_server_url: DatabaseUrl) -> AsyncIterator[DatabaseUrl]:
    """A migrated database for this module alone, dropped afterwards."""
    async with migrated_database(postgres_server_url, prefix="panoptic_fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def services_env(
    own_database: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The services' environment: the module's database; the retriever in its default two
    worker processes."""
    return service_env(
        own_database.value,
        tmp_path_factory.mktemp("data"),
        PANOPTIC_RETRIEVER_WORKERS="2",
    )


@pytest.fixture(scope="module")
def lone_retriever(
    services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The address of a retriever run as one process, the other way the bootstrap serves."""
    lone = service_env(
        services_env["DATABASE_URL"],
        tmp_path_factory.mktemp("lone"),
        PANOPTIC_RETRIEVER_WORKERS="1",
    )
    log = tmp_path_factory.mktemp("logs") / "lone.log"
    with running_grpc_service("retriever", lone, log) as address:
        yield address


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db(own_database: DatabaseUrl) -> AsyncIterator[asyncpg.Connection]:
    """The owner's connection to the module's database, to see what was written."""
    connection = await asyncpg.connect(own_database.value)
    try:
        yield connection
    finally:
        await connection.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def indexer_stub(indexer: str) -> AsyncIterator[indexer_service_pb2_grpc.IndexerServiceStub]:
    """An IndexerService client."""
    async with grpc.aio.insecure_channel(indexer) as channel:
        yield indexer_service_pb2_grpc.IndexerServiceStub(channel)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def retriever_channel(retriever: str) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the module's retriever."""
    async with grpc.aio.insecure_channel(retriever) as channel:
        yield channel


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def known(
    indexer_stub: indexer_service_pb2_grpc.IndexerServiceStub,
    retriever_channel: grpc.aio.Channel,
    token: Metadata,
) -> Known:
    """Two actors, two topics and a few claims indexed before generation starts (one of them
    updated, one retracted), and a next-page token of every List and Search method."""
    salt = random_id("fuzz")
    actors = [actor(f"{salt}-jane", display_name="Jane Doe"), actor(f"{salt}-ann")]
    topics = [topic(f"{salt}-harbours"), topic(f"{salt}-tax", parent_id=f"{salt}-harbours")]
    texts = [" ".join(WORDS[index : index + 4]) for index in range(4)]
    claims = [
        claim(actors[index % 2].id, [topics[index % 2].id], f"{salt}-k{index}", text=text)
        for index, text in enumerate(texts)
    ]
    await indexer_stub.IndexClaims(
        index_request(*claims, actors=tuple(actors), topics=tuple(topics)), metadata=token
    )
    claims[0].text += " again"
    await indexer_stub.IndexClaims(index_request(claims[0]), metadata=token)
    await indexer_stub.RetractClaim(
        indexer_service_pb2.RetractClaimRequest(
            claim_id=claims[1].id, reason="test", request_id=random_id("retract")
        ),
        metadata=token,
    )
    stub = retriever_service_pb2_grpc.RetrieverServiceStub(retriever_channel)
    api = retriever_service_pb2
    answers = {
        "ListClaims": stub.ListClaims(api.ListClaimsRequest(actor_id=actors[0].id, page_size=1)),
        "SearchClaims": stub.SearchClaims(api.SearchClaimsRequest(query=WORDS[2], page_size=1)),
        "ListClaimRevisions": stub.ListClaimRevisions(
            api.ListClaimRevisionsRequest(claim_id=claims[0].id, page_size=1)
        ),
        "ListActors": stub.ListActors(api.ListActorsRequest(page_size=1)),
        "ListTopics": stub.ListTopics(api.ListTopicsRequest(page_size=1)),
    }
    tokens = {name: (await answer).next_page_token for name, answer in answers.items()}
    assert all(tokens.values()), tokens
    return Known(
        salt=salt,
        actor_ids=[item.id for item in actors],
        topic_ids=[item.id for item in topics],
        claim_ids=[item.id for item in claims],
        words=WORDS,
        page_tokens=tokens,
    )


# --- outcomes -----------------------------------------------------------------------------------


async def _outcome(call: Any) -> grpc.StatusCode:
    """The status a call ends with; fails the test unless it is OK or a client error."""
    failure: grpc.aio.AioRpcError | None = None
    try:
        await call
    except grpc.aio.AioRpcError as error:
        failure = error
    if failure is None:
        return grpc.StatusCode.OK
    assert failure.code() in CLIENT_ERRORS, f"{failure.code()}: {failure.details()}"
    _assert_neutral(failure.details() or "")
    return failure.code()


def _assert_neutral(message: str) -> None:
    """The message names nothing of the server's insides: no exception class, trace or SQL."""
    for leak in ("Traceback", "<class", "Error:", "Exception", "asyncpg", "SELECT ", "psycopg"):
        assert leak not in message, message


def _storable(ids: Sequence[str]) -> list[str]:
    """The ids that PostgreSQL could hold at all: text without NUL."""
    return [value for value in ids if "\x00" not in value]


async def _rows(db: asyncpg.Connection, request: indexer_service_pb2.IndexClaimsRequest) -> Any:
    """Everything stored under the request's ids and request id, as text, whatever the values."""
    found = {}
    for table, ids in (
        ("actors", [item.id for item in request.actors]),
        ("topics", [item.id for item in request.topics]),
        ("claims", [item.id for item in request.claims]),
    ):
        rows = await db.fetch(
            f"SELECT id, t::text AS row FROM {table} t WHERE id = ANY($1::text[])", _storable(ids)
        )
        found[table] = {row["id"]: row["row"] for row in rows}
    found["revisions"] = await db.fetchval(
        "SELECT count(*) FROM claim_revisions WHERE claim_id = ANY($1::text[])",
        _storable([item.id for item in request.claims]),
    )
    found["idempotency"] = await db.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE request_id = $1",
        _storable([request.request_id])[0] if _storable([request.request_id]) else "",
    )
    return found


# --- generated requests -------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
@settings(GENERATION, max_examples=250)
@given(data=st.data())
async def test_generated_index_requests_are_written_whole_or_refused_with_nothing_written(
    indexer_stub: indexer_service_pb2_grpc.IndexerServiceStub,
    db: asyncpg.Connection,
    known: Known,
    token: Metadata,
    data: st.DataObject,
) -> None:
    """Any IndexClaims request is OK, with every actor, topic and claim of it stored, or a
    client error with nothing of it written."""
    request = data.draw(index_requests(known), label="request")
    before = await _rows(db, request)
    code = await _outcome(indexer_stub.IndexClaims(request, metadata=token, timeout=CALL_SECONDS))
    after = await _rows(db, request)
    if code is grpc.StatusCode.OK:
        for table, items in (
            ("actors", request.actors),
            ("topics", request.topics),
            ("claims", request.claims),
        ):
            assert set(after[table]) == {item.id for item in items}, table
        assert after["idempotency"] == 1
        assert not await db.fetch(
            "SELECT id FROM claims WHERE id = ANY($1::text[]) AND NOT (isfinite(stated_at)"
            " AND coalesce(isfinite(source_published_at), true))",
            list(after["claims"]),
        ), "a time was stored as something else than the one sent"
    else:
        assert after == before, f"{code.name}, yet something was written"


@pytest.mark.asyncio(loop_scope="session")
@settings(GENERATION, max_examples=80)
@given(data=st.data())
async def test_generated_retractions_retract_or_are_refused_with_nothing_written(
    indexer_stub: indexer_service_pb2_grpc.IndexerServiceStub,
    db: asyncpg.Connection,
    known: Known,
    token: Metadata,
    data: st.DataObject,
) -> None:
    """Any RetractClaim request is OK, leaving the claim retracted, or a client error that
    leaves the claim as it was."""
    request = data.draw(retract_requests(known), label="request")
    claim_ids = _storable([request.claim_id])

    async def stored() -> Any:
        return await db.fetchrow(
            "SELECT t::text AS row, state FROM claims t WHERE id = ANY($1::text[])", claim_ids
        )

    before = await stored()
    code = await _outcome(indexer_stub.RetractClaim(request, metadata=token, timeout=CALL_SECONDS))
    after = await stored()
    if code is grpc.StatusCode.OK:
        assert after is not None
        assert after["state"] == "RETRACTED"
    elif code is not grpc.StatusCode.FAILED_PRECONDITION or before is None:
        assert after == before, f"{code.name}, yet the claim changed"


@pytest.mark.asyncio(loop_scope="session")
@settings(GENERATION, max_examples=300)
@given(data=st.data())
async def test_generated_retriever_requests_get_ok_or_a_client_error(
    retriever_channel: grpc.aio.Channel, known: Known, data: st.DataObject
) -> None:
    """Any request to any RetrieverService method is answered OK or with a client error."""
    method, request = data.draw(retriever_requests(known), label="request")
    stub = retriever_service_pb2_grpc.RetrieverServiceStub(retriever_channel)
    await _outcome(getattr(stub, method)(request, timeout=CALL_SECONDS))


# --- malformed bytes ----------------------------------------------------------------------------

# The registered services of each server besides its own, and one method of each RPC shape.
COMMON_METHODS = (
    ("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest, False, False),
    ("/grpc.health.v1.Health/Watch", health_pb2.HealthCheckRequest, False, True),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        reflection_pb2.ServerReflectionRequest,
        True,
        True,
    ),
)
RawMethod = tuple[str, type[Message], bool, bool]


def _methods(service: Any) -> list[RawMethod]:
    """(path, request type, request streaming, response streaming) of each method."""
    from google.protobuf import message_factory

    def described(method: MethodDescriptor) -> RawMethod:
        kind = message_factory.GetMessageClass(method.input_type)
        path = f"/{service.full_name}/{method.name}"
        return (path, kind, method.client_streaming, method.server_streaming)

    return [described(method) for method in service.methods]


async def _raw_call(
    channel: grpc.aio.Channel, method: RawMethod, messages: Sequence[bytes], metadata: Metadata
) -> None:
    """Sends the bytes as they are, as the method's request messages; reads one answer."""
    path, _, request_streaming, response_streaming = method
    if not request_streaming and not response_streaming:
        await channel.unary_unary(path)(messages[0], metadata=metadata, timeout=CALL_SECONDS)
    elif request_streaming and not response_streaming:
        await channel.stream_unary(path)(iter(messages), metadata=metadata, timeout=CALL_SECONDS)
    else:
        call: Any = (
            channel.stream_stream(path)(iter(messages), metadata=metadata, timeout=CALL_SECONDS)
            if request_streaming
            else channel.unary_stream(path)(messages[0], metadata=metadata, timeout=CALL_SECONDS)
        )
        try:
            await call.read()
        finally:
            call.cancel()


def _parses(kind: type[Message], raw: bytes) -> bool:
    try:
        kind.FromString(raw)
    except DecodeError:
        return False
    return True


async def _assert_malformed(
    channel: grpc.aio.Channel, method: RawMethod, messages: Sequence[bytes], metadata: Metadata
) -> grpc.aio.AioRpcError:
    """The call fails with INVALID_ARGUMENT naming the request type and nothing of Python."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _raw_call(channel, method, messages, metadata)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    details = error.details() or ""
    assert method[1].DESCRIPTOR.full_name in details, details
    _assert_neutral(details)
    for leak in ("DecodeError", "google.protobuf", "Wire format", "UTF-8"):
        assert leak not in details, details
    assert error_reason(error) == "MALFORMED_REQUEST"
    return error


# Invalid UTF-8: a lone continuation byte, an overlong form, and a UTF-16 surrogate half.
NOT_UTF8 = (b"\x80", b"\xc0\xaf", "\ud800".encode("utf-8", "surrogatepass"))


def _with_bad_string(kind: type[Message], bad: bytes) -> bytes:
    """A valid message of the type, followed by its first string field holding `bad`.

    Protobuf reads fields in order and keeps the last value, so the message is well-formed
    but for the string's bytes.
    """
    valid = _valid_message(kind)
    fields = kind.DESCRIPTOR.fields
    string = next(field for field in fields if field.type == field.TYPE_STRING)
    key = bytes([string.number << 3 | 2])
    return valid + key + bytes([len(bad)]) + bad


def _valid_message(kind: type[Message]) -> bytes:
    """The bytes of a request the method would accept as a message."""
    if kind is indexer_service_pb2.IndexClaimsRequest:
        return index_request().SerializeToString()
    return kind().SerializeToString()


SERVERS = ("indexer", "retriever", "lone_retriever")


@pytest.fixture(scope="module")
def servers(indexer: str, retriever: str, lone_retriever: str) -> dict[str, str]:
    """The address of each server, by name."""
    return {"indexer": indexer, "retriever": retriever, "lone_retriever": lone_retriever}


def _server(servers: dict[str, str], name: str) -> tuple[str, list[RawMethod]]:
    """The address and methods of the named server."""
    service = INDEXER if name == "indexer" else RETRIEVER
    return servers[name], [*_methods(service), *COMMON_METHODS]


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("server", SERVERS)
async def test_a_string_that_is_not_utf8_is_invalid_argument_on_every_method(
    servers: dict[str, str], server: str, token: Metadata
) -> None:
    """A well-formed message but for a string field's bytes, which are not UTF-8, gets
    INVALID_ARGUMENT with a neutral message, on every method of both services, alone or in
    worker processes; the retriever's health and reflection services too."""
    address, methods = _server(servers, server)
    async with grpc.aio.insecure_channel(address) as channel:
        for method in methods:
            for bad in NOT_UTF8:
                raw = _with_bad_string(method[1], bad)
                assert not _parses(method[1], raw)
                await _assert_malformed(channel, method, [raw], token)


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("server", SERVERS)
@settings(GENERATION, max_examples=100)
@given(data=st.data())
async def test_random_bytes_are_invalid_argument_unless_they_are_a_message(
    servers: dict[str, str], server: str, token: Metadata, data: st.DataObject
) -> None:
    """Any bytes sent to any method get INVALID_ARGUMENT with a neutral message unless they
    parse as the request type; those that do get OK or a client error."""
    address, methods = _server(servers, server)
    method = data.draw(st.sampled_from(methods), label="method")
    kind = method[1]
    valid = _valid_message(kind)
    raw = data.draw(
        st.one_of(
            st.binary(max_size=256),
            # A valid message cut short, or with a byte changed.
            st.integers(0, max(len(valid) - 1, 0)).map(lambda end: valid[:end]),
            st.tuples(st.integers(0, max(len(valid) - 1, 0)), st.integers(0, 255)).map(
                lambda change: valid[: change[0]] + bytes([change[1]]) + valid[change[0] + 1 :]
            ),
        ),
        label="raw",
    )
    async with grpc.aio.insecure_channel(address) as channel:
        if _parses(kind, raw):
            await _outcome(_raw_call(channel, method, [raw], token))
        else:
            await _assert_malformed(channel, method, [raw], token)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_malformed_message_mid_stream_ends_the_stream_with_invalid_argument(
    indexer: str, db: asyncpg.Connection, token: Metadata
) -> None:
    """On StreamIndexClaims, batches before a malformed message are committed, the stream
    ends with INVALID_ARGUMENT naming the message's position, and nothing after it is written."""
    speaker, subject = actor(), topic()
    batches = [
        index_request(claim(speaker.id, [subject.id]), actors=(speaker,), topics=(subject,)),
        index_request(claim(speaker.id, [subject.id])),
    ]
    malformed = _with_bad_string(indexer_service_pb2.IndexClaimsRequest, NOT_UTF8[0])
    messages = [batches[0].SerializeToString(), malformed, batches[1].SerializeToString()]
    method = next(m for m in _methods(INDEXER) if m[0].endswith("/StreamIndexClaims"))
    async with grpc.aio.insecure_channel(indexer) as channel:
        error = await _assert_malformed(channel, method, messages, token)
    assert "message 2 of the stream" in (error.details() or "")
    stored = await db.fetch(
        "SELECT id FROM claims WHERE id = ANY($1::text[])",
        [batch.claims[0].id for batch in batches],
    )
    assert {row["id"] for row in stored} == {batches[0].claims[0].id}


@pytest.mark.asyncio(loop_scope="session")
async def test_a_malformed_request_without_a_token_is_unauthenticated(indexer: str) -> None:
    """The indexer checks the caller before it reads the request: a malformed request without
    a token gets UNAUTHENTICATED, telling the caller nothing about the method's messages."""
    method = next(m for m in _methods(INDEXER) if m[0].endswith("/IndexClaims"))
    async with grpc.aio.insecure_channel(indexer) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _raw_call(channel, method, [b"\xff\xff\xff"], ())
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.asyncio(loop_scope="session")
async def test_a_refusal_that_echoes_huge_values_still_reaches_the_client(
    indexer_stub: indexer_service_pb2_grpc.IndexerServiceStub,
    retriever_channel: grpc.aio.Channel,
    token: Metadata,
) -> None:
    """Refusals that quote the offending values, however long, arrive as INVALID_ARGUMENT
    naming the field, not as RESOURCE_EXHAUSTED from a client refusing their trailers."""
    stub = retriever_service_pb2_grpc.RetrieverServiceStub(retriever_channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListClaims(retriever_service_pb2.ListClaimsRequest(language="0" * 20_001))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert violated_fields(raised.value) == ["language"]

    huge = "é" * 30_000
    bad_claims = [claim(huge, [huge], f"{huge}{index}", language=huge) for index in range(50)]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await indexer_stub.IndexClaims(
            index_request(*bad_claims, request_id=huge), metadata=token, timeout=CALL_SECONDS
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert violated_fields(raised.value)[0] == "requestId"


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("method", COMMON_METHODS[1:], ids=["Watch", "ServerReflectionInfo"])
async def test_streams_refused_for_malformed_bytes_leave_the_server_running(
    retriever: str, token: Metadata, method: RawMethod
) -> None:
    """Hundreds of response streams refused for malformed bytes, each on a connection its client
    closes as soon as it is answered, leave the retriever serving: its workers once logged such
    a stream's peer after gRPC had freed the call, and died of SIGSEGV."""
    for _ in range(400):
        async with grpc.aio.insecure_channel(retriever) as channel:
            await _assert_malformed(channel, method, [b"\x00"], token)
    assert grpc_serving(retriever)
