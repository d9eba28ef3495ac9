"""Driving a real dashboard from tests: data to show, the `panoptic dashboard` process, the app
served in this process on clocks a test moves by hand, and a login."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import asyncpg
import httpx
import uvicorn

from panoptic.core.db import SERVICE_ROLES, DatabaseUrl, create_pool
from panoptic.core.http_server import http_config
from panoptic.suite.demo import generate_corpus
from services.dashboard.app import Dashboard, DashboardConfig, build_app
from services.dashboard.auth import Credentials
from tests.support.corpus import batches_of, index_requests
from tests.support.gateway import GatewayCorpus, load_corpus
from tests.support.processes import (
    PanopticProcess,
    answers_200,
    free_port,
    start_serving,
    wait_for,
)

USER = "operator"
PASSWORD = "correct horse battery staple"
SESSION_SECRET = "test-session-secret-0123456789abcdef"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def dashboard_url(env: Mapping[str, str]) -> str:
    """Where the dashboard started with `env` listens."""
    return f"http://127.0.0.1:{env['PANOPTIC_DASHBOARD_PORT']}"


def dashboard_env(env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """`env` with the test login and a session secret."""
    return {
        **env,
        "PANOPTIC_DASHBOARD_USER": USER,
        "PANOPTIC_DASHBOARD_PASSWORD": PASSWORD,
        "PANOPTIC_DASHBOARD_SESSION_SECRET": SESSION_SECRET,
        **overrides,
    }


def another_dashboard(env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """`env` for a second dashboard beside the first: its own ports, and `overrides`."""
    return {
        **env,
        "PANOPTIC_DASHBOARD_PORT": str(free_port()),
        "PANOPTIC_DASHBOARD_METRICS_PORT": str(free_port()),
        **overrides,
    }


@contextlib.contextmanager
def running_dashboard(env: Mapping[str, str], log_path: Path) -> Iterator[PanopticProcess]:
    """A `panoptic dashboard` answering /readyz for the block, stopped (SIGTERM, by PID) after."""
    ready = functools.partial(answers_200, dashboard_url(env) + "/readyz")
    process = start_serving(("dashboard",), env, log_path, ready)
    try:
        yield process
    finally:
        process.stop()


class ManualClock:
    """A clock the test moves by hand, starting at the real time (the login form's and device
    cookies carry real stamps)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class _ServerThread(threading.Thread):
    """uvicorn serving `dashboard`'s app on 127.0.0.1:`port` in a thread with a loop of its own,
    where the pool on the dashboard's read-only role is opened and closed too."""

    def __init__(
        self, database_url: DatabaseUrl, config: DashboardConfig, clock: ManualClock, port: int
    ) -> None:
        super().__init__(name="dashboard-in-process", daemon=True)
        self.database_url, self.config, self.clock, self.port = database_url, config, clock, port
        self.server: uvicorn.Server | None = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # uvicorn exits the thread with SystemExit on bind errors
            self.failure = error

    async def _serve(self) -> None:
        url = self.database_url.with_user(SERVICE_ROLES["dashboard"])
        pool = await create_pool(url, service="dashboard", max_size=2, read_only=True)
        try:
            dashboard = Dashboard(
                self.config, lambda: pool, session_clock=self.clock, throttle_clock=self.clock
            )
            config = http_config(
                build_app(dashboard), host="127.0.0.1", port=self.port, grace_seconds=1
            )
            self.server = uvicorn.Server(config)
            await self.server.serve()
        finally:
            await pool.close()

    def started(self) -> bool:
        """Whether uvicorn serves; fails the test with the reason if the thread ended instead."""
        if self.failure is not None or (not self.is_alive() and self.server is None):
            raise AssertionError(f"the dashboard did not start: {self.failure!r}")
        return self.server is not None and self.server.started


@contextlib.contextmanager
def dashboard_in_process(
    database_url: DatabaseUrl,
    clock: ManualClock,
    *,
    session_seconds: float = 3600,
    login_failures_per_minute: int = 100,
) -> Iterator[str]:
    """The dashboard's app served by uvicorn in this process on loopback, its sessions and
    login throttle on `clock`, for tests of time passing that must not wait for it; yields its
    URL and stops the server (and closes its pool) after the block."""
    config = DashboardConfig(
        credentials=Credentials(USER, PASSWORD),
        session_secret=SESSION_SECRET,
        session_seconds=session_seconds,
        login_failures_per_minute=login_failures_per_minute,
        secure_cookie=False,
        statement_timeout=10,
        not_indexed_minutes=60,
    )
    thread = _ServerThread(database_url, config, clock, free_port())
    thread.start()
    try:
        wait_for(thread.started, timeout=30)
        yield f"http://127.0.0.1:{thread.port}"
    finally:
        if thread.server is not None:
            thread.server.should_exit = True
        thread.join(timeout=30)


def login_form_token(client: httpx.Client) -> str:
    """Opens the login page (which sets its CSRF cookie) and returns the form's token."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def log_in(
    client: httpx.Client, user: str = USER, password: str = PASSWORD, next_path: str = "/"
) -> httpx.Response:
    """Submits the login form as a browser would; the response is not followed."""
    token = login_form_token(client)
    return client.post(
        "/login",
        data={"csrf_token": token, "user": user, "password": password, "next": next_path},
        follow_redirects=False,
    )


def csrf_token_of(page: str) -> str:
    """The CSRF token in a page's logout form."""
    found = _CSRF.search(page)
    assert found, page
    return found.group(1)


async def load_dashboard_data(database_url: DatabaseUrl, demo_claims: int = 0) -> GatewayCorpus:
    """The gateway's small corpus (two revised claims), a slice of the demo corpus, and two
    refused batches written as the indexer's role."""
    corpus = await load_corpus(database_url)
    if demo_claims:
        records = generate_corpus(seed=7, claims=demo_claims, actors=25, topics=20)
        await index_requests(database_url, batches_of(records, prefix=f"{corpus.prefix}-demo"))
    indexer = await asyncpg.connect(database_url.with_user(SERVICE_ROLES["indexer"]).value)
    try:
        await indexer.executemany(
            "INSERT INTO indexer_rejections (request_id, reason, field_count, summary)"
            " VALUES ($1, $2, $3, $4)",
            [
                (
                    f"{corpus.prefix}-bad-1",
                    "INVALID_ARGUMENT",
                    2,
                    "claims[3].statedAt: is in the future",
                ),
                (f"{corpus.prefix}-bad-2", "REQUEST_ID_REUSED", 0, "different payload"),
            ],
        )
    finally:
        await indexer.close()
    return corpus
