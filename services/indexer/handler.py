"""Indexing logic: one batch, one transaction — idempotent, history-keeping, all or nothing.

The handler takes domain values, runs the unit of work against the repository, and returns
what happened. It never sees protobuf; the servicer hands it an `encode` function so that the
first response of a request id can be stored in the same transaction as the writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Generic, TypeVar

import asyncpg

from panoptic.core.db import DATABASE_FAILURES
from panoptic.core.logging import get_logger
from panoptic.core.refusals import Refusal
from panoptic.model.claims import ClaimContent, ClaimRow, ClaimState
from services.indexer import metrics
from services.indexer.domain import (
    BatchResult,
    Change,
    ClaimNotFound,
    ClaimResult,
    CountDeltas,
    Counted,
    CurrentClaim,
    IndexBatch,
    Outcome,
    References,
    Replay,
    RequestIdReused,
    RetractRequest,
    UnknownReferences,
)
from services.indexer.repository import IndexRepository, record_rejection

INDEX_METHOD = "IndexClaims"
RETRACT_METHOD = "RetractClaim"
# Deadlocks and serialisation failures are retried: the transaction did nothing.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_ATTEMPTS = 5

T = TypeVar("T")
log = get_logger("panoptic.indexer")


class IndexingHandler:
    """Runs indexing requests against the database, one transaction each."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], retention: timedelta) -> None:
        self._pool = pool
        self._retention = retention

    async def index(
        self, batch: IndexBatch, fingerprint: bytes, encode: Callable[[BatchResult], bytes]
    ) -> Committed[BatchResult | Replay]:
        """Indexes one batch, or returns the stored response of an earlier identical request."""

        async def work(repository: IndexRepository) -> BatchResult | Replay:
            replay = await self._replay(repository, batch.request_id, INDEX_METHOD, fingerprint)
            if replay is not None:
                return replay
            result = await _index_batch(repository, batch)
            await repository.save_request(
                batch.request_id, INDEX_METHOD, fingerprint, encode(result), self._retention
            )
            return result

        committed = await self._in_transaction(work)
        outcome = committed.outcome
        if isinstance(outcome, BatchResult):
            for kind in Outcome:
                metrics.CLAIMS_INDEXED.labels(kind.value).inc(outcome.count(kind))
            retracted = sum(1 for claim in outcome.claims if claim.change is Change.RETRACTED)
            metrics.CLAIMS_INDEXED.labels("retracted").inc(retracted)
        return committed

    async def retract(
        self, request: RetractRequest, fingerprint: bytes, encode: Callable[[ClaimRow], bytes]
    ) -> Committed[ClaimRow | Replay]:
        """Retracts a claim (a no-op if it is retracted already)."""

        changed = False

        async def work(repository: IndexRepository) -> ClaimRow | Replay:
            nonlocal changed
            replay = await self._replay(repository, request.request_id, RETRACT_METHOD, fingerprint)
            if replay is not None:
                return replay
            stored, changed = await _retract(repository, request)
            await repository.save_request(
                request.request_id, RETRACT_METHOD, fingerprint, encode(stored), self._retention
            )
            return stored

        committed = await self._in_transaction(work)
        if changed:  # counted once committed, whatever retries it took
            metrics.CLAIMS_INDEXED.labels("retracted").inc()
        return committed

    async def record_rejection(
        self, request_id: str, reason: str, violations: list[tuple[str, str]]
    ) -> None:
        """Notes a refused request for operators; best effort, it never changes the answer."""
        summary = "; ".join(f"{field}: {text}" for field, text in violations[:5])
        try:
            async with self._pool().acquire() as connection:
                await record_rejection(connection, request_id, reason, len(violations), summary)
        except DATABASE_FAILURES as error:
            log.warning("could not record a rejection", reason=reason, error=str(error))

    async def unknown_references(self, references: References) -> list[tuple[str, str]]:
        """What a refused batch names that does not exist, so that one answer names every
        problem; read only, and best effort: without the database, the answer names fewer."""
        try:
            async with (
                _borrowed(self._pool()) as connection,
                connection.transaction(readonly=True),
            ):
                return await _unknown_references(IndexRepository(connection), references)
        except DATABASE_FAILURES as error:
            log.warning("could not check a refused batch's references", error=str(error))
            return []

    async def _replay(
        self, repository: IndexRepository, request_id: str, method: str, fingerprint: bytes
    ) -> Replay | None:
        await repository.lock_request_id(request_id)
        stored = await repository.find_request(request_id)
        if stored is None:
            return None
        stored_method, stored_fingerprint, response = stored
        if (stored_method, stored_fingerprint) != (method, fingerprint):
            raise RequestIdReused(request_id)
        return Replay(response)

    async def _in_transaction(
        self, work: Callable[[IndexRepository], Awaitable[T]]
    ) -> Committed[T]:
        """Runs `work` in one transaction, retrying deadlocks; records commit metrics."""
        started = time.perf_counter()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with _borrowed(self._pool()) as connection:
                    async with connection.transaction():
                        result = await work(IndexRepository(connection))
                    position = await _log_position(connection)
            except RETRYABLE:
                if attempt == MAX_ATTEMPTS:
                    metrics.BATCHES.labels("failed").inc()
                    raise
                log.info("retrying after a deadlock", attempt=attempt)
                await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311 - jitter
                continue
            except Refusal:
                metrics.BATCHES.labels("rejected").inc()
                raise
            except BaseException:
                metrics.BATCHES.labels("failed").inc()
                raise
            if isinstance(result, Replay):
                metrics.BATCHES.labels("replayed").inc()
            else:
                metrics.BATCHES.labels("committed").inc()
                metrics.LAST_COMMIT.set_to_current_time()
                metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
            return Committed(result, position)
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class Committed(Generic[T]):
    """What a unit of work returned, and how far the log was written when it had committed."""

    outcome: T
    # The write-ahead log's insert position read after the commit, on the same connection:
    # at or past the commit's record, so a server replayed that far has the commit (and a
    # replay's position covers its first commit, long past). None if it could not be read.
    log_position: int | None


async def _log_position(connection: asyncpg.Connection) -> int | None:
    """The log's insert position, read after a commit; best effort, as the commit is done."""
    try:
        position: int = await connection.fetchval("SELECT pg_current_wal_insert_lsn()")
    except DATABASE_FAILURES as error:
        log.warning("could not read the log position of a commit", error=str(error))
        return None
    return position


@contextlib.asynccontextmanager
async def _borrowed(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection from the pool, given back afterwards; failing to give it back is not an error.

    asyncpg resets a connection as it takes it back and, when that fails because the server has
    closed it, discards it (the pool opens a new one) and raises. Raising would report a batch
    that has committed as failed, or hide the error that did fail it.
    """
    connection = await pool.acquire()
    try:
        yield connection
    finally:
        try:
            await pool.release(connection)
        except Exception as error:  # discarded by the pool already
            log.info("discarded a broken connection", error=type(error).__name__)


async def _index_batch(repository: IndexRepository, batch: IndexBatch) -> BatchResult:
    unknown = await _unknown_references(repository, References.of(batch))
    if unknown:
        raise UnknownReferences(unknown, batch.request_id)
    topics_upserted = await repository.upsert_topics(batch.topics)
    actors_upserted = await repository.upsert_actors(batch.actors)

    ids = [claim.id for claim in batch.claims]
    current = await repository.lock_claims(ids)
    new = [claim for claim in batch.claims if claim.id not in current]
    inserted = await repository.create_claims(new, batch.request_id)
    raced = [claim.id for claim in new if claim.id not in inserted]
    if raced:  # created by a concurrent batch since we looked: now locked, so an update
        current.update(await repository.lock_claims(raced))

    results: list[ClaimResult] = []
    updates: list[tuple[ClaimContent, int]] = []
    revisions: list[tuple[ClaimContent, int, Change, str]] = []
    deltas = CountDeltas()
    for claim in batch.claims:
        after = Counted.of(claim)
        if claim.id in inserted:  # its revision and links were written with it
            results.append(ClaimResult(claim.id, 1, Outcome.CREATED, Change.CREATED))
            deltas.move(None, after)
            continue
        stored = current[claim.id]
        if stored.content_hash == claim.content_hash:
            results.append(ClaimResult(claim.id, stored.revision, Outcome.UNCHANGED))
            continue
        revision = stored.revision + 1
        change = _change_between(stored, claim)
        results.append(ClaimResult(claim.id, revision, Outcome.UPDATED, change))
        updates.append((claim, revision))
        revisions.append((claim, revision, change, ""))
        deltas.move(Counted.of(stored), after)

    await repository.update_claims(updates)
    await repository.append_revisions(revisions, batch.request_id)
    updated = [content for content, _ in updates]
    await repository.link_topics(updated, replaced=[content.id for content in updated])
    await repository.adjust_claim_counts(deltas)
    return BatchResult(tuple(results), actors_upserted, topics_upserted)


def _change_between(stored: CurrentClaim, claim: ClaimContent) -> Change:
    if stored.state is ClaimState.ACTIVE and claim.state is ClaimState.RETRACTED:
        return Change.RETRACTED
    if stored.state is ClaimState.RETRACTED and claim.state is ClaimState.ACTIVE:
        return Change.RESTORED
    return Change.UPDATED


async def _unknown_references(
    repository: IndexRepository, references: References
) -> list[tuple[str, str]]:
    """Actors and topics a batch names that exist neither in it nor in the database, and topic
    parents that would loop, as (field path, description) pairs."""
    batch_topics = {
        topic_id: parent_id for topic_id, parent_id in references.topics if topic_id is not None
    }
    wanted_actors = {actor_id for actor_id, _ in references.claims if actor_id is not None}
    wanted_actors -= references.actor_ids
    known_actors = await repository.existing_actor_ids(wanted_actors) if wanted_actors else set()
    wanted_topics = {topic for _, topic_ids in references.claims for topic in topic_ids if topic}
    wanted_topics |= {parent for parent in batch_topics.values() if parent}
    stored_topics = await repository.topic_ancestry(wanted_topics | batch_topics.keys())
    parents = {**stored_topics, **batch_topics}

    violations: list[tuple[str, str]] = []
    for index, (topic_id, parent_id) in enumerate(references.topics):
        if parent_id is None or topic_id is None:
            continue
        if parent_id not in parents:
            violations.append((f"topics[{index}].parentId", f"unknown topic {parent_id!r}"))
        elif _loops(topic_id, parents):
            violations.append(
                (f"topics[{index}].parentId", "would make the topic its own ancestor")
            )
    for index, (actor_id, topic_ids) in enumerate(references.claims):
        if actor_id is not None and actor_id not in references.actor_ids | known_actors:
            violations.append(
                (f"claims[{index}].actorId", f"unknown actor {actor_id!r}: define it first")
            )
        for position, topic_id in enumerate(topic_ids):
            if topic_id is not None and topic_id not in parents:
                violations.append(
                    (f"claims[{index}].topicIds[{position}]", f"unknown topic {topic_id!r}")
                )
    return violations


def _loops(topic_id: str, parents: dict[str, str | None]) -> bool:
    seen = {topic_id}
    current = parents.get(topic_id)
    while current:
        if current in seen:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


async def _retract(repository: IndexRepository, request: RetractRequest) -> tuple[ClaimRow, bool]:
    """Retracts the claim; returns it and whether this call changed it."""
    stored = await repository.fetch_claim(request.claim_id, lock=True)
    if stored is None:
        raise ClaimNotFound(request.claim_id)
    if stored.state == ClaimState.RETRACTED:
        return stored, False
    content = ClaimContent.of(stored)
    retracted = replace(content, state=ClaimState.RETRACTED)
    revision = stored.revision + 1
    update_times = await repository.update_claims([(retracted, revision)])
    await repository.append_revisions(
        [(retracted, revision, Change.RETRACTED, request.reason)], request.request_id
    )
    deltas = CountDeltas()
    deltas.move(Counted.of(content), Counted.of(retracted))
    await repository.adjust_claim_counts(deltas)
    updated = stored._replace(
        state=retracted.state.value, revision=revision, update_time=update_times[retracted.id]
    )
    return updated, True
