"""The gateway's ASGI application: Starlette routing of its own pages and of every API path,
behind the shared request metrics and log line and the gateway's edge (`edge.py`).

Outermost first: `ObservabilityMiddleware` (metrics, one summary line per request), the
`EdgeMiddleware` (request id, limits, rate limit, CORS, Server-Timing), then the routes: the
gateway's own pages, the API explorer at /docs (`explorer.py`) and the `TranscodingEndpoint` that
takes every other path (`endpoints.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from panoptic.core.http_observability import ObservabilityMiddleware
from panoptic.core.logging import get_logger
from panoptic.core.settings import GatewaySettings
from services.gateway.cache import ResponseCache
from services.gateway.edge import EdgeMiddleware, EdgePolicy, finish, route_label
from services.gateway.endpoints import OwnEndpoint, OwnPages, TranscodingEndpoint
from services.gateway.errors import gateway_error
from services.gateway.explorer import Explorer
from services.gateway.upstream import Upstream

log = get_logger("panoptic.gateway")


def build_app(settings: GatewaySettings, upstream: Upstream) -> Starlette:
    """The ASGI app; `upstream` must have been started (its surface loaded)."""
    compress_min = settings.gateway_compress_min_bytes
    cache_bytes = int(settings.gateway_response_cache_mib * 1024 * 1024)
    cache = ResponseCache(cache_bytes) if cache_bytes > 0 else None
    pages = OwnPages(upstream, compress_min)
    routes = [
        Route("/healthz", OwnEndpoint(pages.healthz)),
        Route("/readyz", OwnEndpoint(pages.readyz)),
        Route("/openapi.json", OwnEndpoint(pages.openapi)),
        *_explorer(compress_min).routes(),
        Route("/{path:path}", TranscodingEndpoint(upstream, compress_min, cache)),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(ObservabilityMiddleware, log=log, route_of=route_label, finish=finish),
            Middleware(EdgeMiddleware, policy=EdgePolicy.from_settings(settings)),
        ],
        exception_handlers={HTTPException: _http_exception, Exception: _http_exception},
        lifespan=_following_reflection(settings, upstream),
    )


def _explorer(compress_min: int) -> Explorer:
    """The API explorer's files, read once; a warning when Swagger UI's are missing."""
    explorer = Explorer.load(compress_min=compress_min)
    if explorer.available:
        log.info("API explorer at /docs", swagger_ui=explorer.version, build=explorer.build)
    else:
        log.warning(
            "API explorer unavailable: Swagger UI's files are not installed; "
            "/docs answers 503 until `make setup` copies them"
        )
    return explorer


async def _http_exception(request: Request, exc: Exception) -> Response:
    """A JSON answer for what Starlette itself raises.

    A backstop: Starlette raises these only for paths no route took, which cannot happen with
    the catch-all route, but the answer must be JSON all the same.
    """
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error = gateway_error(
        grpc.StatusCode.NOT_FOUND if status == 404 else grpc.StatusCode.INTERNAL,
        "not found" if status == 404 else "internal error",
        "ROUTE_NOT_FOUND" if status == 404 else "INTERNAL",
        http_status=status,
    )
    return Response(error.body(), status, media_type="application/json")


def _following_reflection(
    settings: GatewaySettings, upstream: Upstream
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]] | None:
    """The app's lifespan: while it serves, ask reflection again every so often for a changed
    API (when the API comes from reflection and the refresh is on)."""
    interval = settings.gateway_reflection_refresh_seconds
    if settings.gateway_descriptor_source != "reflection" or interval <= 0:
        return None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        follower = asyncio.create_task(upstream.follow(interval))
        try:
            yield
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    return lifespan


__all__ = ["build_app"]
