"""What every page of the dashboard reaches through `request.app.state.dashboard`: the pool, the
read model's handler, sessions, the login throttle and the templates, and rendering with them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import asyncpg
import jinja2
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from panoptic.core.db import database_refusals
from panoptic.core.replicas import ReadRouter
from panoptic.reads import queries as reads
from panoptic.reads.handler import RetrieverHandler
from panoptic.reads.paging import PageTokenCodec
from services.dashboard.auth import Credentials, LoginThrottle, Session, SessionCodec
from services.dashboard.formatting import FILTERS

HERE: Final = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DashboardConfig:
    """What the app needs from the settings, resolved once at start."""

    credentials: Credentials
    session_secret: str
    session_seconds: float
    login_failures_per_minute: int
    secure_cookie: bool
    statement_timeout: float
    not_indexed_minutes: float


class Dashboard:
    """The app's collaborators: the pool, the read model's handler, sessions and templates.

    `session_clock` (wall time: session cookies carry wall-clock stamps) and `throttle_clock`
    are the real clocks unless a test hands it clocks it moves by hand.
    """

    def __init__(
        self,
        config: DashboardConfig,
        pool: Callable[[], asyncpg.Pool],
        *,
        reads: Callable[[], ReadRouter] | None = None,
        session_clock: Callable[[], float] = time.time,
        throttle_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.pool = pool
        # The claim pages read where the read model's router sends them (replicas, if any); the
        # dashboard's own pages (database, batches) read the primary.
        primary_only = ReadRouter.primary_only(pool)
        self.routing = reads or (lambda: primary_only)
        # Page tokens are signed with a key of their own, derived from the session secret.
        token_key = hmac.digest(config.session_secret.encode(), b"page-tokens", hashlib.sha256)
        self.reads = RetrieverHandler(
            self.routing, PageTokenCodec(token_key), statement_timeout=config.statement_timeout
        )
        self.sessions = SessionCodec(
            config.session_secret, config.credentials, config.session_seconds, session_clock
        )
        self.throttle = LoginThrottle(config.login_failures_per_minute, throttle_clock)
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        environment.filters.update(FILTERS)
        environment.globals["url_with"] = url_with
        self.templates = Jinja2Templates(env=environment)

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> Response:
        """A page from `template`, with the session and navigation the layout needs."""
        context.setdefault("session", session_of(request))
        context.setdefault("section", "")
        return self.templates.TemplateResponse(request, template, context, status_code)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[asyncpg.Connection]:
        """A read-only transaction for the dashboard's own queries, bounded in time."""
        with database_refusals:
            async with reads.reading(self.pool(), self.config.statement_timeout) as connection:
                yield connection


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard serving `request`."""
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def session_of(request: Request) -> Session | None:
    """The request's session, set by the edge middleware (None on public pages)."""
    session: Session | None = request.scope.get("state", {}).get("session")
    return session


def url_with(params: QueryParams | Mapping[str, str], path: str, **changes: object) -> str:
    """`path` with the current query parameters, some changed or removed (None or "")."""
    merged = {key: value for key, value in params.items() if value}
    for key, value in changes.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return path + ("?" + urlencode(merged) if merged else "")
