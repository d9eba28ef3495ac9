"""The indexer's one promise under failure: an acknowledged claim is never lost or half-written.

Real `panoptic indexer` processes and real PostgreSQL servers: the indexer killed with SIGKILL
mid-stream, PostgreSQL stopped in immediate mode (a crash) mid-stream, the indexer's database
connections terminated mid-batch, and one request id sent by twenty callers at once. Each test
that breaks something works in a database of its own, so it can count every row.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest

from panoptic.core.consistency import ConsistencyTokens
from panoptic.core.db import SERVICE_ROLES, DatabaseUrl
from panoptic.suite import migrate
from panoptic.suite.demo import generate_corpus
from panoptic.suite.embedded_pg import EmbeddedPostgres
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc
from services.indexer.handler import IndexingHandler
from services.indexer.servicer import IndexerServicer
from services.indexer.validation import Limits
from tests.conftest import random_id
from tests.support.corpus import batches_of
from tests.support.indexer import (
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
    start_indexer,
    stored_claim_ids,
    topic,
    value,
)
from tests.support.processes import PanopticProcess, service_env

pytestmark = pytest.mark.slow

Requests = Sequence[indexer_service_pb2.IndexClaimsRequest]
# How many batches must be committed before the failure is injected: enough to be mid-stream.
COMMITTED_BEFORE_FAILURE = 4


def corpus_batches(claims: int, size: int) -> list[indexer_service_pb2.IndexClaimsRequest]:
    """Deterministic demo-corpus batches with request ids of this test's own."""
    records = generate_corpus(seed=20_251_127, claims=claims, actors=40, topics=24)
    return batches_of(records, size=size, prefix=random_id("load"))


async def wait_until_committed(
    connection: asyncpg.Connection, requests: Requests, count: int, timeout: float = 30
) -> None:
    """Waits until at least `count` of the requests are committed (their ids are stored)."""
    ids = [request.request_id for request in requests]
    deadline = time.monotonic() + timeout
    while await count_committed(connection, ids) < count:
        assert time.monotonic() < deadline, f"fewer than {count} batches committed in {timeout} s"
        await asyncio.sleep(0.01)


async def count_committed(connection: asyncpg.Connection, ids: list[str]) -> int:
    """How many of these request ids have a stored response."""
    count: int = await connection.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE request_id = ANY($1::text[])", ids
    )
    return count


async def batch_states(connection: asyncpg.Connection, requests: Requests) -> list[bool]:
    """For each batch, whether it is committed; fails on a batch that is partly there.

    A committed batch has its response stored and every claim present with exactly one
    revision; an uncommitted one has none of that.
    """
    claim_ids = [claim.id for request in requests for claim in request.claims]
    # One snapshot for the three reads: a batch committing between two of them would otherwise
    # look half-written while the stream goes on.
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        present = await stored_claim_ids(connection, claim_ids)
        revisions = await revision_counts(connection, claim_ids)
        keys = {
            row["request_id"]
            for row in await connection.fetch(
                "SELECT request_id FROM idempotency_keys WHERE request_id = ANY($1::text[])",
                [request.request_id for request in requests],
            )
        }
    states = []
    for request in requests:
        ids = [claim.id for claim in request.claims]
        there = [claim_id in present for claim_id in ids]
        committed = request.request_id in keys
        assert there == [committed] * len(ids), (
            f"batch {request.request_id} is half-written: {sum(there)} of {len(ids)} claims, "
            f"response {'stored' if committed else 'missing'}"
        )
        assert all(revisions.get(claim_id) == (1 if committed else None) for claim_id in ids)
        states.append(committed)
    return states


async def assert_everything_once(connection: asyncpg.Connection, requests: Requests) -> None:
    """Every batch is committed, each claim exactly once with exactly one revision."""
    assert all(await batch_states(connection, requests))
    total = sum(len(request.claims) for request in requests)
    assert await connection.fetchval("SELECT count(*) FROM claims") == total
    assert await connection.fetchval("SELECT count(*) FROM claim_revisions") == total
    assert await connection.fetchval("SELECT count(*) FROM idempotency_keys") == len(requests)
    actor_total = await connection.fetchval("SELECT sum(claim_count) FROM actors")
    assert actor_total == total  # the counts were kept in step, not doubled by the replays


def stream_call(
    address: str, token: Metadata, requests: Requests, pace: float = 0.0
) -> asyncio.Task[indexer_service_pb2.IndexClaimsResponse]:
    """StreamIndexClaims of `requests`, running in the background on a channel of its own.

    With a `pace`, the batches go out that many seconds apart, as a pipeline producing them
    would send them, so that a failure injected after the first few lands mid-stream.
    """

    async def paced() -> AsyncIterator[indexer_service_pb2.IndexClaimsRequest]:
        for request in requests:
            yield request
            await asyncio.sleep(pace)

    async def call() -> indexer_service_pb2.IndexClaimsResponse:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
            # Waits for a connection: a channel to an indexer that was just restarted shares
            # the process's subchannel, which may still be backing off from the refused ones.
            response: indexer_service_pb2.IndexClaimsResponse = await stub.StreamIndexClaims(
                paced(), metadata=token, timeout=60, wait_for_ready=True
            )
            return response

    return asyncio.create_task(call())


def unary_calls(
    address: str, token: Metadata, requests: Requests, acknowledged: list[str]
) -> asyncio.Task[None]:
    """IndexClaims of each request in turn, in the background, noting each acknowledged id."""

    async def calls() -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
            for request in requests:
                await stub.IndexClaims(request, metadata=token, timeout=30)
                acknowledged.append(request.request_id)

    return asyncio.create_task(calls())


async def assert_unavailable(task: asyncio.Task[object]) -> None:
    """Checks that a background call failed as a call does when its server or database goes.

    A client write racing the end of a streaming call can make grpc's asyncio client report
    INTERNAL "Internal error from Core" in place of the status (grpc/grpc#36066); for the caller
    it is the same failure, with nothing acknowledged, so it is accepted as such.
    """
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asyncio.wait_for(task, timeout=60)
    error = raised.value
    client_write_race = (
        error.code() == grpc.StatusCode.INTERNAL and error.details() == "Internal error from Core"
    )
    assert error.code() == grpc.StatusCode.UNAVAILABLE or client_write_race, error


# --- the indexer killed ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "unary"])
@pytest.mark.asyncio(loop_scope="session")
async def test_kill_9_mid_stream_loses_no_acknowledged_batch(
    fresh_database: DatabaseUrl, tmp_path: Path, mode: str
) -> None:
    """After SIGKILL mid-load, committed batches are whole, acknowledged ones all there, and a
    resumed run with the same request ids completes the load with nothing duplicated."""
    requests = corpus_batches(claims=2_400, size=100)
    env = service_env(fresh_database.value, tmp_path / "data")
    address, token = address_of(env), bearer(env)
    connection = await asyncpg.connect(fresh_database.value)
    process = start_indexer(env, tmp_path / "indexer-1.log")
    try:
        acknowledged: list[str] = []
        load = (
            stream_call(address, token, requests, pace=0.02)
            if mode == "stream"
            else unary_calls(address, token, requests, acknowledged)
        )
        await wait_until_committed(connection, requests, COMMITTED_BEFORE_FAILURE)
        process.stop(signal.SIGKILL)
        await assert_unavailable(load)

        states = await batch_states(connection, requests)
        committed = sum(states)
        assert COMMITTED_BEFORE_FAILURE <= committed < len(requests), "not killed mid-load"
        assert states == [True] * committed + [False] * (len(requests) - committed)
        for request, state in zip(requests, states, strict=True):
            assert state or request.request_id not in acknowledged

        process = start_indexer(env, tmp_path / "indexer-2.log")
        # A pipeline resumes by sending every batch again with the same request ids.
        total = await stream_call(address, token, requests)
        claims = sum(len(request.claims) for request in requests)
        # Replayed batches answer as they did the first time: every claim was created once.
        assert (total.created, total.updated, total.unchanged) == (claims, 0, 0)
        assert (total.batches, total.replayed_batches) == (len(requests), committed)
        await assert_everything_once(connection, requests)
    finally:
        process.stop()
        await connection.close()


# --- PostgreSQL crashed ------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_postgres_crash_mid_stream_loses_no_committed_batch(tmp_path: Path) -> None:
    """PostgreSQL stopped in immediate mode mid-stream: the client sees UNAVAILABLE, every batch
    committed before the crash survives it, and after the restart the stream resumes."""
    server = EmbeddedPostgres(tmp_path / "pg")
    await asyncio.to_thread(server.ensure_started)
    process: PanopticProcess | None = None
    try:
        owner = DatabaseUrl(await server.ensure_owner_database())
        await migrate.upgrade_async(owner)
        requests = corpus_batches(claims=2_400, size=100)
        env = service_env(owner.value, tmp_path / "data")
        address, token = address_of(env), bearer(env)
        process = start_indexer(env, tmp_path / "indexer.log")

        load = stream_call(address, token, requests, pace=0.05)
        connection = await asyncpg.connect(owner.value)
        try:
            await wait_until_committed(connection, requests, COMMITTED_BEFORE_FAILURE)
            seen_committed = await batch_states(connection, requests)
        finally:
            await connection.close()
        await asyncio.to_thread(server.stop, "immediate")
        await assert_unavailable(load)

        async with grpc.aio.insecure_channel(address) as channel:
            stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.IndexClaims(requests[-1], metadata=token, timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_reason(refused.value) == "DATABASE_UNAVAILABLE"

        await asyncio.to_thread(server.ensure_started)
        connection = await asyncpg.connect(owner.value)
        try:
            states = await batch_states(connection, requests)
            committed = sum(states)
            assert committed < len(requests), "the crash came after the stream had finished"
            assert states == [True] * committed + [False] * (len(requests) - committed)
            lost = [
                request.request_id
                for request, seen, now in zip(requests, seen_committed, states, strict=True)
                if seen and not now
            ]
            assert lost == [], "batches committed before the crash are gone"

            total = await stream_call(address, token, requests)  # the pool has recovered
            assert (total.batches, total.replayed_batches) == (len(requests), committed)
            assert total.created == sum(len(request.claims) for request in requests)
            await assert_everything_once(connection, requests)
        finally:
            await connection.close()
    finally:
        if process is not None:
            process.stop()
        await asyncio.to_thread(server.stop)


# --- connections terminated ----------------------------------------------------------------------


async def terminate_indexer_backends(url: DatabaseUrl, stop: asyncio.Event) -> int:
    """Terminates the indexer role's connections to the database every 10 to 150 ms until
    `stop` is set; returns how many it terminated. The longer gaps let a batch, which must
    first open a new connection, get through even on a loaded machine."""
    connection = await asyncpg.connect(url.value)
    terminated = 0
    try:
        while not stop.is_set():
            terminated += await connection.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE usename = 'panoptic_indexer' AND datname = current_database()"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), random.uniform(0.01, 0.15))  # noqa: S311
    finally:
        await connection.close()
    return terminated


@pytest.mark.asyncio(loop_scope="session")
async def test_terminated_connections_fail_batches_cleanly_and_the_pool_recovers(
    fresh_database: DatabaseUrl, tmp_path: Path
) -> None:
    """With its connections killed mid-batch, each call commits whole or fails UNAVAILABLE
    with nothing written, and once the killing stops the next batch succeeds."""
    env = service_env(fresh_database.value, tmp_path / "data")
    address, token = address_of(env), bearer(env)
    jane, energy = actor(), topic()
    with running_indexer(env, tmp_path / "indexer.log"):
        async with grpc.aio.insecure_channel(address) as channel:
            stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
            setup = index_request(actors=(jane,), topics=(energy,))
            await stub.IndexClaims(setup, metadata=token, timeout=10)

            stop = asyncio.Event()
            killer = asyncio.create_task(terminate_indexer_backends(fresh_database, stop))
            outcomes: list[tuple[indexer_service_pb2.IndexClaimsRequest, grpc.StatusCode]] = []
            deadline = time.monotonic() + 20

            def done() -> bool:
                codes = {code for _, code in outcomes}
                both = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE} <= codes
                return (len(outcomes) >= 100 and both) or time.monotonic() > deadline

            try:
                while not done():
                    request = index_request(*(claim(jane.id, [energy.id]) for _ in range(20)))
                    try:
                        await stub.IndexClaims(request, metadata=token, timeout=10)
                        outcomes.append((request, grpc.StatusCode.OK))
                    except grpc.aio.AioRpcError as error:
                        outcomes.append((request, error.code()))
            finally:
                stop.set()
                terminated = await killer

            after = index_request(*(claim(jane.id, [energy.id]) for _ in range(20)))
            recovered = await stub.IndexClaims(after, metadata=token, timeout=10)
        assert recovered.created == 20

    codes = [code for _, code in outcomes]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
    assert terminated > 0
    assert grpc.StatusCode.UNAVAILABLE in codes, "no batch was interrupted"
    assert grpc.StatusCode.OK in codes, "no batch got through between terminations"
    connection = await asyncpg.connect(fresh_database.value)
    try:
        for request, code in outcomes:
            ids = [claim.id for claim in request.claims]
            counts = await revision_counts(connection, ids)
            if code == grpc.StatusCode.OK:
                assert counts == dict.fromkeys(ids, 1), f"{request.request_id} acknowledged"
            else:
                assert counts == {}, f"{request.request_id} failed yet {len(counts)} are stored"
            assert len(await stored_claim_ids(connection, ids)) == len(counts)
        succeeded = 20 * (codes.count(grpc.StatusCode.OK) + 1)
        assert await connection.fetchval("SELECT count(*) FROM claims") == succeeded
        assert (
            await connection.fetchval("SELECT claim_count FROM actors WHERE id = $1", jane.id)
            == succeeded
        )
    finally:
        await connection.close()


# --- no connection slot left ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def indexer_in_process(
    pool: asyncpg.Pool,
) -> AsyncIterator[indexer_service_pb2_grpc.IndexerServiceStub]:
    """The indexer's servicer on `pool`, served over gRPC on loopback in this process."""
    server = grpc.aio.server()
    handler = IndexingHandler(lambda: pool, timedelta(days=1))
    indexer_service_pb2_grpc.add_IndexerServiceServicer_to_server(
        IndexerServicer(handler, Limits(), ConsistencyTokens(b"k" * 32)), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield indexer_service_pb2_grpc.IndexerServiceStub(channel)
    finally:
        await server.stop(None)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_database_with_no_connection_slot_left_is_unavailable(
    fresh_database: DatabaseUrl,
) -> None:
    """PostgreSQL refusing the indexer a connection (too many connections, SQLSTATE 53300) is
    UNAVAILABLE with the DATABASE_UNAVAILABLE reason, as any lost database is, not UNKNOWN."""
    owner = await asyncpg.connect(fresh_database.value)
    try:
        await owner.execute(f'ALTER DATABASE "{fresh_database.database}" CONNECTION LIMIT 0')
    finally:
        await owner.close()
    # A role that is no superuser, for the limit binds every other role.
    url = fresh_database.with_user(SERVICE_ROLES["indexer"])
    pool = await asyncpg.create_pool(url.value, min_size=0, max_size=1)
    try:
        with pytest.raises(asyncpg.TooManyConnectionsError):
            await pool.fetchval("SELECT 1")
        async with indexer_in_process(pool) as stub:
            author, subject = actor(), topic()
            batch = index_request(
                claim(author.id, [subject.id]), actors=(author,), topics=(subject,)
            )
            calls = [
                stub.IndexClaims(batch, timeout=30),
                stub.RetractClaim(
                    indexer_service_pb2.RetractClaimRequest(
                        claim_id=random_id("c"), reason="wrong", request_id=random_id("req")
                    ),
                    timeout=30,
                ),
            ]
            for call in calls:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
                assert error_reason(refused.value) == "DATABASE_UNAVAILABLE"
                assert "nothing was committed" in (refused.value.details() or "")
    finally:
        await pool.close()


# --- one request id, many callers ----------------------------------------------------------------


async def call_concurrently(
    address: str, token: Metadata, requests: Requests
) -> list[indexer_service_pb2.IndexClaimsResponse | grpc.aio.AioRpcError]:
    """IndexClaims of every request at once, each from a caller (a channel) of its own."""
    channels = [grpc.aio.insecure_channel(address) for _ in requests]
    try:
        results: list[
            indexer_service_pb2.IndexClaimsResponse | grpc.aio.AioRpcError
        ] = await asyncio.gather(
            *(
                indexer_service_pb2_grpc.IndexerServiceStub(channel).IndexClaims(
                    request, metadata=token, timeout=30
                )
                for channel, request in zip(channels, requests, strict=True)
            ),
            return_exceptions=True,
        )
        return results
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))


@pytest.mark.asyncio(loop_scope="session")
async def test_one_request_id_from_twenty_callers_has_one_effect(
    indexer: str, token: Metadata, services_env: dict[str, str], database_url: DatabaseUrl
) -> None:
    """Twenty concurrent callers of one request get twenty identical answers; it is written once."""
    metrics_port = services_env["PANOPTIC_INDEXER_METRICS_PORT"]
    jane, energy = actor(), topic()
    request = index_request(
        *(claim(jane.id, [energy.id]) for _ in range(5)), actors=(jane,), topics=(energy,)
    )
    before = scrape(metrics_port)
    responses = await call_concurrently(indexer, token, [request] * 20)
    after = scrape(metrics_port)

    answers = set()
    for response in responses:
        assert isinstance(response, indexer_service_pb2.IndexClaimsResponse), response
        answers.add(response.SerializeToString(deterministic=True))
    assert len(answers) == 1
    assert indexer_service_pb2.IndexClaimsResponse.FromString(answers.pop()).created == 5
    ids = [claim.id for claim in request.claims]
    connection = await asyncpg.connect(database_url.value)
    try:
        assert await revision_counts(connection, ids) == dict.fromkeys(ids, 1)
        assert (
            await connection.fetchval("SELECT claim_count FROM actors WHERE id = $1", jane.id) == 5
        )
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM idempotency_keys WHERE request_id = $1", request.request_id
            )
            == 1
        )
    finally:
        await connection.close()

    def batches(result: str) -> float:
        return value(after, "panoptic_indexer_batches_total", result=result) - value(
            before, "panoptic_indexer_batches_total", result=result
        )

    assert (batches("committed"), batches("replayed")) == (1, 19)


@pytest.mark.asyncio(loop_scope="session")
async def test_one_request_id_with_two_payloads_at_once_keeps_one(
    indexer: str, token: Metadata, database_url: DatabaseUrl
) -> None:
    """When two payloads race for one request id, one wins whole; the other's callers are told
    REQUEST_ID_REUSED, and none of the other payload is written."""
    jane, energy = actor(), topic()
    request_id = random_id("req")
    payloads = [
        index_request(
            *(claim(jane.id, [energy.id]) for _ in range(3)),
            actors=(jane,),
            topics=(energy,),
            request_id=request_id,
        )
        for _ in range(2)
    ]
    results = await call_concurrently(indexer, token, [payloads[n % 2] for n in range(20)])

    winners = {n % 2 for n, result in enumerate(results) if not isinstance(result, BaseException)}
    assert len(winners) == 1
    winner = winners.pop()
    for n, result in enumerate(results):
        if n % 2 == winner:
            assert isinstance(result, indexer_service_pb2.IndexClaimsResponse)
            assert result.created == 3
        else:
            assert isinstance(result, grpc.aio.AioRpcError)
            assert result.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error_reason(result) == "REQUEST_ID_REUSED"
    connection = await asyncpg.connect(database_url.value)
    try:
        for n, payload in enumerate(payloads):
            ids = [claim.id for claim in payload.claims]
            expected = set(ids) if n == winner else set()
            assert await stored_claim_ids(connection, ids) == expected
    finally:
        await connection.close()
