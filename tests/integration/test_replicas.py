"""Reads on streaming replicas, for real: an embedded primary with two replicas made by the
suite's `ensure_replicas`, a real indexer on the primary and a real retriever given both.

Lag is made deterministic with `pg_wal_replay_pause()` on a replica; failures are a replica's
postmaster killed outright and the primary stopped immediately (a crash).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest
import pytest_asyncio

from panoptic.core.consistency import CONSISTENCY_TOKEN_METADATA
from panoptic.suite.embedded_pg import DATABASE, EmbeddedPostgres
from panoptic.v1 import (
    indexer_service_pb2,
    indexer_service_pb2_grpc,
    resources_pb2,
    retriever_service_pb2,
    retriever_service_pb2_grpc,
)
from tests.support.indexer import (
    Metadata,
    actor,
    bearer,
    claim,
    error_reason,
    index_request,
    scrape,
    topic,
    value,
    violated_fields,
)
from tests.support.processes import (
    PanopticProcess,
    grpc_address,
    service_env,
    start_grpc_service,
    wait_for,
)
from tests.support.replication import (
    ReplicatedDatabase,
    kill_server,
    replica_env,
    replicated_database,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# How many write-then-read pairs must all see their write (the figure).
PAIRS = 10_000
PAIRS_IN_FLIGHT = 32


@dataclass
class Suite:
    """The replicated database, and an indexer and a retriever serving it."""

    database: ReplicatedDatabase
    indexer: indexer_service_pb2_grpc.IndexerServiceStub
    retriever: retriever_service_pb2_grpc.RetrieverServiceStub
    token: Metadata
    retriever_metrics_port: str
    actor_id: str
    topic_id: str

    def reads_by_server(self) -> Counter[str]:
        """The retriever's reads so far, by the server that served them."""
        samples = scrape(self.retriever_metrics_port).get("panoptic_db_reads_total", [])
        return Counter({labels["server"]: number for labels, number in samples})

    def metric(self, name: str, **labels: str) -> float:
        """One of the retriever's metrics, summed over the samples matching `labels`."""
        return value(scrape(self.retriever_metrics_port), name, **labels)

    async def write(self, text: str = "A claim to read back.") -> tuple[str, str]:
        """Indexes one new claim; its id and the answer's consistency token."""
        new = claim(self.actor_id, [self.topic_id], text=text)
        response = await self.indexer.IndexClaims(
            index_request(new), metadata=self.token, timeout=10
        )
        return new.id, response.consistency_token

    async def read(self, claim_id: str, token: str = "") -> bool:
        """Whether GetClaim finds the claim (NOT_FOUND: it does not, yet)."""
        try:
            await self.retriever.GetClaim(
                retriever_service_pb2.GetClaimRequest(claim_id=claim_id, consistency_token=token),
                timeout=10,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replication")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(base_dir: Path) -> AsyncIterator[ReplicatedDatabase]:
    async with replicated_database(base_dir, replicas=2) as database:
        yield database


@pytest.fixture(scope="module")
def services(
    database: ReplicatedDatabase, base_dir: Path
) -> Iterator[tuple[dict[str, str], list[PanopticProcess]]]:
    env = service_env(database.owner_url.value, base_dir / "data", **replica_env(database))
    indexer = start_grpc_service("indexer", env, base_dir / "indexer.log")
    try:
        retriever = start_grpc_service("retriever", env, base_dir / "retriever.log")
    except BaseException:
        indexer.stop()
        raise
    try:
        yield env, [indexer, retriever]
    finally:
        for process in (retriever, indexer):
            process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def suite(
    database: ReplicatedDatabase, services: tuple[dict[str, str], list[PanopticProcess]]
) -> AsyncIterator[Suite]:
    env, _ = services
    jane, energy = actor(), topic()
    async with (
        grpc.aio.insecure_channel(grpc_address("indexer", env)) as indexer_channel,
        grpc.aio.insecure_channel(grpc_address("retriever", env)) as retriever_channel,
    ):
        suite = Suite(
            database,
            indexer_service_pb2_grpc.IndexerServiceStub(indexer_channel),
            retriever_service_pb2_grpc.RetrieverServiceStub(retriever_channel),
            bearer(env),
            env["PANOPTIC_RETRIEVER_METRICS_PORT"],
            jane.id,
            energy.id,
        )
        await suite.indexer.IndexClaims(
            index_request(actors=(jane,), topics=(energy,)), metadata=suite.token, timeout=10
        )
        wait_for(lambda: suite.metric("panoptic_db_replica_serving") == 2, timeout=30)
        yield suite


async def test_every_indexer_answer_carries_a_consistency_token(suite: Suite) -> None:
    """IndexClaims, StreamIndexClaims and RetractClaim each give a token, in their answer and
    in the trailing metadata, and a later write's stands for a later position."""
    first = claim(suite.actor_id, [suite.topic_id])
    call = suite.indexer.IndexClaims(index_request(first), metadata=suite.token, timeout=10)
    indexed = await call
    trailing = dict(await call.trailing_metadata())
    assert indexed.consistency_token
    assert trailing[CONSISTENCY_TOKEN_METADATA] == indexed.consistency_token

    async def batches() -> AsyncIterator[indexer_service_pb2.IndexClaimsRequest]:
        for _ in range(3):
            yield index_request(claim(suite.actor_id, [suite.topic_id]))

    stream = suite.indexer.StreamIndexClaims(batches(), metadata=suite.token, timeout=10)
    streamed = await stream
    assert streamed.batches == 3
    assert dict(await stream.trailing_metadata())[CONSISTENCY_TOKEN_METADATA] == (
        streamed.consistency_token
    )

    retract = suite.indexer.RetractClaim(
        indexer_service_pb2.RetractClaimRequest(claim_id=first.id, request_id=f"r-{first.id}"),
        metadata=suite.token,
        timeout=10,
    )
    await retract
    retracted_token = dict(await retract.trailing_metadata())[CONSISTENCY_TOKEN_METADATA]
    tokens = {indexed.consistency_token, streamed.consistency_token, retracted_token}
    assert len(tokens) == 3
    retracted = await suite.retriever.GetClaim(
        retriever_service_pb2.GetClaimRequest(claim_id=first.id, consistency_token=retracted_token),
        timeout=10,
    )
    assert retracted.state == resources_pb2.CLAIM_STATE_RETRACTED


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "A" * 28,  # the right length, a forged signature
        "AQAAAAAAAAAAAAAAAAAAAAAAAAA",  # one character short
        "é" * 28,
    ],
)
async def test_a_malformed_or_forged_token_is_invalid_argument_naming_it(
    suite: Suite, token: str
) -> None:
    """Every read refuses a token the indexer did not issue, naming `consistencyToken`."""
    requests: list[tuple[Callable[..., Awaitable[object]], object]] = [
        (suite.retriever.GetClaim, retriever_service_pb2.GetClaimRequest(claim_id="c-1")),
        (suite.retriever.ListClaims, retriever_service_pb2.ListClaimsRequest()),
        (suite.retriever.SearchClaims, retriever_service_pb2.SearchClaimsRequest(query="wind")),
        (
            suite.retriever.ListClaimRevisions,
            retriever_service_pb2.ListClaimRevisionsRequest(claim_id="c-1"),
        ),
        (suite.retriever.GetActor, retriever_service_pb2.GetActorRequest(actor_id="a-1")),
        (suite.retriever.ListActors, retriever_service_pb2.ListActorsRequest()),
        (
            suite.retriever.GetActorTimeline,
            retriever_service_pb2.GetActorTimelineRequest(
                actor_id="a-1", interval=retriever_service_pb2.TIMELINE_INTERVAL_DAY
            ),
        ),
        (suite.retriever.GetTopic, retriever_service_pb2.GetTopicRequest(topic_id="t-1")),
        (suite.retriever.ListTopics, retriever_service_pb2.ListTopicsRequest()),
    ]
    for method, request in requests:
        request.consistency_token = token  # type: ignore[attr-defined]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await method(request, timeout=10)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, method
        assert violated_fields(refused.value) == ["consistencyToken"], method
        assert error_reason(refused.value) == "INVALID_CONSISTENCY_TOKEN"


async def test_reads_without_a_token_are_spread_over_the_replicas(suite: Suite) -> None:
    """With both replicas well, reads go to each in turn and none to the primary."""
    claim_id, token = await suite.write()
    assert await suite.read(claim_id, token)
    before = suite.reads_by_server()
    request = retriever_service_pb2.ListClaimsRequest(actor_id=suite.actor_id, page_size=5)
    for _ in range(40):
        await suite.retriever.ListClaims(request, timeout=10)
    served = suite.reads_by_server() - before
    assert set(served) == {name for name in served if name != "primary"}, served
    assert len(served) == 2, served
    assert min(served.values()) >= 15, served


@pytest.mark.timeout(900)  # 10,000 writes and reads: about two minutes on a busy machine
async def test_a_token_sees_its_write_on_a_lagging_replica_and_no_token_may_not(
    suite: Suite,
) -> None:
    """With one replica's replay paused: reads without a token may miss a fresh write, never
    one older than the lag bound; a read with the write's token never misses it
    (10,000 pairs); once replay resumes, the replica serves again."""
    paused = suite.database.replicas[0]
    await suite.database.run_on(paused, "SELECT pg_wal_replay_pause()")
    try:
        misses = 0
        for _ in range(20):  # within the bound: the paused replica still takes reads
            claim_id, _ = await suite.write()
            misses += not await suite.read(claim_id)
        assert misses >= 1, "no read without a token reached the paused replica"

        outcomes_before = {
            outcome: suite.metric("panoptic_db_consistent_reads_total", outcome=outcome)
            for outcome in ("replica", "waited", "primary")
        }
        started = time.monotonic()
        written, stale = await _write_then_read(suite, PAIRS)
        elapsed = time.monotonic() - started
        assert stale == [], f"{len(stale)} of {PAIRS} reads with a token missed their write"
        outcomes = {
            outcome: suite.metric("panoptic_db_consistent_reads_total", outcome=outcome) - before
            for outcome, before in outcomes_before.items()
        }
        print(f"{PAIRS} write-then-read pairs in {elapsed:.1f} s, 0 stale; served: {outcomes}")
        assert sum(outcomes.values()) == PAIRS

        # The paused replica now lags beyond the 2 s bound: no read without a token is served
        # there, so none misses a write older than the bound.
        assert suite.metric("panoptic_db_replica_serving", replica=_name(paused)) == 0
        assert (
            suite.metric(
                "panoptic_db_replica_ejections_total", replica=_name(paused), reason="lagging"
            )
            >= 1
        )
        old = written[:200]
        found = await asyncio.gather(*(suite.read(claim_id) for claim_id in old))
        assert all(found), f"{found.count(False)} reads without a token were staler than 2 s"
    finally:
        await suite.database.run_on(paused, "SELECT pg_wal_replay_resume()")
    wait_for(lambda: suite.metric("panoptic_db_replica_serving", replica=_name(paused)) == 1)
    before = suite.reads_by_server()[_name(paused)]
    request = retriever_service_pb2.ListClaimsRequest(actor_id=suite.actor_id, page_size=1)
    for _ in range(10):
        await suite.retriever.ListClaims(request, timeout=10)
    assert suite.reads_by_server()[_name(paused)] > before


async def test_with_every_replica_lagging_the_primary_serves(suite: Suite) -> None:
    """Both replicas paused beyond the bound: reads without a token go to the primary and see
    the latest write; resumed, the replicas take the reads back."""
    replicas = suite.database.replicas
    for replica in replicas:
        await suite.database.run_on(replica, "SELECT pg_wal_replay_pause()")
    try:
        await suite.write()  # something to lag behind
        wait_for(lambda: suite.metric("panoptic_db_replica_serving") == 0, timeout=30)
        before = suite.reads_by_server()
        claim_id, _ = await suite.write()
        assert await suite.read(claim_id)
        served = suite.reads_by_server() - before
        assert set(served) == {"primary"}, served
    finally:
        for replica in replicas:
            await suite.database.run_on(replica, "SELECT pg_wal_replay_resume()")
    wait_for(lambda: suite.metric("panoptic_db_replica_serving") == 2, timeout=30)


async def test_a_replica_killed_under_read_load_fails_no_read(suite: Suite) -> None:
    """kill -9 of a replica's postmaster while reads run: every read succeeds (the next
    server takes it), the replica is taken out, and put back once it runs again."""
    claim_id, token = await suite.write()
    assert await suite.read(claim_id, token)
    victim = suite.database.replicas[1]
    load = _ReadLoad(suite, claim_id)
    async with load:
        await asyncio.sleep(0.5)
        kill_server(victim)
        await asyncio.sleep(1.0)
    assert load.failures == [], load.failures[:3]
    assert load.reads > 100
    assert (
        suite.metric("panoptic_db_replica_ejections_total", replica=_name(victim), reason="failed")
        >= 1
    )
    _restart(lambda: victim.ensure_replica_of(suite.database.primary, "panoptic_replica_2"))
    wait_for(lambda: suite.metric("panoptic_db_replica_serving", replica=_name(victim)) == 1)
    print(f"{load.reads} reads, 0 failed, while a replica was killed")


async def test_reads_survive_the_primary_and_nothing_acknowledged_is_lost(suite: Suite) -> None:
    """The primary stopped immediately under read and write load: reads keep succeeding from
    the replicas, writes fail with UNAVAILABLE, and once the primary is back every write it
    acknowledged is there and writing resumes."""
    claim_id, token = await suite.write()
    assert await suite.read(claim_id, token)
    primary = suite.database.primary
    acknowledged: list[str] = []
    refused: Counter[grpc.StatusCode] = Counter()

    async def keep_writing(until: float) -> None:
        while time.monotonic() < until:
            try:
                written, _ = await suite.write()
            except grpc.aio.AioRpcError as error:
                refused[error.code()] += 1
                await asyncio.sleep(0.05)
            else:
                acknowledged.append(written)

    load = _ReadLoad(suite, claim_id)
    async with load:
        writer = asyncio.create_task(keep_writing(time.monotonic() + 4))
        await asyncio.sleep(1.0)
        primary.stop("immediate")
        await asyncio.sleep(2.5)
        outage_reads = load.reads
        await writer
    assert load.failures == [], load.failures[:3]
    assert outage_reads > 100
    assert set(refused) == {grpc.StatusCode.UNAVAILABLE}, refused
    assert acknowledged

    primary.ensure_started()
    connection = await asyncpg.connect(primary.url(database=DATABASE))
    try:
        stored = await connection.fetchval(
            "SELECT count(*) FROM claims WHERE id = ANY($1::text[])", acknowledged
        )
    finally:
        await connection.close()
    assert stored == len(acknowledged)
    written, token = await _retry_unavailable(suite.write)
    assert await suite.read(written, token)
    print(f"{outage_reads} reads, 0 failed; {len(acknowledged)} writes acknowledged, all kept")


async def _write_then_read(suite: Suite, pairs: int) -> tuple[list[str], list[str]]:
    """`pairs` writes, each read back with its token; the ids written and those not found."""
    written: list[str] = []
    stale: list[str] = []
    queue = iter(range(pairs))

    async def worker() -> None:
        for _ in queue:
            claim_id, token = await suite.write()
            written.append(claim_id)
            if not await suite.read(claim_id, token):
                stale.append(claim_id)

    await asyncio.gather(*(worker() for _ in range(PAIRS_IN_FLIGHT)))
    return written, stale


class _ReadLoad:
    """Reads without a token, eight at a time, for as long as the block runs."""

    def __init__(self, suite: Suite, claim_id: str) -> None:
        self._suite = suite
        self._claim_id = claim_id
        self._running = True
        self._tasks: list[asyncio.Task[None]] = []
        self.reads = 0
        self.failures: list[str] = []

    async def __aenter__(self) -> _ReadLoad:
        self._tasks = [asyncio.create_task(self._reader()) for _ in range(8)]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._running = False
        await asyncio.gather(*self._tasks)

    async def _reader(self) -> None:
        listing = retriever_service_pb2.ListClaimsRequest(actor_id=self._suite.actor_id)
        while self._running:
            try:
                if self.reads % 2:
                    await self._suite.retriever.ListClaims(listing, timeout=5)
                else:
                    assert await self._suite.read(self._claim_id)
            except (grpc.aio.AioRpcError, AssertionError) as error:
                self.failures.append(repr(error)[:300])
            self.reads += 1


def _name(replica: EmbeddedPostgres) -> str:
    """A replica's name in the retriever's metrics: its socket directory and port."""
    return f"{replica.socket_dir}:{replica.port}"


def _restart(start: Callable[[], object], timeout: float = 30) -> None:
    """Starts a killed server again, once its last backend has left its shared memory."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            start()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def _retry_unavailable(
    call: Callable[[], Awaitable[tuple[str, str]]], timeout: float = 30
) -> tuple[str, str]:
    """`call`, again while it is UNAVAILABLE (a service reconnecting to the primary)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
