"""One rule for "the database is down", one kind of refusal per answer, one code per kind."""

from __future__ import annotations

import asyncpg
import grpc
import pytest

from panoptic.core.db import DatabaseUrl, cannot_connect, database_refusals, is_database_unavailable
from panoptic.core.errors import PanopticError
from panoptic.core.grpc_refusals import status_code
from panoptic.core.refusals import (
    DatabaseUnavailable,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Refusal,
    Unavailable,
)
from services.indexer.domain import ClaimNotFound, RequestIdReused, UnknownReferences

# What each list of "the database is down" held before there was one: together, the rule.
UNAVAILABLE = [
    asyncpg.ConnectionDoesNotExistError("gone"),
    asyncpg.ConnectionFailureError("failed"),
    asyncpg.CannotConnectNowError("starting up"),
    asyncpg.AdminShutdownError("shut down"),
    asyncpg.CrashShutdownError("crashed"),
    asyncpg.TooManyConnectionsError("no slot left"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InternalClientError("protocol state"),
    ConnectionRefusedError("refused"),
    TimeoutError(),
]
# Statements the server refused, and failures that are not the database's at all.
NOT_UNAVAILABLE = [
    asyncpg.QueryCanceledError("cancelled"),
    asyncpg.UniqueViolationError("duplicate"),
    asyncpg.DiskFullError("disk full"),
    asyncpg.DivisionByZeroError("division by zero"),
    ValueError("bad value"),
    RuntimeError("pool is not open"),
]


@pytest.mark.parametrize("error", UNAVAILABLE, ids=lambda error: type(error).__name__)
def test_every_failure_of_the_connection_or_the_server_is_an_unavailable_database(
    error: BaseException,
) -> None:
    """Each failure any of the three former lists named says the database is unavailable."""
    assert is_database_unavailable(error)


@pytest.mark.parametrize("error", NOT_UNAVAILABLE, ids=lambda error: type(error).__name__)
def test_a_refused_statement_is_not_an_unavailable_database(error: BaseException) -> None:
    """A statement the server refused, a cancelled one, or a bug is not a database down."""
    assert not is_database_unavailable(error)


@pytest.mark.parametrize(
    ("error", "refusal"),
    [
        (TimeoutError(), DeadlineExceeded),
        (asyncpg.QueryCanceledError("statement timeout"), DeadlineExceeded),
        (asyncpg.TooManyConnectionsError("no slot left"), DatabaseUnavailable),
        (asyncpg.ConnectionDoesNotExistError("gone"), DatabaseUnavailable),
        (ConnectionResetError("reset"), DatabaseUnavailable),
    ],
    ids=lambda value: getattr(value, "__name__", type(value).__name__),
)
def test_within_a_deadline_a_timeout_is_the_deadline_and_a_lost_database_unavailable(
    error: BaseException, refusal: type[Refusal]
) -> None:
    """Work bounded by the caller's deadline refuses a timeout as the deadline passing, and a
    lost database as unavailable."""
    with pytest.raises(refusal), database_refusals:
        raise error


def test_other_failures_pass_through_the_deadline_bound_block_unchanged() -> None:
    """A statement the server refused is no refusal: it leaves the block as it was raised."""
    error = asyncpg.UniqueViolationError("duplicate")
    with pytest.raises(asyncpg.UniqueViolationError) as raised, database_refusals:
        raise error
    assert raised.value is error


@pytest.mark.parametrize(
    ("refusal", "code"),
    [
        (InvalidArgument([("claimId", "is empty")]), grpc.StatusCode.INVALID_ARGUMENT),
        (
            UnknownReferences([("claims[0].actorId", "unknown")], "r-1"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (NotFound("actor 'a' does not exist", "ACTOR_NOT_FOUND"), grpc.StatusCode.NOT_FOUND),
        (ClaimNotFound("c-1"), grpc.StatusCode.NOT_FOUND),
        (FailedPrecondition("stale", "STALE"), grpc.StatusCode.FAILED_PRECONDITION),
        (RequestIdReused("r-1"), grpc.StatusCode.FAILED_PRECONDITION),
        (DeadlineExceeded(), grpc.StatusCode.DEADLINE_EXCEEDED),
        (Unavailable("the index is rebuilding", "REBUILDING"), grpc.StatusCode.UNAVAILABLE),
        (DatabaseUnavailable(), grpc.StatusCode.UNAVAILABLE),
    ],
    ids=lambda value: type(value).__name__,
)
def test_each_refusal_has_the_code_of_its_kind(refusal: Refusal, code: grpc.StatusCode) -> None:
    """A refusal, however precisely a service names it, gets the gRPC code of its kind."""
    assert status_code(refusal) is code


def test_a_bare_refusal_has_no_code_rather_than_a_wrong_one() -> None:
    """A refusal of no known kind is a programming error, not a guessed status."""
    with pytest.raises(TypeError):
        status_code(Refusal("refused", "REFUSED"))


def test_an_unreachable_server_at_start_up_is_the_same_refusal_as_in_a_call() -> None:
    """Failing to connect at start-up raises the one DatabaseUnavailable: a one-line error for
    the command line, naming the server without its password, and a refusal for a call."""
    url = DatabaseUrl("postgresql://panoptic:secret@db.internal:5432/panoptic")
    error = cannot_connect(url, ConnectionRefusedError("Connection refused\nmore detail"))
    assert isinstance(error, DatabaseUnavailable)
    assert isinstance(error, PanopticError)
    assert error.reason == "DATABASE_UNAVAILABLE"
    assert "secret" not in error.message
    assert error.message.startswith(
        "cannot connect to PostgreSQL at postgresql://panoptic:***@db.internal:5432/panoptic: "
        "Connection refused."
    )
