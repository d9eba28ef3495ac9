"""Every error a client can get from the gateway: AIP-193 JSON with the right HTTP status.

A scripted stand-in for the retriever (tests/support/gateway.py) answers with any gRPC code,
plain or rich, so each mapping is checked without breaking a real database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from services.gateway.descriptors import PACKAGED_DESCRIPTOR_SET
from services.gateway.errors import HTTP_STATUS
from tests.conftest import random_id
from tests.support.gateway import (
    PLAIN_SECRET,
    RICH_MESSAGE,
    FakeRetriever,
    base_url,
    fake_retriever,
    running_gateway,
)
from tests.support.processes import free_port, service_env

pytestmark = pytest.mark.slow

FAILURES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]
HIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}


def gateway_env(tmp: Path, retriever: str, **overrides: str) -> dict[str, str]:
    """A gateway environment pointing at `retriever`; no database is involved."""
    env = service_env("postgresql://unused@127.0.0.1:1/unused", tmp, **overrides)
    env["PANOPTIC_RETRIEVER_ADDRESS"] = retriever
    return env


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeRetriever]:
    """The scripted retriever."""
    with fake_retriever(free_port()) as retriever:
        yield retriever


@pytest.fixture(scope="module")
def client(fake: FakeRetriever, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A gateway on the scripted retriever (learnt by reflection), GetClaim's deadline 0.3 s."""
    tmp = tmp_path_factory.mktemp("gateway")
    env = gateway_env(
        tmp,
        fake.address,
        PANOPTIC_GATEWAY_METHOD_DEADLINES='{"GetClaim": 0.3}',
        PANOPTIC_GATEWAY_RATE_LIMIT_PER_SECOND="0",
        PANOPTIC_GATEWAY_MAX_URL_BYTES="1024",
        PANOPTIC_GATEWAY_MAX_HEADER_BYTES="2048",
    )
    with (
        running_gateway(env, tmp / "gateway.log"),
        httpx.Client(base_url=base_url(env), timeout=10) as http,
    ):
        yield http


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The AIP-193 error of a response that must have `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "status", "details"}
    assert body["error"]["code"] == status
    return body["error"]


def reason_of(error: dict[str, Any]) -> str:
    """The ErrorInfo reason of an error body."""
    reasons = [d["reason"] for d in error["details"] if d["@type"].endswith("rpc.ErrorInfo")]
    assert len(reasons) == 1, error
    return str(reasons[0])


@pytest.mark.parametrize("code", FAILURES, ids=lambda code: code.name)
def test_rich_upstream_errors_keep_their_message_and_details(
    client: httpx.Client, code: grpc.StatusCode
) -> None:
    """A rich status maps to its HTTP status with its details; internal codes stay generic."""
    error = error_of(client.get(f"/v1/claims/rich-{code.name}"), HTTP_STATUS[code])
    assert error["status"] == code.name
    if code in HIDDEN:
        assert RICH_MESSAGE not in error["message"]
        assert reason_of(error) == f"UPSTREAM_{code.name}"
    else:
        assert error["message"] == RICH_MESSAGE
        assert reason_of(error) == f"TEST_{code.name}"


@pytest.mark.parametrize("code", FAILURES, ids=lambda code: code.name)
def test_plain_upstream_errors_never_leak_their_text(
    client: httpx.Client, code: grpc.StatusCode
) -> None:
    """A status without details is answered generically: no address, no SQL, a request id."""
    response = client.get(f"/v1/claims/code-{code.name}", headers={"x-request-id": "rid-7"})
    error = error_of(response, HTTP_STATUS[code])
    assert PLAIN_SECRET not in response.text
    assert "10.9.8.7" not in response.text
    assert reason_of(error) == f"UPSTREAM_{code.name}"
    assert error["details"][0]["metadata"] == {"requestId": "rid-7"}


def test_a_slow_upstream_call_hits_the_routes_deadline(client: httpx.Client) -> None:
    """GetClaim's configured 0.3 s deadline reaches gRPC: 504 DEADLINE_EXCEEDED."""
    error = error_of(client.get("/v1/claims/slow"), 504)
    assert error["status"] == "DEADLINE_EXCEEDED"


def test_the_request_id_is_forwarded_and_echoed(client: httpx.Client, fake: FakeRetriever) -> None:
    """X-Request-Id reaches the retriever as x-request-id metadata and comes back."""
    response = client.get(f"/v1/claims/{random_id()}", headers={"X-Request-Id": "mobile-42.a:b"})
    assert response.headers["x-request-id"] == "mobile-42.a:b"
    assert fake.metadata[-1]["x-request-id"] == "mobile-42.a:b"
    generated = client.get(
        f"/v1/claims/{random_id()}", headers={"X-Request-Id": "bad id\twith space"}
    )
    assert generated.headers["x-request-id"] != "bad id\twith space"
    assert len(generated.headers["x-request-id"]) == 32
    assert fake.metadata[-1]["x-request-id"] == generated.headers["x-request-id"]


@pytest.mark.parametrize(
    ("query", "parameter", "message"),
    [
        ("actorID=a", "actorID", "unknown query parameter 'actorID'; did you mean 'actorId'?"),
        ("page_sise=3", "page_sise", "did you mean 'pageSize'?"),
        ("pageSize=ten", "pageSize", "'pageSize' must be an integer"),
        ("statedAfter=yesterday", "statedAfter", "'statedAfter' must be an RFC 3339 timestamp"),
        ("showRetracted=maybe", "showRetracted", "'showRetracted' must be true or false"),
        ("language=en&language=fr", "language", "'language' takes one value but was given 2"),
        ("actorId=ann&actor_id=bob", "actorId", "'actorId' and 'actor_id' name the same field"),
        ("actor_id=ann&actorId=ann", "actorId", "'actor_id' and 'actorId' name the same field"),
        ("fields=claims.txt", "fields", "did you mean 'claims.text'?"),
        ("actorId=%FF", "query", "not valid UTF-8"),
    ],
)
def test_bad_query_parameters_are_400s_naming_the_parameter(
    client: httpx.Client, query: str, parameter: str, message: str
) -> None:
    """Unknown or malformed parameters never reach the retriever and say what to fix."""
    error = error_of(client.get(f"/v1/claims?{query}"), 400)
    assert error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]
    violations = [d for d in error["details"] if d["@type"].endswith("rpc.BadRequest")]
    assert violations[0]["fieldViolations"][0]["field"] == parameter
    assert message in violations[0]["fieldViolations"][0]["description"]


def test_an_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    """A path no binding matches is NOT_FOUND in AIP-193 JSON, for any method."""
    for method in ("GET", "POST", "DELETE"):
        error = error_of(client.request(method, "/v1/nothing/here"), 404)
        assert reason_of(error) == "ROUTE_NOT_FOUND"


def test_a_wrong_method_is_a_json_405_with_allow(client: httpx.Client) -> None:
    """POST to a GET route is 405 with an Allow header; OPTIONS lists the methods."""
    response = client.post("/v1/claims", json={})
    error = error_of(response, 405)
    assert reason_of(error) == "METHOD_NOT_ALLOWED"
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    options = client.options("/v1/claims")
    assert (options.status_code, options.headers["allow"]) == (204, "GET, HEAD, OPTIONS")
    assert error_of(client.put("/openapi.json"), 405)["status"] == "UNIMPLEMENTED"


def test_oversized_request_lines_and_headers_are_refused(client: httpx.Client) -> None:
    """Past the configured limits: 414 for the target, 431 for the headers."""
    error = error_of(client.get("/v1/claims?language=" + "x" * 2000), 414)
    assert reason_of(error) == "URI_TOO_LONG"
    error = error_of(client.get("/v1/claims", headers={"x-padding": "y" * 3000}), 431)
    assert reason_of(error) == "HEADERS_TOO_LARGE"


def test_an_unreachable_retriever_is_503_without_its_address(tmp_path: Path) -> None:
    """With compiled descriptors and no retriever: 503 UNAVAILABLE, /readyz 503, /healthz 200."""
    dead = f"127.0.0.1:{free_port()}"
    env = gateway_env(
        tmp_path, dead, PANOPTIC_GATEWAY_DESCRIPTOR_SOURCE=str(PACKAGED_DESCRIPTOR_SET)
    )
    with (
        running_gateway(env, tmp_path / "gateway.log", probe="/healthz"),
        httpx.Client(base_url=base_url(env), timeout=10) as http,
    ):
        response = http.get("/v1/claims/c-1")
        error = error_of(response, 503)
        assert error["status"] == "UNAVAILABLE"
        assert dead not in response.text
        assert "127.0.0.1" not in response.text
        assert error_of(http.get("/readyz"), 503)["status"] == "UNAVAILABLE"
        assert http.get("/healthz").status_code == 200
