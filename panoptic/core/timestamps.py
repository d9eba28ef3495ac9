"""`google.protobuf.Timestamp` from the timezone-aware datetimes asyncpg returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from google.protobuf import timestamp_pb2

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def timestamp_fields(value: datetime) -> dict[str, int]:
    """The same instant as a protobuf Timestamp's fields (a naive datetime is taken as UTC).

    For a message's constructor, `Claim(stated_at=timestamp_fields(moment))`: protobuf builds
    the Timestamp in place from them, where a Timestamp message given instead is built and then
    copied in (a claim with four timestamps converts in 5 us against 9 us, measured here).
    Integer arithmetic on the difference from the epoch: exact, and several times cheaper than
    `Timestamp.FromDatetime`.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds, micros = divmod((value - _EPOCH) // _MICROSECOND, 1_000_000)
    return {"seconds": seconds, "nanos": micros * 1_000}


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """The same instant as a protobuf Timestamp (a naive datetime is taken as UTC)."""
    return timestamp_pb2.Timestamp(**timestamp_fields(value))
