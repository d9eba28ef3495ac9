"""What `panoptic bench report` measures at each size, besides `bench read`'s loading and plans.

Latency of every read over gRPC and through the REST gateway with the same varied arguments,
throughput of every endpoint over both protocols, the database's sizes, buffer cache hits and
settings, and the machine the figures come from.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
import grpc
from google.protobuf.message import Message

from panoptic.bench.common import LoadResult, h2load_grpc, run_h2load, side_by_side
from panoptic.bench.http_client import KeepAliveConnection
from panoptic.bench.read import COMMON_WORDS, ENDPOINTS, RARE_WORDS, Inputs
from panoptic.core.db import DatabaseUrl
from panoptic.core.errors import PanopticError
from panoptic.v1 import retriever_service_pb2 as pb
from panoptic.v1 import retriever_service_pb2_grpc

PROTOCOLS = ("grpc", "http")
# Every request asks past the gateway's response cache (which the report also turns off), so
# HTTP figures include the retriever and the database, and accepts what a phone accepts.
HTTP_HEADERS = {"Cache-Control": "no-cache", "Accept-Encoding": "gzip, br"}
# Load: 16 requests in flight over either protocol, from LOAD_PROCESSES h2load processes that
# each send one argument (h2load repeats a single request body).
CONNECTIONS = 16
LOAD_PROCESSES = 4
# The tables the six reads touch; their sum (heap, TOAST and indexes) is the read set.
READ_TABLES = (
    "claims",
    "claim_topics",
    "actors",
    "topics",
    "actor_day_counts",
    "actor_topic_day_counts",
)
_SERVICE = "/panoptic.v1.RetrieverService/"
# Calls per endpoint before the measured ones: connections, prepared statements, caches.
WARM_UP_CALLS = 10


def arguments_by_endpoint(inputs: Inputs) -> dict[str, Sequence[Any]]:
    """Where each endpoint's arguments come from, in the order `bench read` draws them."""
    return {
        "GetClaim": inputs.claim_ids,
        "ListClaims actor+topic": inputs.actor_topic_pairs,
        "SearchClaims common word": COMMON_WORDS,
        "SearchClaims rare word": RARE_WORDS,
        "ListActors fuzzy": inputs.misspelled_names,
        "GetActorTimeline": inputs.busy_actors,
    }


def http_target(endpoint: str, argument: Any) -> str:
    """The gateway's path and query for one call of `endpoint`."""
    if endpoint == "GetClaim":
        return f"/v1/claims/{quote(argument, safe='')}"
    if endpoint == "ListClaims actor+topic":
        actor, topic = argument
        return "/v1/claims?" + urlencode({"actorId": actor, "topicId": topic, "pageSize": 20})
    if endpoint.startswith("SearchClaims"):
        return "/v1/claims:search?" + urlencode({"query": argument, "pageSize": 20})
    if endpoint == "ListActors fuzzy":
        return "/v1/actors?" + urlencode({"query": argument, "pageSize": 10})
    if endpoint == "GetActorTimeline":
        return f"/v1/actors/{quote(argument, safe='')}/timeline?interval=TIMELINE_INTERVAL_MONTH"
    raise ValueError(f"unknown endpoint {endpoint!r}")


def grpc_request(endpoint: str, argument: Any) -> tuple[str, Message]:
    """The retriever's method path and request for one call of `endpoint`."""
    if endpoint == "GetClaim":
        return "GetClaim", pb.GetClaimRequest(claim_id=argument)
    if endpoint == "ListClaims actor+topic":
        actor, topic = argument
        return "ListClaims", pb.ListClaimsRequest(actor_id=actor, topic_id=topic, page_size=20)
    if endpoint.startswith("SearchClaims"):
        return "SearchClaims", pb.SearchClaimsRequest(query=argument, page_size=20)
    if endpoint == "ListActors fuzzy":
        return "ListActors", pb.ListActorsRequest(query=argument, page_size=10)
    if endpoint == "GetActorTimeline":
        monthly = pb.TIMELINE_INTERVAL_MONTH
        return "GetActorTimeline", pb.GetActorTimelineRequest(actor_id=argument, interval=monthly)
    raise ValueError(f"unknown endpoint {endpoint!r}")


# --- latency ------------------------------------------------------------------------------------


async def paired_latency_samples(
    grpc_address: str, http_port: int, inputs: Inputs, calls_per_endpoint: int, seed: int
) -> dict[str, dict[str, list[float]]]:
    """Seconds per call, by protocol and endpoint: each argument sent once over each protocol.

    Calls are sequential (service time, not queueing). Every drawn argument goes to the
    retriever over gRPC and to the gateway over HTTP, in alternating order, so neither protocol
    always finds the pages the other just read in the cache. WARM_UP_CALLS pairs per endpoint
    come first and are not counted.
    """
    rng = random.Random(seed)
    arguments = arguments_by_endpoint(inputs)
    results: dict[str, dict[str, list[float]]] = {protocol: {} for protocol in PROTOCOLS}
    async with (
        grpc.aio.insecure_channel(grpc_address) as channel,
        KeepAliveConnection("127.0.0.1", http_port, HTTP_HEADERS) as connection,
    ):
        stub = retriever_service_pb2_grpc.RetrieverServiceStub(channel)

        async def over_grpc(endpoint: str, argument: Any) -> float:
            method, request = grpc_request(endpoint, argument)
            started = time.perf_counter()
            await getattr(stub, method)(request, timeout=60)
            return time.perf_counter() - started

        async def over_http(endpoint: str, argument: Any) -> float:
            target = http_target(endpoint, argument)
            started = time.perf_counter()
            status, body = await connection.get(target)
            elapsed = time.perf_counter() - started
            if status != 200:
                raise PanopticError(f"GET {target} answered {status}: {body[:300]!r}")
            return elapsed

        for endpoint in ENDPOINTS:
            samples: dict[str, list[float]] = {protocol: [] for protocol in PROTOCOLS}
            for number in range(WARM_UP_CALLS + calls_per_endpoint):
                argument = rng.choice(arguments[endpoint])
                order = PROTOCOLS if number % 2 == 0 else PROTOCOLS[::-1]
                for protocol in order:
                    call = over_grpc if protocol == "grpc" else over_http
                    elapsed = await call(endpoint, argument)
                    if number >= WARM_UP_CALLS:
                        samples[protocol].append(elapsed)
            for protocol in PROTOCOLS:
                results[protocol][endpoint] = samples[protocol]
    return results


# --- throughput ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    """One load generator run against one endpoint."""

    requests_per_second: float
    errors: int
    seconds: float
    load_generator_cpu: float
    """CPU the load generator used, in cores (1.0: one core busy all the time)."""


def load_arguments(endpoint: str, inputs: Inputs) -> list[Any]:
    """The arguments a throughput run sends, one per load generator process."""
    pool = arguments_by_endpoint(inputs)[endpoint]
    return [pool[number % len(pool)] for number in range(LOAD_PROCESSES)]


def throughput(
    protocol: str, address: str, endpoint: str, arguments: Sequence[Any], seconds: float
) -> Throughput:
    """Requests/s with 16 requests in flight for `seconds`, over varied arguments.

    h2load sends one request body per process, so one process per argument runs at once, each
    with 4 requests in flight: one h2c connection of 4 streams to the retriever (`grpc`), or 4
    keep-alive HTTP/1.1 connections to the gateway (`http`). Their rates add up.
    """
    streams = CONNECTIONS // len(arguments)

    def run(argument: Any) -> Callable[[], LoadResult]:
        if protocol == "grpc":
            method, request = grpc_request(endpoint, argument)
            body = request.SerializeToString()
            return functools.partial(
                h2load_grpc,
                address,
                _SERVICE + method,
                body,
                seconds=seconds,
                connections=1,
                streams=streams,
            )
        headers = [f"-H{name}: {value}" for name, value in HTTP_HEADERS.items()]
        url = f"http://{address}{http_target(endpoint, argument)}"
        options = ["--h1", "-c", str(streams), "-m", "1", *headers]
        return functools.partial(run_h2load, url, options, seconds=seconds)

    load = side_by_side([run(argument) for argument in arguments])
    return Throughput(load.requests_per_second, load.errors, seconds, load.load_generator_cpu)


def load_generator_missing() -> bool:
    """Whether h2load (Debian's nghttp2-client) is missing."""
    return shutil.which("h2load") is None


# --- the database --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSize:
    """One table's bytes on disk, by part."""

    name: str
    rows_estimate: int
    heap_bytes: int
    toast_bytes: int
    index_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class IndexSize:
    """One index's bytes on disk."""

    name: str
    table: str
    bytes: int


@dataclass(frozen=True)
class DatabaseSizes:
    """What the database occupies at one scale."""

    database_bytes: int
    tables: list[TableSize]
    indexes: list[IndexSize]

    @property
    def read_set_bytes(self) -> int:
        """Heap, TOAST and indexes of the tables the reads touch."""
        return sum(table.total_bytes for table in self.tables if table.name in READ_TABLES)

    @property
    def read_index_bytes(self) -> int:
        """The indexes of the tables the reads touch: what every lookup walks."""
        return sum(table.index_bytes for table in self.tables if table.name in READ_TABLES)


async def database_sizes(url: DatabaseUrl) -> DatabaseSizes:
    """Sizes of the database, of each table of the public schema and of each index."""
    connection = await asyncpg.connect(url.value)
    try:
        tables = [
            TableSize(
                row["name"],
                max(int(row["reltuples"]), 0),
                row["heap"],
                row["toast"],
                row["indexes"],
                row["total"],
            )
            for row in await connection.fetch(
                "SELECT c.relname AS name, c.reltuples, pg_relation_size(c.oid) AS heap,"
                " pg_total_relation_size(c.oid) - pg_relation_size(c.oid)"
                " - pg_indexes_size(c.oid) AS toast,"
                " pg_indexes_size(c.oid) AS indexes, pg_total_relation_size(c.oid) AS total"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'r'"
                " ORDER BY pg_total_relation_size(c.oid) DESC, c.relname"
            )
        ]
        indexes = [
            IndexSize(row["name"], row["tablename"], row["bytes"])
            for row in await connection.fetch(
                "SELECT i.indexname AS name, i.tablename,"
                " pg_relation_size(format('%I.%I', i.schemaname, i.indexname)::regclass) AS bytes"
                " FROM pg_indexes i WHERE i.schemaname = 'public' ORDER BY bytes DESC, name"
            )
        ]
        database = await connection.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await connection.close()
    return DatabaseSizes(database, tables, indexes)


async def block_counters(url: DatabaseUrl) -> tuple[int, int]:
    """Blocks found in shared_buffers and blocks read from the OS, so far, for this database.

    Backends report these when idle or at exit: read them after the measured processes stop.
    """
    connection = await asyncpg.connect(url.value)
    try:
        row = await connection.fetchrow(
            "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await connection.close()
    assert row is not None
    return int(row["blks_hit"]), int(row["blks_read"])


async def data_fingerprint(url: DatabaseUrl) -> str:
    """An md5 over every claim's id, actor, statement time (RFC 3339) and text, in id order.

    `corpus_fingerprint` computes the same from the generator, without a database.
    """
    connection = await asyncpg.connect(url.value)
    try:
        digest: str = await connection.fetchval(
            "SELECT md5(string_agg(md5(concat_ws('|', id, actor_id,"
            """ to_char(stated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), text)),"""
            """ '' ORDER BY id COLLATE "C")) FROM claims"""
        )
    finally:
        await connection.close()
    return digest


def corpus_fingerprint(records: Iterable[dict[str, Any]]) -> str:
    """`data_fingerprint` of the claims among demo-corpus records (proto3 JSON)."""
    rows = sorted(
        (claim["id"], claim["actorId"], claim["statedAt"], claim["text"])
        for record in records
        if (claim := record.get("claim")) is not None
    )
    inner = "".join(hashlib.md5("|".join(row).encode()).hexdigest() for row in rows)  # noqa: S324
    return hashlib.md5(inner.encode()).hexdigest()  # noqa: S324 - a fingerprint, not security


# Server settings that decide how far the data fits in memory and how queries are planned.
SETTINGS = (
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "random_page_cost",
    "max_connections",
    "max_parallel_workers_per_gather",
    "jit",
    "huge_pages",
    "synchronous_commit",
    "fsync",
)


@dataclass(frozen=True)
class ServerFacts:
    """The PostgreSQL the figures come from."""

    version: str
    settings: dict[str, str]
    shared_buffers_bytes: int
    effective_cache_size_bytes: int


async def server_facts(url: DatabaseUrl) -> ServerFacts:
    """Version and the settings in SETTINGS, as the server shows them."""
    connection = await asyncpg.connect(url.value)
    try:
        version = await connection.fetchval("SELECT version()")
        settings = {
            row["name"]: row["value"]
            for row in await connection.fetch(
                "SELECT name, current_setting(name) AS value FROM pg_settings"
                " WHERE name = ANY($1::text[]) ORDER BY name",
                list(SETTINGS),
            )
        }
        shared, cache = await connection.fetchrow(
            "SELECT pg_size_bytes(current_setting('shared_buffers')),"
            " pg_size_bytes(current_setting('effective_cache_size'))"
        )
    finally:
        await connection.close()
    return ServerFacts(version, settings, int(shared), int(cache))


# --- the machine ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineFacts:
    """The machine the figures come from."""

    cpu_model: str
    cores: int
    ram_bytes: int
    system: str
    python: str
    load_generator: str


def machine_facts() -> MachineFacts:
    """CPU, cores, RAM, OS and tool versions, from /proc and the tools themselves."""
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    ram = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            ram = int(line.split()[1]) * 1024
    system = platform.platform()
    os_release = Path("/etc/os-release")
    if os_release.exists():
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                system = f"{line.partition('=')[2].strip(chr(34))}, Linux {platform.release()}"
    return MachineFacts(
        cpu_model=cpu,
        cores=os.cpu_count() or 1,
        ram_bytes=ram,
        system=system,
        python=platform.python_version(),
        load_generator=_first_line(["h2load", "--version"]),
    )


def _first_line(command: list[str]) -> str:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    output = (completed.stdout or completed.stderr).strip()
    return output.splitlines()[0] if output else "unknown"
