"""Bar charts as inline SVG, drawn on the server: no JavaScript, no chart library, no CDN.

Each chart carries an accessible name and a `<title>` per bar (a tooltip with the exact value);
the pages put the same figures in a table beside it for screen readers and copying.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup, escape

WIDTH: Final = 720
HEIGHT: Final = 200
_LEFT: Final = 56  # room for the value axis's labels
MAX_BAR_WIDTH: Final = 48
_BOTTOM: Final = 28  # room for the time axis's labels
_TOP: Final = 14


@dataclass(frozen=True)
class Bar:
    """One bar: its label on the axis (may be empty), its tooltip, and stacked values."""

    label: str
    tooltip: str
    values: tuple[int, ...]


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while magnitude * 10 < value:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    raise AssertionError("unreachable")


def axis_label(value: int) -> str:
    """A count as the value axis shows it: 950, 2k, 2.5k, 1.2M."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return str(value)


def _value_axis(top_value: int, plot_height: float) -> list[str]:
    """Grid lines at 0, half and the top of the value axis, labelled where the value is whole."""
    parts = []
    for fraction in (0, 0.5, 1):
        y = _TOP + plot_height * (1 - fraction)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>')
        value = float(top_value * fraction)
        if value.is_integer():  # counts: no tick at 0.5
            parts.append(
                f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{axis_label(int(value))}</text>"
            )
    return parts


def bar_chart(
    bars: Sequence[Bar], *, title: str, series: Sequence[str], height: int = HEIGHT
) -> Markup:
    """An SVG bar chart of `bars`, each stacked from its `values` in `series` order.

    Series are coloured by CSS classes `series-0`, `series-1`, ... so the page's stylesheet
    decides colours, in light and dark mode alike.
    """
    plot_width = WIDTH - _LEFT
    plot_height = height - _BOTTOM - _TOP
    top_value = nice_ceiling(max((sum(bar.values) for bar in bars), default=0))
    slot = plot_width / max(len(bars), 1)
    width = min(max(slot - min(2.0, slot * 0.2), 1.0), MAX_BAR_WIDTH)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    parts.extend(_value_axis(top_value, plot_height))
    for index, bar in enumerate(bars):
        x = _LEFT + index * slot + (slot - width) / 2
        bottom = float(_TOP + plot_height)
        parts.append(f"<g><title>{escape(bar.tooltip)}</title>")
        # An invisible full-height target, so thin bars still show their tooltip on hover.
        parts.append(
            f'<rect class="hit" x="{_LEFT + index * slot:.1f}" y="{_TOP}" width="{slot:.1f}" '
            f'height="{plot_height}"/>'
        )
        for number, value in enumerate(bar.values):
            if value <= 0:
                continue
            bar_height = plot_height * value / top_value
            bottom -= bar_height
            parts.append(
                f'<rect class="series-{number}" x="{x:.1f}" y="{bottom:.1f}" '
                f'width="{width:.1f}" height="{bar_height:.1f}"/>'
            )
        parts.append("</g>")
        if bar.label:
            parts.append(
                f'<text class="axis" x="{x + width / 2:.1f}" y="{height - 6}" '
                f'text-anchor="middle">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="legend-item"><span class="swatch series-{number}"></span>'
        f"{escape(name)}</span>"
        for number, name in enumerate(series)
    )
    figure = (
        f'<figure class="chart-figure">{"".join(parts)}'
        f'<figcaption class="legend">{legend}</figcaption></figure>'
    )
    return Markup(figure)  # noqa: S704 - every value in it was escaped above
