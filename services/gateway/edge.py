"""The gateway's edge: what every request needs before any route, and every response after it.

A pure ASGI middleware (no per-request task, no body buffering) in four stages: read the
request head once (request id, negotiation headers, sizes), refuse what must not reach a route
(limits, gRPC content types, a body, the per-client rate limit), answer CORS preflights, and
add the request id, Server-Timing and CORS headers to whatever answer goes out. Metrics and the
summary log line are the shared `panoptic.core.http_observability` middleware's, around this
one; `route_label` and `finish` tell it what the gateway learned.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import grpc
from starlette.types import ASGIApp, Receive, Scope

from panoptic.core.http_observability import UNMATCHED, client_address
from panoptic.core.settings import GatewaySettings
from services.gateway import metrics
from services.gateway.errors import ApiError, gateway_error, rate_limited
from services.gateway.ratelimit import RateLimiter
from services.gateway.responses import RequestContext, Send, send_error

READ_METHODS = frozenset({"GET", "HEAD"})
# Paths the gateway answers itself; never rate limited when they are probes.
PROBES = frozenset({"/healthz", "/readyz"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_CORS_ALLOWED_HEADERS = "accept, accept-encoding, accept-language, if-none-match, x-request-id"
_CORS_EXPOSED_HEADERS = b"etag, retry-after, server-timing, x-request-id"
_CORS_MAX_AGE = b"600"
_HEADER_OVERHEAD = 4  # ": " and CRLF around each header on the wire


@dataclass(frozen=True)
class EdgePolicy:
    """The edge middleware's settings, read once."""

    max_url_bytes: int
    max_header_bytes: int
    cors_origins: frozenset[str]
    limiter: RateLimiter | None

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> EdgePolicy:
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

    @property
    def varies_by_origin(self) -> bool:
        """Whether answers differ by Origin (some origins allowed, not all), for caches."""
        return bool(self.cors_origins) and "*" not in self.cors_origins

    def origin_header(self, context: RequestContext) -> bytes:
        """Access-Control-Allow-Origin's value for an allowed origin."""
        return b"*" if "*" in self.cors_origins else context.origin.encode("latin-1")


@dataclass(slots=True)
class RequestHead:
    """What the edge reads once from a request's head, beyond the context it hands on."""

    context: RequestContext
    content_type: str = ""
    header_bytes: int = 0
    has_body: bool = False


def read_head(scope: Scope) -> RequestHead:
    """The request's context (a valid request id, or a fresh one) and what its limits need."""
    context = RequestContext("", time.perf_counter(), scope["method"])
    head = RequestHead(context)
    request_id = ""
    for name, value in scope["headers"]:
        head.header_bytes += len(name) + len(value) + _HEADER_OVERHEAD
        if name == b"x-request-id":
            request_id = value.decode("latin-1")
        elif name == b"accept-encoding":
            context.accept_encoding = value.decode("latin-1")
        elif name == b"if-none-match":
            context.if_none_match = value.decode("latin-1")
        elif name == b"origin":
            context.origin = value.decode("latin-1")
        elif name == b"content-type":
            head.content_type = value.decode("latin-1").lower()
        elif name in (b"cache-control", b"pragma") and b"no-cache" in value.lower():
            context.bypass_cache = True
        elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            head.has_body = True
    context.request_id = request_id if _REQUEST_ID.fullmatch(request_id) else os.urandom(16).hex()
    return head


class EdgeMiddleware:
    """Request id, limits, rate limiting, CORS and Server-Timing."""

    def __init__(self, app: ASGIApp, policy: EdgePolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = read_head(scope)
        context = scope["gateway"] = head.context
        cors = self.policy.allowed_origin(context.origin)
        send = self._with_headers(send, context, cors)
        refusal = self._refusal(scope, head)
        if refusal is not None:
            await send_error(send, context, refusal)
        elif (
            scope["method"] == "OPTIONS"
            and context.origin
            and _header(scope, b"access-control-request-method")
        ):
            await self._preflight(scope, context, cors, send)
        else:
            await self.app(scope, receive, send)

    def _with_headers(self, send: Send, context: RequestContext, cors: bool) -> Send:
        """`send`, adding the request id, Server-Timing and CORS headers to the answer's head."""
        policy = self.policy

        async def send_with_headers(event: MutableMapping[str, Any]) -> None:
            if event["type"] == "http.response.start":
                headers = list(event.get("headers", ()))
                headers.append((b"x-request-id", context.request_id.encode()))
                headers.append((b"server-timing", _server_timing(context).encode()))
                if cors:
                    origin = policy.origin_header(context)
                    headers.append((b"access-control-allow-origin", origin))
                    headers.append((b"access-control-expose-headers", _CORS_EXPOSED_HEADERS))
                    headers.append((b"timing-allow-origin", origin))
                if policy.varies_by_origin:
                    headers.append((b"vary", b"Origin"))
                event["headers"] = headers
            await send(event)

        return send_with_headers

    def _refusal(self, scope: Scope, head: RequestHead) -> ApiError | None:
        """Why the request must not reach a route, if it must not."""
        policy = self.policy
        target = len(scope.get("raw_path") or b"") + len(scope["query_string"])
        if target > policy.max_url_bytes:
            return gateway_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request target is longer than {policy.max_url_bytes} bytes",
                "URI_TOO_LONG",
                http_status=414,
            )
        if head.header_bytes > policy.max_header_bytes:
            return gateway_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request headers are larger than {policy.max_header_bytes} bytes",
                "HEADERS_TOO_LARGE",
                http_status=431,
            )
        if head.content_type.startswith("application/grpc"):
            # gRPC and gRPC-Web are never proxied: the gateway speaks REST/JSON only.
            return gateway_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                "this endpoint serves REST/JSON only; gRPC and gRPC-Web are not accepted",
                "UNSUPPORTED_MEDIA_TYPE",
                http_status=415,
            )
        if head.has_body and scope["method"] in READ_METHODS:
            return gateway_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                "GET requests take no body; parameters go in the query string",
                "BODY_NOT_ALLOWED",
            )
        return self._rate_limit(scope, head.context)

    def _rate_limit(self, scope: Scope, context: RequestContext) -> ApiError | None:
        """429 when the client has spent its tokens; probes are never limited."""
        limiter = self.policy.limiter
        if limiter is None or scope["path"] in PROBES:
            return None
        wait = limiter.acquire(client_address(scope))
        if wait <= 0:
            return None
        metrics.RATE_LIMITED.inc()
        context.route = "rate-limited"
        return rate_limited(wait)

    async def _preflight(
        self, scope: Scope, context: RequestContext, cors: bool, send: Send
    ) -> None:
        """Answers a CORS preflight: the allowed methods and headers, or 403."""
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


def route_label(scope: Scope) -> str:
    """The label the endpoint or the edge gave the request, for metrics and the log line."""
    context: RequestContext | None = scope.get("gateway")
    return context.route if context is not None else UNMATCHED


def finish(scope: Scope, elapsed: float) -> Mapping[str, object]:
    """The gateway's own time (total minus the gRPC call), and its fields of the log line."""
    context: RequestContext | None = scope.get("gateway")
    if context is None:
        return {}
    upstream = context.upstream_seconds
    if upstream is None:
        return {"upstream_ms": None, "request_id": context.request_id}
    metrics.OWN_DURATION.observe(max(0.0, elapsed - upstream))
    return {"upstream_ms": round(upstream * 1000, 2), "request_id": context.request_id}


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


__all__ = ["READ_METHODS", "EdgeMiddleware", "EdgePolicy", "finish", "read_head", "route_label"]
