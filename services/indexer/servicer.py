"""The IndexerService servicer: protobuf in, domain values to the handler, protobuf out.

It validates requests (every problem at once, before anything is written), fingerprints them
for idempotency, and answers the handler's refusals and a lost database through core's one
mapping to gRPC statuses (`Refusals`), recording refused content for operators. The logic
lives in `handler`, the SQL in `repository`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import grpc

from panoptic.core.consistency import CONSISTENCY_TOKEN_METADATA, ConsistencyTokens
from panoptic.core.grpc_refusals import Refusals
from panoptic.core.refusals import FailedPrecondition, InvalidArgument, Refusal
from panoptic.model.claims import claim_message
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc, resources_pb2
from services.indexer import metrics
from services.indexer.convert import (
    batch_from_request,
    references_from_request,
    response_from_result,
)
from services.indexer.domain import Replay, RetractRequest
from services.indexer.handler import IndexingHandler
from services.indexer.validation import Limits, validate_index_request, validate_retract_request

# Nothing was committed when the database is lost, and a retry with the same request id is safe:
# if the commit did happen after all, the retry replays its response.
UNAVAILABLE_MESSAGE = (
    "the database is unavailable; nothing was committed unless a retry with the same "
    "request id says so"
)


class IndexerServicer(indexer_service_pb2_grpc.IndexerServiceServicer):
    """IndexClaims, StreamIndexClaims and RetractClaim."""

    def __init__(self, handler: IndexingHandler, limits: Limits, tokens: ConsistencyTokens) -> None:
        self._handler = handler
        self._limits = limits
        self._tokens = tokens

    async def IndexClaims(  # noqa: N802 - named by the proto
        self, request: indexer_service_pb2.IndexClaimsRequest, context: grpc.aio.ServicerContext
    ) -> indexer_service_pb2.IndexClaimsResponse:
        """Indexes one batch atomically."""
        response, _ = await self._index(request, context)
        self._send_token(context, response.consistency_token)
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
                total.consistency_token = response.consistency_token
        self._send_token(context, total.consistency_token)
        return total

    async def RetractClaim(  # noqa: N802 - named by the proto
        self, request: indexer_service_pb2.RetractClaimRequest, context: grpc.aio.ServicerContext
    ) -> resources_pb2.Claim:
        """Retracts one claim, keeping it and its history."""
        async with self._refusals(context, request.request_id):
            problems = [(v.field, v.description) for v in validate_retract_request(request)]
            if problems:
                raise InvalidArgument(problems)
            retraction = RetractRequest(request.request_id, request.claim_id, request.reason)
            committed = await self._handler.retract(
                retraction,
                fingerprint(request),
                lambda claim: claim_message(claim).SerializeToString(),
            )
        self._send_token(context, self._token(committed.log_position))
        if isinstance(committed.outcome, Replay):
            return resources_pb2.Claim.FromString(committed.outcome.response)
        return claim_message(committed.outcome)

    def _token(self, log_position: int | None) -> str:
        """The consistency token of a commit: empty when its log position is not known."""
        return "" if log_position is None else self._tokens.issue(log_position)

    @staticmethod
    def _send_token(context: grpc.aio.ServicerContext, token: str) -> None:
        """Sends the consistency token as trailing metadata too, as every method does."""
        if token:
            context.set_trailing_metadata(((CONSISTENCY_TOKEN_METADATA, token),))

    def _refusals(self, context: grpc.aio.ServicerContext, request_id: str) -> Refusals:
        """Answers a refusal raised in the block, recording refused content for operators."""

        async def record(refusal: Refusal) -> None:
            # The content of a request was refused (not a missing claim or a lost database):
            # counted, and noted where the dashboard shows refused batches.
            if isinstance(refusal, InvalidArgument | FailedPrecondition):
                violations = refusal.violations if isinstance(refusal, InvalidArgument) else []
                metrics.REJECTED.labels(refusal.reason.lower()).inc()
                await self._handler.record_rejection(request_id, refusal.reason, violations)

        return Refusals(context, unavailable_message=UNAVAILABLE_MESSAGE, on_refusal=record)

    async def _index(
        self, request: indexer_service_pb2.IndexClaimsRequest, context: grpc.aio.ServicerContext
    ) -> tuple[indexer_service_pb2.IndexClaimsResponse, bool]:
        """Indexes one batch; returns the response and whether it was a replay."""
        async with self._refusals(context, request.request_id):
            await self._check(request)
            committed = await self._handler.index(
                batch_from_request(request),
                fingerprint(request),
                lambda r: response_from_result(r).SerializeToString(),
            )
        outcome = committed.outcome
        if isinstance(outcome, Replay):
            response = indexer_service_pb2.IndexClaimsResponse.FromString(outcome.response)
        else:
            response = response_from_result(outcome)
        # Not stored with a replayed response: a replay gets a position at least as far.
        response.consistency_token = self._token(committed.log_position)
        return response, isinstance(outcome, Replay)

    async def _check(self, request: indexer_service_pb2.IndexClaimsRequest) -> None:
        """Refuses a batch with every problem it has, unknown references too, at once."""
        violations = validate_index_request(request, self._limits)
        if not violations:
            return
        too_large = any(v.reason == "BATCH_TOO_LARGE" for v in violations)
        problems = [(v.field, v.description) for v in violations]
        if not too_large:  # one answer names every problem, unknown references too
            problems += await self._handler.unknown_references(references_from_request(request))
        reason = "BATCH_TOO_LARGE" if too_large else "INVALID_ARGUMENT"
        raise InvalidArgument(problems, reason, {"requestId": request.request_id})


def fingerprint(
    request: indexer_service_pb2.IndexClaimsRequest | indexer_service_pb2.RetractClaimRequest,
) -> bytes:
    """Identifies a payload: equal for equal requests, whatever the field order on the wire."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).digest()
