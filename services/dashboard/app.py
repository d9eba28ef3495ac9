"""The dashboard's ASGI application: the routes table, the middleware and the error pages.

Every page is a GET that reads; the only POSTs are login and logout. The outermost middleware
gives every response its security headers, error pages included; an edge middleware gives each
request metrics and one summary log line, and sends any request without a valid session to the
login page (`middleware`). The pages live one module per group under `pages/`, the login in
`login`; all of them reach the pool, the read model and the templates through the `Dashboard`
(`state`). Claims, actors, topics, search, revisions and timelines are read through the shared
read model (`panoptic.reads`: its SQL, its keyset page tokens); the overview and the database
health through `services.dashboard.queries`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from panoptic.core.http_observability import ObservabilityMiddleware
from panoptic.core.logging import get_logger
from panoptic.core.refusals import Refusal
from services.dashboard.errors import http_error, retrieval_error, server_error
from services.dashboard.login import login, login_form, logout
from services.dashboard.middleware import (
    LoginGate,
    SecurityHeadersMiddleware,
    route_of,
    user_of,
)
from services.dashboard.pages.actors import actor_page, actors_page
from services.dashboard.pages.claims import claim_page, claims_page
from services.dashboard.pages.database import database_page
from services.dashboard.pages.overview import overview
from services.dashboard.pages.topics import topic_page, topics_page
from services.dashboard.probes import healthz, readyz
from services.dashboard.state import HERE, Dashboard, DashboardConfig

log = get_logger("panoptic.dashboard")

__all__ = ["Dashboard", "DashboardConfig", "build_app", "routes"]


def routes() -> list[BaseRoute]:
    """Every route: GET pages, and POST only for login and logout."""
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/", overview, methods=["GET"]),
        Route("/claims", claims_page, methods=["GET"]),
        Route("/claims/{claim_id}", claim_page, methods=["GET"]),
        Route("/actors", actors_page, methods=["GET"]),
        Route("/actors/{actor_id}", actor_page, methods=["GET"]),
        Route("/topics", topics_page, methods=["GET"]),
        Route("/topics/{topic_id}", topic_page, methods=["GET"]),
        Route("/database", database_page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


class DashboardApp(Starlette):
    """Starlette with the security headers outside its own outermost middleware."""

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack (its 500 page outermost), wrapped in the security headers."""
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def build_app(dashboard: Dashboard) -> Starlette:
    """The dashboard as an ASGI app."""
    app = DashboardApp(
        routes=routes(),
        middleware=[
            Middleware(
                ObservabilityMiddleware, log=log, event="request", route_of=route_of, finish=user_of
            ),
            Middleware(LoginGate, dashboard=dashboard),
        ],
        exception_handlers={
            HTTPException: http_error,
            Refusal: retrieval_error,
            Exception: server_error,
        },
    )
    app.state.dashboard = dashboard
    return app
