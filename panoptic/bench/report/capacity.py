"""What the replica figures say, in words (no I/O): how many replicas a read rate needs, and when
the primary's writes become the limit.

No trend is drawn from the rounds: a figure is the median of interleaved rounds with its
spread, and two figures are said to differ only when their rounds do not overlap and their
medians lie further apart than the noise: NOISE, or either figure's own spread if larger.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# Differences under this are noise between runs on these machines (as MEASURED.md finds).
NOISE = 0.15
# The read rate the summary's example sizes a replica set for.
EXAMPLE_READ_RATE = 10_000.0


@dataclass(frozen=True)
class Capacity:
    """Requests/s one server served, over interleaved rounds."""

    median: float
    low: float
    high: float
    rounds: int

    @classmethod
    def of(cls, rates: Sequence[float]) -> Capacity:
        """The median, lowest and highest of the rounds' rates."""
        if not rates:
            raise ValueError("a capacity needs at least one round")
        return cls(statistics.median(rates), min(rates), max(rates), len(rates))

    @property
    def spread(self) -> float:
        """(highest - lowest) / median: how far the rounds disagree."""
        return (self.high - self.low) / self.median if self.median > 0 else math.inf


def differs(first: Capacity, second: Capacity) -> bool:
    """Whether two capacities differ beyond the run's own noise: their rounds' ranges do not
    overlap, and their medians lie further apart than NOISE and than either one's spread."""
    apart = first.high < second.low or second.high < first.low
    smaller = min(first.median, second.median)
    if not apart or smaller <= 0:
        return False
    noise = max(NOISE, first.spread, second.spread)
    return abs(first.median - second.median) / smaller > noise


def replicas_needed(read_rate: float, per_replica: float) -> int:
    """Replicas that serve `read_rate` reads/s when each serves `per_replica`: the ceiling of
    their ratio (reads with replicas serving go to replicas, not the primary)."""
    if per_replica <= 0:
        raise ValueError("a replica's capacity must be positive")
    return max(0, math.ceil(read_rate / per_replica - 1e-9))


def comparison(primary: Capacity, replica: Capacity) -> str:
    """How the primary's capacity compares with a replica's, in words."""
    if not differs(primary, replica):
        return f"the primary ~{_rate(primary.median)}/s, the same within the spread"
    ratio = primary.median / replica.median
    more = "more" if ratio > 1 else "less"
    return f"the primary ~{_rate(primary.median)}/s, {abs(ratio - 1):.0%} {more}, beyond the spread"


def capacity_sentence(
    endpoint: str, size: str, primary: Capacity, replica: Capacity, share: float
) -> str:
    """One endpoint's answer: what a replica serves, and how many a read rate needs."""
    needed = replicas_needed(EXAMPLE_READ_RATE, replica.median)
    text = (
        f"{endpoint}: a replica serves ~{_rate(replica.median)}/s at {size} claims (rounds "
        f"{_rate(replica.low)}-{_rate(replica.high)}; {comparison(primary, replica)}): a read "
        f"rate R needs ceil(R / {_rate(replica.median)}) replicas, e.g. {needed:,} for "
        f"{_rate(EXAMPLE_READ_RATE)}/s."
    )
    if share < 0.99:
        text += f" (Only {share:.0%} of those reads were served by the replica.)"
    return text


def size_sentence(endpoint: str, sizes: Sequence[tuple[str, Capacity]]) -> str:
    """Whether a replica's capacity changed between the smallest and largest size measured,
    beyond the run's own noise; no trend is drawn between or beyond them."""
    (first_size, first), (last_size, last) = sizes[0], sizes[-1]
    figures = (
        f"~{_rate(first.median)}/s at {first_size} (rounds {_rate(first.low)}-"
        f"{_rate(first.high)}), ~{_rate(last.median)}/s at {last_size} (rounds "
        f"{_rate(last.low)}-{_rate(last.high)})"
    )
    if not differs(first, last):
        return f"{endpoint} on a replica: {figures}, no change beyond the spread; no trend drawn."
    return (
        f"{endpoint} on a replica: {figures}, {last.median / first.median:.2f}x, beyond the "
        "spread; measured at these sizes only, not projected."
    )


def write_limit_sentence(
    ingest: Sequence[tuple[str, float]],
    lag_max_seconds: float | None,
    lag_p95_seconds: float | None,
    max_lag_bound: float,
) -> str:
    """When writes become the limit: replicas replay every write, so the primary's ingest rate
    bounds the writes however many replicas serve reads."""
    rates = ", ".join(f"{_rate(rate)} at {size}" for size, rate in ingest)
    last_size, last_rate = ingest[-1]
    text = (
        "Writes do not scale out: every replica replays every write, so writes are the "
        f"primary's alone. It sustained ~{_rate(last_rate)} claims/s through one indexer "
        f"growing to {last_size} claims ({rates}; one run each, no spread known): a write "
        "load near that rate is where the primary, not the number of replicas, is the limit."
    )
    if lag_max_seconds is not None and lag_p95_seconds is not None:
        text += (
            f" At that rate the replica lagged up to {lag_max_seconds:.2f} s (p95 "
            f"{lag_p95_seconds:.2f} s), "
        )
        if lag_max_seconds <= max_lag_bound:
            text += (
                f"within the {max_lag_bound:g} s bound past which reads without a token leave "
                "it (PANOPTIC_REPLICA_MAX_LAG_SECONDS)."
            )
        else:
            text += (
                f"beyond the {max_lag_bound:g} s bound (PANOPTIC_REPLICA_MAX_LAG_SECONDS): "
                "at that write rate, reads without a token fall back to the primary at times."
            )
    return text


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
