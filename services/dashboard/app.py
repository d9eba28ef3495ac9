"""The dashboard's ASGI application: login, the pages, and the middleware around them.

Every page is a GET that reads; the only POSTs are login and logout. The outermost middleware
gives every response its security headers, error pages included; an edge middleware gives each
request metrics and one summary log line, and sends any request without a valid session to the
login page. Claims, actors, topics, search, revisions and
timelines are read through the retriever's handler (its SQL, its keyset page tokens); the
overview and the database health through `services.dashboard.queries`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlencode

import asyncpg
import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from panoptic.core import timestamps
from panoptic.core.logging import get_logger
from panoptic.core.metrics import HTTP_DURATION, HTTP_REQUESTS
from panoptic.reads import queries as reads
from panoptic.reads.domain import (
    ClaimListing,
    ClaimSearch,
    DatabaseUnavailable,
    DeadlineExceeded,
    Interval,
    NotFound,
    PageRequest,
    RetrievalError,
    TimelineRequest,
)
from panoptic.reads.handler import RetrieverHandler
from panoptic.reads.paging import PageTokenCodec
from panoptic.reads.queries import ClaimFilters, TimelineBucket
from services.dashboard import metrics, queries
from services.dashboard.auth import (
    DEVICE_COOKIE,
    DEVICE_SECONDS,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Credentials,
    LoginClient,
    LoginThrottle,
    Session,
    SessionCodec,
    retry_after_header,
    safe_next,
    same_token,
)
from services.dashboard.charts import Bar, bar_chart
from services.dashboard.formatting import FILTERS
from services.dashboard.revisions import claim_diff, history_diffs

log = get_logger("panoptic.dashboard")

HERE: Final = Path(__file__).resolve().parent
# Paths served without a session: the login page, probes and the stylesheet and script.
PUBLIC_PATHS: Final = frozenset({"/login", "/healthz", "/readyz"})
PUBLIC_PREFIXES: Final = ("/static/",)
CLAIMS_PER_PAGE: Final = 25
ACTORS_PER_PAGE: Final = 50
TOPICS_PER_PAGE: Final = 50
MAX_REVISIONS: Final = 1000
TIMELINE_TOPICS: Final = 6
OVERVIEW_DAYS: Final = (1, 7, 14, 30)
MAX_FORM_BYTES: Final = 4096
LANGUAGE_MAX_CHARS: Final = 35
QUERY_MAX_CHARS: Final = 500

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
    """The app's collaborators: the pool, the retriever's handler, sessions and templates."""

    def __init__(self, config: DashboardConfig, pool: Callable[[], asyncpg.Pool]) -> None:
        self.config = config
        self.pool = pool
        # Page tokens are signed with a key of their own, derived from the session secret.
        token_key = hmac.digest(config.session_secret.encode(), b"page-tokens", hashlib.sha256)
        self.reads = RetrieverHandler(
            pool, PageTokenCodec(token_key), statement_timeout=config.statement_timeout
        )
        self.sessions = SessionCodec(
            config.session_secret, config.credentials, config.session_seconds
        )
        self.throttle = LoginThrottle(config.login_failures_per_minute)
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
        try:
            async with reads.reading(self.pool(), self.config.statement_timeout) as connection:
                yield connection
        except (asyncpg.QueryCanceledError, TimeoutError):
            raise DeadlineExceeded() from None
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
            raise DatabaseUnavailable() from None


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


# --- the edge: headers, metrics, log line, and the login gate ------------------------------------


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


class EdgeMiddleware:
    """Metrics and a log line for every request; login for every page."""

    def __init__(self, app: ASGIApp, dashboard: Dashboard) -> None:
        self.app = app
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        status = 500  # unless a response starts: the exception goes on to the 500 page

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                HTTP_DURATION.labels(_route_of(scope)).observe(time.perf_counter() - started)
            await send(message)

        try:
            if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
                await self.app(scope, receive, send_observed)
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
                    response.delete_cookie(
                        SESSION_COOKIE, path="/", httponly=True, samesite="strict"
                    )
                await response(scope, receive, send_observed)
                return
            scope.setdefault("state", {})["session"] = session
            await self.app(scope, receive, send_observed)
        finally:
            route = _route_of(scope)
            HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            session = scope.get("state", {}).get("session")
            log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                user=session.user if session else None,
                client=(scope.get("client") or ("", 0))[0],
            )


def _route_of(scope: Scope) -> str:
    """The matched route's template, so metrics never carry a raw path."""
    route = scope.get("route")
    if isinstance(route, Route | Mount):
        return route.path
    return "unmatched" if scope["path"] not in PUBLIC_PATHS else scope["path"]


# --- login and logout ----------------------------------------------------------------------------


def _client(request: Request) -> str:
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
        httponly=True,
        samesite="strict",
        secure=dashboard.config.secure_cookie,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def login_form(request: Request) -> Response:
    """The login page; a visitor with a session goes straight on."""
    dashboard: Dashboard = request.app.state.dashboard
    next_path = safe_next(request.query_params.get("next"))
    if dashboard.sessions.open(request.cookies.get(SESSION_COOKIE)) is not None:
        return RedirectResponse(next_path, 303)
    return _login_page(dashboard, request, next_path=next_path)


async def login(request: Request) -> Response:
    """Checks the credentials; on success sets the session cookie and goes where asked.

    A user and client that failed several times wait a few seconds before their next attempt
    (429 until then, the password unchecked); no other client waits for them.
    """
    dashboard: Dashboard = request.app.state.dashboard
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
            httponly=True,
            samesite="strict",
            secure=dashboard.config.secure_cookie,
        )
    response.delete_cookie(
        LOGIN_CSRF_COOKIE,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=dashboard.config.secure_cookie,
    )
    return response


async def logout(request: Request) -> Response:
    """Ends the session (its cookie is refused from now on) and returns to the login page."""
    dashboard: Dashboard = request.app.state.dashboard
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
        httponly=True,
        samesite="strict",
        secure=dashboard.config.secure_cookie,
    )
    return response


# --- probes --------------------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    """Readiness: the database answers on the dashboard's role."""
    dashboard: Dashboard = request.app.state.dashboard
    try:
        async with dashboard.pool().acquire(timeout=2) as connection:
            await connection.fetchval("SELECT 1", timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, RuntimeError):
        return PlainTextResponse("database unavailable\n", 503)
    return PlainTextResponse("ok\n")


# --- overview ------------------------------------------------------------------------------------


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
    dashboard: Dashboard = request.app.state.dashboard
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


# --- claims --------------------------------------------------------------------------------------


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


async def _names(dashboard: Dashboard, actor_ids: set[str], topic_ids: set[str]) -> queries.Names:
    async with dashboard.reading() as connection:
        return await queries.names(connection, actor_ids, topic_ids)


async def claims_page(request: Request) -> Response:
    """Claims by filters or full-text search, a keyset page at a time."""
    dashboard: Dashboard = request.app.state.dashboard
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
    except RetrievalError as error:
        if isinstance(error, DeadlineExceeded | DatabaseUnavailable):
            raise
        context["errors"].append(_invalid_message(error))
        return dashboard.render(request, "claims.html", 400, **context)
    context["names"] = await _names(
        dashboard,
        {row.actor_id for row in rows},
        {topic for row in rows for topic in row.topic_ids},
    )
    return dashboard.render(request, "claims.html", **context)


def _invalid_message(error: RetrievalError) -> str:
    violations = getattr(error, "violations", [])
    if any(field == "pageToken" for field, _ in violations):
        return "That page link belongs to other filters; start again from the first page."
    return "; ".join(f"{field}: {description}" for field, description in violations) or (
        error.message
    )


async def claim_page(request: Request) -> Response:
    """One claim: its current state, source, topics and full history with diffs."""
    dashboard: Dashboard = request.app.state.dashboard
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
    names = await _names(
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


# --- actors --------------------------------------------------------------------------------------


async def actors_page(request: Request) -> Response:
    """Actors by id, or by how well their names match a query (typos and partial names too)."""
    dashboard: Dashboard = request.app.state.dashboard
    text = request.query_params.get("q", "").strip()[:QUERY_MAX_CHARS]
    token = request.query_params.get("page", "")
    errors: list[str] = []
    try:
        page = await dashboard.reads.list_actors(
            text or None, PageRequest(ACTORS_PER_PAGE, token), None
        )
        actors, next_token = page.items, page.next_page_token
    except RetrievalError as error:
        if isinstance(error, DeadlineExceeded | DatabaseUnavailable):
            raise
        errors.append(_invalid_message(error))
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


_LABEL_FORMATS: Final = {
    Interval.DAY: "%Y-%m-%d",
    Interval.WEEK: "%Y-%m-%d",
    Interval.MONTH: "%Y-%m",
    Interval.YEAR: "%Y",
}
MAX_TIMELINE_BUCKETS: Final = 400


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


async def actor_page(request: Request) -> Response:
    """An actor: details, timeline (all topics, then per topic), and its claims."""
    dashboard: Dashboard = request.app.state.dashboard
    actor_id = request.path_params["actor_id"]
    actor = await dashboard.reads.get_actor(actor_id, None)
    interval = _interval(request.query_params.get("interval"))
    topic_id = request.query_params.get("topic", "").strip() or None
    token = request.query_params.get("page", "")
    async with dashboard.reading() as connection:
        topics = await queries.actor_topics(connection, actor_id, 50)

    def timeline(topic: str | None) -> Awaitable[list[TimelineBucket]]:
        return dashboard.reads.actor_timeline(
            TimelineRequest(actor_id, interval, topic, None, None, sample_size=1), None
        )

    overall = await timeline(None)
    charts: list[tuple[str, str | None, Markup]] = []
    if overall:
        first, last = overall[0].start_time, overall[-1].start_time
        charts.append(
            (
                "All topics",
                None,
                bar_chart(
                    timeline_bars(overall, interval, first, last),
                    title=f"Claims by {actor.display_name} per {interval.value}, all topics",
                    series=("claims",),
                ),
            )
        )
        shown = [topic for topic in topics if topic.topic_id == topic_id] or topics
        for share in shown[:TIMELINE_TOPICS]:
            buckets = await timeline(share.topic_id)
            charts.append(
                (
                    share.display_name,
                    share.topic_id,
                    bar_chart(
                        timeline_bars(buckets, interval, first, last),
                        title=(
                            f"Claims by {actor.display_name} on {share.display_name}"
                            f" per {interval.value}"
                        ),
                        series=("claims",),
                        height=120,
                    ),
                )
            )
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
    names = await _names(dashboard, set(), {t for c in listing.items for t in c.topic_ids})
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


# --- topics --------------------------------------------------------------------------------------


async def topics_page(request: Request) -> Response:
    """Topics by id, or those whose id or name contains a query."""
    dashboard: Dashboard = request.app.state.dashboard
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
        except RetrievalError as error:
            if isinstance(error, DeadlineExceeded | DatabaseUnavailable):
                raise
            errors.append(_invalid_message(error))
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
    dashboard: Dashboard = request.app.state.dashboard
    topic_id = request.path_params["topic_id"]
    topic = await dashboard.reads.get_topic(topic_id, None)
    children = await dashboard.reads.list_topics(topic_id, PageRequest(200), None)
    parent = await dashboard.reads.get_topic(topic.parent_id, None) if topic.parent_id else None
    token = request.query_params.get("page", "")
    listing = await dashboard.reads.list_claims(
        ClaimListing(ClaimFilters(topic_id=topic_id), True, PageRequest(CLAIMS_PER_PAGE, token)),
        None,
    )
    names = await _names(
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


# --- database health -----------------------------------------------------------------------------


async def database_page(request: Request) -> Response:
    """Sizes, row estimates, dead tuples, maintenance, cache, connections, slow statements."""
    dashboard: Dashboard = request.app.state.dashboard
    statement_order = request.query_params.get("statements", "mean")
    if statement_order not in queries.STATEMENT_ORDERS:
        statement_order = "mean"
    async with dashboard.reading() as connection:
        server = await queries.server_info(connection)
        tables = await queries.table_health(connection)
        indexes = await queries.index_health(connection)
        sessions = await queries.connections(connection)
        statements = await queries.slowest_statements(connection, 15, statement_order)
    return dashboard.render(
        request,
        "database.html",
        section="database",
        server=server,
        tables=tables,
        indexes=indexes,
        sessions=sessions,
        statements=statements,
        statement_order=statement_order,
        now=datetime.now(UTC),
    )


# --- errors --------------------------------------------------------------------------------------


async def _error_page(
    request: Request, status: int, title: str, message: str, *, with_session: bool = True
) -> Response:
    dashboard: Dashboard = request.app.state.dashboard
    context: dict[str, Any] = {"title": title, "message": message}
    if not with_session:
        context["session"] = None
    return dashboard.render(request, "error.html", status, **context)


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
    """A page for a read the retriever's handler refused or could not finish."""
    assert isinstance(error, RetrievalError)
    if isinstance(error, NotFound):
        return await _error_page(request, 404, "Not found", error.message)
    if isinstance(error, DeadlineExceeded):
        return await _error_page(request, 504, "Too slow", error.message)
    if isinstance(error, DatabaseUnavailable):
        return await _error_page(request, 503, "Database unavailable", error.message)
    return await _error_page(request, 400, "Bad request", _invalid_message(error))


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


# --- assembly ------------------------------------------------------------------------------------


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
        middleware=[Middleware(EdgeMiddleware, dashboard=dashboard)],
        exception_handlers={
            HTTPException: http_error,
            RetrievalError: retrieval_error,
            Exception: server_error,
        },
    )
    app.state.dashboard = dashboard
    return app
