"""The actors pages: actors by id or by how well their names match a query, and one actor with
its timeline (all topics, then per topic) and its claims.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from panoptic.core.refusals import NotFound, Refusal
from panoptic.reads.domain import ClaimListing, Interval, PageRequest, TimelineRequest
from panoptic.reads.queries import ActorRow, ClaimFilters, TimelineBucket
from services.dashboard import queries
from services.dashboard.charts import Bar, bar_chart
from services.dashboard.pages.common import (
    CLAIMS_PER_PAGE,
    QUERY_MAX_CHARS,
    display_names,
    refused_input,
)
from services.dashboard.state import Dashboard, dashboard_of

ACTORS_PER_PAGE: Final = 50
TIMELINE_TOPICS: Final = 6
MAX_TIMELINE_BUCKETS: Final = 400
_LABEL_FORMATS: Final = {
    Interval.DAY: "%Y-%m-%d",
    Interval.WEEK: "%Y-%m-%d",
    Interval.MONTH: "%Y-%m",
    Interval.YEAR: "%Y",
}
# A chart on the actor page: its heading, the topic it is about (None: all), the SVG.
Chart = tuple[str, str | None, Markup]


async def actors_page(request: Request) -> Response:
    """Actors by id, or by how well their names match a query (typos and partial names too)."""
    dashboard = dashboard_of(request)
    text = request.query_params.get("q", "").strip()[:QUERY_MAX_CHARS]
    token = request.query_params.get("page", "")
    errors: list[str] = []
    try:
        page = await dashboard.reads.list_actors(
            text or None, PageRequest(ACTORS_PER_PAGE, token), None
        )
        actors, next_token = page.items, page.next_page_token
    except Refusal as error:
        errors.append(refused_input(error))
        actors, next_token = [], ""
    return dashboard.render(
        request,
        "actors.html",
        400 if errors else 200,
        section="actors",
        text=text,
        actors=actors,
        next_token=next_token,
        params=request.query_params,
        errors=errors,
    )


def _step(moment: datetime, interval: Interval) -> datetime:
    """The start of the bucket after the one starting at `moment`."""
    if interval is Interval.DAY:
        return moment + timedelta(days=1)
    if interval is Interval.WEEK:
        return moment + timedelta(days=7)
    if interval is Interval.MONTH:
        return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
    return moment.replace(year=moment.year + 1)


def timeline_bars(
    buckets: list[TimelineBucket], interval: Interval, first: datetime, last: datetime
) -> list[Bar]:
    """One bar per bucket from `first` to `last` (bucket starts), zero where none was said."""
    counts = {bucket.start_time: bucket for bucket in buckets}
    starts = [first]
    while starts[-1] < last and len(starts) < MAX_TIMELINE_BUCKETS:
        starts.append(_step(starts[-1], interval))
    every = max(1, len(starts) // 8)
    bars = []
    for index, start in enumerate(starts):
        bucket = counts.get(start)
        count = bucket.claim_count if bucket else 0
        label = start.strftime(_LABEL_FORMATS[interval])
        sample = f" — e.g. “{bucket.samples[0].text[:120]}”" if bucket and bucket.samples else ""
        bars.append(
            Bar(
                label if index % every == 0 else "",
                f"{label}: {count} claim{'s' if count != 1 else ''}{sample}",
                (count,),
            )
        )
    return bars


async def _charts(
    dashboard: Dashboard,
    actor: ActorRow,
    interval: Interval,
    topics: list[queries.TopicShare],
    topic_id: str | None,
) -> list[Chart]:
    """The actor's claims per bucket over all topics, then on the topic asked for (or its
    first topics), every chart over the same buckets so that they line up."""
    request = TimelineRequest(actor.id, interval, None, None, None, sample_size=1)
    overall = await dashboard.reads.actor_timeline(request, None)
    if not overall:
        return []
    first, last = overall[0].start_time, overall[-1].start_time
    charts: list[Chart] = [
        (
            "All topics",
            None,
            bar_chart(
                timeline_bars(overall, interval, first, last),
                title=f"Claims by {actor.display_name} per {interval.value}, all topics",
                series=("claims",),
            ),
        )
    ]
    shown = [topic for topic in topics if topic.topic_id == topic_id] or topics
    for share in shown[:TIMELINE_TOPICS]:
        buckets = await dashboard.reads.actor_timeline(
            TimelineRequest(actor.id, interval, share.topic_id, None, None, sample_size=1), None
        )
        title = f"Claims by {actor.display_name} on {share.display_name} per {interval.value}"
        chart = bar_chart(
            timeline_bars(buckets, interval, first, last),
            title=title,
            series=("claims",),
            height=120,
        )
        charts.append((share.display_name, share.topic_id, chart))
    return charts


async def actor_page(request: Request) -> Response:
    """An actor: details, timeline (all topics, then per topic), and its claims."""
    dashboard = dashboard_of(request)
    actor_id = request.path_params["actor_id"]
    actor = await dashboard.reads.get_actor(actor_id, None)
    interval = _interval(request.query_params.get("interval"))
    topic_id = request.query_params.get("topic", "").strip() or None
    token = request.query_params.get("page", "")
    async with dashboard.reading() as connection:
        topics = await queries.actor_topics(connection, actor_id, 50)
    charts = await _charts(dashboard, actor, interval, topics, topic_id)
    try:
        listing = await dashboard.reads.list_claims(
            ClaimListing(
                ClaimFilters(actor_id=actor_id, topic_id=topic_id),
                True,
                PageRequest(CLAIMS_PER_PAGE, token),
            ),
            None,
        )
    except NotFound:
        raise HTTPException(404, f"topic {topic_id!r} does not exist") from None
    names = await display_names(dashboard, set(), {t for c in listing.items for t in c.topic_ids})
    return dashboard.render(
        request,
        "actor.html",
        section="actors",
        actor=actor,
        interval=interval,
        intervals=list(Interval),
        topics=topics,
        topic_id=topic_id,
        charts=charts,
        claims=listing.items,
        next_token=listing.next_page_token,
        params=request.query_params,
        names=names,
    )


def _interval(value: str | None) -> Interval:
    try:
        return Interval(value or "month")
    except ValueError:
        return Interval.MONTH
