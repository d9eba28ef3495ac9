"""HTTP for a mobile client: ETags and 304s, compression, Cache-Control, CORS, rate limits,
Server-Timing, metrics and the log line; and following a redeployed retriever's API.

The gateway runs in front of the scripted retriever of tests/support/gateway.py.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import brotli
import grpc
import httpx
import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, text_format
from grpc_reflection.v1alpha import reflection

from panoptic.v1 import resources_pb2, retriever_service_pb2
from tests.conftest import random_id
from tests.support.gateway import (
    FakeRetriever,
    base_url,
    fake_retriever,
    packaged_files,
    running_gateway,
)
from tests.support.indexer import scrape, value
from tests.support.processes import PanopticProcess, answers_200, free_port, service_env, wait_for

pytestmark = pytest.mark.slow

APP_ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeRetriever]:
    """The scripted retriever."""
    with fake_retriever(free_port()) as retriever:
        yield retriever


@pytest.fixture(scope="module")
def env(fake: FakeRetriever, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A gateway allowing one browser origin and 5 requests/s (burst 5) per client."""
    env = service_env(
        "postgresql://unused@127.0.0.1:1/unused",
        tmp_path_factory.mktemp("data"),
        PANOPTIC_GATEWAY_CORS_ORIGINS=json.dumps([APP_ORIGIN]),
        PANOPTIC_GATEWAY_RATE_LIMIT_PER_SECOND="5",
        PANOPTIC_GATEWAY_RATE_LIMIT_BURST="5",
    )
    env["PANOPTIC_RETRIEVER_ADDRESS"] = fake.address
    return env


@pytest.fixture(scope="module")
def gateway(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway's base URL."""
    with running_gateway(env, tmp_path_factory.mktemp("logs") / "gateway.log") as process:
        yield base_url(env)
        assert "gateway" in process.output


_next_client = [10]


@pytest.fixture
def client(gateway: str) -> Iterator[httpx.Client]:
    """A client with a loopback address of its own (127.0.0.N), so its rate limit is its own."""
    _next_client[0] += 1
    transport = httpx.HTTPTransport(local_address=f"127.0.0.{_next_client[0]}")
    with httpx.Client(base_url=gateway, timeout=10, transport=transport) as http:
        yield http


def test_etag_and_if_none_match_give_304(client: httpx.Client) -> None:
    """A strong ETag comes with each response; sending it back gets an empty 304."""
    first = client.get("/v1/claims/c-1")
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")
    again = client.get("/v1/claims/c-1", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == first.headers["cache-control"]
    changed = client.get("/v1/claims/c-2", headers={"if-none-match": etag})
    assert changed.status_code == 200


def test_cache_control_is_set_per_route(client: httpx.Client) -> None:
    """GetClaim may be reused for 30 s, lists for 10 s, errors never."""
    assert client.get("/v1/claims/c-1").headers["cache-control"] == "public, max-age=30"
    assert client.get("/v1/claims").headers["cache-control"] == "public, max-age=10"
    assert client.get("/v1/claims/code-NOT_FOUND").headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("accept", "encoding"), [("br", "br"), ("gzip", "gzip"), ("br;q=0, gzip", "gzip")]
)
def test_large_bodies_are_compressed_as_the_client_accepts(
    client: httpx.Client, accept: str, encoding: str
) -> None:
    """5 kB answers come brotli- or gzip-encoded, with a matching ETag and Vary."""
    plain = client.get("/v1/claims/big", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    response = client.get("/v1/claims/big", headers={"accept-encoding": accept})
    assert response.headers["content-encoding"] == encoding
    assert "Accept-Encoding" in response.headers["vary"]
    assert response.json() == plain.json()  # httpx decodes gzip and br itself
    assert int(response.headers["content-length"]) < len(plain.content) / 5
    assert response.headers["etag"] == plain.headers["etag"][:-1] + f'-{encoding}"'
    revalidated = client.get(
        "/v1/claims/big",
        headers={"accept-encoding": accept, "if-none-match": response.headers["etag"]},
    )
    assert revalidated.status_code == 304
    small = client.get("/v1/claims/c-1", headers={"accept-encoding": accept})
    assert "content-encoding" not in small.headers


def test_compressed_bytes_decode_with_the_standard_libraries(gateway: str) -> None:
    """The wire bytes are real brotli and gzip streams."""
    with httpx.Client(base_url=gateway, timeout=10) as raw_client:
        for accept, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
            with raw_client.stream(
                "GET", "/v1/claims/big", headers={"accept-encoding": accept}
            ) as response:
                wire = b"".join(response.iter_raw())
            assert json.loads(decode(wire))["id"] == "big"


def test_cors_preflight_and_simple_requests(client: httpx.Client) -> None:
    """The allowed origin gets a preflight answer and readable headers; others are refused."""
    preflight = client.options(
        "/v1/claims",
        headers={
            "origin": APP_ORIGIN,
            "access-control-request-method": "GET",
            "access-control-request-headers": "if-none-match, x-request-id, x-evil",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD"
    assert preflight.headers["access-control-allow-headers"] == "if-none-match, x-request-id"
    assert "Origin" in preflight.headers["vary"]
    simple = client.get("/v1/claims/c-1", headers={"origin": APP_ORIGIN})
    assert simple.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "etag" in simple.headers["access-control-expose-headers"]
    stranger = client.options(
        "/v1/claims",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert stranger.status_code == 403
    assert "access-control-allow-origin" not in stranger.headers
    other = client.get("/v1/claims/c-1", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_a_burst_past_the_limit_gets_429_with_retry_after(gateway: str) -> None:
    """Over 5 at once, a client gets 429 RESOURCE_EXHAUSTED; another client and probes do not;
    the client is served again once its bucket has refilled (how fast it refills is the unit
    tests' business, on a clock they move by hand)."""
    with (
        httpx.Client(
            base_url=gateway, transport=httpx.HTTPTransport(local_address="127.0.0.200")
        ) as greedy,
        httpx.Client(
            base_url=gateway, transport=httpx.HTTPTransport(local_address="127.0.0.201")
        ) as polite,
    ):
        statuses = [greedy.get("/v1/claims/c-1").status_code for _ in range(12)]
        assert statuses[:5] == [200] * 5
        assert statuses.count(429) >= 6
        limited = greedy.get("/v1/claims/c-1")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        error = limited.json()["error"]
        assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
        assert error["details"][0]["reason"] == "RATE_LIMITED"
        assert greedy.get("/healthz").status_code == 200
        assert polite.get("/v1/claims/c-1").status_code == 200
        # A refused request takes no token, so asking until one is back changes nothing.
        wait_for(lambda: greedy.get("/v1/claims/c-1").status_code == 200, timeout=10)


@pytest.fixture(scope="module")
def behind_a_proxy(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway trusting the proxies of 127.0.0.0/28, as it trusts the pod network on
    Kubernetes (deploy/kubernetes), limiting each client to a burst of 3 then one request in 10 s.
    """
    proxied = {
        **env,
        "PANOPTIC_GATEWAY_PORT": str(free_port()),
        "PANOPTIC_GATEWAY_METRICS_PORT": str(free_port()),
        "PANOPTIC_GATEWAY_TRUSTED_PROXIES": "127.0.0.0/28",
        "PANOPTIC_GATEWAY_RATE_LIMIT_PER_SECOND": "0.1",
        "PANOPTIC_GATEWAY_RATE_LIMIT_BURST": "3",
    }
    log = tmp_path_factory.mktemp("proxied-logs") / "gateway.log"
    with running_gateway(proxied, log):
        yield base_url(proxied)


def test_behind_a_trusted_proxy_the_rate_limit_keys_on_the_forwarded_client(
    behind_a_proxy: str,
) -> None:
    """Through a proxy of the trusted network, each X-Forwarded-For client has its own limit;
    a client outside that network is limited on its own address, whatever header it sends."""

    def statuses(local_address: str, forwarded_for: list[str]) -> list[int]:
        transport = httpx.HTTPTransport(local_address=local_address)
        with httpx.Client(base_url=behind_a_proxy, timeout=10, transport=transport) as http:
            return [
                http.get("/v1/claims/c-1", headers={"x-forwarded-for": client}).status_code
                for client in forwarded_for
            ]

    # One proxy (127.0.0.9, inside 127.0.0.0/28) carries two clients.
    assert statuses("127.0.0.9", ["198.51.100.7"] * 6) == [200] * 3 + [429] * 3
    assert statuses("127.0.0.9", ["198.51.100.8"] * 3) == [200] * 3
    # 127.0.0.77 is not a trusted proxy: its header is not believed, a new one per request
    # buys it nothing.
    forged = [f"198.51.100.{n}" for n in range(20, 26)]
    assert statuses("127.0.0.77", forged) == [200] * 3 + [429] * 3


def test_server_timing_splits_gateway_and_upstream_time(client: httpx.Client) -> None:
    """Server-Timing names the gateway's own time and the gRPC call's."""
    timing = client.get(f"/v1/claims/{random_id()}").headers["server-timing"]
    parts = dict(part.strip().split(";dur=") for part in timing.split(","))
    assert set(parts) == {"gateway", "upstream"}
    assert all(float(number) >= 0 for number in parts.values())


def test_responses_are_reused_for_their_max_age(client: httpx.Client, fake: FakeRetriever) -> None:
    """A second GET within max-age is served by the gateway's cache with an Age header; a
    client's `Cache-Control: no-cache` goes to the retriever again.
    """
    path = f"/v1/claims/{random_id()}"
    first = client.get(path)
    calls = len(fake.metadata)
    again = client.get(path)
    assert len(fake.metadata) == calls
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert int(again.headers["age"]) >= 0
    assert 'cache;desc="hit"' in again.headers["server-timing"]
    assert "age" not in first.headers
    fresh = client.get(path, headers={"cache-control": "no-cache"})
    assert len(fake.metadata) == calls + 1
    assert "age" not in fresh.headers
    listed = client.get("/v1/claims", params={"language": random_id()})
    assert listed.headers["cache-control"] == "public, max-age=10"
    errors = [client.get("/v1/claims/code-NOT_FOUND") for _ in range(2)]
    assert all("age" not in response.headers for response in errors)


def test_metrics_count_requests_latency_upstream_and_rate_limits(
    client: httpx.Client, env: dict[str, str]
) -> None:
    """/metrics on the metrics port has requests by route and status, histograms, 429s."""
    client.get("/v1/claims/c-1")
    client.get("/v1/claims/code-NOT_FOUND")
    samples = scrape(env["PANOPTIC_GATEWAY_METRICS_PORT"])
    route = "/v1/claims/{claim_id}"
    assert value(samples, "http_requests_total", route=route, status="200") >= 1
    assert value(samples, "http_requests_total", route=route, status="404") >= 1
    assert value(samples, "http_request_duration_seconds_count", route=route) >= 2
    assert value(samples, "panoptic_gateway_upstream_seconds_count", grpc_method="GetClaim") >= 2
    assert value(samples, "panoptic_gateway_upstream_seconds_count", grpc_code="NOT_FOUND") >= 1
    assert value(samples, "panoptic_gateway_own_seconds_count") >= 2
    assert value(samples, "panoptic_gateway_rate_limited_total") >= 0
    assert value(samples, "panoptic_gateway_routes") == 12


# --- a redeployed retriever --------------------------------------------------------------------


def _api_with_extra_method(binding: str) -> descriptor_pool.DescriptorPool:
    """The packaged API plus a `GetClaimSummary` method bound by `binding`."""
    files = packaged_files()
    pool = descriptor_pool.DescriptorPool()
    for file in files:
        if file.name == "panoptic/v1/retriever_service.proto":
            changed = descriptor_pb2.FileDescriptorProto()
            changed.CopyFrom(file)
            method = changed.service[0].method.add(
                name="GetClaimSummary",
                input_type=".panoptic.v1.GetClaimRequest",
                output_type=".panoptic.v1.Claim",
            )
            method.options.idempotency_level = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
            method.options.Extensions[annotations_pb2.http].CopyFrom(
                text_format.Parse(binding, http_pb2.HttpRule())
            )
            file = changed
        pool.Add(file)
    return pool


def _serve_api(port: int, pool: descriptor_pool.DescriptorPool) -> grpc.Server:
    """A server whose reflection describes `pool` and whose GetClaimSummary answers a claim."""

    def summary(request_bytes: bytes, context: object) -> bytes:
        request = retriever_service_pb2.GetClaimRequest.FromString(request_bytes)
        return resources_pb2.Claim(id=request.claim_id, text="summary").SerializeToString()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "panoptic.v1.RetrieverService",
                {"GetClaimSummary": grpc.unary_unary_rpc_method_handler(summary)},
            )
        ]
    )
    reflection.enable_server_reflection(
        ["panoptic.v1.RetrieverService", reflection.SERVICE_NAME], server, pool=pool
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def test_redeployed_api_is_followed_and_unsafe_changes_refused(tmp_path: Path) -> None:
    """A new GET method appears within the refresh interval; a new POST binding is refused."""
    port = free_port()
    env = service_env(
        "postgresql://unused@127.0.0.1:1/unused",
        tmp_path,
        PANOPTIC_GATEWAY_REFLECTION_REFRESH_SECONDS="0.3",
    )
    env["PANOPTIC_RETRIEVER_ADDRESS"] = f"127.0.0.1:{port}"
    url = base_url(env)
    with fake_retriever(port):
        process = PanopticProcess(("gateway",), env, tmp_path / "gateway.log").start()
        wait_for(lambda: answers_200(url + "/openapi.json"))
    try:
        assert (
            "/v1/claims/{claim_id}/summary" not in httpx.get(url + "/openapi.json").json()["paths"]
        )
        server = _serve_api(port, _api_with_extra_method('get: "/v1/claims/{claim_id}/summary"'))
        try:
            wait_for(lambda: "/v1/claims/{claim_id}/summary" in _paths(url), timeout=15)
            summary = httpx.get(url + "/v1/claims/c-9/summary")
            assert (summary.status_code, summary.json()["text"]) == (200, "summary")
        finally:
            server.stop(None).wait()
        unsafe = _api_with_extra_method('post: "/v1/claims/{claim_id}/summary" body: "*"')
        server = _serve_api(port, unsafe)
        try:
            wait_for(lambda: "refusing the retriever's new API" in process.output, timeout=15)
            assert "/v1/claims/{claim_id}/summary" in _paths(url)
            post = httpx.post(url + "/v1/claims/c-9/summary", json={})
            assert post.status_code == 405
        finally:
            server.stop(None).wait()
    finally:
        process.stop()
    lines = [json.loads(line) for line in process.output.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["event"] == "http"]
    summary_line = next(line for line in requests if line["path"] == "/v1/claims/c-9/summary")
    assert summary_line["route"] == "/v1/claims/{claim_id}/summary"
    assert summary_line["status"] == 200
    assert {"duration_ms", "upstream_ms", "request_id", "client"} <= summary_line.keys()
    assert [line["event"] for line in lines][-1] == "stopped"


def _paths(url: str) -> list[str]:
    return list(httpx.get(url + "/openapi.json", timeout=5).json()["paths"])
