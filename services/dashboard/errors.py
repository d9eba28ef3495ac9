"""The dashboard's error pages: a refused request, a read the read model refused or could not
finish, and a failure nobody expected (whose details go to the log only).
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from panoptic.core.logging import get_logger
from panoptic.core.refusals import DatabaseUnavailable, DeadlineExceeded, NotFound, Refusal
from services.dashboard.state import dashboard_of

log = get_logger("panoptic.dashboard")


def invalid_message(error: Refusal) -> str:
    """What a page says about input the read model refused, naming the fields."""
    violations = getattr(error, "violations", [])
    if any(field == "pageToken" for field, _ in violations):
        return "That page link belongs to other filters; start again from the first page."
    return "; ".join(f"{field}: {description}" for field, description in violations) or (
        error.message
    )


async def _error_page(
    request: Request, status: int, title: str, message: str, *, with_session: bool = True
) -> Response:
    context: dict[str, Any] = {"title": title, "message": message}
    if not with_session:
        context["session"] = None
    return dashboard_of(request).render(request, "error.html", status, **context)


async def http_error(request: Request, error: Exception) -> Response:
    """A page for a refused request (404, 405, 403...)."""
    assert isinstance(error, HTTPException)
    titles = {404: "Not found", 405: "Not allowed", 403: "Refused", 413: "Too large"}
    response = await _error_page(
        request, error.status_code, titles.get(error.status_code, "Refused"), str(error.detail)
    )
    if error.headers:
        response.headers.update(error.headers)
    return response


async def retrieval_error(request: Request, error: Exception) -> Response:
    """A page for a read the read model's handler refused or could not finish."""
    assert isinstance(error, Refusal)
    if isinstance(error, NotFound):
        return await _error_page(request, 404, "Not found", error.message)
    if isinstance(error, DeadlineExceeded):
        return await _error_page(request, 504, "Too slow", error.message)
    if isinstance(error, DatabaseUnavailable):
        return await _error_page(request, 503, "Database unavailable", error.message)
    return await _error_page(request, 400, "Bad request", invalid_message(error))


async def server_error(request: Request, error: Exception) -> Response:
    """A page for a failure nobody expected; the details go to the log only.

    It shows no session (no navigation, no logout form with its CSRF token): an error page is
    the one most likely to be kept, in a bug report or a screenshot, and needs neither.
    """
    log.exception("request failed", path=request.url.path)
    return await _error_page(
        request,
        500,
        "Something went wrong",
        "The error was logged; please try again later.",
        with_session=False,
    )
