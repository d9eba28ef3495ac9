"""The one gRPC server bootstrap every Panoptic service uses.

It registers health and reflection, installs the observability interceptor (canonical log
line, go-grpc-prometheus metrics, request ids, no internal detail in errors), any
service-specific ones (authentication) and, innermost, the one that refuses requests whose
bytes are not a valid message, serves Prometheus metrics, and shuts down gracefully
on SIGTERM or SIGINT: health turns NOT_SERVING, in-flight calls get the grace period, then
the service's resources close.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from panoptic.core import metrics
from panoptic.core.call_stream import SERVICE_NAME as CALL_STREAM_SERVICE
from panoptic.core.call_stream import CallStreamServicer, handler_lookup
from panoptic.core.lifecycle import stop_when_orphaned, worker_index
from panoptic.core.logging import get_logger
from panoptic.core.ports import PortInUse, check_port_free
from panoptic.core.rpc_status import abort, status_code
from panoptic.v1 import call_stream_pb2_grpc

REQUEST_ID_KEY = "x-request-id"
HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
# How long the calls on a connection past its age (`GrpcServerSpec.max_connection_age_seconds`)
# may still run once its client was asked to make a new one; a read runs 10 s at most.
CONNECTION_AGE_GRACE_SECONDS = 60.0

log = get_logger("panoptic.grpc")

Register = Callable[[grpc.aio.Server], Sequence[str]]


@dataclass(frozen=True)
class GrpcServerSpec:
    """What a service brings to the bootstrap."""

    name: str
    """Short service name for logs and metrics, e.g. `indexer`."""
    host: str
    port: int
    metrics_port: int
    register: Register
    """Adds the servicers to the server and returns their full names, e.g. `panoptic.v1.X`."""
    interceptors: Sequence[grpc.aio.ServerInterceptor] = ()
    credentials: grpc.ServerCredentials | None = None
    on_start: Callable[[], Awaitable[None]] | None = None
    """Opens the service's resources (its database pool) before it accepts calls."""
    on_stop: Callable[[], Awaitable[None]] | None = None
    """Closes them after the last call has finished."""
    grace_seconds: float = 10.0
    max_message_bytes: int = 16 * 1024 * 1024
    options: Sequence[tuple[str, Any]] = field(default_factory=tuple)
    call_stream: bool = False
    """Also serve the service's unary methods over `CallStreamService` streams (`call_stream`)."""
    max_connection_age_seconds: float = 0.0
    """0: a connection lives as long as its client keeps it. Otherwise gRPC asks the client to
    make a new one after this long (±10 %), and gives the calls in flight on the old one
    `CONNECTION_AGE_GRACE_SECONDS`; call streams end by themselves within half of that."""

    def check_port_free(self) -> None:
        """Raises `PortInUse`, naming the variable that moves it, when the gRPC port is taken."""
        check_port_free(
            self.host, self.port, f"{self.name} gRPC", f"PANOPTIC_{self.name.upper()}_PORT"
        )


def request_id_of(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's `x-request-id`, or a fresh one."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return uuid.uuid4().hex


class _HandlerWrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """An interceptor that hands each method's handler on wrapped; unknown methods pass."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self.wrap(handler_call_details.method, handler)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The handler to serve `method` (its full name, `/package.Service/Method`) with."""
        raise NotImplementedError


class ObservabilityInterceptor(_HandlerWrappingInterceptor):
    """One summary log line and the go-grpc-prometheus metrics per call; hides internal errors.

    An exception a handler did not turn into a status is logged with its traceback and answered
    with INTERNAL and the request id, never with the exception's text.
    """

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        service, _, name = method.lstrip("/").rpartition("/")
        return _wrap(handler, _Observer(service, name, _rpc_type(handler)))


@dataclass
class _Observer:
    service: str
    method: str
    rpc_type: str

    def labels(self) -> tuple[str, str, str]:
        return (self.rpc_type, self.service, self.method)

    @contextlib.asynccontextmanager
    async def observe(self, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        request_id = request_id_of(context)
        # Asked now, while the call is sure to be alive: once a stream has been aborted, gRPC
        # may have freed the call, and `peer()` then reads freed memory (a worker was seen
        # killed by SIGSEGV logging a reflection stream refused for malformed bytes).
        peer = context.peer()
        started = time.perf_counter()
        metrics.GRPC_STARTED.labels(*self.labels()).inc()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
        code = grpc.StatusCode.OK
        try:
            yield
            code = context.code() or grpc.StatusCode.OK
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("unhandled error", method=self.method)
            await context.abort(code, f"internal error; request id {request_id}")
        finally:
            elapsed = time.perf_counter() - started
            code = status_code(code)
            metrics.GRPC_HANDLED.labels(*self.labels(), code.name).inc()
            metrics.GRPC_HANDLING_SECONDS.labels(*self.labels()).observe(elapsed)
            log.info(
                "rpc",
                method=f"{self.service}/{self.method}",
                status=code.name,
                duration_ms=round(elapsed * 1000, 2),
                peer=peer,
            )
            structlog.contextvars.unbind_contextvars("request_id")


def _rpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


def _wrap(handler: grpc.RpcMethodHandler, observer: _Observer) -> grpc.RpcMethodHandler:
    """The same handler, each call run inside `observer.observe`."""
    counted_requests = _count_received(observer)

    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: Any) -> Any:
            metrics.GRPC_MSG_RECEIVED.labels(*observer.labels()).inc()
            async with observer.observe(context):
                response = await inner_uu(request, context)
            metrics.GRPC_MSG_SENT.labels(*observer.labels()).inc()
            return response

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: Any) -> Any:
            async with observer.observe(context):
                response = await inner_su(counted_requests(requests), context)
            metrics.GRPC_MSG_SENT.labels(*observer.labels()).inc()
            return response

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            metrics.GRPC_MSG_RECEIVED.labels(*observer.labels()).inc()
            async with observer.observe(context):
                async for response in _responses(inner_us(request, context)):
                    metrics.GRPC_MSG_SENT.labels(*observer.labels()).inc()
                    yield response

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, handler.request_deserializer, handler.response_serializer
        )
    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
        async with observer.observe(context):
            async for response in _responses(inner_ss(counted_requests(requests), context)):
                metrics.GRPC_MSG_SENT.labels(*observer.labels()).inc()
                yield response

    return grpc.stream_stream_rpc_method_handler(
        stream_stream, handler.request_deserializer, handler.response_serializer
    )


def _count_received(observer: _Observer) -> Callable[[Any], AsyncIterator[Any]]:
    async def counted(requests: Any) -> AsyncIterator[Any]:
        async for request in requests:
            metrics.GRPC_MSG_RECEIVED.labels(*observer.labels()).inc()
            yield request

    return counted


async def _responses(result: Any) -> AsyncIterator[Any]:
    """Responses of a streaming handler, whether it is an async generator or a coroutine."""
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    elif result is not None:
        await result


@dataclass(frozen=True)
class MalformedRequest:
    """What a method's handler receives in place of a request whose bytes do not parse."""

    message_type: str
    """The full name of the message the bytes should have been, e.g. `panoptic.v1.X`."""


class MalformedRequestInterceptor(_HandlerWrappingInterceptor):
    """Answers a request whose bytes are not a valid message with INVALID_ARGUMENT.

    gRPC answers UNKNOWN, naming the parser's exception, when a method's deserializer raises,
    and a stream's handler sees the exception as its own (INTERNAL). So each method's
    deserializer hands on a `MalformedRequest` instead, which its handler refuses with a
    neutral message. Installed innermost, so that authentication comes first. Each method's
    handler is wrapped once, not per call.
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = _refusing_malformed(handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """The deserializer, returning a `MalformedRequest` where it would raise."""
    if deserializer is None:
        return None
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    malformed = MalformedRequest(getattr(descriptor, "full_name", "request"))

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception:  # whatever the parser raises on them, the bytes are the caller's
            return malformed

    return deserialize


async def _refuse_malformed(
    context: grpc.aio.ServicerContext[Any, Any], request: MalformedRequest, position: int = 0
) -> None:
    which = f"message {position} of the stream" if position else "the request"
    await abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{which} is not a valid {request.message_type} message",
        "MALFORMED_REQUEST",
    )


async def _parsed(
    requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[Any]:
    """A request stream that ends the call at its first malformed message."""
    position = 0
    async for request in requests:
        position += 1
        if isinstance(request, MalformedRequest):
            await _refuse_malformed(context, request, position)
        yield request


def _refusing_malformed(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The same handler with a tolerant deserializer, refusing what it could not parse."""
    deserializer = _tolerant(handler.request_deserializer)
    serializer = handler.response_serializer
    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: Any) -> Any:
            if isinstance(request, MalformedRequest):
                await _refuse_malformed(context, request)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, deserializer, serializer)
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if isinstance(request, MalformedRequest):
                await _refuse_malformed(context, request)
            async for response in _responses(inner_us(request, context)):
                yield response

        return grpc.unary_stream_rpc_method_handler(unary_stream, deserializer, serializer)
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: Any) -> Any:
            return await inner_su(_parsed(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, deserializer, serializer)
    inner_ss = handler.stream_stream

    def stream_stream(requests: Any, context: Any) -> Any:
        return inner_ss(_parsed(requests, context), context)

    return grpc.stream_stream_rpc_method_handler(stream_stream, deserializer, serializer)


async def serve(spec: GrpcServerSpec) -> None:
    """Runs the service until SIGTERM or SIGINT, then stops it gracefully.

    In a worker process (`core.workers`) it shares the port with its sibling workers and leaves
    `/metrics` to the service's main process.
    """
    worker = worker_index()
    metrics_server: metrics.MetricsServer | None = None
    if worker is None:
        spec.check_port_free()
        metrics_server = metrics.start_metrics_server(spec.host, spec.metrics_port, spec.name)
    interceptors = [ObservabilityInterceptor(), *spec.interceptors, MalformedRequestInterceptor()]
    server = _server(spec, interceptors, shares_port=worker is not None)
    stopping = asyncio.Event()
    registering = _Registering(server)
    names = list(spec.register(registering))
    if spec.call_stream:
        handlers = registering.generic_handlers
        age = spec.max_connection_age_seconds
        names.append(_serve_call_stream(server, handlers, interceptors, stopping, age))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*names, HEALTH_SERVICE, REFLECTION_SERVICE], server)
    address = f"{spec.host}:{spec.port}"
    if spec.credentials is not None:
        server.add_secure_port(address, spec.credentials)
    else:
        server.add_insecure_port(address)

    if spec.on_start is not None:
        await spec.on_start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    orphan_watch = asyncio.ensure_future(stop_when_orphaned(stopping.set))
    try:
        await server.start()
        for name in ("", *names):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", service=spec.name, address=address, worker=worker)
        await stopping.wait()
        log.info("stopping", service=spec.name, grace_seconds=spec.grace_seconds)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(spec.grace_seconds)
    finally:
        orphan_watch.cancel()
        if spec.on_stop is not None:
            await spec.on_stop()
        if metrics_server is not None:
            metrics_server.shutdown()
        log.info("stopped", service=spec.name, worker=worker)


def _server(
    spec: GrpcServerSpec, interceptors: Sequence[grpc.aio.ServerInterceptor], *, shares_port: bool
) -> grpc.aio.Server:
    """The service's gRPC server, with nothing on it yet."""
    return grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", spec.max_message_bytes),
            ("grpc.max_send_message_length", spec.max_message_bytes),
            # Off for a service's only process, so that a second one fails to bind.
            ("grpc.so_reuseport", 1 if shares_port else 0),
            *_connection_age_options(spec.max_connection_age_seconds),
            *spec.options,
        ],
    )


class _Registering:
    """The server as a service's `register` sees it: the generic handlers it adds are kept, for
    the call stream to find its methods among."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server
        self.generic_handlers: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self.generic_handlers.extend(handlers)
        self._server.add_generic_rpc_handlers(handlers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def _connection_age_options(max_age_seconds: float) -> list[tuple[str, int]]:
    """gRPC's options for connections that live at most `max_age_seconds` (0: no limit)."""
    if max_age_seconds <= 0:
        return []
    return [
        ("grpc.max_connection_age_ms", max(1, round(max_age_seconds * 1000))),
        ("grpc.max_connection_age_grace_ms", round(CONNECTION_AGE_GRACE_SECONDS * 1000)),
    ]


def _call_stream_seconds(max_age_seconds: float) -> float | None:
    """How long a call stream lives when connections live at most `max_age_seconds`.

    A stream that is still open when its connection's grace runs out is cut off with it, and
    its calls made again unary. A stream opens before its connection is asked to close, so one
    that ends within half the grace (the other half for the calls it took) ends first.
    """
    if max_age_seconds <= 0:
        return None
    return min(max_age_seconds, CONNECTION_AGE_GRACE_SECONDS / 2)


def _serve_call_stream(
    server: grpc.aio.Server,
    generic_handlers: Sequence[grpc.GenericRpcHandler],
    interceptors: Sequence[grpc.aio.ServerInterceptor],
    stopping: asyncio.Event,
    max_connection_age_seconds: float,
) -> str:
    """Adds `CallStreamService`, whose calls run each method's handler wrapped as the server's
    interceptors wrap it, and returns its name."""
    wrappers = []
    for interceptor in interceptors:
        if not isinstance(interceptor, _HandlerWrappingInterceptor):
            # An interceptor that decides per call (authentication) would see the stream only.
            raise TypeError(f"a call stream cannot apply {type(interceptor).__name__}")
        wrappers.append(interceptor.wrap)
    call_stream_pb2_grpc.add_CallStreamServiceServicer_to_server(
        CallStreamServicer(
            handler_lookup(generic_handlers, wrappers),
            stopping,
            max_seconds=_call_stream_seconds(max_connection_age_seconds),
        ),
        server,
    )
    return CALL_STREAM_SERVICE


__all__ = [
    "GrpcServerSpec",
    "MalformedRequest",
    "MalformedRequestInterceptor",
    "ObservabilityInterceptor",
    "PortInUse",
    "request_id_of",
    "serve",
]
