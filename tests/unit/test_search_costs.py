"""How a search's first page finds its candidates, chosen from estimated counts (no database)."""

from __future__ import annotations

import pytest

from panoptic.reads.queries import _cheapest, _Finding

WINDOW = 2000


@pytest.mark.parametrize(
    ("matches", "claims", "years", "expected"),
    [
        # As measured at 1M claims over ten years (see the constants in `queries`):
        (500_000, 1e6, 10, _Finding.WALK),  # in half the claims: the newest come first
        (111_000, 1e6, 10, _Finding.GATHER_BY_MONTH),  # 11 %: 3 months of 120 hold enough
        (7_943, 1e6, 10, _Finding.GATHER_BY_YEAR),  # 0.8 %: 3 years of 10
        (3_581, 1e6, 10, _Finding.GATHER),  # 0.36 %: 6 probes cost more than every match
        (7_943, 1e6, 1, _Finding.GATHER),  # all in one month: nothing to skip
        (2_500, 1e5, 10, _Finding.GATHER),  # a smaller table: fewer, cheaper matches
    ],
)
def test_the_cheapest_way_is_chosen(
    matches: float, claims: float, years: int, expected: _Finding
) -> None:
    """Walking wins for very common words, gathering for rare ones, and gathering by month or
    by year in between, when enough periods can be skipped to pay for the probes."""
    periods = {_Finding.GATHER_BY_YEAR: years, _Finding.GATHER_BY_MONTH: 12 * years}
    if years == 1:
        periods = {_Finding.GATHER_BY_YEAR: 1, _Finding.GATHER_BY_MONTH: 1}
    assert _cheapest(WINDOW, claims, matches, claims=claims, periods=periods) is expected
