"""Unit tests for `panoptic.bench.report.projection` on synthetic curves of known answer."""

from __future__ import annotations

import math
import random

import pytest

from panoptic.bench.report.projection import (
    HORIZON_ROWS,
    Fit,
    choose,
    fit_all,
    fit_model,
    loo_error,
    measured_crossing,
    project_latency,
    project_size,
    range_label,
    rows_label,
)

SIZES = [1_000.0, 10_000.0, 100_000.0]


def test_power_law_is_chosen_and_crosses_where_its_formula_says() -> None:
    """0.1·n^0.5 ms reaches 100 ms at n = (100 / 0.1)^2 = 1e6, and the fit finds that n."""
    values = [0.1 * math.sqrt(n) for n in SIZES]
    projection = project_latency(SIZES, values, 100.0)
    assert projection.chosen.model == "power"
    assert projection.chosen.b == pytest.approx(0.5)
    assert projection.status == "projected"
    assert projection.crossing == pytest.approx(1e6, rel=1e-9)
    assert projection.confidence() == "near"


def test_linear_growth_is_chosen_and_crosses_where_its_formula_says() -> None:
    """2 + 1e-4·n ms reaches 100 ms at n = 980,000."""
    values = [2 + 1e-4 * n for n in SIZES]
    projection = project_latency(SIZES, values, 100.0)
    assert projection.chosen.model == "linear"
    assert projection.crossing == pytest.approx(980_000, rel=1e-9)


def test_logarithmic_growth_is_chosen_and_crosses_where_its_formula_says() -> None:
    """1 + 10·ln n ms reaches 100 ms at n = e^9.9."""
    rows = [10.0, 100.0, 1_000.0, 10_000.0]
    values = [1 + 10 * math.log(n) for n in rows]
    projection = project_latency(rows, values, 100.0)
    assert projection.chosen.model == "log"
    assert projection.crossing == pytest.approx(math.exp(9.9), rel=1e-9)


def test_a_flat_curve_is_constant_and_never_crosses() -> None:
    """Latency that does not grow is best predicted by a constant, which never reaches 100 ms."""
    projection = project_latency(SIZES, [4.0, 4.0, 4.0], 100.0)
    assert projection.chosen.model == "constant"
    assert projection.status == "beyond"
    assert projection.crossing is None
    assert "not projected to cross" in projection.verdict()


def test_a_crossing_between_measured_sizes_is_interpolated_log_log() -> None:
    """50, 80, 200 ms at 10k, 100k, 1M cross 100 ms between 100k and 1M, where log-log says."""
    rows = [1e4, 1e5, 1e6]
    share = math.log(100 / 80) / math.log(200 / 80)
    projection = project_latency(rows, [50.0, 80.0, 200.0], 100.0)
    assert projection.status == "measured"
    assert projection.crossing == pytest.approx(1e5 * 10**share, rel=1e-9)
    assert projection.confidence() == "measured"


def test_a_curve_over_the_limit_at_the_smallest_size_is_reported_as_such() -> None:
    """When the first measured value is already over the objective, no projection is needed."""
    projection = project_latency(SIZES, [150.0, 160.0, 170.0], 100.0)
    assert projection.status == "above"
    assert projection.crossing == SIZES[0]
    assert projection.verdict().startswith("over the limit already at 1k")


def test_a_crossing_beyond_the_horizon_is_none() -> None:
    """A power law with a tiny exponent reaches the limit only far past 1e10 rows: never."""
    fit = Fit("power", 1.0, 0.01)
    assert fit.crossing(100.0) is None
    assert fit.crossing(100.0, horizon=1e250) == pytest.approx(1e200, rel=1e-6)


def test_falling_curves_never_cross() -> None:
    """A fit whose slope or exponent is not positive never rises to the limit."""
    assert Fit("linear", 200.0, -1.0).crossing(100.0) is None
    assert Fit("power", 200.0, -0.2).crossing(100.0) is None


def test_leave_one_out_error_is_zero_for_the_true_model_and_not_for_others() -> None:
    """Each point of an exact power law is predicted exactly from the others; a line misses."""
    values = [3 * n**0.7 for n in SIZES]
    assert loo_error("power", SIZES, values) == pytest.approx(0.0, abs=1e-9)
    linear_error = loo_error("linear", SIZES, values)
    assert linear_error is not None
    assert linear_error > 0.1


def test_two_points_leave_no_error_and_keep_every_model() -> None:
    """With two sizes no model can be judged: the first candidate is taken, all are plausible."""
    fits = fit_all([1e3, 1e4], [2.0, 4.0])
    chosen, plausible = choose(fits)
    assert all(fit.loo_error is None for fit in fits)
    assert chosen.model == "power"
    assert plausible == fits


def test_models_within_noise_of_the_best_are_plausible_and_widen_the_range() -> None:
    """A near-straight curve is fitted almost as well by a line and a power law; both count."""
    values = [10.0, 12.0, 14.5]
    projection = project_latency([1e4, 2e4, 4e4], values, 100.0)
    assert len(projection.plausible) >= 2
    crossings = [projection.model_crossings[model] for model in projection.plausible]
    finite = [c for c in crossings if c is not None]
    assert projection.low is not None
    assert projection.low == pytest.approx(min(finite))


def test_bootstrap_of_noiseless_samples_gives_the_point_estimate() -> None:
    """Resampling identical calls changes nothing: the bootstrap range is the crossing itself."""
    values = [0.1 * math.sqrt(n) for n in SIZES]
    samples = [[value] * 50 for value in values]
    projection = project_latency(SIZES, values, 100.0, samples=samples, seed=1)
    assert projection.bootstrap is not None
    low, high = projection.bootstrap
    assert low == pytest.approx(1e6, rel=1e-9)
    assert high == pytest.approx(1e6, rel=1e-9)


def test_bootstrap_of_noisy_samples_brackets_the_crossing_and_is_repeatable() -> None:
    """With noisy calls the 10th-90th percentile range contains the answer; a seed repeats it."""
    rng = random.Random(3)  # noqa: S311 - repeatable noise, not a secret
    values, samples = [], []
    for n in SIZES:
        calls = [0.1 * math.sqrt(n) * rng.uniform(0.8, 1.2) for _ in range(100)]
        samples.append(calls)
        values.append(sorted(calls)[94])
    first = project_latency(SIZES, values, 100.0, samples=samples, seed=7)
    again = project_latency(SIZES, values, 100.0, samples=samples, seed=7)
    assert first.bootstrap == again.bootstrap
    assert first.bootstrap is not None
    low, high = first.bootstrap
    assert low is not None
    assert high is not None
    assert first.crossing is not None
    assert low < first.crossing < high


def test_size_projection_is_linear_with_a_leave_one_out_range() -> None:
    """1 MB + 1,000 bytes per row outgrows 128 MiB at (128 MiB - 1 MB) / 1,000 rows."""
    limit = 128 * 2**20
    exact = project_size([1e3, 1e4, 5e4], [1e6 + 1_000 * n for n in (1e3, 1e4, 5e4)], limit)
    assert exact.status == "projected"
    assert exact.crossing == pytest.approx((limit - 1e6) / 1_000, rel=1e-6)
    assert exact.low == pytest.approx(exact.crossing, rel=1e-6)
    assert exact.high == pytest.approx(exact.crossing, rel=1e-6)


def test_size_projection_reports_a_limit_outgrown_between_measured_sizes() -> None:
    """Sizes that pass the limit between two measured sizes give a measured crossing."""
    projection = project_size([1e4, 1e5, 1e6], [1e7, 1e8, 1e9], 128 * 2**20)
    assert projection.status == "measured"
    assert 1e5 < (projection.crossing or 0) < 1e6


def test_growth_within_noise_is_not_taken_for_growth() -> None:
    """3.0, 3.3, 3.6 ms over two decades fits a constant within noise: it is chosen, while the
    power law stays plausible and sets the pessimistic end of the range."""
    projection = project_latency([1e4, 1e5, 1e6], [3.0, 3.3, 3.6], 5.0)
    assert projection.chosen.model == "constant"
    assert projection.status == "beyond"
    assert "power" in projection.plausible
    assert projection.low == projection.model_crossings["power"]
    assert projection.low is not None
    assert "the most pessimistic fit" in projection.verdict()


def test_growth_beyond_noise_is_projected_even_when_no_model_predicts_it_well() -> None:
    """5.8, 5.6, 16.7 ms: flat, then a jump no model foresees; the constant misses by far more
    than noise, so a growing model is projected rather than the flat one."""
    projection = project_latency([1e4, 1e5, 1e6], [5.8, 5.6, 16.7], 100.0)
    assert projection.chosen.model != "constant"
    assert projection.status == "projected"
    assert "constant" in projection.plausible
    assert projection.high is None


def test_measured_crossing_is_none_when_every_value_stays_below() -> None:
    """No measured pair straddles the limit: nothing to interpolate."""
    assert measured_crossing(SIZES, [1.0, 2.0, 3.0], 100.0) is None


def test_fit_model_refuses_values_it_cannot_fit() -> None:
    """Zero or negative values have no logarithm and a single point has no slope."""
    with pytest.raises(ValueError, match="positive"):
        fit_model("power", SIZES, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="too few"):
        fit_model("linear", [1e3], [1.0])


@pytest.mark.parametrize(
    ("rows", "label"),
    [
        (None, "never"),
        (850.0, "850"),
        (1_000.0, "1k"),
        (12_345.0, "12k"),
        (2_100_000.0, "2.1M"),
        (HORIZON_ROWS, "10bn"),
        (3e15, "3.0e+15"),
    ],
)
def test_rows_label_reads_at_a_glance(rows: float | None, label: str) -> None:
    """Sizes are shown with k, M and bn and two significant digits."""
    assert rows_label(rows) == label


def test_range_label_says_when_answers_lie_beyond_the_horizon() -> None:
    """A range whose upper end is unknown says so; a range of one value shows it once."""
    assert range_label(80_000, 1_200_000) == "80k to 1.2M"
    assert range_label(80_000, None) == "80k to beyond 10bn"
    assert range_label(1e6, 1e6) == "1M"
