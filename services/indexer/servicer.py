"""The IndexerService servicer: protobuf in, domain values to the handler, protobuf out.

It validates requests (every problem at once, before anything is written), fingerprints them
for idempotency, and maps the handler's refusals and database failures to gRPC statuses with
machine-readable reasons. The logic lives in `handler`, the SQL in `repository`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC

import asyncpg
import grpc
from google.protobuf import timestamp_pb2

from panoptic.core.rpc_status import abort, abort_invalid
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc, resources_pb2
from services.indexer import metrics
from services.indexer.domain import (
    ActorRecord,
    BatchResult,
    ClaimContent,
    ClaimNotFound,
    ClaimState,
    IndexBatch,
    Outcome,
    Replay,
    RequestIdReused,
    RetractRequest,
    StoredClaim,
    TopicRecord,
    UnknownReferences,
)
from services.indexer.handler import IndexingHandler
from services.indexer.validation import (
    Limits,
    normalise_language,
    validate_index_request,
    validate_retract_request,
)

_OUTCOMES = {
    Outcome.CREATED: indexer_service_pb2.INDEX_OUTCOME_CREATED,
    Outcome.UPDATED: indexer_service_pb2.INDEX_OUTCOME_UPDATED,
    Outcome.UNCHANGED: indexer_service_pb2.INDEX_OUTCOME_UNCHANGED,
}
_KINDS = {
    resources_pb2.ACTOR_KIND_UNSPECIFIED: "OTHER",
    resources_pb2.ACTOR_KIND_PERSON: "PERSON",
    resources_pb2.ACTOR_KIND_ORGANISATION: "ORGANISATION",
    resources_pb2.ACTOR_KIND_OTHER: "OTHER",
}
# Failures of the database connection itself: nothing was committed, and a retry with the same
# request id is safe (if the commit did happen, the retry replays its response).
DATABASE_UNAVAILABLE = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    OSError,
    TimeoutError,
)


class IndexerServicer(indexer_service_pb2_grpc.IndexerServiceServicer):
    """IndexClaims, StreamIndexClaims and RetractClaim."""

    def __init__(self, handler: IndexingHandler, limits: Limits) -> None:
        self._handler = handler
        self._limits = limits

    async def IndexClaims(  # noqa: N802 - named by the proto
        self, request: indexer_service_pb2.IndexClaimsRequest, context: grpc.aio.ServicerContext
    ) -> indexer_service_pb2.IndexClaimsResponse:
        """Indexes one batch atomically."""
        return await self._index(request, context)

    async def StreamIndexClaims(  # noqa: N802 - named by the proto
        self,
        request_iterator: AsyncIterator[indexer_service_pb2.IndexClaimsRequest],
        context: grpc.aio.ServicerContext,
    ) -> indexer_service_pb2.IndexClaimsResponse:
        """Indexes each batch of the stream as it arrives; answers with the totals."""
        total = indexer_service_pb2.IndexClaimsResponse()
        async for request in request_iterator:
            response = await self._index(request, context)
            total.created += response.created
            total.updated += response.updated
            total.unchanged += response.unchanged
            total.actors_upserted += response.actors_upserted
            total.topics_upserted += response.topics_upserted
            total.batches += 1
        return total

    async def RetractClaim(  # noqa: N802 - named by the proto
        self, request: indexer_service_pb2.RetractClaimRequest, context: grpc.aio.ServicerContext
    ) -> resources_pb2.Claim:
        """Retracts one claim, keeping it and its history."""
        violations = validate_retract_request(request)
        if violations:
            metrics.REJECTED.labels("invalid_argument").inc()
            await abort_invalid(context, [(v.field, v.description) for v in violations])
        retraction = RetractRequest(request.request_id, request.claim_id, request.reason)
        try:
            outcome = await self._handler.retract(
                retraction,
                _fingerprint(request),
                lambda claim: _claim_message(claim).SerializeToString(),
            )
        except ClaimNotFound:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"claim {request.claim_id!r} does not exist",
                "CLAIM_NOT_FOUND",
                metadata={"claimId": request.claim_id},
            )
        except RequestIdReused:
            await _abort_reused(context, request.request_id)
        except DATABASE_UNAVAILABLE:
            await _abort_unavailable(context)
        if isinstance(outcome, Replay):
            return resources_pb2.Claim.FromString(outcome.response)
        return _claim_message(outcome)

    async def _index(
        self, request: indexer_service_pb2.IndexClaimsRequest, context: grpc.aio.ServicerContext
    ) -> indexer_service_pb2.IndexClaimsResponse:
        violations = validate_index_request(request, self._limits)
        if violations:
            reason = (
                "BATCH_TOO_LARGE"
                if any(v.reason == "BATCH_TOO_LARGE" for v in violations)
                else "INVALID_ARGUMENT"
            )
            metrics.REJECTED.labels(reason.lower()).inc()
            await abort_invalid(context, [(v.field, v.description) for v in violations], reason)
        try:
            outcome = await self._handler.index(
                _batch(request), _fingerprint(request), lambda r: _response(r).SerializeToString()
            )
        except UnknownReferences as error:
            metrics.REJECTED.labels("unknown_reference").inc()
            await abort_invalid(context, error.violations, "UNKNOWN_REFERENCE")
        except RequestIdReused:
            await _abort_reused(context, request.request_id)
        except DATABASE_UNAVAILABLE:
            await _abort_unavailable(context)
        if isinstance(outcome, Replay):
            return indexer_service_pb2.IndexClaimsResponse.FromString(outcome.response)
        return _response(outcome)


async def _abort_reused(context: grpc.aio.ServicerContext, request_id: str) -> None:
    metrics.REJECTED.labels("request_id_reused").inc()
    await abort(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        f"request id {request_id!r} was already used for a different request; "
        "use a new request id for new content",
        "REQUEST_ID_REUSED",
        metadata={"requestId": request_id},
    )


async def _abort_unavailable(context: grpc.aio.ServicerContext) -> None:
    await abort(
        context,
        grpc.StatusCode.UNAVAILABLE,
        "the database is unavailable; nothing was committed unless a retry with the same "
        "request id says so",
        "DATABASE_UNAVAILABLE",
    )


def _fingerprint(
    request: indexer_service_pb2.IndexClaimsRequest | indexer_service_pb2.RetractClaimRequest,
) -> bytes:
    """Identifies a payload: equal for equal requests, whatever the field order on the wire."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()


def _batch(request: indexer_service_pb2.IndexClaimsRequest) -> IndexBatch:
    return IndexBatch(
        request_id=request.request_id,
        actors=tuple(
            ActorRecord(
                id=actor.id,
                display_name=actor.display_name.strip(),
                aliases=tuple(alias.strip() for alias in actor.aliases),
                kind=_KINDS[actor.kind],
                description=actor.description,
            )
            for actor in request.actors
        ),
        topics=tuple(
            TopicRecord(topic.id, topic.display_name.strip(), topic.parent_id or None)
            for topic in request.topics
        ),
        claims=tuple(_claim_content(claim) for claim in request.claims),
    )


def _claim_content(claim: resources_pb2.Claim) -> ClaimContent:
    source = claim.source
    return ClaimContent(
        id=claim.id,
        actor_id=claim.actor_id,
        topic_ids=tuple(claim.topic_ids),
        text=claim.text,
        stated_at=claim.stated_at.ToDatetime(tzinfo=UTC),
        source_url=source.url,
        source_title=source.title,
        source_publisher=source.publisher,
        source_published_at=(
            source.published_at.ToDatetime(tzinfo=UTC) if source.HasField("published_at") else None
        ),
        language=normalise_language(claim.language),
        confidence=claim.confidence,
        state=ClaimState.RETRACTED
        if claim.state == resources_pb2.CLAIM_STATE_RETRACTED
        else ClaimState.ACTIVE,
    )


def _response(result: BatchResult) -> indexer_service_pb2.IndexClaimsResponse:
    return indexer_service_pb2.IndexClaimsResponse(
        created=result.count(Outcome.CREATED),
        updated=result.count(Outcome.UPDATED),
        unchanged=result.count(Outcome.UNCHANGED),
        claims=[
            indexer_service_pb2.IndexedClaim(
                claim_id=claim.claim_id, revision=claim.revision, outcome=_OUTCOMES[claim.outcome]
            )
            for claim in result.claims
        ],
        actors_upserted=result.actors_upserted,
        topics_upserted=result.topics_upserted,
        batches=1,
    )


def _timestamp(value: object) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)  # type: ignore[arg-type]
    return stamp


def _claim_message(stored: StoredClaim) -> resources_pb2.Claim:
    content = stored.content
    source = resources_pb2.Source(
        url=content.source_url, title=content.source_title, publisher=content.source_publisher
    )
    if content.source_published_at is not None:
        source.published_at.CopyFrom(_timestamp(content.source_published_at))
    return resources_pb2.Claim(
        id=content.id,
        actor_id=content.actor_id,
        topic_ids=list(content.topic_ids),
        text=content.text,
        stated_at=_timestamp(content.stated_at),
        source=source,
        language=content.language,
        confidence=content.confidence,
        state=(
            resources_pb2.CLAIM_STATE_RETRACTED
            if content.state is ClaimState.RETRACTED
            else resources_pb2.CLAIM_STATE_ACTIVE
        ),
        revision=stored.revision,
        create_time=_timestamp(stored.create_time),
        update_time=_timestamp(stored.update_time),
    )
