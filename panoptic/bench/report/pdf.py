"""The report as a PDF: verdicts first, then one plot per measure, raw figures, plans, method.

Measured points are filled markers on a grey band (the sizes actually run); projections are
dashed lines on white, with the objective as a red line and each crossing marked.
"""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from matplotlib.transforms import Bbox

from panoptic.bench.read import ENDPOINTS, scale_name
from panoptic.bench.report.measure import PROTOCOLS
from panoptic.bench.report.projection import (
    FORMULAS,
    HORIZON_ROWS,
    Fit,
    Projection,
    range_label,
    rows_label,
)
from panoptic.bench.report.replicas import REPLICA_ENDPOINTS, SERVERS
from panoptic.bench.report.run import (
    PROTOCOL_NAMES,
    Analysis,
    Measurements,
    ScaleFigures,
    bytes_label,
    method_paragraphs,
    replica_method,
    replica_sizes,
    scale_out,
    short_answer,
)

A4 = (8.27, 11.69)
COLOURS = {"grpc": "#1f5fa8", "http": "#e07b00"}
MARKERS = {"grpc": "o", "http": "s"}
REPLICA_COLOURS = {"primary": "#9db8d9", "replica": "#1f5fa8"}
OBJECTIVE_COLOUR = "#c0162b"
MEASURED_BAND = "#ececec"
SIZE_COLOURS = {
    "database_bytes": "#444444",
    "read_set_bytes": "#2a8c55",
    "read_index_bytes": "#8e44ad",
}
SIZE_NAMES = {
    "database_bytes": "whole database",
    "read_set_bytes": "read set (tables + indexes)",
    "read_index_bytes": "read path's indexes",
}
# The projections are drawn up to here unless a crossing lies further (then up to the horizon).
PLOT_ROWS = 1e8
TABLE_ROWS_PER_PAGE = 38
# What a reader of an endpoint's page should know about its curve.
ENDPOINT_NOTES = {
    "ListActors fuzzy": "The demo corpus has 200 actors at every size: this read searches the "
    "actors table, which does not grow with the claims.",
    "GetActorTimeline": "Arguments are the 20 busiest actors, whose claims grow with the corpus.",
}
# Crossings listed in words on the summary; the tables below it hold them all.
HEADLINE_ITEMS = 2
# The summary's table rows, in page heights: as tight as 7.5 pt text allows, to fit one page.
SUMMARY_ROW = 0.0175
PLAN_LINES_PER_PAGE = 92
PLAN_LINES_EACH = 60


def write_pdf(measurements: Measurements, analysis: Analysis, path: Path) -> list[str]:
    """Writes the report to `path`; returns the title of every page, in order.

    Figures are made without pyplot: no global figure registry, no interactive backend.
    """
    # fontTools, which embeds the fonts, narrates each subset at INFO.
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    titles: list[str] = []
    with (
        matplotlib.rc_context(
            # Plans and SQL are full of `$`: no mathtext anywhere.
            {"font.size": 9, "axes.titlesize": 10, "pdf.fonttype": 42, "text.parse_math": False}
        ),
        PdfPages(path) as pdf,
    ):

        def emit(figure: Figure, title: str) -> None:
            pdf.savefig(figure)
            titles.append(title)

        emit(_summary_page(measurements, analysis), "Summary")
        emit(_replica_page(measurements), "Replicas: reads scale out, writes do not")
        for endpoint in ENDPOINTS:
            emit(_endpoint_page(measurements, analysis, endpoint), f"Endpoint: {endpoint}")
        emit(_size_page(measurements, analysis), "Database size and working set")
        emit(_ingest_page(measurements), "Ingest rate and buffer cache")
        for number, figure in enumerate(_figure_tables(measurements), start=1):
            emit(figure, f"Raw figures: latency and throughput ({number})")
        for number, figure in enumerate(_size_tables(measurements), start=1):
            emit(figure, f"Raw figures: sizes ({number})")
        for number, figure in enumerate(_index_tables(measurements), start=1):
            emit(figure, f"Raw figures: index sizes ({number})")
        emit(_fits_page(measurements, analysis), "Fitted models")
        for number, figure in enumerate(_plan_pages(measurements), start=1):
            emit(figure, f"Slowest plans ({number})")
        emit(_machine_page(measurements), "Machine and method")
        info = pdf.infodict()
        info["Title"] = "Panoptic: when will the database begin to degrade?"
        info["Subject"] = "panoptic bench report"
    return titles


# --- building blocks -----------------------------------------------------------------------------


def _page(title: str, subtitle: str = "") -> Figure:
    figure = Figure(figsize=A4)
    figure.text(0.06, 0.965, title, fontsize=15, weight="bold", va="top")
    if subtitle:
        wrapped = "\n".join(textwrap.wrap(subtitle, 118))
        figure.text(0.06, 0.94, wrapped, fontsize=8.5, color="#555555", va="top")
    return figure


def _paragraphs(
    figure: Figure, top: float, texts: Sequence[str], *, size: float = 9, weight: str = "normal"
) -> float:
    """Writes wrapped paragraphs from `top` down; returns where the next text may start."""
    line_height = size * 1.45 / 72 / A4[1]
    # 0.88 of the page's width, at about 0.53 em per character of DejaVu Sans.
    width = int(0.88 * A4[0] * 72 / ((0.58 if weight == "bold" else 0.53) * size))
    y = top
    for text in texts:
        lines = textwrap.wrap(text, width) or [""]
        figure.text(
            0.06, y, "\n".join(lines), fontsize=size, va="top", linespacing=1.45, weight=weight
        )
        y -= line_height * len(lines) + line_height * 0.6
    return y


def _table(
    figure: Figure,
    rect: tuple[float, float, float, float],
    header: Sequence[str] | None,
    rows: Sequence[Sequence[str]],
    widths: Sequence[float],
    *,
    size: float = 7.5,
    colours: Sequence[str | None] | None = None,
) -> None:
    """A plain table filling `rect` (left, bottom, width, height of the page), one row a line."""
    axes = figure.add_axes(rect)
    axes.axis("off")
    total = sum(widths)
    table = axes.table(
        cellText=[list(row) for row in rows] or [[""] * len(widths)],
        colLabels=list(header) if header is not None else None,
        colWidths=[width / total for width in widths],
        cellLoc="left",
        colLoc="left",
        bbox=Bbox.from_bounds(0, 0, 1, 1),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(size)
    first = 1 if header is not None else 0
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("#cccccc")
        cell.set_linewidth(0.4)
        if row < first:
            cell.set_facecolor("#f0f0f0")
            cell.set_text_props(weight="bold")
        elif colours is not None and colours[row - first]:
            cell.set_facecolor(colours[row - first] or "white")


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _mib(value: float) -> str:
    return f"{value / 2**20:,.1f}"


def _short_verdict(projection: Projection) -> str:
    if projection.status == "above":
        return f"over at {rows_label(min(projection.rows))}"
    if projection.status == "measured":
        return f"crosses ~{rows_label(projection.crossing)} (measured)"
    if projection.status == "projected":
        return f"~{rows_label(projection.crossing)} ({projection.confidence()} extrapolation)"
    return f"no crossing below {rows_label(HORIZON_ROWS)}"


def _range(projection: Projection) -> str:
    if projection.status in ("above", "measured"):
        return "measured"
    if projection.low is None and projection.high is None:
        return "-"
    return range_label(projection.low, projection.high)


def _verdict_colour(projection: Projection) -> str:
    if projection.status in ("above", "measured"):
        return "#f8d7da"
    if projection.status == "projected" and projection.confidence() == "near":
        return "#fff3cd"
    return "#e2f0e5"


def _x_limit(projections: Sequence[Projection], largest: float) -> float:
    crossings = [p.crossing for p in projections if p.crossing is not None]
    furthest = max([PLOT_ROWS, largest * 100, *(3 * c for c in crossings)])
    return min(furthest, HORIZON_ROWS)


def _curve(fit: Fit, start: float, stop: float) -> tuple[list[float], list[float]]:
    xs = [start * (stop / start) ** (i / 200) for i in range(201)]
    points = [(x, fit.predict(x)) for x in xs]
    kept = [(x, y) for x, y in points if y > 0 and math.isfinite(y)]
    return [x for x, _ in kept], [y for _, y in kept]


def _log_axes(
    axes: Axes, rows: Sequence[float], stop: float, *, ylabel: str, log_y: bool = True
) -> None:
    axes.set_xscale("log")
    axes.set_yscale("log" if log_y else "linear")
    axes.set_xlim(min(rows) / 2, stop)
    axes.axvspan(min(rows), max(rows), color=MEASURED_BAND, zorder=0, lw=0)
    axes.text(
        math.sqrt(min(rows) * max(rows)),
        0.015,
        "measured",
        transform=axes.get_xaxis_transform(),
        ha="center",
        va="bottom",
        fontsize=8,
        color="#666666",
    )
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: rows_label(value)))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,g}"))
    axes.yaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("claims in the database (log scale)")
    axes.set_ylabel(ylabel)
    axes.grid(True, which="major", color="#dddddd", lw=0.5)


# --- pages ---------------------------------------------------------------------------------------


def _summary_page(measurements: Measurements, analysis: Analysis) -> Figure:
    options = measurements.options
    machine = measurements.machine
    scales = [scale.claims for scale in measurements.scales]
    version = measurements.server.version.split(" on ")[0].split(",")[0]
    figure = _page(
        "When will the database begin to degrade?",
        f"panoptic bench report, {measurements.started_at}: {len(scales)} sizes "
        f"({', '.join(scale_name(s) for s in scales)} claims), seed {options.seed}, "
        f"{machine.cores} cores, {bytes_label(machine.ram_bytes)} RAM, {version}, "
        f"{measurements.server.settings.get('shared_buffers', '?')} shared_buffers",
    )
    y = _paragraphs(figure, 0.9, [short_answer(measurements, analysis)], size=10.5, weight="bold")
    figure.text(0.06, y - 0.005, "And then what? Replicas", fontsize=11, weight="bold", va="top")
    y = _paragraphs(figure, y - 0.03, scale_out(measurements), size=8)
    figure.text(0.06, y - 0.005, "Crossings, earliest first", fontsize=11, weight="bold", va="top")
    headline = analysis.headline()
    y = _paragraphs(
        figure, y - 0.03, [f"{n}. {line}" for n, line in enumerate(headline[:HEADLINE_ITEMS], 1)]
    )
    if len(headline) > HEADLINE_ITEMS:
        more = len(headline) - HEADLINE_ITEMS
        y = _paragraphs(figure, y, [f"... and {more} later crossings in the tables below."])
    figure.text(
        0.06,
        y - 0.005,
        "Latency: p95 in ms at each size, the objective, and where it is crossed",
        fontsize=11,
        weight="bold",
        va="top",
    )
    y -= 0.025
    header = [
        "endpoint",
        "via",
        *(scale_name(s) for s in scales),
        "objective",
        "crossing (claims)",
        "range",
    ]
    rows, colours = [], []
    for endpoint in ENDPOINTS:
        for protocol in PROTOCOLS:
            projection = analysis.latency[protocol][endpoint]
            rows.append(
                [
                    endpoint,
                    PROTOCOL_NAMES[protocol],
                    *(_ms(v) for v in projection.values),
                    f"{projection.limit:g} ms",
                    _short_verdict(projection),
                    _range(projection),
                ]
            )
            colours.append(_verdict_colour(projection))
    widths = [0.24, 0.055, *([0.06] * len(scales)), 0.085, 0.22, 0.19]
    table_top = y - 0.01
    height = SUMMARY_ROW * (len(rows) + 1)
    _table(figure, (0.06, table_top - height, 0.88, height), header, rows, widths, colours=colours)
    y = table_top - height - 0.03
    figure.text(0.06, y, "Memory", fontsize=11, weight="bold", va="top")
    memory_rows, memory_colours = [], []
    largest = measurements.scales[-1]
    for limit in analysis.memory:
        memory_rows.append(
            [
                limit.name,
                bytes_label(getattr(largest.sizes, limit.measure)),
                f"{limit.limit_name} ({bytes_label(limit.limit_bytes)})",
                _short_verdict(limit.projection),
                _range(limit.projection),
            ]
        )
        memory_colours.append(_verdict_colour(limit.projection))
    height = SUMMARY_ROW * (len(memory_rows) + 1)
    _table(
        figure,
        (0.06, y - 0.02 - height, 0.88, height),
        ["what", f"at {scale_name(largest.claims)}", "against", "crossing (claims)", "range"],
        memory_rows,
        [0.27, 0.11, 0.24, 0.22, 0.16],
        colours=memory_colours,
    )
    _paragraphs(
        figure,
        y - 0.04 - height,
        [
            "Red rows cross at a measured size; amber rows are projected to cross within 10 times "
            "the largest size measured; green rows are not projected to cross there (a far "
            "extrapolation, if any, is a property of the fitted model more than of the database).",
            "How to read it: p95 in milliseconds of sequential calls with varied arguments; HTTP "
            "goes through the REST gateway with its response cache bypassed. A crossing is where "
            "the fitted p95 curve meets the objective, in claims; its range spans the models that "
            "fit about as well and the bootstrap of the measured calls (see Fitted models and "
            "Machine and method). Every figure is also in the JSON beside this PDF.",
        ],
        size=8,
    )
    return figure


def _endpoint_page(measurements: Measurements, analysis: Analysis, endpoint: str) -> Figure:
    scales = measurements.scales
    rows = [float(scale.claims) for scale in scales]
    projections = [analysis.latency[protocol][endpoint] for protocol in PROTOCOLS]
    stop = _x_limit(projections, max(rows))
    objective = projections[0].limit
    figure = _page(
        endpoint,
        f"p95 against claims, objective p95 ≤ {objective:g} ms; bars span p50 to p99 of "
        f"{measurements.options.calls} sequential calls",
    )
    top = figure.add_axes((0.1, 0.45, 0.85, 0.46))
    _log_axes(top, rows, stop, ylabel="latency (ms, log scale)")
    lowest = objective
    highest = objective
    for offset, protocol in zip((0.94, 1.06), PROTOCOLS, strict=True):
        projection = analysis.latency[protocol][endpoint]
        figures = [scale.endpoints[protocol][endpoint].latency for scale in scales]
        colour = COLOURS[protocol]
        xs = [row * offset for row in rows]
        top.vlines(xs, [f.p50_ms for f in figures], [f.p99_ms for f in figures], color=colour, lw=1)
        top.scatter(
            xs,
            [f.p95_ms for f in figures],
            marker=MARKERS[protocol],
            color=colour,
            s=36,
            zorder=5,
            label=f"{PROTOCOL_NAMES[protocol]} p95 measured",
        )
        lowest = min(lowest, *(f.p50_ms for f in figures))
        highest = max(highest, *(f.p99_ms for f in figures))
        curve_x, curve_y = _curve(projection.chosen, min(rows), stop)
        top.plot(
            curve_x,
            curve_y,
            ls="--",
            color=colour,
            lw=1.3,
            label=f"{PROTOCOL_NAMES[protocol]} projection: {FORMULAS[projection.chosen.model]}",
        )
        for fit in projection.fits:
            if fit.model in projection.plausible and fit.model != projection.chosen.model:
                other_x, other_y = _curve(fit, min(rows), stop)
                top.plot(other_x, other_y, ls=":", color=colour, lw=0.8, alpha=0.7)
        if projection.crossing is not None and projection.status != "above":
            top.scatter(
                [projection.crossing], [objective], marker="X", s=70, color=colour, zorder=6
            )
            top.annotate(
                f"~{rows_label(projection.crossing)}",
                (projection.crossing, objective),
                xytext=(4, 8 if protocol == "grpc" else -14),
                textcoords="offset points",
                color=colour,
                fontsize=8,
                weight="bold",
            )
    top.axhline(objective, color=OBJECTIVE_COLOUR, lw=1.2, label=f"objective {objective:g} ms")
    top.set_ylim(max(lowest / 2, 0.05), max(highest, objective) * 4)
    top.legend(loc="upper left", fontsize=7.5, framealpha=0.9)
    top.set_title("Latency: measured (filled markers) and projected (dashed; dotted: other fits)")

    bottom = figure.add_axes((0.1, 0.16, 0.85, 0.22))
    _log_axes(bottom, rows, stop, ylabel="requests/s", log_y=False)
    highest_rate = 1.0
    for protocol in PROTOCOLS:
        rates = [scale.endpoints[protocol][endpoint].throughput for scale in scales]
        highest_rate = max(highest_rate, *(r.requests_per_second for r in rates))
        colour = COLOURS[protocol]
        bottom.plot(
            rows,
            [r.requests_per_second for r in rates],
            marker=MARKERS[protocol],
            color=colour,
            lw=1,
            label=f"{PROTOCOL_NAMES[protocol]} measured",
        )
        fit = analysis.throughput[protocol][endpoint]
        curve_x, curve_y = _curve(fit, min(rows), stop)
        bottom.plot(curve_x, curve_y, ls="--", color=colour, lw=1)
        errors = sum(r.errors for r in rates)
        if errors:
            bottom.text(
                0.99,
                0.04 if protocol == "grpc" else 0.12,
                f"{PROTOCOL_NAMES[protocol]}: {errors} failed requests",
                transform=bottom.transAxes,
                ha="right",
                color=colour,
                fontsize=8,
            )
    bottom.set_ylim(0, highest_rate * 1.25)
    bottom.legend(loc="upper right", fontsize=7.5, framealpha=0.9)
    bottom.set_title(
        f"Throughput with 16 requests in flight, {measurements.options.throughput_seconds:g} s "
        "per run (dashed: fitted trend)"
    )
    lines = []
    for protocol in PROTOCOLS:
        projection = analysis.latency[protocol][endpoint]
        lines.append(
            f"{PROTOCOL_NAMES[protocol]}: {projection.verdict('claims')}. Model "
            f"{FORMULAS[projection.chosen.model]} = {projection.chosen.describe()} ms"
            + f", leave-one-out miss {_miss(projection.chosen.loo_error)}."
        )
    if endpoint in ENDPOINT_NOTES:
        lines.append(ENDPOINT_NOTES[endpoint])
    _paragraphs(figure, 0.095, lines, size=8)
    return figure


def _size_page(measurements: Measurements, analysis: Analysis) -> Figure:
    scales = measurements.scales
    rows = [float(scale.claims) for scale in scales]
    projections = [limit.projection for limit in analysis.memory]
    stop = _x_limit(projections, max(rows))
    mib = 2**20
    figure = _page(
        "Database size and working set",
        "MiB on disk against claims, measured and projected linearly, against shared_buffers "
        "and the machine's RAM",
    )
    axes = figure.add_axes((0.1, 0.4, 0.85, 0.5))
    _log_axes(axes, rows, stop, ylabel="MiB on disk (log scale)")
    for limit in analysis.memory:
        colour = SIZE_COLOURS[limit.measure]
        projection = limit.projection
        axes.scatter(
            rows,
            [value / mib for value in projection.values],
            color=colour,
            s=36,
            zorder=5,
            label=f"{SIZE_NAMES[limit.measure]}, measured",
        )
        curve_x, curve_y = _curve(projection.chosen, min(rows), stop)
        axes.plot(curve_x, [value / mib for value in curve_y], ls="--", color=colour, lw=1.2)
        if projection.crossing is not None:
            axes.scatter(
                [projection.crossing],
                [limit.limit_bytes / mib],
                marker="X",
                s=70,
                color=colour,
                zorder=6,
            )
            axes.annotate(
                f"~{rows_label(projection.crossing)}",
                (projection.crossing, limit.limit_bytes / mib),
                xytext=(5, -13),
                textcoords="offset points",
                color=colour,
                fontsize=8,
                weight="bold",
            )
    shared = measurements.server.shared_buffers_bytes
    ram = measurements.machine.ram_bytes
    axes.axhline(
        shared / mib,
        color=OBJECTIVE_COLOUR,
        lw=1.1,
        label=f"shared_buffers ({bytes_label(shared)})",
    )
    axes.axhline(ram / mib, color="#000000", lw=1.1, ls="-.", label=f"RAM ({bytes_label(ram)})")
    axes.set_ylim(min(min(p.values) for p in projections) / mib / 2, ram / mib * 8)
    axes.legend(loc="upper left", fontsize=7.5, framealpha=0.9)
    axes.set_title("Size: measured (filled markers) and projected (dashed, a + b·n)")
    lines = [
        f"{limit.name} against {limit.limit_name} ({bytes_label(limit.limit_bytes)}): "
        f"{limit.projection.verdict('claims')}; {limit.projection.chosen.b:,.0f} bytes per claim."
        for limit in analysis.memory
    ]
    lines.append(
        "Beyond shared_buffers, reads of the read set come from the operating system's page "
        "cache (still RAM, a few microseconds per 8 KiB block); beyond RAM they come from disk, "
        "and latencies usually climb faster than any curve fitted here. The read set is the "
        "tables the six reads touch with their TOAST and indexes; effective_cache_size is "
        f"{measurements.server.settings.get('effective_cache_size', '?')}."
    )
    _paragraphs(figure, 0.33, lines, size=8.5)
    return figure


def _replica_page(measurements: Measurements) -> Figure:
    figure = _page(
        "Replicas: reads scale out, writes do not",
        "GetClaim and search on a streaming replica next to the same reads on the primary, each "
        "server loaded alone in interleaved rounds (gRPC, 16 in flight); and the replica's "
        "replay lag while each size was loaded at the primary's full ingest rate",
    )
    measured = [scale for scale in measurements.scales if scale.replica is not None]
    if not measured:
        _paragraphs(figure, 0.9, scale_out(measurements))
        return figure
    for number, endpoint in enumerate(REPLICA_ENDPOINTS):
        axes = figure.add_axes((0.1 + number * 0.45, 0.68, 0.38, 0.2))
        _capacity_bars(axes, measured, endpoint)
    rows = []
    for scale in measured:
        replica = scale.replica
        assert replica is not None
        for endpoint in REPLICA_ENDPOINTS:
            for server in SERVERS:
                reads = replica.reads[server][endpoint]
                rows.append(
                    [
                        scale_name(scale.claims),
                        endpoint,
                        server,
                        ", ".join(f"{rate:,.0f}" for rate in reads.rounds_rps),
                        f"{reads.capacity.median:,.0f}",
                        f"{reads.capacity.spread:.0%}",
                        _ms(reads.p50_ms),
                        _ms(reads.p95_ms),
                        str(reads.errors),
                    ]
                )
    height = SUMMARY_ROW * (len(rows) + 1)
    _table(
        figure,
        (0.06, 0.61 - height, 0.88, height),
        ["claims", "endpoint", "server", "req/s per round", "median", "spread", "p50", "p95",
         "errors"],
        rows,
        [0.07, 0.22, 0.08, 0.22, 0.09, 0.08, 0.07, 0.07, 0.07],
        size=7,
    )  # fmt: skip
    lag_rows = [_lag_row(scale) for scale in measured]
    lag_top = 0.61 - height - 0.025
    lag_height = SUMMARY_ROW * (len(lag_rows) + 1)
    _table(
        figure,
        (0.06, lag_top - lag_height, 0.88, lag_height),
        ["loading to", "ingest claims/s", "lag max", "lag p95", "bytes max", "bytes p95",
         "caught up after", "replica's share"],
        lag_rows,
        [0.1, 0.13, 0.1, 0.1, 0.12, 0.12, 0.15, 0.13],
        size=7,
    )  # fmt: skip
    _paragraphs(
        figure,
        lag_top - lag_height - 0.02,
        [
            *replica_sizes(measurements),
            "Spread: (highest - lowest) / median of the rounds. Share: of the replica "
            "retriever's reads, those the replica served.",
            replica_method(measurements.options),
        ],
        size=7.5,
    )
    return figure


def _capacity_bars(axes: Axes, measured: Sequence[ScaleFigures], endpoint: str) -> None:
    """One read's median req/s per size on each server, with the rounds' range as error bars."""
    width = 0.38
    for offset, server in enumerate(SERVERS):
        capacities = [
            scale.replica.reads[server][endpoint].capacity
            for scale in measured
            if scale.replica is not None
        ]
        positions = [number + (offset - 0.5) * width for number in range(len(measured))]
        errors = [
            [capacity.median - capacity.low for capacity in capacities],
            [capacity.high - capacity.median for capacity in capacities],
        ]
        axes.bar(positions, [capacity.median for capacity in capacities], width, yerr=errors,
                 capsize=2, color=REPLICA_COLOURS[server], label=server)  # fmt: skip
    axes.set_xticks(range(len(measured)), [scale_name(scale.claims) for scale in measured])
    axes.set_title(endpoint)
    axes.set_ylabel("requests/s (median, rounds' range)")
    axes.set_xlabel("claims in the database")
    axes.legend(fontsize=7, loc="lower right")
    axes.grid(True, axis="y", color="#dddddd", lw=0.5)


def _lag_row(scale: ScaleFigures) -> list[str]:
    replica = scale.replica
    assert replica is not None
    lag = replica.load_lag
    if lag is None:
        figures = ["-"] * 5
    else:
        figures = [
            f"{lag.max_seconds:.2f} s",
            f"{lag.p95_seconds:.2f} s",
            f"{_mib(lag.max_bytes)} MiB",
            f"{_mib(lag.p95_bytes)} MiB",
            f"{lag.caught_up_seconds:.1f} s",
        ]
    return [
        scale_name(scale.claims),
        f"{scale.ingest_claims_per_second:,.0f}",
        *figures,
        f"{replica.replica_share:.1%}",
    ]


def _ingest_page(measurements: Measurements) -> Figure:
    scales = measurements.scales
    names = [scale_name(scale.claims) for scale in scales]
    figure = _page(
        "Ingest rate and buffer cache",
        "Claims indexed per second through a real indexer, and the share of blocks the reads "
        "found in shared_buffers",
    )
    rate = figure.add_axes((0.1, 0.56, 0.85, 0.33))
    values = [scale.ingest_claims_per_second for scale in scales]
    bars = rate.bar(names, values, color="#1f5fa8")
    rate.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    rate.set_ylabel("claims/s")
    rate.set_xlabel("growing to (claims)")
    rate.set_title("Ingest rate while growing to each size (2 streams, 1,000-claim batches)")
    rate.grid(True, axis="y", color="#dddddd", lw=0.5)
    hits = figure.add_axes((0.1, 0.14, 0.85, 0.33))
    ratios = [scale.buffer_cache_hit_ratio for scale in scales]
    hit_bars = hits.bar(names, [100 * (r or 0) for r in ratios], color="#2a8c55")
    hits.bar_label(
        hit_bars, labels=[f"{100 * r:.2f} %" if r is not None else "n/a" for r in ratios]
    )
    hits.set_ylim(0, 105)
    hits.set_ylabel("blocks found in shared_buffers (%)")
    hits.set_xlabel("claims in the database")
    hits.set_title("Buffer cache hit ratio during the latency and throughput runs")
    hits.grid(True, axis="y", color="#dddddd", lw=0.5)
    _paragraphs(
        figure,
        0.07,
        [
            "The hit ratio is blks_hit / (blks_hit + blks_read) of pg_stat_database over the read "
            "runs at each size. A block not found in shared_buffers is read from the operating "
            "system, usually from its page cache rather than the disk on a machine with this "
            "much RAM."
        ],
        size=8,
    )
    return figure


def _chunks(rows: list[list[str]], size: int) -> list[list[list[str]]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)] or [[]]


def _figure_tables(measurements: Measurements) -> list[Figure]:
    rows = []
    for scale in measurements.scales:
        for endpoint in ENDPOINTS:
            for protocol in PROTOCOLS:
                figures = scale.endpoints[protocol][endpoint]
                rows.append(
                    [
                        scale_name(scale.claims),
                        endpoint,
                        PROTOCOL_NAMES[protocol],
                        _ms(figures.latency.p50_ms),
                        _ms(figures.latency.p95_ms),
                        _ms(figures.latency.p99_ms),
                        f"{figures.throughput.requests_per_second:,.0f}",
                        str(figures.throughput.errors),
                        f"{figures.throughput.load_generator_cpu:.2f}",
                    ]
                )
    pages = []
    for chunk in _chunks(rows, TABLE_ROWS_PER_PAGE):
        figure = _page(
            "Raw figures: latency and throughput",
            f"Latency in ms over {measurements.options.calls} sequential calls; throughput over "
            f"{measurements.options.throughput_seconds:g} s with 16 requests in flight; load "
            "generator CPU in cores",
        )
        height = 0.021 * (len(chunk) + 1)
        _table(
            figure,
            (0.06, 0.91 - height, 0.88, height),
            ["claims", "endpoint", "via", "p50", "p95", "p99", "req/s", "errors", "client CPU"],
            chunk,
            [0.08, 0.25, 0.07, 0.08, 0.08, 0.08, 0.12, 0.08, 0.1],
        )
        pages.append(figure)
    return pages


def _size_tables(measurements: Measurements) -> list[Figure]:
    rows = []
    for scale in measurements.scales:
        rows.append(
            [
                scale_name(scale.claims),
                "(database)",
                "",
                "",
                "",
                "",
                _mib(scale.sizes.database_bytes),
            ]
        )
        for table in scale.sizes.tables:
            rows.append(
                [
                    scale_name(scale.claims),
                    table.name,
                    f"{table.rows_estimate:,}",
                    _mib(table.heap_bytes),
                    _mib(table.toast_bytes),
                    _mib(table.index_bytes),
                    _mib(table.total_bytes),
                ]
            )
    per_scale = [
        [
            scale_name(scale.claims),
            f"{scale.load_seconds:,.1f}",
            f"{scale.ingest_claims_per_second:,.0f}",
            f"{scale.measure_seconds:,.0f}",
            f"{scale.load_average:.2f}",
            scale.fingerprint,
        ]
        for scale in measurements.scales
    ]
    first_page_rows = TABLE_ROWS_PER_PAGE - len(per_scale) - 3
    chunks = [rows[:first_page_rows], *_chunks(rows[first_page_rows:], TABLE_ROWS_PER_PAGE)]
    pages = []
    for number, chunk in enumerate(chunks):
        if not chunk and number:
            continue
        figure = _page(
            "Raw figures: sizes",
            "Per size: load and measuring time, load average, md5 of the claims; then MiB on "
            "disk by table (rows: the planner's estimate)",
        )
        top = 0.9
        if number == 0:
            height = 0.021 * (len(per_scale) + 1)
            _table(
                figure,
                (0.06, top - height, 0.88, height),
                ["claims", "load s", "claims/s", "measure s", "load avg", "data fingerprint (md5)"],
                per_scale,
                [0.1, 0.1, 0.12, 0.12, 0.12, 0.44],
            )
            top -= height + 0.03
        height = 0.021 * (len(chunk) + 1)
        _table(
            figure,
            (0.06, top - height, 0.88, height),
            ["claims", "table", "rows", "heap", "TOAST", "indexes", "total"],
            chunk,
            [0.1, 0.26, 0.14, 0.12, 0.12, 0.13, 0.13],
        )
        pages.append(figure)
    return pages


def _miss(error: float | None) -> str:
    """A leave-one-out error as a typical miss: ±12 % while small, as a factor beyond."""
    if error is None:
        return "n/a"
    return f"±{error:.0%}" if error < 0.7 else f"x{math.exp(error):.3g}"


def _index_tables(measurements: Measurements) -> list[Figure]:
    scales = measurements.scales
    by_index: dict[tuple[str, str], dict[int, int]] = {}
    for scale in scales:
        for index in scale.sizes.indexes:
            by_index.setdefault((index.table, index.name), {})[scale.claims] = index.bytes
    largest = scales[-1].claims
    ordered = sorted(by_index.items(), key=lambda item: (-item[1].get(largest, 0), item[0]))
    rows = [
        [name, table, *(_mib(sizes[s.claims]) if s.claims in sizes else "-" for s in scales)]
        for (table, name), sizes in ordered
    ]
    pages = []
    for chunk in _chunks(rows, TABLE_ROWS_PER_PAGE):
        figure = _page("Raw figures: index sizes", "MiB on disk of each index, largest first")
        height = 0.021 * (len(chunk) + 1)
        _table(
            figure,
            (0.06, 0.9 - height, 0.88, height),
            ["index", "table", *(scale_name(s.claims) for s in scales)],
            chunk,
            [0.5, 0.18, *([0.1] * len(scales))],
            size=7,
        )
        pages.append(figure)
    return pages


def _fits_page(measurements: Measurements, analysis: Analysis) -> Figure:
    rows, colours = [], []
    for endpoint in ENDPOINTS:
        for protocol in PROTOCOLS:
            projection = analysis.latency[protocol][endpoint]
            for fit in projection.fits:
                chosen = fit.model == projection.chosen.model
                bootstrap = ""
                if chosen and projection.bootstrap is not None:
                    low, high = projection.bootstrap
                    bootstrap = range_label(low, high) if low is not None else "never"
                rows.append(
                    [
                        endpoint if fit is projection.fits[0] else "",
                        PROTOCOL_NAMES[protocol] if fit is projection.fits[0] else "",
                        FORMULAS[fit.model],
                        fit.describe(),
                        _miss(fit.loo_error),
                        rows_label(projection.model_crossings[fit.model]),
                        "chosen"
                        if chosen
                        else ("plausible" if fit.model in projection.plausible else ""),
                        bootstrap,
                    ]
                )
                colours.append("#e8f0fa" if chosen else None)
    figure = _page(
        "Fitted models",
        "p95 (ms) against claims n. Leave-one-out miss: how far each measured point lies from "
        "the model fitted to the others (RMS of log-ratios, as ± % or a factor)",
    )
    height = 0.0158 * (len(rows) + 1)
    _table(
        figure,
        (0.06, 0.9 - height, 0.88, height),
        ["endpoint", "via", "model", "fitted (ms)", "LOO miss", "crossing", "", "bootstrap"],
        rows,
        [0.22, 0.05, 0.1, 0.21, 0.08, 0.08, 0.08, 0.13],
        size=6.8,
        colours=colours,
    )
    _paragraphs(
        figure,
        0.9 - height - 0.015,
        [
            "Chosen: the constant when its miss is 15 % or less (noise), else the "
            "growing model with the smallest miss. Plausible: within twice the best miss or 15 % "
            "of it; their crossings and the bootstrap (10th-90th percentile of the chosen model's "
            "crossing over 200 resamplings of the measured calls) make the range on the summary."
        ],
        size=7.5,
    )
    return figure


def _printable(text: str) -> str:
    """Private-use characters (the search's highlight markers) as « and », others as ?."""
    marks = {0xE000: "«", 0xE001: "»"}
    return "".join(marks.get(ord(c), "?") if 0xE000 <= ord(c) <= 0xF8FF else c for c in text)


def _plan_pages(measurements: Measurements) -> list[Figure]:
    lines: list[str] = []
    for scale in measurements.scales:
        if not scale.slowest_plans:
            continue
        lines.append(f"=== at {scale_name(scale.claims)} claims ===")
        for plan in scale.slowest_plans:
            plan_lines: list[str] = []
            for raw in _printable(plan).expandtabs(2).splitlines():
                plan_lines += textwrap.wrap(raw, 150, subsequent_indent="      ") or [""]
            if len(plan_lines) > PLAN_LINES_EACH:
                hidden = len(plan_lines) - PLAN_LINES_EACH
                more = f"... {hidden} more lines in the JSON"
                plan_lines = [*plan_lines[:PLAN_LINES_EACH], more]
            lines += [*plan_lines, ""]
    if not lines:
        lines = [
            "No plans: they come from auto_explain in the embedded server's log, and this run "
            "used an external server (DATABASE_URL)."
        ]
    pages = []
    for start in range(0, len(lines), PLAN_LINES_PER_PAGE):
        figure = _page(
            "Slowest plans",
            "The three slowest statements at each size, from an auto_explain pass (ANALYZE, "
            "BUFFERS) after the measurements",
        )
        figure.text(
            0.06,
            0.915,
            "\n".join(lines[start : start + PLAN_LINES_PER_PAGE]),
            family="monospace",
            fontsize=5.4,
            va="top",
            linespacing=1.25,
        )
        pages.append(figure)
    return pages


def _machine_page(measurements: Measurements) -> Figure:
    machine = measurements.machine
    server = measurements.server
    options = measurements.options
    figure = _page("Machine and method", f"Measured in {measurements.seconds / 60:.1f} minutes")
    facts = [
        ["CPU", machine.cpu_model],
        ["cores", str(machine.cores)],
        ["RAM", f"{machine.ram_bytes / 2**30:.1f} GiB"],
        ["system", machine.system],
        ["Python", machine.python],
        ["load generator", machine.load_generator],
        [
            "PostgreSQL",
            textwrap.shorten(server.version, 80, placeholder=" ...")
            + (" (embedded)" if measurements.database == "embedded" else ""),
        ],
        *([name, value] for name, value in sorted(server.settings.items())),
        [
            "run",
            f"scales {', '.join(scale_name(s) for s in options.scales)}; seed {options.seed}; "
            f"{options.calls} calls; {options.throughput_seconds:g} s per throughput run"
            + ("; --quick" if options.quick else ""),
        ],
    ]
    height = 0.0165 * len(facts)
    _table(figure, (0.06, 0.91 - height, 0.88, height), None, facts, [0.3, 0.7], size=7.5)
    _paragraphs(
        figure,
        0.91 - height - 0.02,
        method_paragraphs(measurements),
        size=7.8,
    )
    return figure
