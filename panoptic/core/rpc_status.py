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
# A status travels in the trailers, its message percent-encoded (up to 3 bytes a byte) and its
# details in base64; gRPC clients refuse trailers above 8 KiB some of the time and above 16 KiB
# always, answering RESOURCE_EXHAUSTED in place of the error. Texts that may echo a caller's
# input are clipped, and the violations stop at a budget, so that every error arrives whole.
MAX_MESSAGE_BYTES = 600
MAX_TEXT_BYTES = 200
"""A violation's field or description, or an ErrorInfo metadata value."""
MAX_VIOLATIONS_BYTES = 3_000
CLIPPED = "…"


_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def status_code(code: grpc.StatusCode | int | None) -> grpc.StatusCode:
    """The `grpc.StatusCode` of a code given as one or as its number; UNKNOWN for others."""
    if isinstance(code, grpc.StatusCode):
        return code
    return _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)


def error_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    *,
    metadata: Mapping[str, str] | None = None,
    violations: Iterable[tuple[str, str]] = (),
) -> status_pb2.Status:
    """A `google.rpc.Status` with an ErrorInfo and, when given, a BadRequest; small enough for
    any client's trailers, whatever the texts (see `MAX_MESSAGE_BYTES`)."""
    clipped_metadata = {key: clip(value, MAX_TEXT_BYTES) for key, value in (metadata or {}).items()}
    details: list[Any] = [
        error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=clipped_metadata)
    ]
    field_violations = [
        error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
        for field, description in fitting(violations)
    ]
    if field_violations:
        details.append(error_details_pb2.BadRequest(field_violations=field_violations))
    packed = []
    for detail in details:
        container = any_pb2.Any()
        container.Pack(detail)
        packed.append(container)
    return status_pb2.Status(
        code=getattr(code_pb2, code.name),
        message=clip(message, MAX_MESSAGE_BYTES),
        details=packed,
    )


def clip(text: str, max_bytes: int) -> str:
    """The text, cut to at most `max_bytes` bytes of UTF-8 with a mark where it was cut."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return text
    kept = encoded[: max_bytes - len(CLIPPED.encode())].decode("utf-8", "ignore")
    return kept + CLIPPED


def fitting(violations: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The first violations, clipped, that fit the details' budget: at most `DETAIL_VIOLATIONS`
    and `MAX_VIOLATIONS_BYTES`."""
    kept: list[tuple[str, str]] = []
    size = 0
    for field, description in violations:
        violation = (clip(field, MAX_TEXT_BYTES), clip(description, MAX_TEXT_BYTES))
        size += sum(len(text.encode()) for text in violation)
        if len(kept) == DETAIL_VIOLATIONS or size > MAX_VIOLATIONS_BYTES:
            break
        kept.append(violation)
    return kept


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
    detailed = fitting(violations)
    # The counts come before the list, so that clipping a long message never cuts them off.
    message = f"{len(violations)} invalid field{'s' if len(violations) != 1 else ''}"
    if len(violations) > len(detailed):
        message += f" (the details list the first {len(detailed)})"
    message += ": " + "; ".join(f"{field}: {text}" for field, text in detailed[:MESSAGE_VIOLATIONS])
    more = len(violations) - MESSAGE_VIOLATIONS
    if more > 0:
        message += f"; and {more} more (see the BadRequest details)"
    await abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
        reason,
        metadata=metadata,
        violations=detailed,
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
