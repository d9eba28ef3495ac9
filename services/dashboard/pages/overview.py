"""The overview: counts, claims indexed per hour, time since the last index, refused batches and
recent changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from services.dashboard import queries
from services.dashboard.charts import Bar, bar_chart
from services.dashboard.state import dashboard_of

OVERVIEW_DAYS: Final = (1, 7, 14, 30)


def _hour_bars(rows: list[queries.HourCount], since: datetime, now: datetime) -> list[Bar]:
    """One bar per hour from `since` to now, zero where nothing was recorded."""
    by_hour = {row.hour: row for row in rows}
    hours = int((now - since).total_seconds() // 3600) + 1
    days = hours / 24
    every_days = max(1, round(days / 7))  # about seven labels on the time axis
    bars = []
    for index in range(hours):
        hour = since + timedelta(hours=index)
        row = by_hour.get(hour)
        created, changed = (row.created, row.changed) if row else (0, 0)
        if days <= 2:
            label = hour.strftime("%H:00") if hour.hour % 4 == 0 else ""
        else:
            first_midnight = hour.hour == 0 and (hour.date() - since.date()).days % every_days == 0
            label = hour.strftime("%b %d") if first_midnight else ""
        bars.append(
            Bar(
                label,
                f"{hour:%Y-%m-%d %H:00} UTC: {created} new, {changed} changed",
                (created, changed),
            )
        )
    return bars


async def overview(request: Request) -> Response:
    """Counts, claims indexed per hour, time since the last index, refused batches."""
    dashboard = dashboard_of(request)
    days = _choice(request.query_params.get("days"), OVERVIEW_DAYS, 7)
    now = datetime.now(UTC)
    since = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    async with dashboard.reading() as connection:
        counts = await queries.counts(connection)
        per_hour = await queries.revisions_per_hour(connection, since)
        last_index = await queries.last_index_time(connection)
        reasons = await queries.rejection_reasons(connection, since)
        rejections = await queries.recent_rejections(connection, 10)
        changes = await queries.recent_changes(connection, since, 10)
    window = timedelta(minutes=dashboard.config.not_indexed_minutes)
    stale = last_index is None or now - last_index > window
    bars = _hour_bars(per_hour, since, now)
    return dashboard.render(
        request,
        "overview.html",
        section="overview",
        counts=counts,
        days=days,
        day_choices=OVERVIEW_DAYS,
        chart=bar_chart(
            bars,
            title=f"Claims indexed per hour over the last {days} days",
            series=("new claims", "changed claims"),
        ),
        hourly=[row for row in per_hour],
        indexed_total=sum(row.created + row.changed for row in per_hour),
        last_index=last_index,
        since_last_index=None if last_index is None else now - last_index,
        stale=stale,
        window=window,
        reasons=reasons,
        rejections=rejections,
        changes=changes,
        now=now,
    )


def _choice(value: str | None, allowed: tuple[int, ...], default: int) -> int:
    try:
        number = int(value or default)
    except ValueError:
        return default
    return number if number in allowed else default
