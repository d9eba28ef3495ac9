"""The topics pages: topics by id or whose id or name contains a query, and one topic with its
parent, children and claims.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from panoptic.core.refusals import Refusal
from panoptic.reads.domain import ClaimListing, PageRequest
from panoptic.reads.queries import ClaimFilters
from services.dashboard import queries
from services.dashboard.pages.common import (
    CLAIMS_PER_PAGE,
    QUERY_MAX_CHARS,
    display_names,
    refused_input,
)
from services.dashboard.state import dashboard_of, url_with

TOPICS_PER_PAGE: Final = 50


async def topics_page(request: Request) -> Response:
    """Topics by id, or those whose id or name contains a query."""
    dashboard = dashboard_of(request)
    text = request.query_params.get("q", "").strip()[:QUERY_MAX_CHARS]
    errors: list[str] = []
    next_page = ""
    if text:
        after = request.query_params.get("after") or None
        async with dashboard.reading() as connection:
            found = await queries.search_topics(
                connection, text, after=after, limit=TOPICS_PER_PAGE + 1
            )
        topics: list[Any] = found[:TOPICS_PER_PAGE]
        if len(found) > TOPICS_PER_PAGE:
            next_page = url_with(request.query_params, "/topics", after=topics[-1].id)
    else:
        token = request.query_params.get("page", "")
        try:
            page = await dashboard.reads.list_topics(
                None, PageRequest(TOPICS_PER_PAGE, token), None
            )
            topics = list(page.items)
            if page.next_page_token:
                next_page = url_with(request.query_params, "/topics", page=page.next_page_token)
        except Refusal as error:
            errors.append(refused_input(error))
            topics = []
    return dashboard.render(
        request,
        "topics.html",
        400 if errors else 200,
        section="topics",
        text=text,
        topics=topics,
        next_page=next_page,
        params=request.query_params,
        errors=errors,
    )


async def topic_page(request: Request) -> Response:
    """A topic: its parent and children, and its claims."""
    dashboard = dashboard_of(request)
    topic_id = request.path_params["topic_id"]
    topic = await dashboard.reads.get_topic(topic_id, None)
    children = await dashboard.reads.list_topics(topic_id, PageRequest(200), None)
    parent = await dashboard.reads.get_topic(topic.parent_id, None) if topic.parent_id else None
    token = request.query_params.get("page", "")
    listing = await dashboard.reads.list_claims(
        ClaimListing(ClaimFilters(topic_id=topic_id), True, PageRequest(CLAIMS_PER_PAGE, token)),
        None,
    )
    names = await display_names(
        dashboard,
        {claim.actor_id for claim in listing.items},
        {t for c in listing.items for t in c.topic_ids},
    )
    return dashboard.render(
        request,
        "topic.html",
        section="topics",
        topic=topic,
        parent=parent,
        children=children.items,
        claims=listing.items,
        next_token=listing.next_page_token,
        params=request.query_params,
        names=names,
    )
