"""`panoptic bench read`: the retriever's throughput and latency as the database grows.

One database grows through the scales (the demo corpus of a larger scale starts with the
smaller one's claims), loaded through a real indexer. At each scale, after VACUUM ANALYZE:
- throughput: h2load (Debian's nghttp2-client, a load generator that is not the bottleneck)
  sends GetClaim and, as the baseline, a bare `grpc.health.v1.Health/Check` to the same
  retriever (`PANOPTIC_RETRIEVER_WORKERS` processes) with the same load, alternating, so the
  ratio is the cost of the read; the rates are the calls the retriever counted as handled
  over a window in which every generator runs;
- latency: p50/p95/p99 of each read a mobile screen makes, called one at a time with varied
  arguments, so the figures are service time, not queueing;
- plans: with auto_explain on (embedded server only), the slowest statements' EXPLAIN ANALYZE.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from panoptic.bench.common import (
    BENCH_TOKEN,
    ServiceProcess,
    as_json,
    corpus_requests,
    cpu_seconds,
    database_backends,
    drop_database,
    fresh_database,
    h2load_grpc_running,
    metric_samples,
    percentiles,
    process_tree,
    warm_up_seconds,
)
from panoptic.core.db import DatabaseUrl
from panoptic.suite.progress import ProgressReporter
from panoptic.v1 import (
    indexer_service_pb2,
    indexer_service_pb2_grpc,
    retriever_service_pb2,
    retriever_service_pb2_grpc,
)

ENDPOINTS = (
    "GetClaim",
    "ListClaims actor+topic",
    "SearchClaims common word",
    "SearchClaims rare word",
    "ListActors fuzzy",
    "GetActorTimeline",
)
# Words of the demo corpus: "percent" is in about half of the claims, "literacy" in very few.
COMMON_WORDS = ("percent", "government", "people")
RARE_WORDS = ("literacy", "vaccination", "broadband")
# Calls in flight in a throughput run at most: each takes an h2load process of its own.
MAX_IN_FLIGHT = 256


@dataclass(frozen=True)
class CallCost:
    """The CPU one call cost on average, in microseconds."""

    retriever_us: float
    """In the retriever's processes (its workers and their main process)."""
    database_us: float | None
    """In the database server's processes that served the retriever; None when that server
    runs on another machine."""

    def describe(self) -> str:
        """`850 us retriever + 95 us PostgreSQL`."""
        text = f"{self.retriever_us:,.0f} us retriever"
        if self.database_us is not None:
            text += f" + {self.database_us:,.0f} us PostgreSQL"
        return text


@dataclass(frozen=True)
class Throughput:
    """One alternating h2load round against one retriever process."""

    in_flight: int
    """Calls in flight during both runs."""
    get_claim_rps: float
    health_check_rps: float
    get_claim_cost: CallCost
    health_check_cost: CallCost
    claims_per_query: float
    """How many GetClaims the retriever's queries served on average (its batches)."""

    @property
    def ratio(self) -> float:
        """GetClaim's requests/s as a fraction of the bare health check's."""
        return self.get_claim_rps / self.health_check_rps


@dataclass(frozen=True)
class ScaleResult:
    """Everything measured at one size of the database."""

    claims: int
    load_seconds: float
    latency_ms: dict[str, dict[str, float]]
    throughput: list[Throughput]
    slowest_plans: list[str] = field(default_factory=list)
    database_bytes: int = 0

    def throughput_by_load(self) -> dict[int, list[Throughput]]:
        """The throughput rounds grouped by calls in flight, fewest first."""
        groups: dict[int, list[Throughput]] = {}
        for result in sorted(self.throughput, key=lambda result: result.in_flight):
            groups.setdefault(result.in_flight, []).append(result)
        return groups


@dataclass(frozen=True)
class ReadReport:
    """The benchmark's result."""

    scales: list[ScaleResult]
    retriever_workers: int = 1

    def growth(self) -> dict[str, float]:
        """p95 at the largest scale over p95 at the smallest, per endpoint."""
        first, last = self.scales[0], self.scales[-1]
        return {
            name: last.latency_ms[name]["p95_ms"] / max(first.latency_ms[name]["p95_ms"], 1e-6)
            for name in ENDPOINTS
        }

    def describe(self) -> str:
        """Tables for people."""
        lines = [
            f"read benchmark (retriever over gRPC with {self.retriever_workers} worker "
            f"process{'es' if self.retriever_workers > 1 else ''}, latencies in ms)"
        ]
        header = f"{'endpoint':<26}" + "".join(
            f"{scale_name(s.claims) + ' p50':>11}{scale_name(s.claims) + ' p95':>11}"
            for s in self.scales
        )
        lines.append(header + (f"{'p95 growth':>12}" if len(self.scales) > 1 else ""))
        growth = self.growth() if len(self.scales) > 1 else {}
        for name in ENDPOINTS:
            row = f"{name:<26}" + "".join(
                f"{s.latency_ms[name]['p50_ms']:>11.1f}{s.latency_ms[name]['p95_ms']:>11.1f}"
                for s in self.scales
            )
            if growth:
                row += f"{growth[name]:>11.2f}x"
            lines.append(row)
        for scale in self.scales:
            for in_flight, rounds in scale.throughput_by_load().items():
                where = f"throughput at {scale_name(scale.claims)}, {in_flight} in flight"
                for number, result in enumerate(rounds, start=1):
                    lines.append(
                        f"{where}, round {number}: GetClaim {result.get_claim_rps:,.0f} req/s "
                        f"({result.claims_per_query:.1f} claims per query), "
                        f"health check {result.health_check_rps:,.0f} req/s, ratio "
                        f"{result.ratio:.2f}; CPU per call: GetClaim "
                        f"{result.get_claim_cost.describe()}, health check "
                        f"{result.health_check_cost.describe()}"
                    )
                ratios = [result.ratio for result in rounds]
                lines.append(
                    f"{where}: median ratio {statistics.median(ratios):.2f} "
                    f"over {len(ratios)} rounds"
                )
        for scale in self.scales:
            lines.append(
                f"{scale_name(scale.claims)}: loaded in {scale.load_seconds:.0f} s, "
                f"database {scale.database_bytes / 2**20:,.0f} MiB"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values."""
        result: dict[str, Any] = as_json(self)
        result["growth_p95"] = self.growth() if len(self.scales) > 1 else {}
        result["throughput_ratios"] = [t.ratio for s in self.scales for t in s.throughput]
        result["median_ratios"] = {
            scale_name(scale.claims): {
                str(in_flight): statistics.median(t.ratio for t in rounds)
                for in_flight, rounds in scale.throughput_by_load().items()
            }
            for scale in self.scales
        }
        return result


def parse_scales(text: str) -> list[int]:
    """`10k,100k,1m` as claim counts, ascending."""
    values = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", part)
        if match is None:
            raise ValueError(f"{part!r} is not a scale such as 10k, 100k or 1m")
        factor = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
        values.append(int(float(match.group(1)) * factor))
    return sorted(set(values))


def parse_in_flight(text: str) -> list[int]:
    """`16,64` as levels of calls in flight, ascending; each takes one h2load process per call."""
    levels = set()
    for part in text.split(","):
        if not part.strip().isdigit() or not 1 <= int(part) <= MAX_IN_FLIGHT:
            raise ValueError(f"{part!r} is not a number of calls from 1 to {MAX_IN_FLIGHT}")
        levels.add(int(part))
    return sorted(levels)


def scale_name(claims: int) -> str:
    """`10k`, `1m`: a claim count as `--scales` writes it."""
    if claims >= 1_000_000 and claims % 1_000_000 == 0:
        return f"{claims // 1_000_000}m"
    if claims >= 1_000 and claims % 1_000 == 0:
        return f"{claims // 1_000}k"
    return str(claims)


# --- loading -------------------------------------------------------------------------------------


class CorpusLoader:
    """Feeds the demo corpus to an indexer, scale by scale, on two concurrent streams."""

    def __init__(self, address: str, total_claims: int, batch_size: int, seed: int) -> None:
        self._address = address
        self._requests = corpus_requests(total_claims, batch_size, seed)
        self._loaded = 0

    async def load_until(self, claims: int) -> float:
        """Indexes batches until `claims` claims are in; returns the seconds it took."""
        started = time.monotonic()
        metadata = (("authorization", f"Bearer {BENCH_TOKEN}"),)
        total = claims - self._loaded
        with ProgressReporter(f"loading to {scale_name(claims)}", total, unit="claims") as progress:
            async with grpc.aio.insecure_channel(self._address) as channel:
                stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
                if self._loaded == 0:
                    # Batch 0 defines every actor and topic: it must commit before the others.
                    first = next(self._requests)
                    await stub.IndexClaims(first, metadata=metadata, timeout=600)
                    self._loaded += len(first.claims)
                    progress.advance(len(first.claims))
                await asyncio.gather(
                    *(
                        stub.StreamIndexClaims(
                            self._batches(claims, progress), metadata=metadata, timeout=3600
                        )
                        for _ in range(2)
                    )
                )
        return time.monotonic() - started

    async def _batches(
        self, claims: int, progress: ProgressReporter
    ) -> AsyncIterator[indexer_service_pb2.IndexClaimsRequest]:
        while self._loaded < claims:
            request = next(self._requests, None)
            if request is None:
                return
            self._loaded += len(request.claims)
            progress.advance(len(request.claims))
            yield request
            await asyncio.sleep(0)  # let the other stream take the next batch


# --- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """Varied, realistic arguments for each endpoint, drawn from the loaded data."""

    claim_ids: list[str]
    actor_topic_pairs: list[tuple[str, str]]
    busy_actors: list[str]
    misspelled_names: list[str]


async def draw_inputs(url: DatabaseUrl, rng: random.Random) -> Inputs:
    """Samples ids and names from the database (as the owner)."""
    connection = await asyncpg.connect(url.value)
    try:
        # Ordered by a hash of the ids: spread over the whole table (not over the first pages
        # a LIMIT would stop in), and the same for the same data whatever its physical order.
        claim_ids = [
            row["id"]
            for row in await connection.fetch("SELECT id FROM claims ORDER BY md5(id) LIMIT 500")
        ]
        pairs = [
            (row["actor_id"], row["topic_id"])
            for row in await connection.fetch(
                "SELECT c.actor_id, ct.topic_id FROM claims c"
                " JOIN claim_topics ct ON ct.claim_id = c.id AND ct.is_current"
                " ORDER BY md5(c.id || ct.topic_id) LIMIT 200"
            )
        ]
        busy = [
            row["id"]
            for row in await connection.fetch(
                "SELECT id FROM actors ORDER BY claim_count DESC, id LIMIT 20"
            )
        ]
        names = [
            row["display_name"]
            for row in await connection.fetch(
                "SELECT display_name FROM actors ORDER BY id LIMIT 100"
            )
        ]
    finally:
        await connection.close()
    return Inputs(claim_ids, pairs, busy, [_misspell(name, rng) for name in names])


def _misspell(name: str, rng: random.Random) -> str:
    """The name with two neighbouring letters swapped, as a hurried thumb types it."""
    letters = list(name.lower())
    if len(letters) > 3:
        position = rng.randrange(1, len(letters) - 2)
        letters[position], letters[position + 1] = letters[position + 1], letters[position]
    return "".join(letters)


# --- measuring -----------------------------------------------------------------------------------


def _calls(
    stub: retriever_service_pb2_grpc.RetrieverServiceStub, inputs: Inputs, rng: random.Random
) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One zero-argument call per endpoint, each drawing fresh arguments."""
    monthly = retriever_service_pb2.TIMELINE_INTERVAL_MONTH
    return {
        "GetClaim": lambda: stub.GetClaim(
            retriever_service_pb2.GetClaimRequest(claim_id=rng.choice(inputs.claim_ids))
        ),
        "ListClaims actor+topic": lambda: stub.ListClaims(
            _list_request(*rng.choice(inputs.actor_topic_pairs))
        ),
        "SearchClaims common word": lambda: stub.SearchClaims(
            retriever_service_pb2.SearchClaimsRequest(query=rng.choice(COMMON_WORDS), page_size=20)
        ),
        "SearchClaims rare word": lambda: stub.SearchClaims(
            retriever_service_pb2.SearchClaimsRequest(query=rng.choice(RARE_WORDS), page_size=20)
        ),
        "ListActors fuzzy": lambda: stub.ListActors(
            retriever_service_pb2.ListActorsRequest(
                query=rng.choice(inputs.misspelled_names), page_size=10
            )
        ),
        "GetActorTimeline": lambda: stub.GetActorTimeline(
            retriever_service_pb2.GetActorTimelineRequest(
                actor_id=rng.choice(inputs.busy_actors), interval=monthly
            )
        ),
    }


def _list_request(actor_id: str, topic_id: str) -> retriever_service_pb2.ListClaimsRequest:
    return retriever_service_pb2.ListClaimsRequest(
        actor_id=actor_id, topic_id=topic_id, page_size=20
    )


async def measure_latency(
    address: str, inputs: Inputs, calls_per_endpoint: int, seed: int
) -> dict[str, dict[str, float]]:
    """p50/p95/p99 per endpoint from sequential calls (after a few warm-up calls each)."""
    rng = random.Random(seed)
    results = {}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = retriever_service_pb2_grpc.RetrieverServiceStub(channel)
        calls = _calls(stub, inputs, rng)
        for name in ENDPOINTS:
            call = calls[name]
            for _ in range(10):
                await call()
            samples = []
            for _ in range(calls_per_endpoint):
                started = time.perf_counter()
                await call()
                samples.append(time.perf_counter() - started)
            results[name] = percentiles(samples) | {"calls": float(calls_per_endpoint)}
    return results


async def measure_throughput(
    retriever: ServiceProcess,
    url: DatabaseUrl,
    claim_ids: Sequence[str],
    rounds: int,
    seconds: float,
    in_flight: Sequence[int],
) -> list[Throughput]:
    """Alternating timed h2load runs of GetClaim and of the bare health check.

    Each round runs both at each level of `in_flight`: N calls at a time from N h2load
    processes with one stream each. For GetClaim each process asks for a claim of its own: no
    two calls in flight name the same claim, so a server that serves concurrent calls together
    gains nothing from repeated ids. A run's rate is what the retriever handled (its own
    `grpc_server_handled_total`) over `seconds` in which every generator runs, after a warm-up;
    over the same window it measures the CPU the retriever's processes and their database
    backends used, per call.
    """
    claim_bodies = [
        retriever_service_pb2.GetClaimRequest(claim_id=claim_id).SerializeToString()
        for claim_id in claim_ids[: max(in_flight)]
    ]
    if len(claim_bodies) < max(in_flight):
        raise ValueError(f"the throughput runs need {max(in_flight)} claim ids")
    if retriever.process is None:
        raise RuntimeError("the retriever is not running")
    window = _ThroughputWindow(
        address=retriever.address,
        metrics_url=f"http://127.0.0.1:{retriever.metrics_port}/metrics",
        retriever_pid=retriever.process.pid,
        database=url.database,
        warm_up=warm_up_seconds(seconds),
        seconds=seconds,
    )
    results = []
    for _ in range(rounds):
        for calls in in_flight:
            health, health_cost, _ = await window.rate(
                "/grpc.health.v1.Health/Check", [b""] * calls
            )
            claim, claim_cost, claims_per_query = await window.rate(
                "/panoptic.v1.RetrieverService/GetClaim", claim_bodies[:calls]
            )
            results.append(
                Throughput(calls, claim, health, claim_cost, health_cost, claims_per_query)
            )
    return results


@dataclass(frozen=True)
class _ThroughputWindow:
    """Where a throughput run loads the retriever, and how long it waits and then measures."""

    address: str
    metrics_url: str
    retriever_pid: int
    database: str
    warm_up: float
    seconds: float

    async def reading(self, method: str) -> _Reading:
        """The retriever's counters for `method` and the CPU its processes and backends used."""
        scrape = await asyncio.to_thread(_scrape, self.metrics_url, method)
        return _Reading(
            time.monotonic(),
            scrape,
            sum(cpu_seconds(process_tree(self.retriever_pid)).values()),
            cpu_seconds(database_backends(self.database), command="postgres"),
        )

    async def rate(self, path: str, bodies: Sequence[bytes]) -> tuple[float, CallCost, float]:
        """Calls per second of `path` under h2load, their cost, and claims per query."""
        method = path.rpartition("/")[2]
        # The generators stop at the end of the block; the limit only bounds a run left behind.
        limit = self.warm_up + self.seconds + 60
        with h2load_grpc_running(self.address, path, bodies, at_most_seconds=limit) as load:
            await asyncio.sleep(self.warm_up)
            before = await self.reading(method)
            await asyncio.sleep(self.seconds)
            after = await self.reading(method)
            load.check_running()
        return _rate_between(path, self.seconds, before, after)


def _rate_between(
    path: str, seconds: float, before: _Reading, after: _Reading
) -> tuple[float, CallCost, float]:
    """The rate, cost per call and claims per query of `path` from two readings."""
    failed = after.scrape.failed - before.scrape.failed
    if failed:
        raise RuntimeError(f"{failed:.0f} calls to {path} failed under load")
    calls = after.scrape.ok - before.scrape.ok
    if calls <= 0:
        raise RuntimeError(f"no call to {path} completed in {seconds} s under load")
    database_used = sum(
        used - before.database_cpu.get(pid, 0.0) for pid, used in after.database_cpu.items()
    )
    cost = CallCost(
        retriever_us=(after.retriever_cpu - before.retriever_cpu) / calls * 1e6,
        # No backend process to read here: the database server is on another machine.
        database_us=database_used / calls * 1e6 if after.database_cpu else None,
    )
    queries = after.scrape.claim_queries - before.scrape.claim_queries
    claims_per_query = (
        (after.scrape.claims_looked_up - before.scrape.claims_looked_up) / queries
        if queries
        else 0.0
    )
    return calls / (after.time - before.time), cost, claims_per_query


@dataclass(frozen=True)
class _Scrape:
    """What a throughput run reads of the retriever's `/metrics` at both ends of its window."""

    ok: float
    """Calls of the method measured answered so far with OK..."""
    failed: float
    """...and with any other status."""
    claims_looked_up: float
    """Claims GetClaim's queries looked up so far..."""
    claim_queries: float
    """...and how many queries that took."""


@dataclass(frozen=True)
class _Reading:
    """The counters a throughput run reads at both ends of its window."""

    time: float
    scrape: _Scrape
    retriever_cpu: float
    database_cpu: dict[int, float]


def _scrape(metrics_url: str, method: str) -> _Scrape:
    """From a retriever's `/metrics`: its `grpc_server_handled_total` for `method`, and its
    `panoptic_retriever_claims_per_query` sum and count."""
    ok = failed = claims = queries = 0.0
    for sample in metric_samples(metrics_url):
        if (
            sample.name == "grpc_server_handled_total"
            and sample.labels.get("grpc_method") == method
        ):
            if sample.labels.get("grpc_code") == "OK":
                ok += sample.value
            else:
                failed += sample.value
        elif sample.name == "panoptic_retriever_claims_per_query_sum":
            claims += sample.value
        elif sample.name == "panoptic_retriever_claims_per_query_count":
            queries += sample.value
    return _Scrape(ok, failed, claims, queries)


# --- plans ---------------------------------------------------------------------------------------


async def set_auto_explain(server: DatabaseUrl, database: str, on: bool) -> None:
    """Turns auto_explain (ANALYZE) on or off for new sessions of `database`."""
    connection = await asyncpg.connect(server.value)
    try:
        if on:
            for setting, value in (
                ("session_preload_libraries", "auto_explain"),
                ("auto_explain.log_min_duration", "0"),
                ("auto_explain.log_analyze", "on"),
                ("auto_explain.log_buffers", "on"),
                ("auto_explain.log_timing", "on"),
                # The embedded server logs warnings and worse only.
                ("auto_explain.log_level", "warning"),
            ):
                await connection.execute(f'ALTER DATABASE "{database}" SET {setting} = {value!r}')
        else:
            await connection.execute(f'ALTER DATABASE "{database}" RESET ALL')
    finally:
        await connection.close()


def slowest_plans(log_text: str, count: int = 3) -> list[str]:
    """The plans of the slowest distinct statements auto_explain wrote to a server log."""
    entries = re.split(r"\n(?=\S)", log_text)
    by_query: dict[str, tuple[float, str]] = {}
    for entry in entries:
        match = re.search(r"duration: ([\d.]+) ms\s+plan:\s*\n(.*)", entry, re.S)
        if match is None:
            continue
        plan = match.group(2)
        query = re.search(r"Query Text: (.*?)\n", plan)
        key = query.group(1)[:200] if query else plan[:200]
        duration = float(match.group(1))
        if key not in by_query or by_query[key][0] < duration:
            by_query[key] = (duration, f"{duration:.1f} ms\n{plan.rstrip()}")
    worst = sorted(by_query.values(), key=lambda item: item[0], reverse=True)[:count]
    return [text for _, text in worst]


# --- the run -------------------------------------------------------------------------------------


async def run_read_benchmark(
    server: DatabaseUrl,
    *,
    scales: list[int],
    calls: int,
    throughput_rounds: int,
    throughput_seconds: float,
    log_file: Path | None,
    ports: Iterator[int],
    in_flight: Sequence[int],
    retriever_workers: int = 1,
    seed: int = 42,
) -> ReadReport:
    """Loads, then measures, scale by scale; `log_file` is the server's (for plans)."""
    if shutil.which("h2load") is None:
        raise RuntimeError("h2load is missing: install Debian's nghttp2-client (make system-deps)")
    url = await fresh_database(server, "panoptic_bench_read")
    results = []
    try:
        async with ServiceProcess("indexer", url, next(ports), next(ports)) as indexer:
            loader = CorpusLoader(indexer.address, scales[-1], 1000, seed)
            for claims in scales:
                load_seconds = await loader.load_until(claims)
                results.append(
                    await _measure_scale(
                        server,
                        url,
                        claims,
                        load_seconds,
                        calls,
                        throughput_rounds,
                        throughput_seconds,
                        in_flight,
                        log_file,
                        ports,
                        retriever_workers,
                        seed,
                    )
                )
                print(f"measured at {scale_name(claims)} claims", file=sys.stderr, flush=True)
    finally:
        await drop_database(server, url)
    return ReadReport(results, retriever_workers)


async def _measure_scale(
    server: DatabaseUrl,
    url: DatabaseUrl,
    claims: int,
    load_seconds: float,
    calls: int,
    throughput_rounds: int,
    throughput_seconds: float,
    in_flight: Sequence[int],
    log_file: Path | None,
    ports: Iterator[int],
    retriever_workers: int,
    seed: int,
) -> ScaleResult:
    connection = await asyncpg.connect(url.value)
    try:
        await connection.execute("VACUUM (ANALYZE)")
        size = await connection.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await connection.close()
    inputs = await draw_inputs(url, random.Random(seed))
    workers = {"PANOPTIC_RETRIEVER_WORKERS": str(retriever_workers)}
    async with ServiceProcess("retriever", url, next(ports), next(ports), workers) as retriever:
        throughput = await measure_throughput(
            retriever, url, inputs.claim_ids, throughput_rounds, throughput_seconds, in_flight
        )
        latency = await measure_latency(retriever.address, inputs, calls, seed)
    plans = await collect_plans(server, url, inputs, log_file, ports, seed) if log_file else []
    return ScaleResult(claims, load_seconds, latency, throughput, plans, size)


async def collect_plans(
    server: DatabaseUrl,
    url: DatabaseUrl,
    inputs: Inputs,
    log_file: Path,
    ports: Iterator[int],
    seed: int,
) -> list[str]:
    """A short second pass with auto_explain on (its timing would skew the latencies)."""
    log_start = log_file.stat().st_size
    await set_auto_explain(server, url.database, on=True)
    try:
        async with ServiceProcess("retriever", url, next(ports), next(ports)) as retriever:
            await measure_latency(retriever.address, inputs, 10, seed)
    finally:
        await set_auto_explain(server, url.database, on=False)
    with log_file.open(errors="replace") as handle:
        handle.seek(log_start)
        return slowest_plans(handle.read())
