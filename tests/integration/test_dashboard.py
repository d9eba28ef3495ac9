"""The dashboard over HTTP: a real `panoptic dashboard` process on the session's database.

Login, sessions, rate limiting and CSRF; every page with data; nothing that can write, neither
through HTTP nor through its database role; its metrics.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from panoptic.core.db import SERVICE_ROLES, DatabaseUrl
from panoptic.suite import migrate
from tests.support.dashboard import (
    PASSWORD,
    USER,
    ManualClock,
    another_dashboard,
    csrf_token_of,
    dashboard_env,
    dashboard_in_process,
    dashboard_url,
    load_dashboard_data,
    log_in,
    login_form_token,
    running_dashboard,
)
from tests.support.gateway import GatewayCorpus
from tests.support.processes import ROOT, run_panoptic, service_env
from tests.support.roles import execute_read_write

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def corpus(database_url: DatabaseUrl) -> GatewayCorpus:
    """Six hand-made claims (two revised), some demo claims and two refused batches."""
    return await load_dashboard_data(database_url, demo_claims=300)


@pytest.fixture(scope="module")
def env(
    corpus: GatewayCorpus, database_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Settings for this module's dashboard: a test login, free ports, a lenient login limit
    (the tests of wrong passwords must not lock the others out), sessions of 90 minutes."""
    return dashboard_env(
        service_env(database_url.value, tmp_path_factory.mktemp("data")),
        PANOPTIC_DASHBOARD_LOGIN_FAILURES_PER_MINUTE="100",
        PANOPTIC_DASHBOARD_SESSION_MINUTES="90",
    )


@pytest.fixture(scope="module")
def base_url(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The module's running dashboard."""
    with running_dashboard(env, tmp_path_factory.mktemp("logs") / "dashboard.log"):
        yield dashboard_url(env)


@pytest.fixture
def anonymous(base_url: str) -> Iterator[httpx.Client]:
    """A client without a session that does not follow redirects."""
    with httpx.Client(base_url=base_url, timeout=10, follow_redirects=False) as client:
        yield client


@pytest.fixture
def operator(base_url: str) -> Iterator[httpx.Client]:
    """A client that has logged in."""
    with httpx.Client(base_url=base_url, timeout=10, follow_redirects=False) as client:
        assert log_in(client).status_code == 303
        yield client


def pages(corpus: GatewayCorpus) -> list[str]:
    """One URL of every page, with data behind each."""
    return [
        "/",
        "/?days=1",
        "/claims",
        "/claims?q=wind",
        f"/claims?actor={corpus.ann}&topic={corpus.energy}&state=all&order=asc",
        "/claims?from=2024-02-01&to=2024-04-30&language=en",
        f"/claims/{corpus.claim(5)}",
        f"/claims/{corpus.claim(5)}?from=1&to=2",
        "/actors",
        "/actors?q=anabel+quixotc",
        f"/actors/{corpus.ann}",
        f"/actors/{corpus.ann}?interval=year&topic={corpus.wind}",
        "/topics",
        "/topics?q=ener",
        f"/topics/{corpus.energy}",
        "/database",
        "/database?statements=total",
    ]


# --- no session ----------------------------------------------------------------------------------


def test_every_page_redirects_to_login_without_a_session(
    anonymous: httpx.Client, corpus: GatewayCorpus
) -> None:
    """Without a session each page, and any unknown path, answers 303 to the login page."""
    for path in [*pages(corpus), "/no/such/page", "/claims/nope"]:
        response = anonymous.get(path)
        assert response.status_code == 303, path
        location = response.headers["location"]
        assert location.startswith("/login"), path
        if path != "/":
            assert httpx.URL(location).params["next"] == path


def test_a_forged_or_foreign_cookie_is_no_session(anonymous: httpx.Client) -> None:
    """A cookie not signed with the dashboard's secret is refused and cleared."""
    anonymous.cookies.set("panoptic_session", "eyJ1IjoiYWRtaW4ifQ.forged.signature")
    response = anonymous.get("/claims")
    assert response.status_code == 303
    assert 'panoptic_session=""' in response.headers["set-cookie"]


def test_probes_and_static_files_need_no_session(anonymous: httpx.Client) -> None:
    """Liveness, readiness, the stylesheet and the script are served to anyone, locally."""
    assert anonymous.get("/healthz").text == "ok\n"
    assert anonymous.get("/readyz").text == "ok\n"
    css = anonymous.get("/static/dashboard.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    script = anonymous.get("/static/dashboard.js")
    assert script.status_code == 200
    for asset in (css.text, script.text):
        assert "http://" not in asset
        assert "https://" not in asset


# --- login ---------------------------------------------------------------------------------------


def test_login_sets_a_strict_http_only_session_and_returns_where_asked(
    anonymous: httpx.Client,
) -> None:
    """The right credentials give an HttpOnly, SameSite=Strict session cookie expiring after the
    configured session time, and a redirect to the page first asked for."""
    response = log_in(anonymous, next_path="/claims?q=wind")
    assert response.status_code == 303
    assert response.headers["location"] == "/claims?q=wind"
    cookie = next(
        header
        for header in response.headers.get_list("set-cookie")
        if header.startswith("panoptic_session=")
    )
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "max-age", "path"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert "max-age=5400" in cookie.lower()
    assert anonymous.get("/claims?q=wind").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_the_site(anonymous: httpx.Client, target: str) -> None:
    """A `next` naming another site sends the operator to the overview instead."""
    response = log_in(anonymous, next_path=target)
    assert response.headers["location"] == "/"


def test_a_wrong_password_is_refused(anonymous: httpx.Client) -> None:
    """A wrong password (or user) answers 401 with a message and no session cookie."""
    for user, password in [(USER, "wrong"), ("admin", PASSWORD), ("", "")]:
        response = log_in(anonymous, user=user, password=password)
        assert response.status_code == 401
        assert "Wrong user name or password" in response.text
        assert "panoptic_session=" not in response.headers.get("set-cookie", "")
    assert anonymous.get("/").status_code == 303


def test_a_login_without_its_form_token_or_from_another_origin_is_refused(
    anonymous: httpx.Client,
) -> None:
    """Login needs the CSRF token of a login form this site served, posted from this site."""
    data = {"user": USER, "password": PASSWORD, "next": "/"}
    assert anonymous.post("/login", data=data).status_code == 403
    token = login_form_token(anonymous)
    assert anonymous.post("/login", data={**data, "csrf_token": "x" + token}).status_code == 403
    foreign = anonymous.post(
        "/login", data={**data, "csrf_token": token}, headers={"origin": "https://evil.example"}
    )
    assert foreign.status_code == 403


def test_failed_logins_slow_that_client_down_without_locking_anyone_out(
    database_url: DatabaseUrl, corpus: GatewayCorpus
) -> None:
    """After the allowed failures a client waits a few seconds (429 with Retry-After) before its
    next attempt, then gets in with the right password; meanwhile the right password from
    another address, or from a browser at the same address that has logged in before, or
    another user's from the failing address, is accepted at once."""
    clock = ManualClock()
    other_address = httpx.HTTPTransport(local_address="127.0.0.2")
    with (
        dashboard_in_process(database_url, clock, login_failures_per_minute=3) as url,
        httpx.Client(base_url=url, timeout=10) as guesser,
        httpx.Client(base_url=url, timeout=10) as operator_browser,
        httpx.Client(base_url=url, timeout=10, transport=other_address) as elsewhere,
    ):
        assert log_in(operator_browser).status_code == 303  # a browser that has logged in
        operator_browser.cookies.delete("panoptic_session")  # and whose session has ended
        for _ in range(6):
            assert log_in(guesser, password="guess").status_code in (401, 429)
        refused = log_in(guesser)
        assert refused.status_code == 429
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 5
        assert "Too many failed attempts" in refused.text
        assert guesser.get("/", follow_redirects=False).status_code == 303
        assert log_in(elsewhere).status_code == 303
        assert log_in(operator_browser).status_code == 303
        assert log_in(guesser, user="another-user").status_code == 401
        clock.now += wait - 0.5  # steps of half a second add up exactly, to the very instant
        assert log_in(guesser).status_code == 429
        clock.now += 0.5
        assert log_in(guesser).status_code == 303


# --- sessions ------------------------------------------------------------------------------------


def test_logout_ends_the_session_even_for_a_kept_copy_of_the_cookie(
    operator: httpx.Client,
) -> None:
    """Logout needs the session's CSRF token; afterwards the old cookie no longer works."""
    page = operator.get("/")
    kept = operator.cookies["panoptic_session"]
    assert operator.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    response = operator.post("/logout", data={"csrf_token": csrf_token_of(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?logged_out=1"
    assert operator.get("/").status_code == 303
    operator.cookies.set("panoptic_session", kept)
    assert operator.get("/").status_code == 303


def test_sessions_expire(database_url: DatabaseUrl, corpus: GatewayCorpus) -> None:
    """A session ends its configured time after login, however busy the operator is, and its
    stale cookie is dropped on the way to the login page."""
    clock = ManualClock()
    with (
        dashboard_in_process(database_url, clock, session_seconds=180) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        assert log_in(client).status_code == 303
        for _ in range(3):
            clock.now += 59
            assert client.get("/claims").status_code == 200
        clock.now += 3
        response = client.get("/claims")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
        assert "panoptic_session" not in client.cookies


# --- the pages -----------------------------------------------------------------------------------


def test_every_page_renders_with_data(operator: httpx.Client, corpus: GatewayCorpus) -> None:
    """Each page answers 200 with HTML, security headers and no caching."""
    for path in pages(corpus):
        response = operator.get(path)
        assert response.status_code == 200, (path, response.text[:2000])
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert "Something went wrong" not in response.text


def test_overview_shows_counts_indexing_and_refused_batches(
    operator: httpx.Client, corpus: GatewayCorpus
) -> None:
    """The overview counts what is stored, charts what was indexed, lists refused batches by
    reason and recent changes, and shows no red banner right after indexing."""
    html = operator.get("/").text
    assert re.search(r'<svg class="chart"[^>]*role="img"', html)
    assert 'class="series-0"' in html
    assert "INVALID_ARGUMENT" in html
    assert "REQUEST_ID_REUSED" in html
    assert f"{corpus.prefix}-bad-1" in html
    assert f"/claims/{corpus.claim(4)}#revision-2" in html
    assert 'id="not-indexed"' not in html


def test_the_red_banner_follows_the_alert_window(
    env: dict[str, str], corpus: GatewayCorpus, tmp_path: Path
) -> None:
    """When nothing was indexed for longer than ClaimsNotIndexed's window, a red banner says so."""
    strict = another_dashboard(env, PANOPTIC_ALERT_NOT_INDEXED_MINUTES="0.001")
    with (
        running_dashboard(strict, tmp_path / "dashboard.log") as process,
        httpx.Client(base_url=dashboard_url(strict), timeout=10) as client,
    ):
        assert log_in(client).status_code == 303
        html = client.get("/").text
    assert 'id="not-indexed"' in html
    assert "Claims are not being indexed" in html
    assert process.process.returncode == 0, process.output  # SIGTERM: a graceful stop


def test_claims_filter_search_and_page_by_keyset(
    operator: httpx.Client, corpus: GatewayCorpus
) -> None:
    """Filters narrow the list, search marks the matched words, and pages follow the keyset."""
    html = operator.get("/claims", params={"actor": corpus.ann, "state": "all"}).text
    shown = re.findall(rf"/claims/({corpus.prefix}-c\d)", html)
    assert shown == [corpus.claim(n) for n in (5, 4, 3, 2, 1)]
    active = operator.get("/claims", params={"actor": corpus.ann}).text
    assert f"/claims/{corpus.claim(4)}" not in active
    french = operator.get("/claims", params={"actor": corpus.ann, "language": "fr"}).text
    assert re.findall(rf"/claims/({corpus.prefix}-c\d)", french) == [corpus.claim(2)]

    search = operator.get("/claims", params={"q": "harbour bridge", "actor": corpus.ann}).text
    assert "<mark>harbour</mark>" in search
    assert f"/claims/{corpus.claim(3)}" in search

    seen: list[str] = []
    params: dict[str, str] = {}
    for _ in range(100):
        page = operator.get("/claims", params=params).text
        seen += re.findall(r'href="/claims/([^"?#]+)"', page)
        found = re.search(r'href="([^"]+)" rel="next"', page)
        if found is None:
            break
        params = dict(httpx.URL(found.group(1).replace("&amp;", "&")).params)
    assert len(seen) == len(set(seen)) > 25


def test_a_claim_shows_its_source_topics_and_history_with_a_diff(
    operator: httpx.Client, corpus: GatewayCorpus
) -> None:
    """A revised claim lists both revisions and marks what the update added."""
    html = operator.get(f"/claims/{corpus.claim(5)}").text
    assert "https://news.example/5" in html
    assert f"/topics/{corpus.energy}" in html
    assert 'id="revision-1"' in html
    assert 'id="revision-2"' in html
    assert '<ins title="added">and hospital </ins>' in html
    retracted = operator.get(f"/claims/{corpus.claim(4)}?from=1&to=2").text
    assert "Revision 1 → 2" in retracted
    assert "<del>ACTIVE</del>" in retracted
    assert "<ins>RETRACTED</ins>" in retracted


def test_actor_search_tolerates_typos_and_the_actor_page_charts_each_topic(
    operator: httpx.Client, corpus: GatewayCorpus
) -> None:
    """A misspelled name finds the actor; its page has a timeline overall and per topic."""
    found = operator.get("/actors", params={"q": "anabel quixotc"}).text
    assert f"/actors/{corpus.ann}" in found
    html = operator.get(f"/actors/{corpus.ann}").text
    assert html.count('<svg class="chart"') == 3  # all topics, energy, wind
    on_wind = operator.get(f"/actors/{corpus.ann}", params={"topic": corpus.wind}).text
    assert set(re.findall(rf"/claims/({corpus.prefix}-c\d)", on_wind)) == {
        corpus.claim(2),
        corpus.claim(3),
    }


def test_topics_search_and_topic_page(operator: httpx.Client, corpus: GatewayCorpus) -> None:
    """Topic search matches part of a name; a topic page lists its subtopics and claims."""
    found = operator.get("/topics", params={"q": corpus.prefix}).text
    assert f"/topics/{corpus.energy}" in found
    assert f"/topics/{corpus.wind}" in found
    assert operator.get("/topics", params={"q": "100%_no_such"}).text.count("/topics/") == 0
    html = operator.get(f"/topics/{corpus.energy}").text
    assert f"/topics/{corpus.wind}" in html
    assert f"/claims/{corpus.claim(1)}" in html


def _statements_collected(database_url: DatabaseUrl) -> bool:
    """Whether the server preloads pg_stat_statements (the embedded one does; CI's 15 not)."""

    async def preloaded() -> str:
        connection = await asyncpg.connect(database_url.value)
        try:
            return str(await connection.fetchval("SHOW shared_preload_libraries"))
        finally:
            await connection.close()

    return "pg_stat_statements" in asyncio.run(preloaded())


def test_database_health_reports_tables_indexes_connections_statements_and_version(
    operator: httpx.Client, database_url: DatabaseUrl
) -> None:
    """Sizes, dead tuples, maintenance, connections by role, pg_stat_statements (or why it is
    not available) and the migration version."""
    html = operator.get("/database").text
    for table in ("claims", "claim_revisions", "indexer_rejections", "alembic_version"):
        assert f"<code>{table}</code>" in html
    assert "ix_claim_revisions_record_time_change" in html
    assert "cache hit ratio" in html
    assert f"<code>{migrate.current_revision(database_url)}</code>" in html
    assert "<code>panoptic_dashboard</code>" in html
    assert "panoptic-dashboard" in html
    if _statements_collected(database_url):
        assert 'class="sql"' in html
    else:
        assert "Not available:" in html
    assert "PASSWORD '" not in html.upper()


def test_database_page_says_reads_go_to_the_primary_without_replicas(
    operator: httpx.Client,
) -> None:
    """With no replica configured, the Replicas section lists no server: it says every read
    goes to the primary, and names the setting and the README's section that add replicas."""
    html = operator.get("/database").text
    section = html.split('<h2 id="replicas-heading">', 1)[1].split("</section>", 1)[0]
    assert "every read goes to the primary" in section
    assert "<code>PANOPTIC_REPLICA_URLS</code>" in section
    assert "README.md#reads-on-replicas" in section
    assert "\n## Reads on replicas\n" in (ROOT / "README.md").read_text()
    assert "<table" not in section


# --- headers on every response --------------------------------------------------------------------


@pytest.fixture(scope="module")
def misconfigured_url(
    env: dict[str, str], database_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A second dashboard given the retriever's role, which may not read refused batches: its
    overview fails with a 500 as a dashboard missing a grant would. Its login limit is strict."""
    misconfigured = another_dashboard(
        env,
        PANOPTIC_DASHBOARD_DATABASE_URL=database_url.with_user(SERVICE_ROLES["retriever"]).value,
        PANOPTIC_DASHBOARD_LOGIN_FAILURES_PER_MINUTE="1",
    )
    with running_dashboard(misconfigured, tmp_path_factory.mktemp("logs") / "dashboard.log"):
        yield dashboard_url(misconfigured)


def _wrong_login(client: httpx.Client, user: str = USER) -> httpx.Response:
    return log_in(client, user=user, password="wrong")


def _login_without_token(client: httpx.Client) -> httpx.Response:
    return client.post("/login", data={"user": USER, "password": PASSWORD})


def _throttled_login(client: httpx.Client) -> httpx.Response:
    _wrong_login(client, "throttled-user")
    return _wrong_login(client, "throttled-user")


def _logout(client: httpx.Client) -> httpx.Response:
    return client.post("/logout", data={"csrf_token": csrf_token_of(client.get("/").text)})


# (name, which dashboard, logged in, request, expected status)
RESPONSES: list[tuple[str, str, bool, Callable[[httpx.Client], httpx.Response], int]] = [
    ("page", "main", True, lambda client: client.get("/claims"), 200),
    ("login page", "main", False, lambda client: client.get("/login"), 200),
    ("redirect to login", "main", False, lambda client: client.get("/claims"), 303),
    ("login", "main", False, log_in, 303),
    ("logout", "main", True, _logout, 303),
    ("wrong password", "main", False, _wrong_login, 401),
    ("login without its token", "main", False, _login_without_token, 403),
    ("login not a form", "main", False, lambda c: c.post("/login", json={}), 415),
    ("throttled login", "misconfigured", False, _throttled_login, 429),
    ("unknown route", "main", True, lambda client: client.get("/no/such/page"), 404),
    ("unknown claim", "main", True, lambda client: client.get("/claims/no-such-claim"), 404),
    ("malformed filter", "main", True, lambda client: client.get("/claims?from=x"), 400),
    ("method not allowed", "main", True, lambda client: client.post("/claims"), 405),
    ("static file", "main", False, lambda client: client.get("/static/dashboard.css"), 200),
    ("unknown static file", "main", False, lambda client: client.get("/static/nope.css"), 404),
    ("unknown static file with a session", "main", True, lambda c: c.get("/static/x.js"), 404),
    ("liveness", "main", False, lambda client: client.get("/healthz"), 200),
    ("readiness", "main", False, lambda client: client.get("/readyz"), 200),
    ("page that fails", "misconfigured", True, lambda client: client.get("/"), 500),
]


@pytest.mark.parametrize(
    ("dashboard", "logged_in", "send", "status"),
    [case[1:] for case in RESPONSES],
    ids=[case[0] for case in RESPONSES],
)
def test_every_response_carries_the_security_headers(
    base_url: str,
    misconfigured_url: str,
    dashboard: str,
    logged_in: bool,
    send: Callable[[httpx.Client], httpx.Response],
    status: int,
) -> None:
    """Every kind of response (pages, login, redirects, 4xx, 429, static files, probes, and a
    500 from a page whose query fails) sends the strict CSP, the framing and sniffing headers
    and `no-store`; the 500 page carries no CSRF token of the session."""
    url = base_url if dashboard == "main" else misconfigured_url
    with httpx.Client(base_url=url, timeout=10, follow_redirects=False) as client:
        if logged_in:
            assert log_in(client).status_code == 303
        response = send(client)
    assert response.status_code == status, response.text[:2000]
    policy = response.headers.get("content-security-policy", "")
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("x-frame-options") == "DENY"
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("referrer-policy") == "same-origin"
    if status == 500:
        assert "Something went wrong" in response.text
        assert "csrf_token" not in response.text
        assert "Sign out" not in response.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/claims?from=yesterday", 400),
        ("/claims?state=deleted", 400),
        ("/claims?to=9999-12-31", 400),
        ("/claims?from=0001-01-01", 400),
        ("/claims?q=people&from=0001-01-01&to=9999-12-31", 400),
        ("/claims?page=not-a-token", 400),
        ("/claims?actor=nobody-here", 404),
        ("/claims/no-such-claim", 404),
        ("/actors/no-such-actor", 404),
        ("/actors?page=forged", 400),
        ("/topics/no-such-topic", 404),
        ("/no/such/page", 404),
    ],
)
def test_bad_input_gets_a_page_with_a_4xx(operator: httpx.Client, path: str, status: int) -> None:
    """Malformed filters, dates outside the range a claim's time may take, forged page links and
    unknown ids are 4xx pages, never 500."""
    response = operator.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")


# --- nothing can write ---------------------------------------------------------------------------


class _Forms(HTMLParser):
    """Collects each form's method and action."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            values = dict(attrs)
            self.forms.append(((values.get("method") or "get").lower(), values.get("action") or ""))


def test_every_form_is_a_get_except_login_and_logout(
    operator: httpx.Client, anonymous: httpx.Client, corpus: GatewayCorpus
) -> None:
    """No page has a form that posts anywhere but /login and /logout."""
    seen: set[tuple[str, str]] = set()
    for path in pages(corpus):
        parser = _Forms()
        parser.feed(operator.get(path).text)
        seen |= set(parser.forms)
    login = _Forms()
    login.feed(anonymous.get("/login").text)
    seen |= set(login.forms)
    posting = {(method, action) for method, action in seen if method != "get"}
    assert posting == {("post", "/login"), ("post", "/logout")}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_pages_refuse_every_method_that_could_write(
    operator: httpx.Client, corpus: GatewayCorpus, method: str
) -> None:
    """Every page answers 405 to POST, PUT, PATCH and DELETE."""
    for path in pages(corpus):
        assert operator.request(method, path).status_code == 405, path


@pytest.mark.asyncio(loop_scope="session")
async def test_the_dashboard_role_cannot_write(database_url: DatabaseUrl) -> None:
    """The dashboard's role is read-only by default and holds no privilege to write anyway."""
    connection = await asyncpg.connect(database_url.with_user(SERVICE_ROLES["dashboard"]).value)
    try:
        assert await connection.fetchval("SHOW default_transaction_read_only") == "on"
        for statement in (
            "UPDATE claims SET text = text",
            "INSERT INTO indexer_rejections (reason) VALUES ('x')",
            "DELETE FROM claim_revisions",
            "CREATE TABLE dashboard_table (id int)",
        ):
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await connection.execute(statement)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await execute_read_write(connection, statement)
    finally:
        await connection.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_refused_batches_are_append_only_for_the_indexer(database_url: DatabaseUrl) -> None:
    """The indexer may add refused batches but not read, change or delete them; the public
    read path (the retriever's role) cannot read them at all."""
    indexer = await asyncpg.connect(database_url.with_user(SERVICE_ROLES["indexer"]).value)
    retriever = await asyncpg.connect(database_url.with_user(SERVICE_ROLES["retriever"]).value)
    try:
        await indexer.execute("INSERT INTO indexer_rejections (reason) VALUES ('TEST')")
        for statement in (
            "SELECT * FROM indexer_rejections",
            "UPDATE indexer_rejections SET reason = 'x'",
            "DELETE FROM indexer_rejections",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await indexer.execute(statement)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await retriever.fetch("SELECT * FROM indexer_rejections")
    finally:
        await indexer.close()
        await retriever.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_only_the_dashboard_role_reads_all_statistics(database_url: DatabaseUrl) -> None:
    """pg_read_all_stats goes to the dashboard's role when the migrating role may grant it,
    and never to the retriever's, whose reads the public reaches."""
    owner = await asyncpg.connect(database_url.value)
    try:
        may_grant = await owner.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ) or await owner.fetchval(
            "SELECT EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            " WHERE r.rolname = 'pg_read_all_stats' AND m.member = current_user::regrole"
            " AND m.admin_option)"
        )
        member = "SELECT pg_has_role($1, 'pg_read_all_stats', 'MEMBER')"
        assert await owner.fetchval(member, SERVICE_ROLES["dashboard"]) == may_grant
        assert not await owner.fetchval(member, SERVICE_ROLES["retriever"])
    finally:
        await owner.close()


# --- metrics and configuration -------------------------------------------------------------------


def test_metrics_count_requests_by_route_template(
    operator: httpx.Client, env: dict[str, str], corpus: GatewayCorpus
) -> None:
    """/metrics counts requests by route template and status, with latency, never raw paths."""
    operator.get(f"/claims/{corpus.claim(1)}")
    metrics = httpx.get(
        f"http://127.0.0.1:{env['PANOPTIC_DASHBOARD_METRICS_PORT']}/metrics", timeout=5
    ).text
    assert 'http_requests_total{method="GET",route="/claims/{claim_id}",status="200"}' in metrics
    assert 'http_request_duration_seconds_count{route="/claims/{claim_id}"}' in metrics
    assert 'panoptic_dashboard_logins_total{outcome="ok"}' in metrics
    assert corpus.claim(1) not in metrics


def test_production_refuses_the_default_password_and_session_secret(
    env: dict[str, str],
) -> None:
    """In production the dashboard will not start on a missing or well-known secret."""
    for overrides in (
        {"PANOPTIC_DASHBOARD_PASSWORD": ""},
        {"PANOPTIC_DASHBOARD_PASSWORD": "panoptic"},
        {"PANOPTIC_DASHBOARD_PASSWORD": "short"},
        {"PANOPTIC_DASHBOARD_SESSION_SECRET": ""},
    ):
        production = another_dashboard(env, PANOPTIC_ENV="production", **overrides)
        if not overrides.get("PANOPTIC_DASHBOARD_PASSWORD", "x"):
            del production["PANOPTIC_DASHBOARD_PASSWORD"]
        result = run_panoptic("dashboard", env=production)
        assert result.returncode == 2, result.stderr
        assert "refusing to start in production" in result.stderr
        assert "PANOPTIC_DASHBOARD_" in result.stderr
