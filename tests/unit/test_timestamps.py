"""Timestamps from datetimes: the same instant as protobuf's own conversion, faster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import timestamp_pb2

from panoptic.core.timestamps import timestamp


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2))),
        datetime(2024, 5, 1, 0, 30, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=45))),
        datetime(2024, 5, 1, 12, 30),  # naive: taken as UTC
    ],
)
def test_timestamp_is_the_instant_protobuf_gives(moment: datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(moment)
    assert timestamp(moment) == expected
    assert 0 <= timestamp(moment).nanos < 1_000_000_000
