"""The gateway's endpoints: the transcoding one behind every API path, and its own pages.

A transcoded request goes through named stages, in order: find its route (`_match`), refuse
methods other than reads (`_refuse_method`), answer from the shared cache (`_send_cached`),
turn the query into a request message (`transcode`), call the retriever (`_call`), render the
answer as JSON with its field mask (`render`), keep it in the cache and send it. Each stage
either hands a plain value on or raises an `ApiError`, which the endpoint answers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import grpc
import orjson
from google.protobuf import message as protobuf_message
from starlette.types import Receive, Scope

from panoptic.core.logging import get_logger
from services.gateway import metrics
from services.gateway.cache import CacheKey, ResponseCache
from services.gateway.edge import READ_METHODS
from services.gateway.errors import ApiError, bad_parameter, from_rpc_error, gateway_error
from services.gateway.responses import (
    NO_STORE,
    Representation,
    RequestContext,
    Send,
    send_error,
    send_response,
)
from services.gateway.rules import has_dot_segment
from services.gateway.transcode import FIELDS_PARAMETER, MaskTree, QueryError, apply_field_mask
from services.gateway.upstream import ApiSurface, CompiledRoute, Upstream

log = get_logger("panoptic.gateway")

REQUEST_ID_HEADER = "x-request-id"
ALLOW = b"GET, HEAD, OPTIONS"
# Room for the longest list a request takes (a batch get's 100 `ids`) and every other parameter
# of a route beside it; a query string longer still is refused before it is read further.
MAX_QUERY_FIELDS = 200
_SERVING = b'{"status":"SERVING"}'


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
        compiled, captures = _match(surface, scope, raw_path)
        context.route = compiled.label
        if scope["method"] not in READ_METHODS:
            await _refuse_method(scope["method"], context, send)
            return
        cache = self.cache if compiled.max_age > 0 else None
        key: CacheKey = (compiled.label, raw_path.encode("latin-1"), scope["query_string"])
        if (
            cache is not None
            and not context.bypass_cache
            and await self._send_cached(cache, key, compiled, context, send)
        ):
            return
        request, mask = transcode(compiled, captures, scope["query_string"])
        response = await self._call(surface, compiled, request, context)
        representation = render(compiled, response, mask)
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

    async def _send_cached(
        self,
        cache: ResponseCache,
        key: CacheKey,
        compiled: CompiledRoute,
        context: RequestContext,
        send: Send,
    ) -> bool:
        """Answers from the shared cache; False on a miss."""
        entry = cache.get(key)
        metrics.CACHE_LOOKUPS.labels("miss" if entry is None else "hit").inc()
        if entry is None:
            return False
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
        return True

    async def _call(
        self,
        surface: ApiSurface,
        compiled: CompiledRoute,
        request: protobuf_message.Message,
        context: RequestContext,
    ) -> Any:
        """The retriever's answer, timed; a failed call becomes the client's error."""
        started = time.perf_counter()
        code = "OK"
        try:
            return await self.upstream.call(
                compiled, request, ((REQUEST_ID_HEADER, context.request_id),)
            )
        except grpc.aio.AioRpcError as error:
            told = self.upstream.explain(error)
            code = told.code().name
            raise from_rpc_error(told, context.request_id, surface.loaded.pool) from None
        finally:
            context.upstream_seconds = elapsed = time.perf_counter() - started
            metrics.UPSTREAM_DURATION.labels(compiled.route.method.name, code).observe(elapsed)


def _match(
    surface: ApiSurface, scope: Scope, raw_path: str
) -> tuple[CompiledRoute, dict[str, str]]:
    """The route of the raw path and its captured values; 404 for none (or a dot segment)."""
    found = None if has_dot_segment(raw_path) else surface.router.find(raw_path)
    if found is None:
        raise gateway_error(
            grpc.StatusCode.NOT_FOUND,
            f"no route {scope['method']} {scope['path'][:200]}; "
            "the routes are listed at /openapi.json",
            "ROUTE_NOT_FOUND",
        )
    route, captures = found
    return surface.routes[route.template.source], captures


async def _refuse_method(method: str, context: RequestContext, send: Send) -> None:
    """OPTIONS gets the allowed methods; any other method that is not a read, 405."""
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


def transcode(
    compiled: CompiledRoute, captures: dict[str, str], query_string: bytes
) -> tuple[protobuf_message.Message, MaskTree | None]:
    """The request message from the path's captures and the query, and the `fields=` mask."""
    try:
        query = parse_qsl(
            query_string.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_QUERY_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise bad_parameter(
            "query", f"the query string is not valid UTF-8 or has over {MAX_QUERY_FIELDS} fields"
        ) from None
    try:
        request = compiled.transcoder.build(captures, query)
        masks = tuple(value for name, value in query if name == FIELDS_PARAMETER)
        return request, compiled.field_mask(masks) if masks else None
    except QueryError as error:
        raise bad_parameter(error.parameter, error.message) from None


def render(compiled: CompiledRoute, response: Any, mask: MaskTree | None) -> Representation:
    """The answer as proto3 JSON: its `response_body` field if the binding names one, masked."""
    value = compiled.renderer.to_json(response)
    route = compiled.route
    if route.response_body:
        value = value.get(route.method.output_type.fields_by_name[route.response_body].json_name)
    if mask is not None:
        value = apply_field_mask(value, mask)
    return Representation(orjson.dumps(value), validate=True)


OwnHandler = Callable[[RequestContext, Send], Awaitable[None]]


class OwnEndpoint:
    """One of the gateway's own pages (probes, OpenAPI, docs): GET and HEAD only."""

    def __init__(self, handler: OwnHandler, label: str | None = None) -> None:
        self.handler = handler
        self.label = label
        """The route's name in metrics and the log line; the path when not given."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context: RequestContext = scope["gateway"]
        context.route = self.label or scope["path"]
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


class OwnPages:
    """The gateway's own pages: liveness, readiness and the OpenAPI document (its explorer at
    /docs is `explorer.py`'s)."""

    def __init__(self, upstream: Upstream, compress_min: int) -> None:
        self.upstream = upstream
        self.compress_min = compress_min

    async def healthz(self, context: RequestContext, send: Send) -> None:
        """200 while the process runs."""
        await send_response(send, context, 200, _SERVING, cache_control=NO_STORE)

    async def readyz(self, context: RequestContext, send: Send) -> None:
        """200 while the retriever answers its health check, else 503."""
        if await self.upstream.ready():
            await send_response(send, context, 200, _SERVING, cache_control=NO_STORE)
            return
        await send_error(
            send,
            context,
            gateway_error(
                grpc.StatusCode.UNAVAILABLE, "the retriever is not answering", "NOT_READY"
            ),
        )

    async def openapi(self, context: RequestContext, send: Send) -> None:
        """The OpenAPI document of the routes currently exposed."""
        surface = self.upstream.surface
        assert surface is not None
        await send_response(
            send,
            context,
            200,
            surface.openapi,
            cache_control="public, max-age=60",
            validate=True,
            compress_min=self.compress_min,
        )


__all__ = ["OwnEndpoint", "OwnHandler", "OwnPages", "TranscodingEndpoint", "render", "transcode"]
