"""Unit tests for the options of `panoptic bench report`: objectives per endpoint (no I/O)."""

from __future__ import annotations

import pytest

from panoptic.bench.read import ENDPOINTS
from panoptic.bench.report.run import resolve_objectives


def test_every_endpoint_gets_the_default_objective() -> None:
    """Without overrides each of the six reads must stay under the one default p95."""
    assert resolve_objectives(100.0, []) == dict.fromkeys(ENDPOINTS, 100.0)


def test_an_override_names_an_endpoint_in_full_or_by_its_method() -> None:
    """`GetClaim=50` sets one endpoint; `searchclaims=250` sets both searches, in any case."""
    objectives = resolve_objectives(100.0, ["GetClaim=50", "searchclaims=250"])
    assert objectives["GetClaim"] == 50.0
    assert objectives["SearchClaims common word"] == 250.0
    assert objectives["SearchClaims rare word"] == 250.0
    assert objectives["ListActors fuzzy"] == 100.0


def test_a_full_endpoint_name_sets_only_that_endpoint() -> None:
    """`SearchClaims rare word=20` leaves the common-word search at the default."""
    objectives = resolve_objectives(100.0, ["SearchClaims rare word=20"])
    assert objectives["SearchClaims rare word"] == 20.0
    assert objectives["SearchClaims common word"] == 100.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("GetClaim", "ENDPOINT=MILLISECONDS"),
        ("GetClaim=fast", "ENDPOINT=MILLISECONDS"),
        ("GetClaim=0", "ENDPOINT=MILLISECONDS"),
        ("DeleteClaim=10", "no endpoint 'DeleteClaim'"),
    ],
)
def test_malformed_or_unknown_overrides_are_refused(override: str, message: str) -> None:
    """An override that is not ENDPOINT=positive ms, or names no endpoint, is an error."""
    with pytest.raises(ValueError, match=message):
        resolve_objectives(100.0, [override])
