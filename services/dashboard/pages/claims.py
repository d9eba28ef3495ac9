"""The claims pages: claims by filters or full-text search a keyset page at a time, and one
claim with its full history, diffs and any two revisions compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Final

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from panoptic.core import timestamps
from panoptic.core.refusals import NotFound, Refusal
from panoptic.reads.domain import ClaimListing, ClaimSearch, PageRequest
from panoptic.reads.queries import ClaimFilters
from services.dashboard import queries
from services.dashboard.pages.common import (
    CLAIMS_PER_PAGE,
    QUERY_MAX_CHARS,
    display_names,
    refused_input,
)
from services.dashboard.revisions import claim_diff, history_diffs
from services.dashboard.state import dashboard_of

MAX_REVISIONS: Final = 1000
LANGUAGE_MAX_CHARS: Final = 35


@dataclass(frozen=True)
class ClaimQuery:
    """The claims page's form, checked."""

    text: str
    filters: ClaimFilters
    ascending: bool
    errors: tuple[str, ...]


def _date(value: str, field: str, errors: list[str]) -> datetime | None:
    """The start of the day `value` names; a whole day past it must be within the range a
    claim's time may take too, since "to" takes claims stated before the next day."""
    if not value:
        return None
    try:
        moment = datetime.combine(date.fromisoformat(value), clock_time(), UTC)
    except ValueError:
        errors.append(f"{field}: “{value}” is not a date (YYYY-MM-DD)")
        return None
    if not timestamps.EARLIEST <= moment < timestamps.END - timedelta(days=1):
        errors.append(f"{field}: “{value}” is outside the dates claims can have")
        return None
    return moment


def claim_query(params: QueryParams) -> ClaimQuery:
    """The filters of the claims page; `errors` says what could not be used."""
    errors: list[str] = []
    text = params.get("q", "").strip()[:QUERY_MAX_CHARS]
    stated_after = _date(params.get("from", "").strip(), "from", errors)
    until = _date(params.get("to", "").strip(), "to", errors)
    # "to" is inclusive on the page: claims stated before the next day.
    stated_before = until + timedelta(days=1) if until else None
    language = params.get("language", "").strip()[:LANGUAGE_MAX_CHARS] or None
    state = params.get("state", "active")
    if state not in ("active", "all"):
        errors.append("state: choose active or all")
    filters = ClaimFilters(
        actor_id=params.get("actor", "").strip() or None,
        topic_id=params.get("topic", "").strip() or None,
        stated_after=stated_after,
        stated_before=stated_before,
        language=language,
        show_retracted=state == "all",
    )
    return ClaimQuery(text, filters, params.get("order") == "asc", tuple(errors))


async def claims_page(request: Request) -> Response:
    """Claims by filters or full-text search, a keyset page at a time."""
    dashboard = dashboard_of(request)
    query = claim_query(request.query_params)
    token = request.query_params.get("page", "")
    context: dict[str, Any] = {
        "section": "claims",
        "query": query,
        "params": request.query_params,
        "claims": [],
        "hits": [],
        "next_token": "",
        "errors": list(query.errors),
        "names": queries.Names({}, {}),
    }
    if query.errors:
        return dashboard.render(request, "claims.html", 400, **context)
    try:
        if query.text:
            found = await dashboard.reads.search_claims(
                ClaimSearch(query.text, query.filters, PageRequest(CLAIMS_PER_PAGE, token)), None
            )
            context["hits"] = found.items
            context["next_token"] = found.next_page_token
            rows = [hit.claim for hit in found.items]
        else:
            listing = await dashboard.reads.list_claims(
                ClaimListing(
                    query.filters, not query.ascending, PageRequest(CLAIMS_PER_PAGE, token)
                ),
                None,
            )
            context["claims"] = rows = listing.items
            context["next_token"] = listing.next_page_token
    except NotFound as error:
        context["errors"].append(error.message)
        return dashboard.render(request, "claims.html", 404, **context)
    except Refusal as error:
        context["errors"].append(refused_input(error))
        return dashboard.render(request, "claims.html", 400, **context)
    context["names"] = await display_names(
        dashboard,
        {row.actor_id for row in rows},
        {topic for row in rows for topic in row.topic_ids},
    )
    return dashboard.render(request, "claims.html", **context)


async def claim_page(request: Request) -> Response:
    """One claim: its current state, source, topics and full history with diffs."""
    dashboard = dashboard_of(request)
    claim_id = request.path_params["claim_id"]
    claim = await dashboard.reads.get_claim(claim_id, None)
    history = await dashboard.reads.list_revisions(claim_id, PageRequest(MAX_REVISIONS), None)
    revisions = history.items
    diffs = history_diffs(revisions)
    by_number = {revision.revision: revision for revision in revisions}
    compare = None
    old_number = _int(request.query_params.get("from"))
    new_number = _int(request.query_params.get("to"))
    old, new = by_number.get(old_number or 0), by_number.get(new_number or 0)
    if old is not None and new is not None and old is not new:
        compare = claim_diff(old.claim, new.claim, old.revision, new.revision)
    names = await display_names(
        dashboard,
        {claim.actor_id} | {revision.claim.actor_id for revision in revisions},
        set(claim.topic_ids),
    )
    return dashboard.render(
        request,
        "claim.html",
        section="claims",
        claim=claim,
        revisions=list(reversed(revisions)),
        diffs=diffs,
        compare=compare,
        compare_from=old_number or (revisions[0].revision if revisions else 1),
        compare_to=new_number or claim.revision,
        truncated=bool(history.next_page_token),
        names=names,
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
