"""Times between protobuf, Python and PostgreSQL: the one range Panoptic accepts, and conversions.

Every time a client sends, and every time the database may hold, lies in [`EARLIEST`, `END`):
from 0001-01-02T00:00:00Z up to, not including, 9999-12-31T00:00:00Z. That is protobuf's own
Timestamp range (years 1 to 9999, which Python's datetime shares) less its first and last day:
asyncpg sends the very first and last microsecond of that range, `datetime.min` and
`datetime.max`, to PostgreSQL as -infinity and infinity, and a day's margin at each end keeps
every date computed from an accepted time (its UTC day, the next day, its week) in range too.
Times are kept to the microsecond, as PostgreSQL and datetime do; finer digits are dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from google.protobuf import timestamp_pb2

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

EARLIEST: Final = datetime(1, 1, 2, tzinfo=UTC)
"""The earliest time accepted anywhere (inclusive)."""
END: Final = datetime(9999, 12, 31, tzinfo=UTC)
"""The end of the accepted times (exclusive)."""
_EARLIEST_SECONDS: Final = (EARLIEST - _EPOCH) // timedelta(seconds=1)
_END_SECONDS: Final = (END - _EPOCH) // timedelta(seconds=1)
RANGE_TEXT: Final = "from 0001-01-02T00:00:00Z up to, not including, 9999-12-31T00:00:00Z"
"""The range as a refusal states it."""

_EARLIEST_SQL: Final = "'0001-01-02 00:00:00+00'::timestamptz"
_END_SQL: Final = "'9999-12-31 00:00:00+00'::timestamptz"
# The extremes asyncpg can decode: anything beyond (±infinity, years before 1 or after 9999)
# is read as these, so that no stored value can fail a read.
_READ_MIN_SQL: Final = "'0001-01-01 00:00:00+00'::timestamptz"
_READ_MAX_SQL: Final = "'9999-12-31 23:59:59.999999+00'::timestamptz"


def timestamp_problem(value: timestamp_pb2.Timestamp) -> str | None:
    """Why a Timestamp a client sent is refused, or None when it is in the accepted range."""
    if not 0 <= value.nanos <= 999_999_999:
        return "nanos must be between 0 and 999999999"
    if not _EARLIEST_SECONDS <= value.seconds < _END_SECONDS:
        return f"must be {RANGE_TEXT}"
    return None


def to_datetime(value: timestamp_pb2.Timestamp) -> datetime:
    """An accepted Timestamp (see `timestamp_problem`) as an aware UTC datetime, to the
    microsecond."""
    # Positional arguments: a third cheaper than keywords, for a conversion made per claim.
    return _EPOCH + timedelta(0, value.seconds, value.nanos // 1_000)


def in_range_sql(column: str) -> str:
    """SQL that is true when `column` holds an accepted time (or NULL): a CHECK's condition."""
    return f"{column} >= {_EARLIEST_SQL} AND {column} < {_END_SQL}"


def clamped_sql(column: str) -> str:
    """SQL for `column`'s time brought into the accepted range (NULL stays NULL)."""
    return (
        f"CASE WHEN {column} < {_EARLIEST_SQL} THEN {_EARLIEST_SQL}"
        f" WHEN {column} >= {_END_SQL} THEN {_END_SQL} - interval '1 microsecond'"
        f" ELSE {column} END"
    )


def readable_sql(column: str) -> str:
    """SQL for `column` as a read returns it: any value of the type, brought within what asyncpg
    and datetime represent (-infinity and years before 1 read as 0001-01-01T00:00:00Z, infinity
    and years after 9999 as 9999-12-31T23:59:59.999999Z; NULL stays NULL)."""
    return (
        f"CASE WHEN {column} < {_READ_MIN_SQL} THEN {_READ_MIN_SQL}"
        f" WHEN {column} > {_READ_MAX_SQL} THEN {_READ_MAX_SQL} ELSE {column} END"
    )


def timestamp_fields(value: datetime) -> dict[str, int]:
    """The same instant as a protobuf Timestamp's fields (a naive datetime is taken as UTC).

    For a message's constructor, `Claim(stated_at=timestamp_fields(moment))`: protobuf builds
    the Timestamp in place from them, where a Timestamp message given instead is built and then
    copied in, at nearly twice the cost (docs/performance.md#timestamps-into-messages).
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
