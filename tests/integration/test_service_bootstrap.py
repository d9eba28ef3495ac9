"""The shared gRPC bootstrap, seen from outside: real service processes on loopback."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from panoptic.core.db import DatabaseUrl
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc
from tests.support.processes import (
    PanopticProcess,
    grpc_serving,
    running_grpc_service,
    service_env,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def suite_env(
    database_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """One environment (ports, token, database) for the services this module starts."""
    return service_env(database_url.value, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def retriever(suite_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a running `panoptic retriever`."""
    log = tmp_path_factory.mktemp("logs") / "retriever.log"
    with running_grpc_service("retriever", suite_env, log) as address:
        yield address


@pytest.fixture(scope="module")
def indexer(suite_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a running `panoptic indexer`."""
    log = tmp_path_factory.mktemp("logs") / "indexer.log"
    with running_grpc_service("indexer", suite_env, log) as address:
        yield address


def _list_services(address: str, metadata: tuple[tuple[str, str], ...] = ()) -> set[str]:
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


def test_indexer_lists_its_services_with_the_token(indexer: str, suite_env: dict[str, str]) -> None:
    """With the bearer token, reflection on the indexer names the IndexerService."""
    token = suite_env["PANOPTIC_INDEXER_TOKEN"]
    services = _list_services(indexer, (("authorization", f"Bearer {token}"),))
    assert "panoptic.v1.IndexerService" in services


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer wrong-token"),), (("authorization", "test-token"),)],
    ids=["missing", "wrong", "not-bearer"],
)
def test_indexer_refuses_calls_without_the_right_token(
    indexer: str, metadata: tuple[tuple[str, str], ...]
) -> None:
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
    retriever: str, suite_env: dict[str, str]
) -> None:
    """A caller's x-request-id comes back in the trailers, and the call shows in /metrics."""
    with grpc.insecure_channel(retriever) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        _, call = stub.Check.with_call(
            health_pb2.HealthCheckRequest(), metadata=(("x-request-id", "req-abc-123"),), timeout=5
        )
    assert ("x-request-id", "req-abc-123") in tuple(call.trailing_metadata())
    port = suite_env["PANOPTIC_RETRIEVER_METRICS_PORT"]
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
