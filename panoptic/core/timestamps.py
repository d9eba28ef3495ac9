"""`google.protobuf.Timestamp` from the timezone-aware datetimes asyncpg returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from google.protobuf import timestamp_pb2

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """The same instant as a protobuf Timestamp (a naive datetime is taken as UTC).

    Integer arithmetic on the difference from the epoch: exact, and several times cheaper than
    `Timestamp.FromDatetime`, which the retriever would otherwise pay four times per claim.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds, micros = divmod((value - _EPOCH) // _MICROSECOND, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1_000)
