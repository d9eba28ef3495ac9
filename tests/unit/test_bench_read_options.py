"""Unit tests for the options of `panoptic bench read`: scales and levels of load (no I/O)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from panoptic.bench.read import MAX_IN_FLIGHT, parse_in_flight, parse_scales
from panoptic.cli import main


def test_scales_are_claim_counts_in_ascending_order() -> None:
    """`1m,10k,100k` reads as 10,000, 100,000 and 1,000,000 claims; a repeat counts once."""
    assert parse_scales("1m, 10k,100k,10K") == [10_000, 100_000, 1_000_000]


def test_levels_in_flight_are_ascending_and_distinct() -> None:
    """`64,16,16` is two levels, the smaller measured first."""
    assert parse_in_flight("64, 16,16") == [16, 64]


@pytest.mark.parametrize("text", ["0", "-4", "lots", "16,", f"{MAX_IN_FLIGHT + 1}"])
def test_a_level_that_is_not_a_count_of_calls_is_refused(text: str) -> None:
    """Each level takes one h2load process per call: from 1 up to the limit, whole numbers."""
    with pytest.raises(ValueError, match=f"from 1 to {MAX_IN_FLIGHT}"):
        parse_in_flight(text)


def test_the_command_names_the_bad_option_before_doing_anything() -> None:
    """A bad `--in-flight` ends with a usage error naming it, before any database is made."""
    result = CliRunner().invoke(main, ["bench", "read", "--in-flight", "16,many"])
    assert result.exit_code == 2
    assert "--in-flight" in result.output
    assert "'many' is not a number of calls" in result.output
