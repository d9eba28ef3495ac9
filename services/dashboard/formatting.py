"""How the pages show numbers, sizes, times and durations (Jinja filters), all in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def number(value: float | None) -> str:
    """Thousands separated by a thin space: 12 345."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}".replace(",", "\u202f")
    return f"{int(value):,}".replace(",", "\u202f")


def size(value: int | None) -> str:
    """Bytes in binary units: 8.0 KiB, 1.2 GiB."""
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def percent(value: float | None, digits: int = 1) -> str:
    """A ratio as a percentage; a dash when unknown."""
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def utc(moment: datetime | None, seconds: bool = False) -> str:
    """A time in UTC: 2024-05-01 12:00 UTC."""
    if moment is None:
        return "—"
    shape = "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    return moment.astimezone(UTC).strftime(shape)


def day(moment: datetime | None) -> str:
    """A date: 2024-05-01."""
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d")


def iso(moment: datetime | None) -> str:
    """RFC 3339, for `<time datetime=...>`."""
    return "" if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def duration(span: timedelta | None) -> str:
    """A span in its two largest units: 3 d 4 h, 12 min 5 s."""
    if span is None:
        return "—"
    seconds = int(span.total_seconds())
    if seconds < 0:
        return "in the future"
    parts: list[str] = []
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= length or (unit == "s" and not parts):
            parts.append(f"{seconds // length} {unit}")
            seconds %= length
        if len(parts) == 2:
            break
    return " ".join(parts)


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long before now: 3 h 2 min ago."""
    if moment is None:
        return "never"
    return duration((now or datetime.now(UTC)) - moment) + " ago"


def milliseconds(value: float | None) -> str:
    """A time in ms, with as many digits as are meaningful."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f} ms".replace(",", "\u202f")
    return f"{value:.2f} ms"


FILTERS = {
    "number": number,
    "size": size,
    "percent": percent,
    "utc": utc,
    "day": day,
    "iso": iso,
    "duration": duration,
    "ago": ago,
    "ms": milliseconds,
}
