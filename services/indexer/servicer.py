"""The IndexerService servicer: protobuf in, domain values to the handler, protobuf out.

It validates requests (every problem at once, before anything is written), fingerprints them
for idempotency, and maps the handler's refusals and database failures to gRPC statuses with
machine-readable reasons. The logic lives in `handler`, the SQL in `repository`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import asyncpg
import grpc

from panoptic.core.rpc_status import abort, abort_invalid
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc, resources_pb2
from services.indexer import metrics
from services.indexer.convert import (
    batch_from_request,
    claim_message,
    references_from_request,
    response_from_result,
)
from services.indexer.domain import (
    ClaimNotFound,
    Replay,
    RequestIdReused,
    RetractRequest,
    UnknownReferences,
)
from services.indexer.handler import IndexingHandler
from services.indexer.validation import Limits, validate_index_request, validate_retract_request

# Failures of the database connection itself: nothing was committed, and a retry with the same
# request id is safe (if the commit did happen, the retry replays its response).
DATABASE_UNAVAILABLE = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    # What asyncpg raises when a pooled connection that the server has just closed is used
    # before asyncpg has seen the close (its protocol still waits for the server's answer).
    asyncpg.InternalClientError,
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
        response, _ = await self._index(request, context)
        return response

    async def StreamIndexClaims(  # noqa: N802 - named by the proto
        self,
        request_iterator: AsyncIterator[indexer_service_pb2.IndexClaimsRequest],
        context: grpc.aio.ServicerContext,
    ) -> indexer_service_pb2.IndexClaimsResponse:
        """Indexes each batch of the stream as it arrives; answers with the totals."""
        total = indexer_service_pb2.IndexClaimsResponse()
        with metrics.OPEN_STREAMS.track_inprogress():
            async for request in request_iterator:
                response, replayed = await self._index(request, context)
                total.replayed_batches += int(replayed)
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
        problems = [(v.field, v.description) for v in validate_retract_request(request)]
        if problems:
            await self._rejected(request.request_id, "INVALID_ARGUMENT", problems)
            await abort_invalid(context, problems)
        retraction = RetractRequest(request.request_id, request.claim_id, request.reason)
        try:
            outcome = await self._handler.retract(
                retraction,
                fingerprint(request),
                lambda claim: claim_message(claim).SerializeToString(),
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
            await self._rejected(request.request_id, "REQUEST_ID_REUSED", [])
            await _abort_reused(context, request.request_id)
        except DATABASE_UNAVAILABLE:
            await _abort_unavailable(context)
        if isinstance(outcome, Replay):
            return resources_pb2.Claim.FromString(outcome.response)
        return claim_message(outcome)

    async def _rejected(
        self, request_id: str, reason: str, violations: list[tuple[str, str]]
    ) -> None:
        """Counts a refusal and records it for operators, before it is answered."""
        metrics.REJECTED.labels(reason.lower()).inc()
        await self._handler.record_rejection(request_id, reason, violations)

    async def _index(
        self, request: indexer_service_pb2.IndexClaimsRequest, context: grpc.aio.ServicerContext
    ) -> tuple[indexer_service_pb2.IndexClaimsResponse, bool]:
        """Indexes one batch; returns the response and whether it was a replay."""
        violations = validate_index_request(request, self._limits)
        if violations:
            too_large = any(v.reason == "BATCH_TOO_LARGE" for v in violations)
            reason = "BATCH_TOO_LARGE" if too_large else "INVALID_ARGUMENT"
            problems = [(v.field, v.description) for v in violations]
            if not too_large:  # one answer names every problem, unknown references too
                problems += await self._handler.unknown_references(references_from_request(request))
            await self._rejected(request.request_id, reason, problems)
            await abort_invalid(
                context, problems, reason, metadata={"requestId": request.request_id}
            )
        try:
            outcome = await self._handler.index(
                batch_from_request(request),
                fingerprint(request),
                lambda r: response_from_result(r).SerializeToString(),
            )
        except UnknownReferences as error:
            await self._rejected(request.request_id, "UNKNOWN_REFERENCE", error.violations)
            await abort_invalid(
                context,
                error.violations,
                "UNKNOWN_REFERENCE",
                metadata={"requestId": request.request_id},
            )
        except RequestIdReused:
            await self._rejected(request.request_id, "REQUEST_ID_REUSED", [])
            await _abort_reused(context, request.request_id)
        except DATABASE_UNAVAILABLE:
            await _abort_unavailable(context)
        if isinstance(outcome, Replay):
            return indexer_service_pb2.IndexClaimsResponse.FromString(outcome.response), True
        return response_from_result(outcome), False


async def _abort_reused(context: grpc.aio.ServicerContext, request_id: str) -> None:
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


def fingerprint(
    request: indexer_service_pb2.IndexClaimsRequest | indexer_service_pb2.RetractClaimRequest,
) -> bytes:
    """Identifies a payload: equal for equal requests, whatever the field order on the wire."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()
