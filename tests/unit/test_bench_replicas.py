"""The replica figures' arithmetic and words: replicas per read rate, differences beyond the
run's own noise only, the write limit, and the lag's max and p95."""

from __future__ import annotations

import pytest

from panoptic.bench.replication import lag_figures
from panoptic.bench.report.capacity import (
    Capacity,
    capacity_sentence,
    differs,
    replicas_needed,
    size_sentence,
    write_limit_sentence,
)


@pytest.mark.parametrize(
    ("read_rate", "per_replica", "needed"),
    [
        (10_000, 4_218, 3),
        (8_436, 4_218, 2),  # exactly two replicas' worth
        (8_437, 4_218, 3),
        (1, 4_218, 1),
        (0, 4_218, 0),
        (10_000, 330, 31),
    ],
)
def test_a_read_rate_needs_the_ceiling_of_its_ratio_to_a_replicas_capacity(
    read_rate: float, per_replica: float, needed: int
) -> None:
    """ceil(R / N) replicas, with no extra replica for a rate that is an exact multiple."""
    assert replicas_needed(read_rate, per_replica) == needed


def test_a_replica_that_serves_nothing_has_no_answer() -> None:
    """A capacity of zero would need infinitely many replicas: refused, not divided by."""
    with pytest.raises(ValueError, match="positive"):
        replicas_needed(100, 0)


def test_a_capacity_is_the_median_of_its_rounds_with_their_range() -> None:
    """Median, lowest and highest round, and the spread as their range over the median."""
    capacity = Capacity.of([900.0, 1_200.0, 1_000.0])
    assert (capacity.median, capacity.low, capacity.high, capacity.rounds) == (
        1_000.0,
        900.0,
        1_200.0,
        3,
    )
    assert capacity.spread == pytest.approx(0.3)
    with pytest.raises(ValueError, match="round"):
        Capacity.of([])


@pytest.mark.parametrize(
    ("first", "second", "different"),
    [
        ([1_000, 1_400], [1_300, 1_800], False),  # the rounds overlap
        ([1_000, 1_050], [1_100, 1_150], False),  # apart, but 10 % is noise
        ([1_000, 1_050], [1_300, 1_400], True),  # apart and 30 % more
        ([300, 320], [1_000, 1_100], True),
        # Apart and 19 % more, but one's own rounds spread over 45 %: noise (a real run's).
        ([3_991, 4_455, 5_582], [2_300, 3_753, 3_977], False),
    ],
)
def test_two_capacities_differ_only_beyond_the_runs_own_noise(
    first: list[float], second: list[float], different: bool
) -> None:
    """Their rounds must not overlap and their medians must lie further apart than 15 % and
    than either one's own spread."""
    assert differs(Capacity.of(first), Capacity.of(second)) is different
    assert differs(Capacity.of(second), Capacity.of(first)) is different


def test_the_capacity_sentence_gives_the_per_replica_rate_and_the_replicas_a_rate_needs() -> None:
    """The replica's median, its rounds, the primary's figure in words, and ceil(R / N)."""
    sentence = capacity_sentence(
        "GetClaim",
        "1m",
        primary=Capacity.of([3_900, 4_300, 4_100]),
        replica=Capacity.of([3_600, 4_850, 4_218]),
        share=1.0,
    )
    assert sentence == (
        "GetClaim: a replica serves ~4,218/s at 1m claims (rounds 3,600-4,850; the primary "
        "~4,100/s, the same within the spread): a read rate R needs ceil(R / 4,218) replicas, "
        "e.g. 3 for 10,000/s."
    )


def test_the_capacity_sentence_names_a_real_difference_and_reads_that_missed_the_replica() -> None:
    """A difference beyond the spread is named with its size; a replica that served fewer than
    99 % of the reads measured on it is said to have."""
    sentence = capacity_sentence(
        "SearchClaims common word",
        "1m",
        primary=Capacity.of([380, 389, 400]),
        replica=Capacity.of([315, 330, 345]),
        share=0.9,
    )
    assert "the primary ~389/s, 18% more, beyond the spread" in sentence
    assert "ceil(R / 330) replicas, e.g. 31 for 10,000/s." in sentence
    assert sentence.endswith("(Only 90% of those reads were served by the replica.)")


def test_no_trend_is_drawn_between_sizes_within_the_noise() -> None:
    """Overlapping rounds at the smallest and largest size: no change, no trend."""
    sentence = size_sentence(
        "GetClaim", [("10k", Capacity.of([3_200, 4_300])), ("1m", Capacity.of([3_600, 4_800]))]
    )
    assert sentence == (
        "GetClaim on a replica: ~3,750/s at 10k (rounds 3,200-4,300), ~4,200/s at 1m (rounds "
        "3,600-4,800), no change beyond the spread; no trend drawn."
    )


def test_a_change_beyond_the_noise_is_stated_between_the_sizes_measured_only() -> None:
    """A fall beyond the spread is given as a ratio of the two measured sizes, not projected."""
    sentence = size_sentence(
        "SearchClaims common word",
        [("10k", Capacity.of([595, 612])), ("100k", Capacity.of([400, 410])),
         ("1m", Capacity.of([50, 60]))],
    )  # fmt: skip
    assert "~604/s at 10k" in sentence
    assert "~55/s at 1m" in sentence
    assert "0.09x, beyond the spread; measured at these sizes only, not projected." in sentence


def test_the_write_limit_is_the_largest_sizes_ingest_rate_with_the_lag_against_its_bound() -> None:
    """The primary's ingest rate growing to the largest size bounds the writes; the replica's
    lag at that rate is compared with the bound that takes it out of reads."""
    ingest = [("10k", 3_494.0), ("100k", 2_705.0), ("1m", 3_371.4)]
    within = write_limit_sentence(ingest, 0.18, 0.16, 5.0)
    assert "It sustained ~3,371 claims/s through one indexer growing to 1m claims" in within
    assert "(3,494 at 10k, 2,705 at 100k, 3,371 at 1m; one run each, no spread known)" in within
    assert "lagged up to 0.18 s (p95 0.16 s), within the 5 s bound" in within
    beyond = write_limit_sentence(ingest, 7.5, 4.0, 5.0)
    assert "beyond the 5 s bound" in beyond
    assert beyond.endswith("reads without a token fall back to the primary at times.")
    assert "lagged" not in write_limit_sentence(ingest, None, None, 5.0)


def test_lag_figures_are_the_max_and_the_inclusive_p95_of_the_samples() -> None:
    """Max and p95 of seconds and bytes, with the samples' count and the catch-up time."""
    seconds = [float(number) for number in range(101)]  # 0..100: the p95 is 95
    figures = lag_figures(seconds, [number * 1024 for number in range(101)], 0.5)
    assert figures.samples == 101
    assert (figures.max_seconds, figures.p95_seconds) == (100.0, 95.0)
    assert (figures.max_bytes, figures.p95_bytes) == (100 * 1024, 95 * 1024)
    assert figures.caught_up_seconds == 0.5
    empty = lag_figures([], [], 0.0)
    assert (empty.samples, empty.max_seconds, empty.p95_seconds, empty.max_bytes) == (0, 0, 0, 0)
