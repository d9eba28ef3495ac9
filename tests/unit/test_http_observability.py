"""The shared HTTP middleware without I/O: metrics by route label, one summary line a request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Scope
from structlog.testing import capture_logs

from panoptic.core.http_observability import UNMATCHED, ObservabilityMiddleware
from tests.conftest import random_id


def _app(prefix: str, **options: Any) -> Starlette:
    """A Starlette app with one templated route under `prefix`, and one that fails."""

    async def thing(request: Request) -> PlainTextResponse:
        return PlainTextResponse("made", status_code=201)

    async def broken(request: Request) -> PlainTextResponse:
        raise RuntimeError("a bug")

    return Starlette(
        routes=[
            Route(f"{prefix}/things/{{thing_id}}", thing),
            Route(f"{prefix}/broken", broken),
        ],
        middleware=[
            Middleware(ObservabilityMiddleware, log=structlog.get_logger("test.http"), **options)
        ],
    )


async def _get(app: Starlette, path: str) -> int:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return (await client.get(path)).status_code


def _count(route: str, method: str, status: str) -> float | None:
    return REGISTRY.get_sample_value(
        "http_requests_total", {"route": route, "method": method, "status": status}
    )


@pytest.mark.asyncio
async def test_a_request_is_counted_timed_and_logged_once_by_route_template() -> None:
    """A request is counted under its Starlette route template (not its path), method and
    status, timed under the template, and logged once with the canonical fields."""
    prefix = "/" + random_id("obs")
    template = f"{prefix}/things/{{thing_id}}"
    with capture_logs() as lines:
        status = await _get(_app(prefix), f"{prefix}/things/t-1")
    assert status == 201
    assert _count(template, "GET", "201") == 1
    assert (
        REGISTRY.get_sample_value("http_request_duration_seconds_count", {"route": template}) == 1
    )
    [line] = [line for line in lines if line["event"] == "http"]
    assert line["route"] == template
    assert line["path"] == f"{prefix}/things/t-1"
    assert line["method"] == "GET"
    assert line["status"] == 201
    assert line["client"] == "127.0.0.1"
    assert line["duration_ms"] >= 0


@pytest.mark.asyncio
async def test_a_handler_that_raises_counts_as_a_500_and_is_logged_once() -> None:
    """A request whose handler raised before answering is counted and logged as a 500."""
    prefix = "/" + random_id("obs")
    with capture_logs() as lines:
        status = await _get(_app(prefix), f"{prefix}/broken")
    assert status == 500
    assert _count(f"{prefix}/broken", "GET", "500") == 1
    assert [line["status"] for line in lines if line["event"] == "http"] == [500]


@pytest.mark.asyncio
async def test_the_service_names_the_route_label_the_event_and_adds_its_fields() -> None:
    """A service's own route label, event name and log fields (the gateway's route label,
    request id and upstream time) replace or extend the defaults; a path no route took is
    `unmatched` by default, so that a scanner's paths never become series."""
    prefix = "/" + random_id("obs")
    seen: list[float] = []

    def finish(scope: Scope, elapsed: float) -> Mapping[str, object]:
        seen.append(elapsed)
        return {"request_id": "r-1"}

    custom = _app(prefix, event="request", route_of=lambda scope: f"{prefix}-label", finish=finish)
    with capture_logs() as lines:
        await _get(custom, f"{prefix}/things/t-1")
        await _get(_app(prefix), f"{prefix}/nowhere/{random_id()}")
    assert _count(f"{prefix}-label", "GET", "201") == 1
    assert _count(UNMATCHED, "GET", "404") is not None
    [line] = [line for line in lines if line["event"] == "request"]
    assert line["request_id"] == "r-1"
    assert line["route"] == f"{prefix}-label"
    assert len(seen) == 1
    assert seen[0] >= 0
