"""The gateway's ASGI application: Starlette routing, an edge middleware, the transcoding endpoint.

The edge middleware (pure ASGI, no per-request task or body buffering) does what every request
needs before any route: a request id, size limits, refusing gRPC and gRPC-Web content types,
the per-client rate limit, CORS, and afterwards the Server-Timing header, metrics and one
summary log line. The transcoding endpoint matches the raw path against the routes compiled
from the descriptors and turns the request into one unary gRPC call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import grpc
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from panoptic.core.logging import get_logger
from panoptic.core.metrics import HTTP_DURATION, HTTP_REQUESTS
from panoptic.core.settings import Settings
from services.gateway import metrics
from services.gateway.cache import CacheKey, ResponseCache
from services.gateway.errors import (
    ApiError,
    bad_parameter,
    from_rpc_error,
    gateway_error,
    rate_limited,
)
from services.gateway.ratelimit import RateLimiter
from services.gateway.responses import Representation, RequestContext, Send, send_response
from services.gateway.rules import has_dot_segment
from services.gateway.transcode import FIELDS_PARAMETER, QueryError, apply_field_mask
from services.gateway.upstream import Upstream

Scope = MutableMapping[str, Any]
Receive = Any

log = get_logger("panoptic.gateway")

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# Paths the gateway answers itself; never rate limited when they are probes.
PROBES = frozenset({"/healthz", "/readyz"})
READ_METHODS = frozenset({"GET", "HEAD"})
ALLOW = b"GET, HEAD, OPTIONS"
MAX_QUERY_FIELDS = 100
_CORS_ALLOWED_HEADERS = "accept, accept-encoding, accept-language, if-none-match, x-request-id"
_CORS_EXPOSED_HEADERS = b"etag, retry-after, server-timing, x-request-id"
_CORS_MAX_AGE = b"600"
_NO_STORE = "no-store"


@dataclass(frozen=True)
class EdgePolicy:
    """The edge middleware's settings, read once."""

    max_url_bytes: int
    max_header_bytes: int
    cors_origins: frozenset[str]
    limiter: RateLimiter | None

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgePolicy:
        """The policy the settings describe."""
        limiter = None
        if settings.gateway_rate_limit_per_second > 0:
            limiter = RateLimiter(
                settings.gateway_rate_limit_per_second, settings.gateway_rate_limit_burst
            )
        return cls(
            settings.gateway_max_url_bytes,
            settings.gateway_max_header_bytes,
            frozenset(settings.gateway_cors_origins),
            limiter,
        )

    def allowed_origin(self, origin: str) -> bool:
        """Whether a browser page from `origin` may read the responses."""
        return bool(origin) and ("*" in self.cors_origins or origin in self.cors_origins)


class EdgeMiddleware:
    """Request id, limits, rate limiting, CORS, Server-Timing, metrics and the log line."""

    def __init__(self, app: Any, policy: EdgePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        context = RequestContext("", started, scope["method"])
        content_type = ""
        header_bytes = 0
        has_body = False
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value) + 4
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"accept-encoding":
                context.accept_encoding = value.decode("latin-1")
            elif name == b"if-none-match":
                context.if_none_match = value.decode("latin-1")
            elif name == b"origin":
                context.origin = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1").lower()
            elif name in (b"cache-control", b"pragma") and b"no-cache" in value.lower():
                context.bypass_cache = True
            elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                has_body = True
        if not _REQUEST_ID.fullmatch(request_id):
            request_id = os.urandom(16).hex()
        context.request_id = request_id
        scope["gateway"] = context
        policy = self.policy
        cors = policy.allowed_origin(context.origin)

        async def send_with_headers(event: MutableMapping[str, Any]) -> None:
            if event["type"] == "http.response.start":
                context.status = event["status"]
                headers = list(event.get("headers", ()))
                headers.append((b"x-request-id", context.request_id.encode()))
                headers.append((b"server-timing", _server_timing(context).encode()))
                if cors:
                    headers.append(
                        (b"access-control-allow-origin", _origin_header(policy, context))
                    )
                    headers.append((b"access-control-expose-headers", _CORS_EXPOSED_HEADERS))
                    headers.append((b"timing-allow-origin", _origin_header(policy, context)))
                if policy.cors_origins and "*" not in policy.cors_origins:
                    headers.append((b"vary", b"Origin"))
                event["headers"] = headers
            await send(event)

        try:
            refusal = self._refusal(scope, context, content_type, header_bytes, has_body)
            if refusal is not None:
                await send_error(send_with_headers, context, refusal)
            elif (
                scope["method"] == "OPTIONS"
                and context.origin
                and _header(scope, b"access-control-request-method")
            ):
                await self._preflight(scope, context, cors, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            status = context.status or 500
            HTTP_REQUESTS.labels(context.route, scope["method"], str(status)).inc()
            HTTP_DURATION.labels(context.route).observe(elapsed)
            if context.upstream_seconds is not None:
                metrics.OWN_DURATION.observe(max(0.0, elapsed - context.upstream_seconds))
            log.info(
                "http",
                method=scope["method"],
                path=scope["path"][:200],
                route=context.route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                upstream_ms=None
                if context.upstream_seconds is None
                else round(context.upstream_seconds * 1000, 2),
                request_id=context.request_id,
                client=_client(scope),
            )

    def _refusal(
        self,
        scope: Scope,
        context: RequestContext,
        content_type: str,
        header_bytes: int,
        has_body: bool,
    ) -> ApiError | None:
        policy = self.policy
        target = len(scope.get("raw_path") or b"") + len(scope["query_string"])
        if target > policy.max_url_bytes:
            return gateway_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request target is longer than {policy.max_url_bytes} bytes",
                "URI_TOO_LONG",
                http_status=414,
            )
        if header_bytes > policy.max_header_bytes:
            return gateway_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request headers are larger than {policy.max_header_bytes} bytes",
                "HEADERS_TOO_LARGE",
                http_status=431,
            )
        if content_type.startswith("application/grpc"):
            # gRPC and gRPC-Web are never proxied: the gateway speaks REST/JSON only.
            return gateway_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                "this endpoint serves REST/JSON only; gRPC and gRPC-Web are not accepted",
                "UNSUPPORTED_MEDIA_TYPE",
                http_status=415,
            )
        if has_body and scope["method"] in READ_METHODS:
            return gateway_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                "GET requests take no body; parameters go in the query string",
                "BODY_NOT_ALLOWED",
            )
        if policy.limiter is not None and scope["path"] not in PROBES:
            wait = policy.limiter.acquire(_client(scope))
            if wait > 0:
                metrics.RATE_LIMITED.inc()
                context.route = "rate-limited"
                return rate_limited(wait)
        return None

    async def _preflight(
        self, scope: Scope, context: RequestContext, cors: bool, send: Send
    ) -> None:
        context.route = "preflight"
        if not cors:
            await send_error(
                send,
                context,
                gateway_error(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"origin {context.origin[:100]} may not call this API from a browser",
                    "CORS_ORIGIN_NOT_ALLOWED",
                ),
            )
            return
        requested = _header(scope, b"access-control-request-headers").lower()
        allowed = [
            name.strip()
            for name in requested.split(",")
            if name.strip() and name.strip() in _CORS_ALLOWED_HEADERS
        ]
        headers = [
            (b"access-control-allow-methods", b"GET, HEAD"),
            (b"access-control-max-age", _CORS_MAX_AGE),
        ]
        if allowed:
            headers.append((b"access-control-allow-headers", ", ".join(allowed).encode()))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _origin_header(policy: EdgePolicy, context: RequestContext) -> bytes:
    return b"*" if "*" in policy.cors_origins else context.origin.encode("latin-1")


def _server_timing(context: RequestContext) -> str:
    total = (time.perf_counter() - context.started) * 1000
    if context.cache_hit:
        return f'gateway;dur={total:.2f}, cache;desc="hit"'
    if context.upstream_seconds is None:
        return f"gateway;dur={total:.2f}"
    upstream = context.upstream_seconds * 1000
    return f"gateway;dur={max(0.0, total - upstream):.2f}, upstream;dur={upstream:.2f}"


def _header(scope: Scope, wanted: bytes) -> str:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return ""


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def send_error(send: Send, context: RequestContext, error: ApiError) -> None:
    """Sends an AIP-193 error; errors are never cached."""
    headers = [(name.encode(), value.encode()) for name, value in error.headers.items()]
    await send_response(
        send, context, error.status, error.body(), cache_control=_NO_STORE, headers=headers
    )


class TranscodingEndpoint:
    """Every path that is not the gateway's own: a route of the API, or a JSON 404/405."""

    def __init__(self, upstream: Upstream, compress_min: int, cache: ResponseCache | None) -> None:
        self.upstream = upstream
        self.compress_min = compress_min
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context: RequestContext = scope["gateway"]
        try:
            await self._handle(scope, context, send)
        except ApiError as error:
            await send_error(send, context, error)
        except Exception:
            log.exception("unhandled error", request_id=context.request_id)
            await send_error(
                send,
                context,
                gateway_error(
                    grpc.StatusCode.INTERNAL,
                    f"internal error; quote request id {context.request_id} when reporting it",
                    "INTERNAL",
                ),
            )

    async def _handle(self, scope: Scope, context: RequestContext, send: Send) -> None:
        surface = self.upstream.surface
        if surface is None:
            raise gateway_error(
                grpc.StatusCode.UNAVAILABLE, "the gateway is starting; retry shortly", "NOT_READY"
            )
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        method = scope["method"]
        found = None if has_dot_segment(raw_path) else surface.router.find(raw_path)
        if found is None:
            raise gateway_error(
                grpc.StatusCode.NOT_FOUND,
                f"no route {method} {scope['path'][:200]}; the routes are listed at /openapi.json",
                "ROUTE_NOT_FOUND",
            )
        route, captures = found
        compiled = surface.routes[route.template.source]
        context.route = compiled.label
        if method not in READ_METHODS:
            if method == "OPTIONS":
                await send_response(send, context, 204, b"", headers=[(b"allow", ALLOW)])
                return
            raise gateway_error(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{method} is not allowed here: the API is read-only (GET)",
                "METHOD_NOT_ALLOWED",
                headers={"allow": ALLOW.decode()},
                http_status=405,
            )
        cache = self.cache if compiled.max_age > 0 else None
        key: CacheKey = (compiled.label, raw_path.encode("latin-1"), scope["query_string"])
        if cache is not None and not context.bypass_cache:
            entry = cache.get(key)
            metrics.CACHE_LOOKUPS.labels("miss" if entry is None else "hit").inc()
            if entry is not None:
                context.cache_hit = True
                await send_response(
                    send,
                    context,
                    200,
                    entry.representation,
                    cache_control=compiled.cache_control,
                    compress_min=self.compress_min,
                    headers=[(b"age", str(entry.age(cache.clock())).encode())],
                )
                return
        try:
            query = parse_qsl(
                scope["query_string"].decode("utf-8"),
                keep_blank_values=True,
                errors="strict",
                max_num_fields=MAX_QUERY_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise bad_parameter(
                "query",
                f"the query string is not valid UTF-8 or has over {MAX_QUERY_FIELDS} fields",
            ) from None
        try:
            request = compiled.transcoder.build(captures, query)
            masks = tuple(value for name, value in query if name == FIELDS_PARAMETER)
            mask = compiled.field_mask(masks) if masks else None
        except QueryError as error:
            raise bad_parameter(error.parameter, error.message) from None
        started = time.perf_counter()
        code = "OK"
        try:
            response = await compiled.call(
                request,
                timeout=compiled.deadline,
                metadata=((REQUEST_ID_HEADER, context.request_id),),
            )
        except grpc.aio.AioRpcError as error:
            told = self.upstream.explain(error)
            code = told.code().name
            raise from_rpc_error(told, context.request_id, surface.loaded.pool) from None
        finally:
            context.upstream_seconds = elapsed = time.perf_counter() - started
            metrics.UPSTREAM_DURATION.labels(route.method.name, code).observe(elapsed)
        value = compiled.renderer.to_json(response)
        if route.response_body:
            value = value.get(
                route.method.output_type.fields_by_name[route.response_body].json_name
            )
        if mask is not None:
            value = apply_field_mask(value, mask)
        representation = Representation(orjson.dumps(value), validate=True)
        if cache is not None:
            cache.put(key, representation, compiled.max_age)
        await send_response(
            send,
            context,
            200,
            representation,
            cache_control=compiled.cache_control,
            compress_min=self.compress_min,
        )


OwnHandler = Callable[[RequestContext, Send], Awaitable[None]]


class OwnEndpoint:
    """One of the gateway's own pages (probes, OpenAPI, docs): GET and HEAD only."""

    def __init__(self, handler: OwnHandler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context: RequestContext = scope["gateway"]
        context.route = scope["path"]
        if scope["method"] in READ_METHODS:
            await self.handler(context, send)
            return
        await send_error(
            send,
            context,
            gateway_error(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{scope['method']} is not allowed here",
                "METHOD_NOT_ALLOWED",
                headers={"allow": "GET, HEAD"},
                http_status=405,
            ),
        )


def _docs_page() -> bytes:
    return (resources.files("services.gateway") / "docs.html").read_bytes()


def build_app(settings: Settings, upstream: Upstream) -> Starlette:
    """The ASGI app; `upstream` must have been started (its surface loaded)."""
    compress_min = settings.gateway_compress_min_bytes
    docs = _docs_page()
    cache_bytes = int(settings.gateway_response_cache_mib * 1024 * 1024)
    cache = ResponseCache(cache_bytes) if cache_bytes > 0 else None

    async def healthz(context: RequestContext, send: Send) -> None:
        await send_response(send, context, 200, b'{"status":"SERVING"}', cache_control=_NO_STORE)

    async def readyz(context: RequestContext, send: Send) -> None:
        if await upstream.ready():
            await send_response(
                send, context, 200, b'{"status":"SERVING"}', cache_control=_NO_STORE
            )
            return
        await send_error(
            send,
            context,
            gateway_error(
                grpc.StatusCode.UNAVAILABLE, "the retriever is not answering", "NOT_READY"
            ),
        )

    async def openapi(context: RequestContext, send: Send) -> None:
        surface = upstream.surface
        assert surface is not None
        await send_response(
            send,
            context,
            200,
            surface.openapi,
            cache_control="public, max-age=60",
            validate=True,
            compress_min=compress_min,
        )

    async def docs_page(context: RequestContext, send: Send) -> None:
        await send_response(
            send,
            context,
            200,
            docs,
            content_type=b"text/html; charset=utf-8",
            cache_control="public, max-age=300",
            validate=True,
            compress_min=compress_min,
            headers=[
                (
                    b"content-security-policy",
                    b"default-src 'none'; script-src 'unsafe-inline'; "
                    b"style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
                ),
                (b"x-content-type-options", b"nosniff"),
            ],
        )

    async def http_exception(request: Request, exc: Exception) -> Response:
        # A backstop: Starlette raises these only for paths no route took, which cannot happen
        # with the catch-all route, but the answer must be JSON all the same.
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        error = gateway_error(
            grpc.StatusCode.NOT_FOUND if status == 404 else grpc.StatusCode.INTERNAL,
            "not found" if status == 404 else "internal error",
            "ROUTE_NOT_FOUND" if status == 404 else "INTERNAL",
            http_status=status,
        )
        return Response(error.body(), status, media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        follower = None
        if settings.gateway_descriptor_source == "reflection" and (
            settings.gateway_reflection_refresh_seconds > 0
        ):
            follower = asyncio.create_task(
                upstream.follow(settings.gateway_reflection_refresh_seconds)
            )
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower

    routes = [
        Route("/healthz", OwnEndpoint(healthz)),
        Route("/readyz", OwnEndpoint(readyz)),
        Route("/openapi.json", OwnEndpoint(openapi)),
        Route("/docs", OwnEndpoint(docs_page)),
        Route("/{path:path}", TranscodingEndpoint(upstream, compress_min, cache)),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_exception, Exception: http_exception},
        lifespan=lifespan,
    )
    app.add_middleware(EdgeMiddleware, policy=EdgePolicy.from_settings(settings))
    return app


__all__ = ["EdgeMiddleware", "EdgePolicy", "TranscodingEndpoint", "build_app"]
