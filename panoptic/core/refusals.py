"""What a handler raises to refuse a call, as plain values: one kind per answer a caller can act on.

Handlers raise these and know nothing of gRPC or HTTP; the faces map each kind to their own
status (`panoptic.core.grpc_refusals` for the gRPC services, the dashboard to its pages). A
subclass may name its refusal more precisely (a claim not found, a reused request id) and stays
the kind it derives from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from panoptic.core.errors import PanopticError

DATABASE_UNAVAILABLE = "the database is unavailable; retry later"


class Refusal(Exception):
    """A call refused or not completed: a message for people, a machine-readable `reason`
    (an ErrorInfo reason) and metadata naming what was refused."""

    def __init__(
        self, message: str, reason: str, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})


class InvalidArgument(Refusal):
    """The request is malformed; `violations` names each offending field by its JSON name."""

    def __init__(
        self,
        violations: Sequence[tuple[str, str]],
        reason: str = "INVALID_ARGUMENT",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__("invalid request", reason, metadata)
        self.violations = list(violations)
        """(field path, description) pairs."""


class NotFound(Refusal):
    """The named resource does not exist."""


class FailedPrecondition(Refusal):
    """The request is well formed but the system's state refuses it (e.g. a reused request id)."""


class DeadlineExceeded(Refusal):
    """The caller's deadline (or the statement time limit) passed before the work finished."""

    def __init__(self) -> None:
        super().__init__(
            "the read did not finish within the deadline; narrow the filters or allow more time",
            "DEADLINE_EXCEEDED",
        )


class Unavailable(Refusal):
    """A dependency cannot serve the call now; retrying later may succeed."""


class DatabaseUnavailable(Unavailable, PanopticError):
    """The database cannot be reached or refused the login; retrying later may succeed.

    A `PanopticError` too: at start-up the command line prints its message as one line.
    """

    def __init__(self, message: str = DATABASE_UNAVAILABLE) -> None:
        super().__init__(message, "DATABASE_UNAVAILABLE")
