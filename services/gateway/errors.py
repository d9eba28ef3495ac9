"""Errors as AIP-193 JSON, with the standard gRPC-to-HTTP status mapping.

`{"error": {"code": 404, "message": "...", "status": "NOT_FOUND", "details": [...]}}`. Details
the retriever attached (the `grpc-status-details-bin` trailer) pass through in proto3 JSON with
their `@type`. What a client sees never holds internal detail: an upstream status without rich
details (one made by the gRPC library itself, e.g. "failed to connect to 127.0.0.1:50052"), or
an INTERNAL, UNKNOWN or DATA_LOSS one, is answered with a generic message and the request id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import orjson
from google.protobuf import any_pb2, descriptor_pool, duration_pb2, json_format
from google.protobuf import message as protobuf_message
from google.rpc import error_details_pb2, status_pb2

from panoptic.core.rpc_status import ERROR_DOMAIN, status_code

# google/rpc/code.proto's HTTP mapping, as grpc-gateway and Envoy apply it.
HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Codes whose upstream message may describe internals: always replaced.
_HIDDEN = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS})
_GENERIC = {
    grpc.StatusCode.CANCELLED: "the request was cancelled",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the request took too long; retry, or narrow it down",
    grpc.StatusCode.UNAVAILABLE: "the service is unavailable right now; retry shortly",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "the service is overloaded or the answer too large",
    grpc.StatusCode.UNIMPLEMENTED: "this operation is not available yet",
}


@dataclass
class ApiError(Exception):
    """An error answer: the gRPC code, a message for people and details for programs."""

    code: grpc.StatusCode
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    http_status: int | None = None
    """Overrides the code's mapping where HTTP has a more exact answer (405, 414, 415, 431)."""

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def status(self) -> int:
        """The HTTP status code."""
        return self.http_status or HTTP_STATUS.get(self.code, 500)

    def body(self) -> bytes:
        """The AIP-193 JSON body."""
        return orjson.dumps(
            {
                "error": {
                    "code": self.status,
                    "message": self.message,
                    "status": self.code.name,
                    "details": self.details,
                }
            }
        )


def render_detail(detail: protobuf_message.Message) -> dict[str, Any]:
    """One detail message in proto3 JSON with its `@type`."""
    container = any_pb2.Any()
    container.Pack(detail)
    rendered: dict[str, Any] = json_format.MessageToDict(container)
    return rendered


def gateway_error(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    *,
    violations: Iterable[tuple[str, str]] = (),
    metadata: Mapping[str, str] | None = None,
    extra: Iterable[protobuf_message.Message] = (),
    headers: Mapping[str, str] | None = None,
    http_status: int | None = None,
) -> ApiError:
    """An error the gateway itself answers with, carrying an ErrorInfo (and a BadRequest)."""
    details = [
        render_detail(
            error_details_pb2.ErrorInfo(
                reason=reason, domain=ERROR_DOMAIN, metadata=dict(metadata or {})
            )
        )
    ]
    field_violations = [
        error_details_pb2.BadRequest.FieldViolation(field=name, description=text)
        for name, text in violations
    ]
    if field_violations:
        details.append(
            render_detail(error_details_pb2.BadRequest(field_violations=field_violations))
        )
    details.extend(render_detail(detail) for detail in extra)
    return ApiError(code, message, details, dict(headers or {}), http_status)


def bad_parameter(parameter: str, message: str) -> ApiError:
    """INVALID_ARGUMENT for one query parameter, named in the message and a field violation."""
    return gateway_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        "INVALID_QUERY_PARAMETER",
        violations=[(parameter, message)],
        metadata={"parameter": parameter},
    )


def rate_limited(retry_after_seconds: float) -> ApiError:
    """RESOURCE_EXHAUSTED (429) with Retry-After and a RetryInfo."""
    whole = max(1, int(retry_after_seconds + 0.999))
    return gateway_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"too many requests from this client; retry in {whole} s",
        "RATE_LIMITED",
        extra=[error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=whole))],
        headers={"retry-after": str(whole)},
    )


def from_rpc_error(
    error: Any, request_id: str, pool: descriptor_pool.DescriptorPool | None = None
) -> ApiError:
    """The client's view of a failed upstream call (a `grpc.aio.AioRpcError`)."""
    code = status_code(error.code())
    status = _rich_status(error)
    if status is not None and code not in _HIDDEN:
        details = [d for d in (_render_any(a, pool) for a in status.details) if d is not None]
        return ApiError(code, status.message, details)
    if code in _HIDDEN:
        message = f"internal error; quote request id {request_id} when reporting it"
    else:
        message = _GENERIC.get(code, code.name.lower().replace("_", " "))
    reason = f"UPSTREAM_{code.name}"
    return gateway_error(code, message, reason, metadata={"requestId": request_id})


def _rich_status(error: Any) -> status_pb2.Status | None:
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:  # grpc raises for calls that never started
        return None
    for key, value in trailers:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:  # DecodeError: a garbled trailer is treated as absent
                return None
    return None


def _render_any(
    container: any_pb2.Any, pool: descriptor_pool.DescriptorPool | None
) -> dict[str, Any] | None:
    # The google.rpc detail types are in the default pool (imported above); the API's own
    # detail types, if any, are in the reflected pool.
    for candidate in (None, pool):
        try:
            rendered: dict[str, Any] = json_format.MessageToDict(
                container, descriptor_pool=candidate
            )
        except (TypeError, KeyError, json_format.Error):
            continue
        return rendered
    return None
