"""The gateway's side of gRPC: long-lived channels to the retriever that ride out its restarts,
the API surface compiled from its descriptors (swapped whole when the retriever is redeployed
with a new API), and its readiness.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import orjson
from google.protobuf import descriptor, message, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc

from panoptic.core.call_stream import CallStreams, Metadata
from panoptic.core.logging import get_logger
from panoptic.core.settings import GatewaySettings, ServerSettings
from services.gateway import metrics
from services.gateway.cache import shared_max_age
from services.gateway.descriptors import (
    PACKAGED_DESCRIPTOR_SET,
    REFLECTION,
    DescriptorError,
    LoadedDescriptors,
    build,
    fetch_by_reflection,
    load_descriptor_set,
    packaged_source_info,
)
from services.gateway.openapi import build_openapi
from services.gateway.rules import GatewayRoute, Router, exposed_routes
from services.gateway.transcode import (
    MaskTree,
    RequestTranscoder,
    ResponseRenderer,
    parse_field_mask,
)

log = get_logger("panoptic.gateway")

# How long a "ready" answer is reused, so probes (or a flood of them) cost one call a second.
# A "not ready" is not reused: it cost the retriever nothing (no connection, no call), and the
# gateway reports ready again as soon as the retriever is back.
READINESS_TTL_SECONDS = 1.0
# Reconnecting to a retriever that went away: the first pause, and the longest one (gRPC's
# defaults are 1 s and 120 s); attempts to a refused port cost nothing, so the gateway retries
# often and a retriever that is back is used within half a second.
RECONNECT_BACKOFF_INITIAL_MS = 100
RECONNECT_BACKOFF_MAX_MS = 500
# The least time a connection attempt is given (gRPC's default: 20 s): a retriever host that
# vanished (SYNs unanswered) is tried again after 2 s, not 20.
CONNECT_TIMEOUT_MIN_MS = 2_000
MASK_CACHE_SIZE = 256


def _serialize(request: message.Message) -> bytes:
    return request.SerializeToString()


@dataclass
class CompiledRoute:
    """A route with everything a request needs prepared: transcoder, renderer, gRPC callable."""

    route: GatewayRoute
    transcoder: RequestTranscoder
    renderer: ResponseRenderer
    call: Any
    """`channel.unary_unary(...)` for the method, created once."""
    response_class: type[message.Message]
    deadline: float
    cache_control: str
    max_age: float
    """How long a shared cache may keep its responses (from `cache_control`)."""
    label: str
    """The route for metrics and logs: its template."""
    response_type: descriptor.Descriptor
    _masks: dict[tuple[str, ...], MaskTree | None] = field(default_factory=dict)

    def field_mask(self, values: tuple[str, ...]) -> MaskTree | None:
        """The parsed `fields=` values (cached: clients repeat the same few masks)."""
        if values in self._masks:
            return self._masks[values]
        tree = parse_field_mask(values, self.response_type)
        if len(self._masks) < MASK_CACHE_SIZE:
            self._masks[values] = tree
        return tree


@dataclass(frozen=True)
class ApiSurface:
    """Everything derived from one set of descriptors; replaced as a whole, never mutated."""

    loaded: LoadedDescriptors
    router: Router
    routes: dict[str, CompiledRoute]
    """By template source."""
    openapi: bytes


def compile_surface(
    settings: GatewaySettings, loaded: LoadedDescriptors, channel: Any
) -> ApiSurface:
    """Checks what the descriptors would expose (`UnsafeExposure`) and prepares every route."""
    routes = exposed_routes(loaded.pool, settings.gateway_services)
    compiled: dict[str, CompiledRoute] = {}
    for route in routes:
        method = route.method
        output = method.output_type
        response_type = output
        if route.response_body:
            body_field = output.fields_by_name[route.response_body]
            response_type = body_field.message_type or output
        response_class = message_factory.GetMessageClass(output)
        cache_control = _per_method(settings.gateway_cache_control, method) or (
            settings.gateway_cache_control.get("*", "no-cache")
        )
        compiled[route.template.source] = CompiledRoute(
            route=route,
            transcoder=RequestTranscoder(
                method.input_type, (c.field_path for c in route.template.captures)
            ),
            renderer=ResponseRenderer(output, loaded.pool),
            call=channel.unary_unary(
                route.grpc_path,
                request_serializer=_serialize,
                response_deserializer=response_class.FromString,
            ),
            response_class=response_class,
            deadline=_per_method(settings.gateway_method_deadlines, method)
            or settings.gateway_deadline_seconds,
            cache_control=cache_control,
            max_age=shared_max_age(cache_control),
            label=route.template.source,
            response_type=response_type,
        )
    document = build_openapi(routes, loaded)
    return ApiSurface(loaded, Router(routes), compiled, orjson.dumps(document))


def _per_method(table: dict[str, Any], method: descriptor.MethodDescriptor) -> Any:
    return table.get(method.full_name, table.get(method.name))


def channel_options(settings: GatewaySettings, max_message_bytes: int) -> list[tuple[str, Any]]:
    """The options of the gateway's channels to the retriever, which ride out its restarts.

    gRPC's own machinery does it, no loop of ours: a channel whose retriever went away tries
    to connect again every half second at most (by default the pause grows to 2 minutes, and
    the gateway answered 503 for seconds after the retriever was back); and the service config
    makes every call of the exposed services (all free of side effects) wait for a connection
    within its deadline, and retry when the retriever refused it while stopping.
    """
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_INITIAL_MS),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MAX_MS),
        ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MIN_MS),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config(settings.gateway_services)),
    ]


def service_config(services: list[str]) -> str:
    """The channels' service config: wait for ready, and a retry policy, for `services`."""
    return orjson.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": service} for service in services],
                    # A call waits while the channel (re)connects instead of failing at once;
                    # its deadline, the route's, still bounds the wait (see `explain`).
                    "waitForReady": True,
                    "retryPolicy": {
                        # A retry waits for a connection of its own (wait for ready): the
                        # pauses between attempts can be short, 10 to 80 ms, so that five
                        # attempts fit in even a short deadline.
                        "maxAttempts": 5,
                        "initialBackoff": "0.01s",
                        "maxBackoff": "0.08s",
                        "backoffMultiplier": 2,
                        # A retriever that is stopping refuses calls that reach it after its
                        # GOAWAY left: UNAVAILABLE, or CANCELLED (RST_STREAM) for those its
                        # connection had already taken. The retry goes to a fresh connection,
                        # another worker or the restarted retriever.
                        "retryableStatusCodes": ["UNAVAILABLE", "CANCELLED"],
                    },
                }
            ],
            # No retry storm against a retriever that keeps failing: once half of a channel's
            # 10 tokens are spent (one per failed attempt, a tenth back per success), its calls
            # are tried once.
            "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
        }
    ).decode()


class TakingTurns:
    """Channels to one address, each with a connection of its own; unary calls take turns.

    A connection to the retriever is served by one of its worker processes (`core.workers`), so
    one channel would leave the others idle. Stubs and `unary_unary` work as on one channel;
    streaming calls (reflection) use the first.
    """

    def __init__(self, address: str, count: int, options: list[tuple[str, Any]]) -> None:
        # A subchannel pool per channel: otherwise channels with equal options share one.
        own = [*options, ("grpc.use_local_subchannel_pool", 1)]
        self.channels = [grpc.aio.insecure_channel(address, options=own) for _ in range(count)]

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        """A callable for `method` that sends each call on the next channel."""
        calls = itertools.cycle([c.unary_unary(method, *args, **kwargs) for c in self.channels])
        return lambda *call_args, **call_kwargs: next(calls)(*call_args, **call_kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channels[0], name)

    def connected(self) -> bool:
        """Whether any of the channels has a connection to the retriever right now."""
        ready = grpc.ChannelConnectivity.READY
        return any(channel.get_state() == ready for channel in self.channels)

    async def close(self, grace: float | None = None) -> None:
        """Closes every channel, letting calls in flight finish."""
        await asyncio.gather(*(channel.close(grace) for channel in self.channels))


class Upstream:
    """The retriever as the gateway sees it."""

    def __init__(
        self, settings: GatewaySettings, server: ServerSettings, channel: Any | None = None
    ) -> None:
        self.settings = settings
        self.grace_seconds = server.shutdown_grace_seconds
        self.channel = channel or TakingTurns(
            settings.retriever_address,
            settings.gateway_retriever_connections,
            channel_options(settings, server.max_message_bytes),
        )
        self.surface: ApiSurface | None = None
        self.streams = (
            CallStreams(self.channel.channels)
            if settings.gateway_call_stream and isinstance(self.channel, TakingTurns)
            else None
        )
        """Where reads go first (None: unary calls only)."""
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self._ready_until = 0.0
        self._source_info = packaged_source_info(PACKAGED_DESCRIPTOR_SET)

    @property
    def source(self) -> str:
        """`reflection` or the descriptor set's path."""
        return self.settings.gateway_descriptor_source

    async def load(self, timeout: float = 5.0) -> LoadedDescriptors:
        """The API's descriptors from the configured source."""
        if self.source == REFLECTION:
            files = await fetch_by_reflection(self.channel, self.settings.gateway_services, timeout)
        else:
            files = load_descriptor_set(Path(self.source))
        return build(files, self._source_info)

    async def start(self) -> ApiSurface:
        """Loads the API, retrying reflection until the retriever answers or time runs out."""
        deadline = time.monotonic() + self.settings.gateway_startup_timeout_seconds
        delay = 0.2
        while True:
            try:
                loaded = await self.load()
                break
            except DescriptorError as error:
                if self.source != REFLECTION or time.monotonic() + delay > deadline:
                    raise DescriptorError(
                        f"{error}; is the retriever running at "
                        f"{self.settings.retriever_address} (PANOPTIC_RETRIEVER_ADDRESS)?"
                        if self.source == REFLECTION
                        else str(error)
                    ) from None
                log.info("waiting for the retriever's reflection", error=str(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        self.surface = compile_surface(self.settings, loaded, self.channel)
        metrics.ROUTES.set(len(self.surface.routes))
        return self.surface

    async def refresh(self) -> bool:
        """Rebuilds the surface when reflection describes a different API; True when it did.

        A new API that would expose something unsafe is refused: the old surface stays.
        """
        current = self.surface
        try:
            loaded = await self.load()
        except DescriptorError as error:
            log.warning("descriptor refresh failed; keeping the current routes", error=str(error))
            return False
        if current is not None and loaded.fingerprint == current.loaded.fingerprint:
            return False
        try:
            surface = compile_surface(self.settings, loaded, self.channel)
        except Exception as error:  # UnsafeExposure, TemplateError: keep serving the safe API
            metrics.DESCRIPTOR_RELOADS.labels("refused").inc()
            log.error(
                "refusing the retriever's new API; keeping the current routes", error=str(error)
            )
            return False
        self.surface = surface
        metrics.DESCRIPTOR_RELOADS.labels("applied").inc()
        metrics.ROUTES.set(len(surface.routes))
        log.info("routes rebuilt from new descriptors", routes=len(surface.routes))
        return True

    async def follow(self, interval: float, on_change: Callable[[], None] | None = None) -> None:
        """Refreshes every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if await self.refresh() and on_change is not None:
                on_change()

    async def ready(self) -> bool:
        """Whether the API is loaded and every exposed service reports SERVING."""
        if self.surface is None:
            return False
        now = time.monotonic()
        if now < self._ready_until:
            return True
        ready = True
        for service in self.settings.gateway_services:
            try:
                reply = await self._health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1.0
                )
            except grpc.aio.AioRpcError:
                ready = False
                break
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                ready = False
                break
        if ready:
            self._ready_until = now + READINESS_TTL_SECONDS
        return ready

    async def call(
        self, compiled: CompiledRoute, request: message.Message, metadata: Metadata
    ) -> Any:
        """The retriever's answer to a route's request, over a call stream when one can carry
        it, else as a unary call; raises `grpc.aio.AioRpcError` when the call failed."""

        def unary(timeout: float) -> Any:
            return compiled.call(request, timeout=timeout, metadata=metadata)

        if self.streams is None:
            response, carrier = await unary(compiled.deadline), "unary"
        else:
            response, carrier = await self.streams.call(
                compiled.route.grpc_path,
                request.SerializeToString(),
                compiled.deadline,
                metadata,
                compiled.response_class.FromString,
                unary,
            )
        metrics.UPSTREAM_CALLS.labels(carrier).inc()
        return response

    def explain(self, error: grpc.aio.AioRpcError) -> grpc.aio.AioRpcError:
        """The failure a client is told of: UNAVAILABLE rather than DEADLINE_EXCEEDED when the
        call waited for a connection until its deadline ran out (the retriever is down, not
        slow: 503, not a 504 telling the client to narrow its request down)."""
        if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED or self.channel.connected():
            return error
        return grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details="no connection to the retriever within the deadline",
        )

    async def close(self) -> None:
        """Ends the call streams, then closes the channel, letting calls in flight finish."""
        if self.streams is not None:
            await self.streams.close()
        await self.channel.close(grace=self.grace_seconds)
