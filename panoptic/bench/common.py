"""What every benchmark needs: a server, fresh databases, service processes, corpora, load.

Benchmarks run the suite's real processes (`panoptic indexer`, `panoptic retriever`, ...) on
loopback, against databases they create and drop, so figures describe what users run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from google.protobuf import json_format

from panoptic.core import migrate
from panoptic.core.db import DatabaseUrl
from panoptic.core.health import wait_until_http_ready, wait_until_serving
from panoptic.demo import generate_corpus
from panoptic.v1 import indexer_service_pb2, resources_pb2

BENCH_TOKEN = "bench-token-not-secret-0123456789"  # noqa: S105 - a throwaway local indexer's


@dataclass(frozen=True)
class BenchServer:
    """The PostgreSQL a benchmark runs on, and its log when the benchmark started it."""

    url: DatabaseUrl
    log_file: Path | None


@contextlib.asynccontextmanager
async def benchmark_server(database_url: DatabaseUrl | None) -> AsyncIterator[DatabaseUrl]:
    """A server to benchmark on: the one given, or a throwaway embedded PostgreSQL."""
    async with benchmark_server_with_log(database_url) as server:
        yield server.url


@contextlib.asynccontextmanager
async def benchmark_server_with_log(database_url: DatabaseUrl | None) -> AsyncIterator[BenchServer]:
    """As `benchmark_server`, with the server log of an embedded server (for its plans)."""
    if database_url is not None:
        yield BenchServer(database_url, None)
        return
    from panoptic.core.embedded_pg import EmbeddedPostgres

    directory = Path(tempfile.mkdtemp(prefix="panoptic-bench-"))
    server = EmbeddedPostgres(directory / "data")
    try:
        server.ensure_started()
        yield BenchServer(DatabaseUrl(server.url()), server.log_file)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def free_ports() -> Iterator[int]:
    """Ports nothing listens on right now, one after another, never the same one twice."""
    import socket

    given: set[int] = set()
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in given:
            given.add(port)
            yield port


async def fresh_database(server: DatabaseUrl, name: str) -> DatabaseUrl:
    """A new, migrated database (an old one of that name is dropped first)."""
    connection = await asyncpg.connect(server.value)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = server.with_database(name)
    await migrate.upgrade_async(url)
    return url


async def drop_database(server: DatabaseUrl, url: DatabaseUrl) -> None:
    """Drops a database made by `fresh_database`."""
    connection = await asyncpg.connect(server.value)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await connection.close()


@dataclass
class ServiceProcess:
    """A `panoptic <service>` process run for a benchmark.

    Ready when its gRPC health check says SERVING, or, for an HTTP service, when
    `GET ready_path` answers 200.
    """

    service: str
    url: DatabaseUrl
    port: int
    metrics_port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    ready_path: str | None = None

    @property
    def address(self) -> str:
        """Where it listens."""
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> ServiceProcess:
        prefix = f"PANOPTIC_{self.service.upper()}"
        env = {
            **os.environ,
            "DATABASE_URL": self.url.value,
            "PANOPTIC_INDEXER_TOKEN": BENCH_TOKEN,
            f"{prefix}_PORT": str(self.port),
            f"{prefix}_METRICS_PORT": str(self.metrics_port),
            "PANOPTIC_BIND_HOST": "127.0.0.1",
            "PANOPTIC_LOG_LEVEL": "warning",
            "PANOPTIC_ENV": "development",
            **self.extra_env,
        }
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "panoptic", self.service, env=env
        )
        try:
            if self.ready_path is None:
                await wait_until_serving(self.address, timeout=60)
            else:
                await wait_until_http_ready("127.0.0.1", self.port, self.ready_path, timeout=60)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()

    def peak_rss_mib(self) -> float:
        """The process's peak resident set size (VmHWM) so far, in MiB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0


def corpus_requests(
    claims: int, batch_size: int, seed: int
) -> Iterator[indexer_service_pb2.IndexClaimsRequest]:
    """The demo corpus as IndexClaims requests, lazily (actors and topics ride in batch 0)."""
    current = indexer_service_pb2.IndexClaimsRequest(request_id=f"bench-{seed}-0")
    index = 0
    for record in generate_corpus(seed=seed, claims=claims):
        message = json_format.ParseDict(record, resources_pb2.IndexRecord())
        kind = message.WhichOneof("record")
        if kind == "claim":
            current.claims.append(message.claim)
            if len(current.claims) == batch_size:
                yield current
                index += 1
                current = indexer_service_pb2.IndexClaimsRequest(request_id=f"bench-{seed}-{index}")
        elif kind == "actor":
            current.actors.append(message.actor)
        else:
            current.topics.append(message.topic)
    if current.claims or current.actors or current.topics:
        yield current


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of latencies in seconds, as milliseconds."""
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []

    def at(percent: int) -> float:
        return 1000 * (cuts[percent - 1] if cuts else ordered[0])

    return {"p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99)}


def as_json(value: Any) -> Any:
    """Dataclasses and nested values as JSON-ready data."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return as_json(asdict(value))
    if isinstance(value, dict):
        return {str(key): as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value
