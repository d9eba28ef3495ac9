"""The gateway exposes reads and nothing else: no path, method, content type or header reaches
the indexer, and a configuration that would expose anything else refuses to start.

The gateway runs in front of a real retriever; a listening socket sits on the indexer's
address so any connection the gateway made there would be seen, and the database's rows are
counted before and after.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest

from panoptic.core.db import DatabaseUrl
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc
from services.gateway.descriptors import PACKAGED_DESCRIPTOR_SET
from tests.support.gateway import (
    GatewayCorpus,
    base_url,
    descriptor_set_bytes,
    made_up_api,
    start_gateway,
)
from tests.support.processes import ConnectionTrap, PanopticProcess, service_env

pytestmark = pytest.mark.slow

INDEXER_PATHS = [
    "/panoptic.v1.IndexerService/IndexClaims",
    "/panoptic.v1.IndexerService/StreamIndexClaims",
    "/panoptic.v1.IndexerService/RetractClaim",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]
ROUTE_PATHS = ["/v1/claims", "/v1/claims/c-1", "/v1/claims:search", "/v1/actors/a/claims"]
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
GRPC_TYPES = [
    "application/grpc",
    "application/grpc+proto",
    "application/grpc+json",
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
]
# Paths that normalise (if a server did) to the indexer: encoded slashes and dot segments.
SNEAKY_PATHS = [
    "/panoptic.v1.IndexerService%2FIndexClaims",
    "/%2Fpanoptic.v1.IndexerService%2FIndexClaims",
    "/v1/claims/..%2F..%2Fpanoptic.v1.IndexerService%2FIndexClaims",
    "/v1/claims/../../panoptic.v1.IndexerService/IndexClaims",
    "/v1/claims/%2e%2e/%2e%2e/panoptic.v1.IndexerService/IndexClaims",
    "/v1/claims/./c-1",
    "/v1/./claims",
    "//panoptic.v1.IndexerService/IndexClaims",
    "/v1/claims/c-1/../../../panoptic.v1.IndexerService/RetractClaim",
    "/v1%2fclaims",
]


@pytest.fixture(scope="module")
def trap(gateway_env: dict[str, str]) -> Iterator[ConnectionTrap]:
    """Listens where the indexer would be, for the whole module."""
    with ConnectionTrap(int(gateway_env["PANOPTIC_INDEXER_PORT"])) as listener:
        yield listener


@pytest.fixture(scope="module")
def gateway(trap: ConnectionTrap, gateway: str) -> str:
    """The shared fixture's gateway (with a retriever behind it and some records, so that a
    write would have something to change), started once the trap listens."""
    return gateway


def raw_request(base: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Sends bytes exactly as written (no client-side path normalisation); status and body."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def row_counts(database_url: DatabaseUrl) -> tuple[int, ...]:
    """Rows in every table a write could touch."""
    connection = await asyncpg.connect(database_url.value)
    try:
        return tuple(
            [
                await connection.fetchval(f"SELECT count(*) FROM {table}")
                for table in ("claims", "claim_revisions", "actors", "topics", "claim_topics")
            ]
        )
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def attacks(gateway: str) -> list[tuple[str, int, bytes]]:
    """Every request that tries to write: (description, status, body)."""
    index_body = indexer_service_pb2.IndexClaimsRequest(request_id="x").SerializeToString()
    framed = b"\x00" + len(index_body).to_bytes(4, "big") + index_body
    results = []
    with httpx.Client(base_url=gateway, timeout=10) as client:
        for path in [*INDEXER_PATHS, *ROUTE_PATHS]:
            for method in [*WRITE_METHODS, "GET"]:
                for content_type in ["application/json", *GRPC_TYPES]:
                    response = client.request(
                        method,
                        path,
                        content=framed,
                        headers={"content-type": content_type, "te": "trailers"},
                    )
                    results.append(
                        (f"{method} {path} {content_type}", response.status_code, response.content)
                    )
            override = client.get(path, headers={"x-http-method-override": "POST"})
            results.append((f"GET {path} override", override.status_code, override.content))
    for path in SNEAKY_PATHS:
        for method in ("GET", "POST"):
            head = (
                f"{method} {path} HTTP/1.1\nHost: x\nContent-Type: application/grpc\n"
                f"Content-Length: {len(framed)}\nConnection: close\n"
            )
            status, body = raw_request(gateway, head, framed)
            results.append((f"{method} {path}", status, body))
    return results


def test_no_request_reaches_a_write(attacks: list[tuple[str, int, bytes]]) -> None:
    """Writes, gRPC and gRPC-Web bodies, indexer paths and disguised paths are all refused.

    A method-override header changes nothing: the GET stays a read of the route it names.
    """
    allowed = {400, 404, 405, 415}
    wrong = [
        (what, status)
        for what, status, _ in attacks
        if status not in allowed and not (what.endswith(" override") and status == 200)
    ]
    assert not wrong
    for what, status, body in attacks:
        if status != 200:
            assert body.startswith(b'{"error":{"code":' + str(status).encode()), what


def test_grpc_content_types_are_refused_as_such(attacks: list[tuple[str, int, bytes]]) -> None:
    """Any gRPC or gRPC-Web content type is 415, whatever the method or path."""
    for what, status, _ in attacks:
        if any(what.endswith(" " + kind) for kind in GRPC_TYPES):
            assert status == 415, what


def test_nothing_was_written_and_the_indexer_was_never_contacted(
    attacks: list[tuple[str, int, bytes]], trap: ConnectionTrap
) -> None:
    """After all attempts, no connection reached the indexer's address."""
    assert len(attacks) > 300
    assert trap.connections == 0


@pytest.mark.asyncio(loop_scope="session")
async def test_the_database_is_unchanged_by_the_attempts(
    database_url: DatabaseUrl, gateway: str, corpus: GatewayCorpus
) -> None:
    """Row counts of every written table are the same before and after another round."""
    before = await row_counts(database_url)
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        for path in INDEXER_PATHS + ROUTE_PATHS:
            for method in WRITE_METHODS:
                response = await client.request(method, path, json={"claims": [{"id": "x"}]})
                assert response.status_code in (404, 405)
    assert await row_counts(database_url) == before
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        claim = (await client.get(f"/v1/claims/{corpus.claim(1)}")).json()
    assert claim["revision"] == "1"


def test_a_grpc_client_gets_nothing_from_the_gateway_port(gateway: str) -> None:
    """The port speaks HTTP/1.1 only: a gRPC call to the indexer through it fails."""
    address = gateway.removeprefix("http://")
    with grpc.insecure_channel(address) as channel:
        stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            stub.IndexClaims(indexer_service_pb2.IndexClaimsRequest(request_id="x"), timeout=3)
    assert failure.value.code() != grpc.StatusCode.OK


def refused_start(tmp_path: Path, **overrides: str) -> str:
    """Runs `panoptic gateway` that must exit with code 2; its output."""
    env = service_env("postgresql://unused@127.0.0.1:1/unused", tmp_path, **overrides)
    process = PanopticProcess(("gateway",), env, tmp_path / "gateway.log").start()
    code = process.wait(timeout=60)
    assert code == 2, process.output
    return process.output


def test_exposing_the_indexer_refuses_to_start(tmp_path: Path) -> None:
    """Allow-listing IndexerService: one line naming the unmarked method, exit code 2."""
    output = refused_start(
        tmp_path,
        PANOPTIC_GATEWAY_SERVICES='["panoptic.v1.IndexerService"]',
        PANOPTIC_GATEWAY_DESCRIPTOR_SOURCE=str(PACKAGED_DESCRIPTOR_SET),
    )
    assert "panoptic: error: panoptic.v1.IndexerService.IndexClaims is not marked" in output
    assert "NO_SIDE_EFFECTS" in output


@pytest.mark.parametrize(
    ("binding", "complaint"),
    [('post: "/v1/things" body: "*"', "has a POST binding"), ('get: "/v1/things"', None)],
)
def test_a_service_with_a_write_binding_refuses_to_start(
    tmp_path: Path, binding: str, complaint: str | None
) -> None:
    """A descriptor set whose service has a POST binding refuses; the GET-only twin starts."""
    api = made_up_api(
        f"""
        syntax: "proto3" package: "test.v1" dependency: "google/api/annotations.proto"
        message_type {{ name: "Thing" }}
        service {{
          name: "Things"
          method {{
            name: "Make" input_type: ".test.v1.Thing" output_type: ".test.v1.Thing"
            options {{ idempotency_level: NO_SIDE_EFFECTS [google.api.http] {{ {binding} }} }}
          }}
        }}
        """
    )
    path = tmp_path / "things.binpb"
    path.write_bytes(descriptor_set_bytes(api))
    settings = {
        "PANOPTIC_GATEWAY_SERVICES": '["test.v1.Things"]',
        "PANOPTIC_GATEWAY_DESCRIPTOR_SOURCE": str(path),
    }
    if complaint is not None:
        assert complaint in refused_start(tmp_path, **settings)
        return
    env = service_env("postgresql://unused@127.0.0.1:1/unused", tmp_path, **settings)
    process = start_gateway(env, tmp_path / "gateway.log", probe="/openapi.json")
    try:
        paths = httpx.get(base_url(env) + "/openapi.json", timeout=5).json()["paths"]
        assert "/v1/things" in paths
    finally:
        assert process.stop() == 0
