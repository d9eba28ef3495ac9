"""Bearer-token authentication for internal gRPC services, as a server interceptor."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import grpc

from panoptic.core.metrics import AUTH_REJECTED

AUTHORIZATION_KEY = "authorization"


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses calls without `authorization: Bearer <token>` with UNAUTHENTICATED.

    The token is compared in constant time. Services in `exempt` (health checks, so that
    orchestrators can probe without a secret) are let through.
    """

    def __init__(self, token: str, *, exempt: Collection[str] = ()) -> None:
        if not token:
            raise ValueError("an empty token would let anyone in")
        self._expected = f"Bearer {token}".encode()
        self._exempt = frozenset(exempt)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        service = handler_call_details.method.lstrip("/").rpartition("/")[0]
        if service in self._exempt or self._authorized(handler_call_details.invocation_metadata):
            return await continuation(handler_call_details)
        AUTH_REJECTED.labels(service).inc()
        return _refusal(await continuation(handler_call_details))

    def _authorized(self, metadata: Any) -> bool:
        presented = b""
        for key, value in metadata or ():
            if key == AUTHORIZATION_KEY:
                presented = value.encode() if isinstance(value, str) else bytes(value)
                break
        return hmac.compare_digest(presented, self._expected)


def _refusal(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    """A handler of the same shape that answers UNAUTHENTICATED without running anything."""
    if handler is None:
        return None

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "missing or wrong bearer token in the authorization metadata",
        )

    factories = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    factory: Any = factories[(handler.request_streaming, handler.response_streaming)]
    return factory(refuse, handler.request_deserializer, handler.response_serializer)
