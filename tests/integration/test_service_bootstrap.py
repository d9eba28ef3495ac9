"""The shared gRPC and HTTP bootstraps, seen from outside: real service processes on loopback,
and the HTTP bootstrap's failed starts in-process."""

from __future__ import annotations

import functools
import json
import signal
import socket
import urllib.request
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from starlette.types import ASGIApp

from panoptic.core.db import DatabaseUrl
from panoptic.core.http_server import HttpServerSpec, serve_http
from panoptic.core.ports import PortInUse
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc
from tests.support.dashboard import dashboard_env
from tests.support.indexer import Metadata
from tests.support.processes import (
    PanopticProcess,
    answers_200,
    free_port,
    grpc_serving,
    run_panoptic,
    service_env,
    start_serving,
    wait_for,
)

pytestmark = pytest.mark.slow


def _list_services(address: str, metadata: Metadata = ()) -> set[str]:
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = stub.ServerReflectionInfo(iter([request]), timeout=5, metadata=metadata)
        return {
            service.name for reply in replies for service in reply.list_services_response.service
        }


def test_retriever_lists_its_services_through_reflection(retriever: str) -> None:
    """Reflection names the retriever's API, health and reflection itself."""
    assert _list_services(retriever) >= {
        "panoptic.v1.RetrieverService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


def test_indexer_answers_health_without_a_token(indexer: str) -> None:
    """Probes need no secret: the indexer's health service is exempt from authentication."""
    with grpc.insecure_channel(indexer) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(
            health_pb2.HealthCheckRequest(service="panoptic.v1.IndexerService"), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_indexer_lists_its_services_with_the_token(indexer: str, token: Metadata) -> None:
    """With the bearer token, reflection on the indexer names the IndexerService."""
    assert "panoptic.v1.IndexerService" in _list_services(indexer, token)


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer wrong-token"),), (("authorization", "test-token"),)],
    ids=["missing", "wrong", "not-bearer"],
)
def test_indexer_refuses_calls_without_the_right_token(indexer: str, metadata: Metadata) -> None:
    """A missing, wrong or malformed token is UNAUTHENTICATED before anything runs."""
    with grpc.insecure_channel(indexer) as channel:
        stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            stub.IndexClaims(
                indexer_service_pb2.IndexClaimsRequest(request_id="r-1"),
                metadata=metadata,
                timeout=5,
            )
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_request_id_is_echoed_and_calls_are_counted(
    retriever: str, services_env: dict[str, str]
) -> None:
    """A caller's x-request-id comes back in the trailers, and the call shows in /metrics."""
    with grpc.insecure_channel(retriever) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        _, call = stub.Check.with_call(
            health_pb2.HealthCheckRequest(), metadata=(("x-request-id", "req-abc-123"),), timeout=5
        )
    assert ("x-request-id", "req-abc-123") in tuple(call.trailing_metadata())
    port = services_env["PANOPTIC_RETRIEVER_METRICS_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="Check",'
        'grpc_service="grpc.health.v1.Health",grpc_type="unary"}'
    ) in body
    assert "grpc_server_handling_seconds_bucket" in body


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_gracefully_with_a_summary_line_per_rpc(
    database_url: DatabaseUrl, tmp_path: Path, workers: int
) -> None:
    """SIGTERM ends the service with exit code 0 after one JSON summary line per RPC. With
    several workers, each stops gracefully, and the main process last."""
    env = service_env(database_url.value, tmp_path, PANOPTIC_RETRIEVER_WORKERS=str(workers))
    process = PanopticProcess(("retriever",), env, tmp_path / "retriever.log").start()
    address = f"127.0.0.1:{env['PANOPTIC_RETRIEVER_PORT']}"

    def serving() -> int:
        return process.output.count('"event": "serving"')

    try:
        wait_for(lambda: grpc_serving(address) and serving() == workers)
    finally:
        code = process.stop(signal.SIGTERM)
    assert code == 0
    lines = [json.loads(line) for line in process.output.splitlines() if line.startswith("{")]
    rpc_lines = [line for line in lines if line["event"] == "rpc"]
    assert rpc_lines, process.output
    assert {"method", "status", "duration_ms", "request_id"} <= rpc_lines[-1].keys()
    assert rpc_lines[-1]["method"] == "grpc.health.v1.Health/Check"
    # Each process's own stop, keyed by its worker number (none for the main process).
    stops = [
        (line.get("worker"), line["event"])
        for line in lines
        if line["event"] in ("stopping", "stopped")
    ]
    processes = {None} if workers == 1 else {None, *range(workers)}
    for key in processes:
        assert [event for worker, event in stops if worker == key] == ["stopping", "stopped"]
    assert stops[-1] == (None, "stopped")


# --- the HTTP bootstrap: the gateway and the dashboard start, serve and stop the same way ---


def _http_env(service: str, services_env: dict[str, str]) -> dict[str, str]:
    """The environment of one HTTP service, with its own ports (the dashboard with a login)."""
    env = {
        **services_env,
        f"PANOPTIC_{service.upper()}_PORT": str(free_port()),
        f"PANOPTIC_{service.upper()}_METRICS_PORT": str(free_port()),
    }
    return dashboard_env(env) if service == "dashboard" else env


@pytest.mark.parametrize("service", ["gateway", "dashboard"])
def test_http_services_serve_metrics_and_stop_gracefully_the_same_way(
    service: str, retriever: str, services_env: dict[str, str], tmp_path: Path
) -> None:
    """Each HTTP service logs one `serving` line naming its address and metrics port, counts
    its requests by route on its metrics port, and on SIGTERM exits 0 with `stopped` last."""
    env = _http_env(service, services_env)
    port, metrics_port = (
        env[f"PANOPTIC_{service.upper()}_PORT"],
        env[f"PANOPTIC_{service.upper()}_METRICS_PORT"],
    )
    ready = functools.partial(answers_200, f"http://127.0.0.1:{port}/readyz")
    process = start_serving((service,), env, tmp_path / f"{service}.log", ready)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    finally:
        code = process.stop(signal.SIGTERM)
    assert code == 0, process.output
    assert 'http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in metrics
    assert 'http_request_duration_seconds_count{route="/healthz"}' in metrics
    lines = [json.loads(line) for line in process.output.splitlines() if line.startswith("{")]
    [serving] = [line for line in lines if line["event"] == "serving"]
    assert serving["service"] == service
    assert serving["address"] == f"127.0.0.1:{port}"
    assert serving["metrics_port"] == int(metrics_port)
    assert (lines[-1]["event"], lines[-1]["service"]) == ("stopped", service)


@pytest.mark.parametrize("service", ["gateway", "dashboard"])
def test_http_services_refuse_a_taken_port_before_opening_anything(
    service: str, tmp_path: Path
) -> None:
    """A taken HTTP port is refused in one line naming the variable that moves it, before the
    service opens anything: here neither a retriever nor a database answers, and it would
    wait for them (or fail on them) were the port checked later."""
    nobody = f"127.0.0.1:{free_port()}"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = service_env(
            f"postgresql://nobody@{nobody}/panoptic",
            tmp_path,
            **{f"PANOPTIC_{service.upper()}_PORT": str(port)},
            PANOPTIC_RETRIEVER_ADDRESS=nobody,
        )
        result = run_panoptic(service, env=env)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("panoptic: error:")]
    assert len(errors) == 1, result.stderr
    assert f"port {port}" in errors[0]
    assert f"PANOPTIC_{service.upper()}_PORT" in errors[0]
    assert '"event": "serving"' not in result.stdout + result.stderr


class _Resources:
    """What a spec's hooks did, in order."""

    def __init__(self, fail_start: bool = False) -> None:
        self.events: list[str] = []
        self.fail_start = fail_start

    async def open(self) -> None:
        self.events.append("open")
        if self.fail_start:
            raise ConnectionRefusedError("the database is down")

    async def close(self) -> None:
        self.events.append("close")


def _spec(resources: _Resources, port: int, metrics_port: int) -> HttpServerSpec:
    def no_app() -> ASGIApp:
        raise AssertionError("the app is built only once the service has started")

    return HttpServerSpec(
        name="probe",
        host="127.0.0.1",
        port=port,
        metrics_port=metrics_port,
        app=no_app,
        on_start=resources.open,
        on_stop=resources.close,
    )


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.asyncio
async def test_a_failed_start_closes_what_it_opened_and_serves_nothing() -> None:
    """Resources that fail to open are closed (the hook sees what was half opened), the
    error goes on to the command line, and neither the app nor `/metrics` is served."""
    resources = _Resources(fail_start=True)
    metrics_port = free_port()
    with pytest.raises(ConnectionRefusedError):
        await serve_http(_spec(resources, free_port(), metrics_port))
    assert resources.events == ["open", "close"]
    assert _bindable(metrics_port)


@pytest.mark.asyncio
async def test_a_taken_port_is_refused_before_anything_opens() -> None:
    """A taken HTTP port is `PortInUse` naming the service's variable; nothing was opened."""
    resources = _Resources()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(PortInUse, match="PANOPTIC_PROBE_PORT"):
            await serve_http(_spec(resources, port, free_port()))
    assert "open" not in resources.events
