"""Loading test data the way production does: through the indexer's handler, as its own role."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
from google.protobuf import json_format

from panoptic.core.db import SERVICE_ROLES, DatabaseUrl
from panoptic.v1 import indexer_service_pb2, resources_pb2
from services.indexer.convert import batch_from_request, response_from_result
from services.indexer.domain import BatchResult, Replay
from services.indexer.handler import IndexingHandler
from services.indexer.servicer import fingerprint


def batches_of(
    records: Iterable[dict[str, Any]], *, size: int = 500, prefix: str = "load"
) -> list[indexer_service_pb2.IndexClaimsRequest]:
    """IndexRecord JSON objects grouped into requests, actors and topics with the next claims."""
    requests: list[indexer_service_pb2.IndexClaimsRequest] = []
    current = indexer_service_pb2.IndexClaimsRequest()
    for record in records:
        message = json_format.ParseDict(record, resources_pb2.IndexRecord())
        kind = message.WhichOneof("record")
        if kind == "actor":
            current.actors.append(message.actor)
        elif kind == "topic":
            current.topics.append(message.topic)
        else:
            current.claims.append(message.claim)
            if len(current.claims) >= size:
                requests.append(current)
                current = indexer_service_pb2.IndexClaimsRequest()
    if current.claims or current.actors or current.topics:
        requests.append(current)
    for index, request in enumerate(requests):
        request.request_id = f"{prefix}:{index}"
    return requests


async def index_requests(
    database_url: DatabaseUrl, requests: Sequence[indexer_service_pb2.IndexClaimsRequest]
) -> list[indexer_service_pb2.IndexClaimsResponse]:
    """Indexes requests in order with the indexer's handler on the indexer's database role."""
    pool = await asyncpg.create_pool(
        database_url.with_user(SERVICE_ROLES["indexer"]).value, min_size=1, max_size=2
    )
    handler = IndexingHandler(lambda: pool, timedelta(days=1))
    responses = []
    try:
        for request in requests:
            committed = await handler.index(
                batch_from_request(request),
                fingerprint(request),
                lambda r: response_from_result(r).SerializeToString(),
            )
            outcome = committed.outcome
            if isinstance(outcome, Replay):
                responses.append(
                    indexer_service_pb2.IndexClaimsResponse.FromString(outcome.response)
                )
            else:
                assert isinstance(outcome, BatchResult)
                responses.append(response_from_result(outcome))
    finally:
        await pool.close()
    return responses
