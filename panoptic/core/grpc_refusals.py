"""The one mapping from refusals, and from a lost database, to rich gRPC statuses.

Both gRPC services wrap each call's work in `Refusals`: a `Refusal` raised inside ends the call
with its kind's code and its reason, message and metadata (AIP-193); an error that says the
database is down (`is_database_unavailable`) ends it UNAVAILABLE rather than UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import grpc

from panoptic.core.db import is_database_unavailable
from panoptic.core.refusals import (
    DATABASE_UNAVAILABLE,
    DatabaseUnavailable,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Refusal,
    Unavailable,
)
from panoptic.core.rpc_status import abort, abort_invalid

# Each kind of refusal's code; a refusal's nearest class here decides (see `status_code`).
CODES: Final[dict[type, grpc.StatusCode]] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_code(refusal: Refusal) -> grpc.StatusCode:
    """The code of `refusal`'s kind: the nearest of its classes in `CODES`."""
    for kind in type(refusal).__mro__:
        code = CODES.get(kind)
        if code is not None:
            return code
    raise TypeError(f"{type(refusal).__name__} derives from no kind of refusal in CODES")


async def abort_refusal(context: grpc.aio.ServicerContext, refusal: Refusal) -> None:
    """Ends the call with `refusal`'s status; an InvalidArgument names every offending field."""
    if isinstance(refusal, InvalidArgument):
        await abort_invalid(context, refusal.violations, refusal.reason, metadata=refusal.metadata)
    else:
        code = status_code(refusal)
        await abort(context, code, refusal.message, refusal.reason, metadata=refusal.metadata)


class Refusals:
    """Ends the call with the status of a refusal, or of a lost database, raised in the block.

    `unavailable_message` is what a caller is told when the database is down; `on_refusal`, when
    given, sees each refusal before it is answered (the indexer records refused batches).

    A class rather than a `contextlib.asynccontextmanager`: every call enters it, and a
    generator based one costs several times as much.
    """

    __slots__ = ("_context", "_on_refusal", "_unavailable_message")

    def __init__(
        self,
        context: grpc.aio.ServicerContext,
        *,
        unavailable_message: str = DATABASE_UNAVAILABLE,
        on_refusal: Callable[[Refusal], Awaitable[None]] | None = None,
    ) -> None:
        self._context = context
        self._unavailable_message = unavailable_message
        self._on_refusal = on_refusal

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        if error is None:
            return
        if isinstance(error, Refusal):
            refusal = error
        elif is_database_unavailable(error):
            refusal = DatabaseUnavailable(self._unavailable_message)
        else:
            return
        if self._on_refusal is not None:
            await self._on_refusal(refusal)
        await abort_refusal(self._context, refusal)
