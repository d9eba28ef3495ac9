"""GetClaim and search served by a streaming replica next to the same reads on the primary.

At each size, once the replica has replayed everything: two real retrievers, one reading the
primary and one given only the replica (`PANOPTIC_REPLICA_URLS`), take the same sequential
calls, alternating, then the same h2load runs, in interleaved rounds whose order alternates.
Each server is loaded alone in its turn, so its figure is what one server (with a retriever in
front of it) serves on this machine.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from panoptic.bench.common import ServiceProcess, metric_samples, percentiles
from panoptic.bench.read import Inputs
from panoptic.bench.replication import LagFigures
from panoptic.bench.report.capacity import Capacity
from panoptic.bench.report.measure import (
    Throughput,
    arguments_by_endpoint,
    grpc_request,
    load_arguments,
    throughput,
)
from panoptic.core.db import DatabaseUrl
from panoptic.suite.embedded_pg import EmbeddedPostgres
from panoptic.suite.progress import ProgressReporter
from panoptic.v1 import retriever_service_pb2_grpc

REPLICA_ENDPOINTS = ("GetClaim", "SearchClaims common word")
SERVERS = ("primary", "replica")
LATENCY_WARM_UP_CALLS = 10
# Reads on the replica: never taken out for lagging while it is measured.
MEASURED_MAX_LAG_SECONDS = "3600"


@dataclass(frozen=True)
class ServerReads:
    """One endpoint's reads served by one server."""

    rounds_rps: list[float]
    """Requests/s of each throughput round, in order."""
    errors: int
    p50_ms: float
    p95_ms: float
    calls: int

    @property
    def capacity(self) -> Capacity:
        """The rounds' median and spread."""
        return Capacity.of(self.rounds_rps)


@dataclass(frozen=True)
class ReplicaFigures:
    """At one size: each endpoint's reads on each server, and the replica's state."""

    reads: dict[str, dict[str, ServerReads]]
    """By server (`primary`, `replica`), then endpoint."""
    replica_share: float
    """The share of the replica retriever's reads that the replica served (1.0: all)."""
    catch_up_seconds: float
    """How long the replica took, after loading and settling, to replay all the primary had."""
    load_lag: LagFigures | None
    """The replica's replay lag while this size was loaded, at the primary's ingest rate."""
    seconds: float
    """How long measuring the replica took, at this size."""


async def measure_replica_reads(
    url: DatabaseUrl,
    replica: EmbeddedPostgres,
    inputs: Inputs,
    *,
    rounds: int,
    seconds: float,
    calls: int,
    seed: int,
    ports: Iterator[int],
) -> tuple[dict[str, dict[str, ServerReads]], float]:
    """Each endpoint's latency and throughput rounds on each server, and the share of the
    replica retriever's reads the replica served."""
    only_replica = {
        "PANOPTIC_REPLICA_URLS": json.dumps([replica.url(database=url.database)]),
        "PANOPTIC_REPLICA_MAX_LAG_SECONDS": MEASURED_MAX_LAG_SECONDS,
    }
    steps = len(REPLICA_ENDPOINTS) * len(SERVERS) * (rounds + 1)
    with ProgressReporter("replica against primary", steps, unit="steps") as progress:
        async with (
            ServiceProcess("retriever", url, next(ports), next(ports)) as on_primary,
            ServiceProcess("retriever", url, next(ports), next(ports), only_replica) as on_replica,
        ):
            await _until_replica_serves(on_replica)
            before = reads_by_server(on_replica.metrics_port)
            addresses = {"primary": on_primary.address, "replica": on_replica.address}
            samples = await _paired_latency(addresses, inputs, calls, seed)
            progress.advance(len(REPLICA_ENDPOINTS) * len(SERVERS))
            rates = await _interleaved_rounds(addresses, inputs, rounds, seconds, progress)
            after = reads_by_server(on_replica.metrics_port)
    served = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
    total = sum(served.values())
    share = (total - served.get("primary", 0.0)) / total if total else 0.0
    reads = {
        server: {
            endpoint: _server_reads(rates[server][endpoint], samples[server][endpoint])
            for endpoint in REPLICA_ENDPOINTS
        }
        for server in SERVERS
    }
    return reads, share


def _server_reads(runs: list[Throughput], samples: list[float]) -> ServerReads:
    cuts = percentiles(samples)
    return ServerReads(
        [run.requests_per_second for run in runs],
        sum(run.errors for run in runs),
        cuts["p50_ms"],
        cuts["p95_ms"],
        len(samples),
    )


async def _interleaved_rounds(
    addresses: dict[str, str],
    inputs: Inputs,
    rounds: int,
    seconds: float,
    progress: ProgressReporter,
) -> dict[str, dict[str, list[Throughput]]]:
    """`rounds` h2load runs per endpoint and server; which server goes first alternates by
    round and endpoint, so neither always runs after the other has warmed the machine."""
    rates: dict[str, dict[str, list[Throughput]]] = {
        server: {endpoint: [] for endpoint in REPLICA_ENDPOINTS} for server in SERVERS
    }
    for number in range(rounds):
        for index, endpoint in enumerate(REPLICA_ENDPOINTS):
            arguments = load_arguments(endpoint, inputs)
            order = SERVERS if (number + index) % 2 == 0 else SERVERS[::-1]
            for server in order:
                run = await asyncio.to_thread(
                    throughput, "grpc", addresses[server], endpoint, arguments, seconds
                )
                rates[server][endpoint].append(run)
                progress.advance()
    return rates


async def _paired_latency(
    addresses: dict[str, str], inputs: Inputs, calls: int, seed: int
) -> dict[str, dict[str, list[float]]]:
    """Seconds per sequential call, each drawn argument sent to both servers in alternating
    order, after LATENCY_WARM_UP_CALLS uncounted pairs per endpoint."""
    rng = random.Random(seed)
    pools = arguments_by_endpoint(inputs)
    samples: dict[str, dict[str, list[float]]] = {
        server: {endpoint: [] for endpoint in REPLICA_ENDPOINTS} for server in SERVERS
    }
    channels = {server: grpc.aio.insecure_channel(address) for server, address in addresses.items()}
    try:
        stubs = {
            server: retriever_service_pb2_grpc.RetrieverServiceStub(channel)
            for server, channel in channels.items()
        }
        for endpoint in REPLICA_ENDPOINTS:
            for number in range(LATENCY_WARM_UP_CALLS + calls):
                method, request = grpc_request(endpoint, rng.choice(pools[endpoint]))
                for server in SERVERS if number % 2 == 0 else SERVERS[::-1]:
                    started = time.perf_counter()
                    await getattr(stubs[server], method)(request, timeout=60)
                    if number >= LATENCY_WARM_UP_CALLS:
                        samples[server][endpoint].append(time.perf_counter() - started)
    finally:
        await asyncio.gather(*(channel.close() for channel in channels.values()))
    return samples


async def _until_replica_serves(retriever: ServiceProcess, timeout: float = 60) -> None:
    """Calls the retriever until its router sends reads to the replica (its first check of the
    replica may come after it reports SERVING)."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(retriever.address) as channel:
        stub = retriever_service_pb2_grpc.RetrieverServiceStub(channel)
        while True:
            method, request = grpc_request("SearchClaims common word", "percent")
            await getattr(stub, method)(request, timeout=60)
            served = reads_by_server(retriever.metrics_port)
            if any(server != "primary" and count > 0 for server, count in served.items()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica served no read within {timeout:g} s")
            await asyncio.sleep(0.1)


def reads_by_server(metrics_port: int) -> dict[str, float]:
    """A retriever's `panoptic_db_reads_total`, by the server that served the reads."""
    counts: dict[str, float] = {}
    for sample in metric_samples(f"http://127.0.0.1:{metrics_port}/metrics"):
        if sample.name == "panoptic_db_reads_total":
            server = sample.labels.get("server", "")
            counts[server] = counts.get(server, 0.0) + sample.value
    return counts


def replica_json(figures: ReplicaFigures) -> dict[str, Any]:
    """One size's replica figures as JSON-ready values, each server's capacity included."""
    from panoptic.bench.common import as_json

    data: dict[str, Any] = as_json(figures)
    for server, by_endpoint in figures.reads.items():
        for endpoint, reads in by_endpoint.items():
            data["reads"][server][endpoint]["capacity"] = as_json(reads.capacity)
    return data


def replica_from_json(data: dict[str, Any]) -> ReplicaFigures:
    """`replica_json`'s figures read back."""
    reads = {
        server: {
            endpoint: ServerReads(
                list(values["rounds_rps"]),
                values["errors"],
                values["p50_ms"],
                values["p95_ms"],
                values["calls"],
            )
            for endpoint, values in by_endpoint.items()
        }
        for server, by_endpoint in data["reads"].items()
    }
    lag = data.get("load_lag")
    return ReplicaFigures(
        reads,
        data["replica_share"],
        data["catch_up_seconds"],
        LagFigures(**lag) if lag else None,
        data["seconds"],
    )
