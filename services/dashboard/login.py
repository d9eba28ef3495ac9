"""The login and logout pages: the login form with its CSRF cookie, the credentials check behind
the throttle, and the session and device cookies set after a login (`auth` holds the mechanisms).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from panoptic.core.logging import get_logger
from services.dashboard import metrics
from services.dashboard.auth import (
    DEVICE_COOKIE,
    DEVICE_SECONDS,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    LoginClient,
    retry_after_header,
    safe_next,
    same_token,
)
from services.dashboard.state import Dashboard, dashboard_of, session_of

log = get_logger("panoptic.dashboard")

MAX_FORM_BYTES: Final = 4096


def _client(request: Request) -> str:
    """The address the request came from, for the throttle and the log."""
    return request.client.host if request.client else "unknown"


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form body (the only kind the login and logout forms send)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        raise HTTPException(415, "forms are sent as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "the form is too large")
    fields = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def _same_origin(request: Request) -> bool:
    """Whether a form post comes from this site (browsers send Origin on POST)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _login_page(
    dashboard: Dashboard,
    request: Request,
    *,
    status_code: int = 200,
    error: str = "",
    next_path: str = "/",
    headers: Mapping[str, str] | None = None,
) -> Response:
    token, cookie = dashboard.sessions.login_token()
    response = dashboard.render(
        request,
        "login.html",
        status_code,
        session=None,
        csrf_token=token,
        error=error,
        next_path=next_path,
        logged_out="logged_out" in request.query_params,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        cookie,
        max_age=3600,
        path="/login",
        **_cookie_flags(dashboard),
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def login_form(request: Request) -> Response:
    """The login page; a visitor with a session goes straight on."""
    dashboard = dashboard_of(request)
    next_path = safe_next(request.query_params.get("next"))
    if dashboard.sessions.open(request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse(next_path, 303)
    return _login_page(dashboard, request, next_path=next_path)


async def login(request: Request) -> Response:
    """Checks the credentials; on success sets the session cookie and goes where asked.

    A user and client that failed several times wait a few seconds before their next attempt
    (429 until then, the password unchecked); no other client waits for them.
    """
    dashboard = dashboard_of(request)
    form = await _form(request)
    next_path = safe_next(form.get("next"))
    user = form.get("user", "")
    device = dashboard.sessions.device_of(request.cookies.get(DEVICE_COOKIE), user)
    client = LoginClient.of(device, _client(request))
    wait = dashboard.throttle.retry_after(user, client)
    if wait:
        metrics.LOGINS.labels("throttled").inc()
        log.warning("login throttled", client=_client(request), retry_after=round(wait, 2))
        seconds = retry_after_header(wait)
        return _login_page(
            dashboard,
            request,
            status_code=429,
            error=f"Too many failed attempts. Try again in {seconds} s.",
            next_path=next_path,
            headers={"retry-after": seconds},
        )
    csrf_ok = dashboard.sessions.check_login_token(
        request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token", "")
    )
    if not csrf_ok or not _same_origin(request):
        metrics.LOGINS.labels("refused").inc()
        return _login_page(
            dashboard,
            request,
            status_code=403,
            error="The form had expired. Please sign in again.",
            next_path=next_path,
        )
    if not dashboard.config.credentials.check(user, form.get("password", "")):
        dashboard.throttle.failed(user, client)
        metrics.LOGINS.labels("wrong").inc()
        log.warning("login refused", client=_client(request))
        return _login_page(
            dashboard,
            request,
            status_code=401,
            error="Wrong user name or password.",
            next_path=next_path,
        )
    dashboard.throttle.succeeded(user, client)
    metrics.LOGINS.labels("ok").inc()
    log.info("login", user=user, client=_client(request))
    return _logged_in(dashboard, user, next_path)


def _cookie_flags(dashboard: Dashboard) -> dict[str, Any]:
    """What every cookie of the dashboard's carries: hidden from scripts, sent to this site
    alone, and only over HTTPS where the dashboard is configured so."""
    return {"httponly": True, "samesite": "strict", "secure": dashboard.config.secure_cookie}


def _logged_in(dashboard: Dashboard, user: str, next_path: str) -> Response:
    """The redirect after a login: a new session, and this browser known as one that logged in
    (the throttle spares it others' failures)."""
    _, cookie = dashboard.sessions.issue(user)
    response = RedirectResponse(next_path, 303)
    cookies = (
        (SESSION_COOKIE, cookie, dashboard.config.session_seconds, "/"),
        (DEVICE_COOKIE, dashboard.sessions.device_cookie(user), DEVICE_SECONDS, "/login"),
    )
    for name, value, seconds, path in cookies:
        response.set_cookie(
            name,
            value,
            max_age=max(1, int(seconds)),
            path=path,
            **_cookie_flags(dashboard),
        )
    response.delete_cookie(
        LOGIN_CSRF_COOKIE,
        path="/login",
        **_cookie_flags(dashboard),
    )
    return response


async def logout(request: Request) -> Response:
    """Ends the session (its cookie is refused from now on) and returns to the login page."""
    dashboard = dashboard_of(request)
    session = session_of(request)
    assert session is not None  # the edge middleware lets no request without one through
    form = await _form(request)
    if not same_token(session.csrf_token, form.get("csrf_token", "")) or not _same_origin(request):
        raise HTTPException(403, "the logout form is not from this session")
    dashboard.sessions.revoke(session)
    log.info("logout", user=session.user)
    response = RedirectResponse("/login?logged_out=1", 303)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        **_cookie_flags(dashboard),
    )
    return response
