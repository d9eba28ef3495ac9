"""Rich gRPC errors (AIP-193): a status code, a message for people, and machine-readable details.

Every error a Panoptic service returns carries a `google.rpc.ErrorInfo` whose `reason` a client
can switch on; bad input adds a `google.rpc.BadRequest` naming each offending field. The
gateway passes these details through to REST clients unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "panoptic.v1"
# How many problems the human-readable message lists.
MESSAGE_VIOLATIONS = 5
# How many the BadRequest details carry: they travel in a trailer, and clients refuse trailers
# above 16 KiB (a batch of a thousand bad claims would make ~170 KiB). The message says so.
DETAIL_VIOLATIONS = 50


def error_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    *,
    metadata: Mapping[str, str] | None = None,
    violations: Iterable[tuple[str, str]] = (),
) -> status_pb2.Status:
    """A `google.rpc.Status` with an ErrorInfo and, when given, a BadRequest."""
    details: list[Any] = [
        error_details_pb2.ErrorInfo(
            reason=reason, domain=ERROR_DOMAIN, metadata=dict(metadata or {})
        )
    ]
    field_violations = [
        error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
        for field, description in violations
    ]
    if field_violations:
        details.append(error_details_pb2.BadRequest(field_violations=field_violations))
    packed = []
    for detail in details:
        container = any_pb2.Any()
        container.Pack(detail)
        packed.append(container)
    return status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)


async def abort(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    reason: str,
    *,
    metadata: Mapping[str, str] | None = None,
    violations: Iterable[tuple[str, str]] = (),
) -> NoReturn:
    """Ends the call with a rich error status."""
    status = error_status(code, message, reason, metadata=metadata, violations=violations)
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # it raises; this satisfies NoReturn


async def abort_invalid(
    context: grpc.aio.ServicerContext,
    violations: list[tuple[str, str]],
    reason: str = "INVALID_ARGUMENT",
    *,
    metadata: Mapping[str, str] | None = None,
) -> NoReturn:
    """INVALID_ARGUMENT naming every offending field; the message lists the first few."""
    shown = "; ".join(f"{field}: {text}" for field, text in violations[:MESSAGE_VIOLATIONS])
    more = len(violations) - MESSAGE_VIOLATIONS
    message = f"{len(violations)} invalid field{'s' if len(violations) != 1 else ''}: {shown}"
    if more > 0:
        message += f"; and {more} more (see the BadRequest details)"
    if len(violations) > DETAIL_VIOLATIONS:
        message += f"; the details list the first {DETAIL_VIOLATIONS}"
    await abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        reason,
        metadata=metadata,
        violations=violations[:DETAIL_VIOLATIONS],
    )


def details_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> list[Any]:
    """The unpacked details of a rich error a client received (ErrorInfo, BadRequest, ...)."""
    status = rpc_status.from_call(error)
    if status is None:
        return []
    unpacked: list[Any] = []
    for container in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if container.Is(kind.DESCRIPTOR):
                detail = kind()
                container.Unpack(detail)
                unpacked.append(detail)
    return unpacked
