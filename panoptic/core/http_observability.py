"""One summary ("canonical") log line and the HTTP request metrics per request, for every HTTP
service: the counterpart of the gRPC bootstrap's `ObservabilityInterceptor`.

The metrics (`http_requests_total`, `http_request_duration_seconds`) are labelled by a route
label the service names (the matched Starlette route's template by default), never by the raw
path, so that the number of series stays bounded whatever clients send. The middleware is pure
ASGI: no task and no buffering per request, one wrapper around `send` to learn the status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.stdlib import BoundLogger

from panoptic.core.metrics import HTTP_DURATION, HTTP_REQUESTS

UNMATCHED = "unmatched"
"""The route label of a request no route took."""
MAX_LOGGED_PATH = 200

RouteOf = Callable[[Scope], str]
"""The route label of a request, read from its scope once it has been answered."""
Finish = Callable[[Scope, float], Mapping[str, object]]
"""A service's own accounting of an answered request (scope, seconds it took); returns the
fields it adds to the log line."""


def route_template(scope: Scope) -> str:
    """The template of the Starlette route that took the request (`/claims/{claim_id}`)."""
    route = scope.get("route")
    if isinstance(route, Route | Mount):
        return route.path
    return UNMATCHED


def client_address(scope: Scope) -> str:
    """The client's IP address (the proxy's, unless uvicorn trusts it), or `unknown`."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _no_fields(scope: Scope, elapsed: float) -> Mapping[str, object]:
    return {}


class ObservabilityMiddleware:
    """Counts and times every HTTP request by route, method and status, and logs it once.

    The line carries the method, the path (clipped), the route label, the status, the duration
    and the client, and whatever the service's `finish` adds (a request id, a user). A request
    whose handler raised before answering counts as a 500, as the server's error page answers it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        log: BoundLogger,
        event: str = "http",
        route_of: RouteOf = route_template,
        finish: Finish = _no_fields,
    ) -> None:
        self.app = app
        self.log = log
        self.event = event
        self.route_of = route_of
        self.finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = self.route_of(scope)
        method = scope["method"]
        HTTP_REQUESTS.labels(route, method, str(status)).inc()
        HTTP_DURATION.labels(route).observe(elapsed)
        self.log.info(
            self.event,
            method=method,
            path=scope["path"][:MAX_LOGGED_PATH],
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            client=client_address(scope),
            **self.finish(scope, elapsed),
        )


__all__ = [
    "UNMATCHED",
    "ObservabilityMiddleware",
    "client_address",
    "route_template",
]
