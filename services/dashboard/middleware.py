"""The dashboard's edge: security headers on every response and the login gate; its metrics and
log line per request are core's (`panoptic.core.http_observability`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.dashboard.auth import SESSION_COOKIE
from services.dashboard.state import Dashboard, url_with

# Paths served without a session: the login page, probes and the stylesheet and script.
PUBLIC_PATHS: Final = frozenset({"/login", "/healthz", "/readyz"})
PUBLIC_PREFIXES: Final = ("/static/",)

# On every response, whatever its status: no page, error or file may be framed, sniffed,
# stored by a cache, or load anything from elsewhere.
_SECURITY_HEADERS: Final = (
    (b"cache-control", b"no-store"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        b" connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_SECURITY_HEADER_NAMES: Final = frozenset(name for name, _ in _SECURITY_HEADERS)


class SecurityHeadersMiddleware:
    """The security headers on every response, in place of any the app set.

    It wraps the whole app, outside Starlette's ServerErrorMiddleware (which sits outside every
    user middleware): the 500 page that middleware sends gets them as much as any page.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in _SECURITY_HEADER_NAMES
                ]
                message["headers"] = [*headers, *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LoginGate:
    """Login for every page: public paths go through, any other without a session is sent to
    the login page."""

    def __init__(self, app: ASGIApp, dashboard: Dashboard) -> None:
        self.app = app
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._gate(scope, receive, send)

    async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Public paths go through; any other without a valid session goes to the login page."""
        path: str = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        session = self.dashboard.sessions.open(request.cookies.get(SESSION_COOKIE))
        if session is None:
            query = scope["query_string"].decode()
            target = path + ("?" + query if query else "")
            response = RedirectResponse(
                url_with({"next": target} if target != "/" else {}, "/login"), 303
            )
            if SESSION_COOKIE in request.cookies:  # expired or ended: drop the stale cookie
                response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["session"] = session
        await self.app(scope, receive, send)


def route_of(scope: Scope) -> str:
    """The matched route's template, so metrics never carry a raw path."""
    route = scope.get("route")
    if isinstance(route, Route | Mount):
        return route.path
    return "unmatched" if scope["path"] not in PUBLIC_PATHS else scope["path"]


def user_of(scope: Scope, elapsed: float) -> Mapping[str, object]:
    """The signed-in operator, for the request's log line."""
    session = scope.get("state", {}).get("session")
    return {"user": session.user if session else None}
