"""Curves fitted to a few measured sizes, and the size at which they cross a limit (no I/O).

Three or so sizes constrain a two-parameter curve very little, so a projection never rests on
one model: it names the model that predicts each measured point best from the others
(leave-one-out), the answers of every model that fits about as well, and, for latencies, how
far the answer moves when the measured samples are resampled (bootstrap).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

ModelName = Literal["linear", "power", "log", "constant"]
# The first is taken when too few points leave nothing to compare the models by.
LATENCY_MODELS: tuple[ModelName, ...] = ("power", "linear", "log", "constant")
# Beyond this a projection answers "never": ten thousand times a large deployment.
HORIZON_ROWS = 1e10
# Relative error below which models are told apart by noise alone: MEASURED.md finds that
# differences under about 15 % are noise on these machines (as RMS of log-ratios, ln 1.15).
NOISE_LOG_ERROR = math.log(1.15)
FORMULAS = {"linear": "a + b·n", "power": "a·n^k", "log": "a + b·ln n", "constant": "a"}

Status = Literal["above", "measured", "projected", "beyond"]


@dataclass(frozen=True)
class Fit:
    """One model fitted to (rows, value) points, with how well it predicts left-out points."""

    model: ModelName
    a: float
    b: float
    """The slope for `linear` and `log`, the exponent k for `power`, 0 for `constant`."""
    loo_error: float | None = None
    """RMS of ln(predicted / measured), each point predicted from the others; None below 3."""

    def predict(self, rows: float) -> float:
        """The model's value at `rows`."""
        if self.model in ("linear", "constant"):
            return self.a + self.b * rows
        if self.model == "power":
            return self.a * math.pow(rows, self.b)
        return self.a + self.b * math.log(rows)

    def crossing(self, limit: float, horizon: float = HORIZON_ROWS) -> float | None:
        """The rows at which the rising curve reaches `limit`, or None if not by `horizon`.

        A flat or falling curve never rises to it (whether measured values are already above
        it is the measurements' answer, not the model's); a curve above it from the first row
        answers 1.
        """
        if self.b <= 0:
            return None
        if self.model == "linear":
            log_rows = math.log(max((limit - self.a) / self.b, 1.0))
        elif self.model == "power":
            if self.a <= 0:
                return None
            log_rows = math.log(limit / self.a) / self.b
        else:
            log_rows = (limit - self.a) / self.b
        if log_rows > math.log(horizon):
            return None
        return math.exp(max(log_rows, 0.0))

    def describe(self) -> str:
        """The fitted formula in milliseconds or bytes, for people."""
        if self.model == "constant":
            return f"{self.a:.4g}"
        if self.model == "linear":
            return f"{self.a:.4g} + {self.b:.4g}·n"
        if self.model == "power":
            return f"{self.a:.4g}·n^{self.b:.3f}"
        return f"{self.a:.4g} + {self.b:.4g}·ln n"


def _weighted_line(
    xs: Sequence[float], ys: Sequence[float], weights: Sequence[float]
) -> tuple[float, float]:
    """Intercept and slope minimising the weighted squared residuals."""
    total = sum(weights)
    mean_x = sum(w * x for w, x in zip(weights, xs, strict=True)) / total
    mean_y = sum(w * y for w, y in zip(weights, ys, strict=True)) / total
    spread = sum(w * (x - mean_x) ** 2 for w, x in zip(weights, xs, strict=True))
    if spread == 0:
        return mean_y, 0.0
    slope = (
        sum(w * (x - mean_x) * (y - mean_y) for w, x, y in zip(weights, xs, ys, strict=True))
        / spread
    )
    return mean_y - slope * mean_x, slope


def fit_model(model: ModelName, rows: Sequence[float], values: Sequence[float]) -> Fit:
    """Least squares of relative error: in logs for `power` and `constant` (whose `a` is then
    the geometric mean), weighted by 1/value² for `linear` and `log`.
    """
    if len(rows) != len(values) or len(rows) < (1 if model == "constant" else 2):
        raise ValueError(f"too few (rows, value) points for a {model} fit")
    if min(rows) <= 0 or min(values) <= 0:
        raise ValueError("rows and values must be positive")
    if model == "constant":
        return Fit(model, math.exp(sum(math.log(v) for v in values) / len(values)), 0.0)
    if model == "power":
        intercept, slope = _weighted_line(
            [math.log(n) for n in rows], [math.log(v) for v in values], [1.0] * len(rows)
        )
        return Fit(model, math.exp(intercept), slope)
    xs = list(rows) if model == "linear" else [math.log(n) for n in rows]
    intercept, slope = _weighted_line(xs, values, [1 / v**2 for v in values])
    return Fit(model, intercept, slope)


def loo_error(model: ModelName, rows: Sequence[float], values: Sequence[float]) -> float | None:
    """RMS of ln(predicted / measured) when each point is predicted by a fit to the others."""
    if len(rows) < 3:
        return None
    squares = []
    for left_out in range(len(rows)):
        kept = [i for i in range(len(rows)) if i != left_out]
        fit = fit_model(model, [rows[i] for i in kept], [values[i] for i in kept])
        predicted = fit.predict(rows[left_out])
        # A prediction of zero or less is as wrong as a thousandfold miss.
        ratio = max(predicted / values[left_out], 1e-3)
        squares.append(math.log(ratio) ** 2)
    return math.sqrt(sum(squares) / len(squares))


def fit_all(
    rows: Sequence[float], values: Sequence[float], models: Sequence[ModelName] = LATENCY_MODELS
) -> list[Fit]:
    """Every candidate model, fitted to all points, with its leave-one-out error."""
    fits = []
    for model in models:
        fit = fit_model(model, rows, values)
        fits.append(Fit(model, fit.a, fit.b, loo_error(model, rows, values)))
    return fits


def choose(fits: Sequence[Fit]) -> tuple[Fit, list[Fit]]:
    """The fit to project with, and every fit about as good ("plausible").

    Chosen: the constant when it predicts every left-out point within measurement noise
    (growth no larger than the noise is not taken for growth); otherwise the growing model
    with the smallest leave-one-out error. Plausible: within twice the best error, or within
    noise of it. With fewer than three points no error is known; the first candidate is taken
    and all are kept.
    """
    if any(fit.loo_error is None for fit in fits):
        return fits[0], list(fits)
    best = min(fit.loo_error or 0.0 for fit in fits)
    bound = max(2 * best, NOISE_LOG_ERROR)
    plausible = [fit for fit in fits if (fit.loo_error or 0.0) <= bound]
    flat = [fit for fit in fits if fit.model == "constant"]
    if flat and (flat[0].loo_error or 0.0) <= NOISE_LOG_ERROR:
        return flat[0], plausible
    growing = [fit for fit in fits if fit.model != "constant"] or list(fits)
    return min(growing, key=lambda fit: fit.loo_error or 0.0), plausible


def measured_crossing(rows: Sequence[float], values: Sequence[float], limit: float) -> float | None:
    """Where the measured values first rise through `limit`, interpolated log-log; else None."""
    for (n0, v0), (n1, v1) in zip(
        zip(rows, values, strict=True), zip(rows[1:], values[1:], strict=True), strict=False
    ):
        if v0 <= limit < v1:
            share = (math.log(limit) - math.log(v0)) / (math.log(v1) - math.log(v0))
            return math.exp(math.log(n0) + share * (math.log(n1) - math.log(n0)))
    return None


@dataclass(frozen=True)
class Projection:
    """When one measured curve reaches its limit: the answer, its range and how it was found."""

    limit: float
    rows: list[float]
    values: list[float]
    fits: list[Fit]
    chosen: Fit
    plausible: list[ModelName]
    status: Status
    crossing: float | None
    """Measured (interpolated) or projected by the chosen model; None beyond the horizon."""
    low: float | None
    high: float | None
    """The range of answers; None for `high` means some answers lie beyond the horizon."""
    model_crossings: dict[str, float | None] = field(default_factory=dict)
    bootstrap: tuple[float | None, float | None] | None = None
    """The 10th and 90th percentiles of the chosen model's answer over resampled data."""

    @property
    def extrapolation(self) -> float | None:
        """How many times the largest measured size the projected crossing lies, if beyond it."""
        if self.status != "projected" or self.crossing is None:
            return None
        return self.crossing / max(self.rows)

    def confidence(self) -> str:
        """`measured`, `near` (within 10 times the data), `far`, or `none` (nothing in sight)."""
        if self.status in ("above", "measured"):
            return "measured"
        factor = self.extrapolation
        if factor is None:
            return "none"
        return "near" if round(factor, 6) <= 10 else "far"

    def verdict(self, unit: str = "rows") -> str:
        """One line for people."""
        if self.status == "above":
            return f"over the limit already at {rows_label(min(self.rows))} {unit}"
        if self.status == "measured":
            return f"crosses at ~{rows_label(self.crossing)} {unit} (measured)"
        if self.status == "projected":
            return (
                f"projected to cross at ~{rows_label(self.crossing)} {unit}"
                f" (range {range_label(self.low, self.high)})"
            )
        text = f"not projected to cross below {rows_label(HORIZON_ROWS)} {unit}"
        if self.low is not None:
            text += f"; the most pessimistic fit: ~{rows_label(self.low)}"
        return text


def project_latency(
    rows: Sequence[float],
    values: Sequence[float],
    limit: float,
    *,
    samples: Sequence[Sequence[float]] | None = None,
    quantile: float = 0.95,
    draws: int = 200,
    seed: int = 0,
) -> Projection:
    """Fits latency (ms) against rows with every candidate model and finds where it hits `limit`.

    `samples` are the raw latencies (ms) behind each value; with them, the chosen model is
    refitted to `draws` resamplings, which shows how much measurement noise moves the answer.
    """
    fits = fit_all(rows, values)
    chosen, plausible = choose(fits)
    bootstrap = None
    spread: list[float | None] = [fit.crossing(limit) for fit in plausible]
    if samples is not None:
        bootstrap = bootstrap_crossing(chosen.model, rows, samples, limit, quantile, draws, seed)
        spread += list(bootstrap)
    return _projection(rows, values, limit, fits, chosen, plausible, spread, bootstrap)


def project_size(rows: Sequence[float], values: Sequence[float], limit: float) -> Projection:
    """Size (bytes) grows linearly with rows: where it reaches `limit`, with a leave-one-out range.

    The range is the answers of the lines through all but one of the measured points.
    """
    fits = fit_all(rows, values, ("linear",))
    chosen = fits[0]
    spread: list[float | None] = [chosen.crossing(limit)]
    if len(rows) >= 3:
        for left_out in range(len(rows)):
            kept = [i for i in range(len(rows)) if i != left_out]
            partial = fit_model("linear", [rows[i] for i in kept], [values[i] for i in kept])
            spread.append(partial.crossing(limit))
    return _projection(rows, values, limit, fits, chosen, [chosen], spread, None)


def _projection(
    rows: Sequence[float],
    values: Sequence[float],
    limit: float,
    fits: list[Fit],
    chosen: Fit,
    plausible: list[Fit],
    spread: list[float | None],
    bootstrap: tuple[float | None, float | None] | None,
) -> Projection:
    finite = [value for value in spread if value is not None]
    low = min(finite) if finite else None
    high = max(finite) if finite and len(finite) == len(spread) else None
    crossing = chosen.crossing(limit)
    status: Status
    if values[0] > limit:
        status, crossing, low, high = "above", min(rows), None, None
    elif (found := measured_crossing(rows, values, limit)) is not None:
        status, crossing, low, high = "measured", found, None, None
    else:
        status = "projected" if crossing is not None else "beyond"
    return Projection(
        limit=limit,
        rows=list(rows),
        values=list(values),
        fits=fits,
        chosen=chosen,
        plausible=[fit.model for fit in plausible],
        status=status,
        crossing=crossing,
        low=low,
        high=high,
        model_crossings={fit.model: fit.crossing(limit) for fit in fits},
        bootstrap=bootstrap,
    )


def bootstrap_crossing(
    model: ModelName,
    rows: Sequence[float],
    samples: Sequence[Sequence[float]],
    limit: float,
    quantile: float,
    draws: int,
    seed: int,
) -> tuple[float | None, float | None]:
    """10th and 90th percentile of the crossing over resampled latencies (None: beyond horizon)."""
    rng = random.Random(seed)
    answers = []
    for _ in range(draws):
        values = [_quantile(rng.choices(scale, k=len(scale)), quantile) for scale in samples]
        crossing = fit_model(model, rows, values).crossing(limit)
        answers.append(math.inf if crossing is None else crossing)
    answers.sort()
    low, high = answers[int(0.1 * (draws - 1))], answers[int(0.9 * (draws - 1))]
    return (None if low == math.inf else low), (None if high == math.inf else high)


def _quantile(values: Sequence[float], quantile: float) -> float:
    """The same inclusive quantile `panoptic.bench.common.percentiles` reports."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(quantile * 100) - 1]


def rows_label(rows: float | None) -> str:
    """12k, 3.4M, 10bn: a size people read at a glance."""
    if rows is None:
        return "never"
    if rows >= 1e15:
        return f"{rows:.1e}"
    for bound, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if rows >= bound:
            shown = rows / bound
            return f"{shown:.2g}{suffix}" if shown < 10 else f"{shown:.0f}{suffix}"
    return f"{rows:.0f}"


def range_label(low: float | None, high: float | None) -> str:
    """`80k to 1.2M`, `80k to beyond 10bn` when some answers lie past the horizon, or `1.2M`."""
    upper = rows_label(high) if high is not None else f"beyond {rows_label(HORIZON_ROWS)}"
    lower = rows_label(low)
    return lower if lower == upper else f"{lower} to {upper}"
