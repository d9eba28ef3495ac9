"""The gateway benchmark's peer: `GET /v1/claims/{id}` as a team would write it by hand.

Starlette, one asyncpg pool, the retriever's own SQL (`queries.get_claims`) and orjson, with no
gRPC hop, no transcoding and no middleware: the figure in MEASURED.md's "Starlette + asyncpg +
orjson" row. It answers the same JSON as the gateway. Run as
`python -m panoptic.bench.peer` with `DATABASE_URL` and `PEER_PORT` set.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from panoptic.model.claims import ClaimRow
from panoptic.reads import queries


def _time(value: datetime | None) -> str | None:
    """A UTC time as the proto3 JSON mapping spells it: a `Z`, and 0, 3 or 6 fraction digits."""
    if value is None:
        return None
    whole_milliseconds = value.microsecond % 1000 == 0 and value.microsecond != 0
    spec = "milliseconds" if whole_milliseconds else "auto"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


# The model's one claim→message conversion is `panoptic.model.claims.claim_message`; the peer
# spells the JSON out instead, as a team writing this server by hand would. Going through the
# message (`claim_message`, then protobuf's JSON printer) would add the cost of building a
# protobuf message and printing it to every request, which is the very work the peer is there to
# leave out: it is the baseline the gateway's transcoding is measured against. A unit test
# (tests/unit/test_claim_model.py) holds what it writes equal to the message's JSON.
def claim_json(claim: ClaimRow) -> dict[str, Any]:
    """The claim in the proto3 JSON mapping, as the gateway writes it."""
    source: dict[str, Any] = {
        "url": claim.source_url,
        "title": claim.source_title,
        "publisher": claim.source_publisher,
    }
    if claim.source_published_at is not None:
        source["publishedAt"] = _time(claim.source_published_at)
    return {
        "id": claim.id,
        "actorId": claim.actor_id,
        "topicIds": list(claim.topic_ids),
        "text": claim.text,
        "statedAt": _time(claim.stated_at),
        "source": source,
        "language": claim.language,
        "confidence": claim.confidence,
        "state": f"CLAIM_STATE_{claim.state}",
        "revision": str(claim.revision),
        "createTime": _time(claim.create_time),
        "updateTime": _time(claim.update_time),
    }


def build_peer_app(database_url: str, pool_size: int = 10) -> Starlette:
    """The peer's ASGI app."""
    pools: list[asyncpg.Pool] = []

    async def get_claim(request: Request) -> Response:
        async with pools[0].acquire() as connection:
            claim_id = request.path_params["claim_id"]
            claim = (await queries.get_claims(connection, [claim_id])).get(claim_id)
        if claim is None:
            return Response(b'{"error":{"code":404}}', 404, media_type="application/json")
        return Response(orjson.dumps(claim_json(claim)), media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pools.append(
            await asyncpg.create_pool(database_url, min_size=pool_size, max_size=pool_size)
        )
        try:
            yield
        finally:
            await pools[0].close()

    return Starlette(routes=[Route("/v1/claims/{claim_id}", get_claim)], lifespan=lifespan)


def main() -> None:
    """Serves the peer on 127.0.0.1:$PEER_PORT with one uvicorn worker (uvloop, httptools)."""
    app = build_peer_app(os.environ["DATABASE_URL"])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["PEER_PORT"]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
