"""Driving a real `panoptic dashboard` from tests: data to show, the process, and a login."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import asyncpg
import httpx

from panoptic.core.db import SERVICE_ROLES, DatabaseUrl
from panoptic.suite.demo import generate_corpus
from tests.support.corpus import batches_of, index_requests
from tests.support.gateway import GatewayCorpus, load_corpus
from tests.support.processes import PanopticProcess, free_port, wait_for

USER = "operator"
PASSWORD = "correct horse battery staple"

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
        "PANOPTIC_DASHBOARD_SESSION_SECRET": "test-session-secret-0123456789abcdef",
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
    process = PanopticProcess(("dashboard",), env, log_path).start()
    url = dashboard_url(env) + "/readyz"

    def ready() -> bool:
        if process.process.poll() is not None:
            raise AssertionError(f"the dashboard exited early:\n{process.output}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=30)
        yield process
    finally:
        process.stop()


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
