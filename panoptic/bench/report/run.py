"""`panoptic bench report`: measures the reads at growing sizes, then projects where they degrade.

One database grows through the scales (the demo corpus of a larger scale starts with the
smaller one's claims), loaded through a real indexer as `bench read` loads it. At each scale,
after VACUUM ANALYZE and a checkpoint, a real retriever and a real gateway are started and the
six reads a mobile screen makes are measured over gRPC and HTTP; then `analyse` fits the curves.
On the embedded server a streaming replica follows the primary throughout: its lag is sampled
while each size loads, and at each size GetClaim and search are measured on it next to the
primary (`replicas`), which `scale_out` turns into how many replicas a read rate needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from panoptic.bench.common import (
    ServiceProcess,
    as_json,
    drop_database,
    fresh_database,
    percentiles,
)
from panoptic.bench.read import (
    ENDPOINTS,
    CorpusLoader,
    Inputs,
    collect_plans,
    draw_inputs,
    scale_name,
)
from panoptic.bench.replication import LagFigures, LagSampler
from panoptic.bench.report.capacity import capacity_sentence, size_sentence, write_limit_sentence
from panoptic.bench.report.measure import (
    PROTOCOLS,
    READ_TABLES,
    DatabaseSizes,
    IndexSize,
    MachineFacts,
    ServerFacts,
    TableSize,
    Throughput,
    block_counters,
    data_fingerprint,
    database_sizes,
    load_arguments,
    machine_facts,
    paired_latency_samples,
    server_facts,
)
from panoptic.bench.report.measure import throughput as measure_throughput
from panoptic.bench.report.projection import (
    HORIZON_ROWS,
    Fit,
    Projection,
    choose,
    fit_all,
    project_latency,
    project_size,
    range_label,
    rows_label,
)
from panoptic.bench.report.replicas import (
    REPLICA_ENDPOINTS,
    ReplicaFigures,
    measure_replica_reads,
    replica_from_json,
    replica_json,
)
from panoptic.core.db import DatabaseUrl
from panoptic.core.settings import Settings
from panoptic.suite.embedded_pg import EmbeddedPostgres
from panoptic.suite.progress import ProgressReporter

DEFAULT_SCALES = (10_000, 100_000, 1_000_000)
QUICK_SCALES = (1_000, 3_000, 10_000)
PROTOCOL_NAMES = {"grpc": "gRPC", "http": "HTTP"}


@dataclass(frozen=True)
class ReportOptions:
    """What one run measures."""

    scales: list[int]
    objectives_ms: dict[str, float]
    """The p95 each endpoint must stay under, in milliseconds."""
    seed: int = 42
    calls: int = 100
    throughput_seconds: float = 5.0
    quick: bool = False
    replica_rounds: int = 3
    """Interleaved rounds of each read on the replica and on the primary, at each size."""
    replica_seconds: float = 2.0
    """Length of each of those throughput runs."""

    @property
    def replica_calls(self) -> int:
        """Sequential calls of each read on each server for the replica's latencies."""
        return max(10, self.calls // 2)


@dataclass(frozen=True)
class LatencyFigures:
    """Sequential calls of one endpoint over one protocol."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    calls: int
    samples_ms: list[float]


@dataclass(frozen=True)
class EndpointFigures:
    """Everything measured of one endpoint over one protocol at one scale."""

    latency: LatencyFigures
    throughput: Throughput


@dataclass(frozen=True)
class ScaleFigures:
    """Everything measured at one size of the database."""

    claims: int
    claims_loaded: int
    load_seconds: float
    load_average: float
    """The machine's one-minute load average when measuring began (others' work shows here)."""
    endpoints: dict[str, dict[str, EndpointFigures]]
    """By protocol (`grpc`, `http`), then endpoint."""
    sizes: DatabaseSizes
    blocks_hit: int
    blocks_read: int
    fingerprint: str
    measure_seconds: float
    slowest_plans: list[str] = field(default_factory=list)
    replica: ReplicaFigures | None = None
    """Reads on a streaming replica next to the primary; None when no replica was made."""

    @property
    def ingest_claims_per_second(self) -> float:
        """Claims indexed per second while growing to this scale."""
        return self.claims_loaded / self.load_seconds if self.load_seconds > 0 else 0.0

    @property
    def buffer_cache_hit_ratio(self) -> float | None:
        """Share of blocks the reads found in shared_buffers (the rest came from the OS)."""
        total = self.blocks_hit + self.blocks_read
        return self.blocks_hit / total if total else None


@dataclass(frozen=True)
class Measurements:
    """A whole run's figures, before any fitting."""

    options: ReportOptions
    machine: MachineFacts
    server: ServerFacts
    database: str
    """`embedded` or `external`."""
    scales: list[ScaleFigures]
    started_at: str
    seconds: float


def resolve_objectives(default_ms: float, overrides: Sequence[str]) -> dict[str, float]:
    """Every endpoint's p95 objective: `default_ms`, unless an `ENDPOINT=MS` override names it.

    An override names an endpoint in full or by its method alone (`SearchClaims=200` sets both
    searches), in any case.
    """
    objectives = dict.fromkeys(ENDPOINTS, default_ms)
    for override in overrides:
        name, equals, value = override.partition("=")
        try:
            milliseconds = float(value)
        except ValueError:
            milliseconds = -1.0
        if not equals or milliseconds <= 0:
            raise ValueError(f"{override!r} is not ENDPOINT=MILLISECONDS, such as GetClaim=50")
        key = name.strip().lower()
        matched = [
            endpoint
            for endpoint in ENDPOINTS
            if endpoint.lower() == key or endpoint.lower().split(" ")[0] == key
        ]
        if not matched:
            raise ValueError(f"no endpoint {name.strip()!r}; the endpoints: {', '.join(ENDPOINTS)}")
        for endpoint in matched:
            objectives[endpoint] = milliseconds
    return objectives


# --- measuring -----------------------------------------------------------------------------------


async def measure(
    server: DatabaseUrl,
    options: ReportOptions,
    *,
    log_file: Path | None,
    ports: Iterator[int],
    external: bool,
    replica: EmbeddedPostgres | None = None,
) -> Measurements:
    """Loads and measures scale by scale on a fresh database of `server`, then drops it;
    with `replica` (a streaming replica of `server`), measures reads on it too."""
    started, started_at = time.monotonic(), datetime.now(UTC).isoformat(timespec="seconds")
    machine = machine_facts()
    url = await fresh_database(server, "panoptic_bench_report")
    results: list[ScaleFigures] = []
    try:
        facts = await server_facts(url)
        async with (
            ServiceProcess("indexer", url, next(ports), next(ports)) as indexer,
            LagSampler(server.value, [replica] if replica else []) as lag,
        ):
            loader = CorpusLoader(indexer.address, options.scales[-1], 1000, options.seed)
            loaded = 0
            for claims in options.scales:
                load_seconds, load_lag = await lag.sample_during(loader.load_until(claims))
                figures = await _measure_scale(
                    server, url, claims, claims - loaded, load_seconds, options, log_file, ports
                )
                if replica is not None:
                    (load_figures,) = load_lag.values()
                    on_replica = await _replica_figures(
                        url, replica, lag, load_figures, options, ports
                    )
                    figures = replace(figures, replica=on_replica)
                results.append(figures)
                loaded = claims
    finally:
        await drop_database(server, url)
    return Measurements(
        options,
        machine,
        facts,
        "external" if external else "embedded",
        results,
        started_at,
        time.monotonic() - started,
    )


async def _measure_scale(
    server: DatabaseUrl,
    url: DatabaseUrl,
    claims: int,
    claims_loaded: int,
    load_seconds: float,
    options: ReportOptions,
    log_file: Path | None,
    ports: Iterator[int],
) -> ScaleFigures:
    started = time.monotonic()
    steps = 2 + 2 * len(ENDPOINTS) + (1 if log_file else 0)
    with ProgressReporter(f"measuring at {scale_name(claims)}", steps, unit="steps") as progress:
        await _settle(url)
        sizes = await database_sizes(url)
        fingerprint = await data_fingerprint(url)
        inputs = await draw_inputs(url, random.Random(options.seed))
        load_average = os.getloadavg()[0]
        progress.advance()
        hit_before, read_before = await block_counters(url)
        async with (
            ServiceProcess("retriever", url, next(ports), next(ports)) as retriever,
            _gateway_in_front_of(retriever, url, ports) as gateway,
        ):
            samples = await paired_latency_samples(
                retriever.address, gateway.port, inputs, options.calls, options.seed
            )
            progress.advance()
            throughput = await _throughput_by_protocol(
                {"grpc": retriever.address, "http": gateway.address}, inputs, options, progress
            )
        # The retriever's backends have exited, and with that reported their block counts.
        hit_after, read_after = await block_counters(url)
        plans: list[str] = []
        if log_file is not None:
            plans = await collect_plans(server, url, inputs, log_file, ports, options.seed)
            progress.advance()
    return ScaleFigures(
        claims=claims,
        claims_loaded=claims_loaded,
        load_seconds=load_seconds,
        load_average=load_average,
        endpoints=_endpoint_figures(samples, throughput),
        sizes=sizes,
        blocks_hit=hit_after - hit_before,
        blocks_read=read_after - read_before,
        fingerprint=fingerprint,
        measure_seconds=time.monotonic() - started,
        slowest_plans=plans,
    )


async def _replica_figures(
    url: DatabaseUrl,
    replica: EmbeddedPostgres,
    lag: LagSampler,
    load_lag: LagFigures,
    options: ReportOptions,
    ports: Iterator[int],
) -> ReplicaFigures:
    """GetClaim and search on the replica next to the primary, once it has replayed all;
    `load_lag` is its lag while this size loaded."""
    started = time.monotonic()
    caught_up = max((await lag.until_caught_up()).values(), default=0.0)
    inputs = await draw_inputs(url, random.Random(options.seed))
    reads, share = await measure_replica_reads(
        url,
        replica,
        inputs,
        rounds=options.replica_rounds,
        seconds=options.replica_seconds,
        calls=options.replica_calls,
        seed=options.seed,
        ports=ports,
    )
    return ReplicaFigures(reads, share, caught_up, load_lag, time.monotonic() - started)


def _gateway_in_front_of(
    retriever: ServiceProcess, url: DatabaseUrl, ports: Iterator[int]
) -> ServiceProcess:
    """A gateway to `retriever` that measures the database, not its cache or its rate limit."""
    return ServiceProcess(
        "gateway",
        url,
        next(ports),
        next(ports),
        extra_env={
            "PANOPTIC_RETRIEVER_ADDRESS": retriever.address,
            "PANOPTIC_GATEWAY_RESPONSE_CACHE_MIB": "0",
            "PANOPTIC_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
            "PANOPTIC_GATEWAY_REFLECTION_REFRESH_SECONDS": "0",
        },
        ready_path="/readyz",
    )


async def _throughput_by_protocol(
    addresses: dict[str, str],
    inputs: Inputs,
    options: ReportOptions,
    progress: ProgressReporter,
) -> dict[str, dict[str, Throughput]]:
    """Each endpoint's throughput over each protocol, one endpoint after the other."""
    throughput: dict[str, dict[str, Throughput]] = {p: {} for p in PROTOCOLS}
    for endpoint in ENDPOINTS:
        arguments = load_arguments(endpoint, inputs)
        for protocol, address in addresses.items():
            throughput[protocol][endpoint] = await asyncio.to_thread(
                measure_throughput,
                protocol,
                address,
                endpoint,
                arguments,
                options.throughput_seconds,
            )
            progress.advance()
    return throughput


def _endpoint_figures(
    samples: dict[str, dict[str, list[float]]], throughput: dict[str, dict[str, Throughput]]
) -> dict[str, dict[str, EndpointFigures]]:
    """Latency and throughput side by side, per protocol and endpoint."""
    return {
        protocol: {
            endpoint: EndpointFigures(
                _latency(samples[protocol][endpoint]), throughput[protocol][endpoint]
            )
            for endpoint in ENDPOINTS
        }
        for protocol in PROTOCOLS
    }


async def _settle(url: DatabaseUrl) -> None:
    """VACUUM ANALYZE, then a checkpoint, so no background work of the load skews the reads."""
    connection = await asyncpg.connect(url.value)
    try:
        await connection.execute("VACUUM (ANALYZE)")
        # An external server's role may not checkpoint; its figures are then a little noisier.
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


def _latency(samples: list[float]) -> LatencyFigures:
    cuts = percentiles(samples)
    return LatencyFigures(
        cuts["p50_ms"],
        cuts["p95_ms"],
        cuts["p99_ms"],
        len(samples),
        [round(1000 * sample, 4) for sample in samples],
    )


# --- analysis ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryLimit:
    """One part of the data against one memory size."""

    name: str
    measure: str
    """`read_index_bytes`, `read_set_bytes` or `database_bytes` of DatabaseSizes."""
    limit_name: str
    limit_bytes: int
    projection: Projection


@dataclass(frozen=True)
class Analysis:
    """The fitted curves and the answers drawn from them."""

    latency: dict[str, dict[str, Projection]]
    """p95 against claims, by protocol, then endpoint."""
    throughput: dict[str, dict[str, Fit]]
    memory: list[MemoryLimit]

    def headline(self) -> list[str]:
        """When the database begins to degrade, one sentence per crossing, earliest first."""
        events: list[tuple[float, str]] = []
        for protocol, projections in self.latency.items():
            for endpoint, projection in projections.items():
                if projection.crossing is not None and projection.status != "beyond":
                    verb = _VERBS["latency"][projection.status]
                    events.append(
                        (
                            projection.crossing,
                            f"{endpoint} over {PROTOCOL_NAMES[protocol]}: p95 {verb} "
                            f"{projection.limit:g} ms {_when(projection)}.",
                        )
                    )
        for limit in self.memory:
            projection = limit.projection
            if projection.crossing is not None:
                verb = _VERBS["memory"][projection.status]
                events.append(
                    (
                        projection.crossing,
                        f"{limit.name}: {verb} {limit.limit_name} "
                        f"({bytes_label(limit.limit_bytes)}) {_when(projection)}.",
                    )
                )
        events.sort(key=lambda event: event[0])
        if not events:
            return [
                "No objective and no memory limit is crossed at the measured sizes, nor projected "
                f"to be below {rows_label(HORIZON_ROWS)} claims."
            ]
        return [text for _, text in events]


def short_answer(measurements: Measurements, analysis: Analysis) -> str:
    """The report's answer in one paragraph: the first objective to break, then memory."""
    parts = []
    latency = [
        (projection.crossing, protocol, endpoint, projection)
        for protocol, projections in analysis.latency.items()
        for endpoint, projection in projections.items()
        if projection.crossing is not None and projection.status != "beyond"
    ]
    if latency:
        crossing, protocol, endpoint, projection = min(latency, key=lambda item: item[0])
        when = {
            "above": f"already at {rows_label(crossing)} claims",
            "measured": f"from ~{rows_label(crossing)} claims (measured)",
            "projected": f"from ~{rows_label(crossing)} claims ({_confidence_words(projection)})",
        }[projection.status]
        parts.append(
            f"the first read to break its objective is {endpoint} over "
            f"{PROTOCOL_NAMES[protocol]}, p95 over {projection.limit:g} ms {when}"
        )
    else:
        parts.append(
            f"no read is projected to break its objective below {rows_label(HORIZON_ROWS)} claims"
        )
    read_set, database = analysis.memory[1], analysis.memory[2]
    ratios = [
        (scale.claims, scale.buffer_cache_hit_ratio)
        for scale in measurements.scales
        if scale.buffer_cache_hit_ratio is not None
    ]
    if read_set.projection.crossing is not None:
        text = (
            f"the read set outgrows shared_buffers at ~{rows_label(read_set.projection.crossing)}"
            " claims"
        )
        if len(ratios) >= 2:
            (first, first_ratio), (last, last_ratio) = ratios[0], ratios[-1]
            text += (
                f" (buffer cache hits {first_ratio:.1%} at {rows_label(first)}, "
                f"{last_ratio:.1%} at {rows_label(last)})"
            )
        parts.append(text)
    if database.projection.crossing is not None:
        parts.append(
            f"the whole database outgrows RAM at ~{rows_label(database.projection.crossing)} "
            f"claims ({_confidence_words(database.projection)})"
        )
    else:
        parts.append("the whole database is not projected to outgrow RAM")
    return "In short: " + "; ".join(parts) + "."


def scale_out(measurements: Measurements) -> list[str]:
    """And then what? How many replicas a read rate needs, from the capacity measured on a
    replica at the largest size, and when the primary's writes become the limit."""
    measured = [scale for scale in measurements.scales if scale.replica is not None]
    sentences = []
    if measured:
        last = measured[-1]
        assert last.replica is not None
        for endpoint in REPLICA_ENDPOINTS:
            sentences.append(
                capacity_sentence(
                    endpoint,
                    scale_name(last.claims),
                    last.replica.reads["primary"][endpoint].capacity,
                    last.replica.reads["replica"][endpoint].capacity,
                    last.replica.replica_share,
                )
            )
    else:
        sentences.append(
            "Reads on a replica were not measured: only the benchmark's own embedded "
            "PostgreSQL gets a replica (this run used DATABASE_URL's server)."
        )
    lag = measured[-1].replica.load_lag if measured and measured[-1].replica else None
    ingest = [(scale_name(s.claims), s.ingest_claims_per_second) for s in measurements.scales]
    bound: float = Settings.model_fields["replica_max_lag_seconds"].default
    sentences.append(
        write_limit_sentence(
            ingest, lag.max_seconds if lag else None, lag.p95_seconds if lag else None, bound
        )
    )
    return sentences


def replica_sizes(measurements: Measurements) -> list[str]:
    """Whether a replica's capacity changed from the smallest to the largest size, per read."""
    measured = [scale for scale in measurements.scales if scale.replica is not None]
    if len(measured) < 2:
        return []
    return [
        size_sentence(
            endpoint,
            [
                (scale_name(scale.claims), scale.replica.reads["replica"][endpoint].capacity)
                for scale in measured
                if scale.replica is not None
            ],
        )
        for endpoint in REPLICA_ENDPOINTS
    ]


def _confidence_words(projection: Projection) -> str:
    return {
        "measured": "measured",
        "near": "projected within 10 times the sizes measured",
        "far": "a far extrapolation",
        "none": "not projected",
    }[projection.confidence()]


_VERBS = {
    "latency": {"above": "already over", "measured": "crosses", "projected": "projected to cross"},
    "memory": {
        "above": "already larger than",
        "measured": "outgrows",
        "projected": "projected to outgrow",
    },
}


def bytes_label(value: float) -> str:
    """128 MiB, 23.5 GiB."""
    if value >= 2**30:
        return f"{value / 2**30:.3g} GiB"
    return f"{value / 2**20:,.0f} MiB"


def _when(projection: Projection) -> str:
    if projection.status == "above":
        return f"at {rows_label(min(projection.rows))} claims, the smallest size measured"
    if projection.status == "measured":
        return f"at ~{rows_label(projection.crossing)} claims (between measured sizes)"
    return (
        f"at ~{rows_label(projection.crossing)} claims "
        f"(range {range_label(projection.low, projection.high)}, {projection.confidence()} "
        "extrapolation)"
    )


def analyse(measurements: Measurements, *, seed: int = 0) -> Analysis:
    """Fits every latency, throughput and size curve against claims and finds the crossings."""
    scales = measurements.scales
    rows = [float(scale.claims) for scale in scales]
    latency: dict[str, dict[str, Projection]] = {}
    throughput: dict[str, dict[str, Fit]] = {}
    for protocol in PROTOCOLS:
        latency[protocol], throughput[protocol] = {}, {}
        for endpoint in ENDPOINTS:
            figures = [scale.endpoints[protocol][endpoint] for scale in scales]
            latency[protocol][endpoint] = project_latency(
                rows,
                [max(f.latency.p95_ms, 1e-3) for f in figures],
                measurements.options.objectives_ms[endpoint],
                samples=[f.latency.samples_ms for f in figures],
                seed=seed,
            )
            rates = [max(f.throughput.requests_per_second, 1e-3) for f in figures]
            # A straight line of falling throughput would reach zero: only a power law or none.
            throughput[protocol][endpoint] = choose(fit_all(rows, rates, ("power", "constant")))[0]
    shared = measurements.server.shared_buffers_bytes
    ram = measurements.machine.ram_bytes
    memory = []
    for name, measure, limit_name, limit in (
        ("Read-path indexes", "read_index_bytes", "shared_buffers", shared),
        ("Read set (tables and indexes)", "read_set_bytes", "shared_buffers", shared),
        ("Whole database", "database_bytes", "the machine's RAM", ram),
    ):
        values = [float(getattr(scale.sizes, measure)) for scale in scales]
        memory.append(
            MemoryLimit(name, measure, limit_name, limit, project_size(rows, values, limit))
        )
    return Analysis(latency, throughput, memory)


# --- the method, for the PDF and the JSON --------------------------------------------------------


def method_paragraphs(measurements: Measurements) -> list[str]:
    """How the figures were made and fitted, in plain words."""
    options = measurements.options
    scales = ", ".join(scale_name(claims) for claims in options.scales)
    return [
        f"Data. The deterministic demo corpus (seed {options.seed}; 200 actors and 40 topics at "
        f"every size, claims of 15-40 words) grows through {scales} claims in one database: a "
        "larger corpus starts with the smaller one's claims, so the same seed gives the same data "
        "set, checked by an md5 of every claim (the fingerprint in the tables). Claims go through "
        "a real 'panoptic indexer' on two concurrent streams of 1,000-claim batches; the ingest "
        "rate is claims indexed over seconds taken to grow to each size. After loading: VACUUM "
        "ANALYZE and a checkpoint.",
        f"Latency. A fresh 'panoptic retriever' and 'panoptic gateway' on loopback, defaults "
        f"except: the gateway's response cache and rate limit are off, and every HTTP request "
        f"sends 'Cache-Control: no-cache', so HTTP figures are gateway + retriever + database, "
        f"never a cached answer. Each endpoint gets {options.calls} sequential calls after 10 "
        "warm-up calls, each with an argument drawn from the data (claim ids spread over the "
        "whole table, actor and topic pairs, busy actors, misspelled actor names, common and "
        "rare words); every argument is sent over gRPC and over HTTP (Accept-Encoding: gzip, br) "
        "in alternating order, so neither always finds the other's pages in the cache. Sequential "
        "calls measure service time, not queueing. p50/p95/p99 are inclusive quantiles.",
        f"Throughput. For {options.throughput_seconds:g} s per endpoint and protocol, after a "
        "warm-up (1 s, or half the run if shorter), with 16 requests in flight from a C load "
        "generator, h2load (nghttp2), which repeats one request body: so four h2load processes "
        "run at once, each sending one of the first four arguments drawn for the endpoint, with "
        "4 requests in flight, over one h2c connection of 4 streams to the retriever, or over 4 "
        "keep-alive HTTP/1.1 connections to the gateway; their rates add up. Their CPU use is in "
        "the raw figures. Errors are failed requests and 4xx/5xx answers (gRPC statuses in "
        "trailers are not seen). Load generator, services and PostgreSQL share the same cores.",
        "Database. Sizes from pg_total_relation_size, pg_relation_size and pg_indexes_size; the "
        f"read set is {', '.join(READ_TABLES)} with their TOAST and indexes (what the six reads "
        "touch); the buffer cache hit ratio is blks_hit / (blks_hit + blks_read) from "
        "pg_stat_database over the latency and throughput runs at each size (a block 'read' may "
        "still come from the OS page cache). Plans: a second short pass with auto_explain "
        "(ANALYZE, BUFFERS) on, embedded server only, so its overhead never touches the figures.",
        "Model. Each p95 curve is fitted against claims n with four candidate models: power "
        "law a·n^k (least squares on log-log), a + b·n and a + b·ln n (least squares of relative "
        "error), and the constant a (geometric mean). Each is judged by how well it predicts each "
        "measured point from the others (leave-one-out, RMS of log-ratios). When the constant "
        "predicts every point within 15 % (the noise between runs on these machines), it is "
        "chosen: growth no larger than the noise is not taken for growth. Otherwise the growing "
        "model with the smallest leave-one-out error is chosen. Every model within twice the best "
        "error, or within 15 % of it, is 'plausible'. The projected crossing of the objective is "
        "the chosen model's; its range spans the plausible models' crossings and the 10th-90th "
        "percentile of the chosen model's crossing over 200 bootstrap resamplings of the measured "
        "calls. A crossing between two measured sizes is interpolated log-log and called "
        "measured. Sizes grow linearly (a + b·n); their range comes from the lines through all "
        "but one measured size.",
        f"Honesty. {len(options.scales)} sizes constrain a two-parameter curve very little: a "
        "projection within 10 times the largest size measured is 'near', beyond it 'far', and a "
        "far projection is a property of the model more than of the database. Nothing beyond the "
        "measured sizes was run: when the read set no longer fits in shared_buffers or the "
        "database no longer fits in RAM, latencies usually grow faster than any of these curves. "
        "Figures come from a shared machine (the one-minute load average is shown per size); "
        "differences under about 15 % are noise.",
    ]


def replica_method(options: ReportOptions) -> str:
    """How the reads on a replica were measured and read, in plain words (on the replicas'
    page, as the method page is full)."""
    return (
        "Replicas. On the embedded server, a streaming replica (pg_basebackup, a replication "
        "slot, the same settings plus hot_standby_feedback) follows the primary from the start, "
        "so the ingest rates above are the primary's while it streams to one replica; its replay "
        "lag, as the services measure it (panoptic_db_replica_lag_seconds and _bytes), is "
        "sampled every 0.2 s while each size loads (caught up: how long after the load it had "
        "replayed it all). At each size, once the replica has replayed "
        "everything, two fresh retrievers run side by side, one reading the primary and one "
        "given only the replica (PANOPTIC_REPLICA_URLS; the share of its reads the replica "
        "served is checked by its panoptic_db_reads_total): "
        f"{', '.join(REPLICA_ENDPOINTS)} take {options.replica_calls} sequential calls "
        "sent to both in alternating order, then "
        f"{options.replica_rounds} interleaved rounds of {options.replica_seconds:g} s h2load "
        "runs (16 in flight, as above) whose order alternates by round and endpoint. Each "
        "server is loaded alone in its turn, so its figure is one server's capacity with a "
        "retriever in front of it on this machine; a figure is the median of its rounds, "
        "with their range. Two figures are said to differ only when their rounds' ranges do not "
        "overlap and their medians lie further apart than 15 % and than either one's own "
        "spread; no trend is drawn across sizes. "
        "The replicas a read rate R needs is ceil(R / a replica's median), as reads go to "
        "replicas while any serves."
    )


# --- JSON ----------------------------------------------------------------------------------------


def report_json(measurements: Measurements, analysis: Analysis, pages: list[str]) -> dict[str, Any]:
    """Every figure, fit and verdict of the report as JSON-ready values."""
    options = measurements.options
    return {
        "started_at": measurements.started_at,
        "runtime_seconds": measurements.seconds,
        "options": as_json(options),
        "database": measurements.database,
        "machine": as_json(measurements.machine),
        "server": as_json(measurements.server),
        "scales": [_scale_json(scale) for scale in measurements.scales],
        "projections": _projections_json(analysis),
        "answer": short_answer(measurements, analysis),
        "headline": analysis.headline(),
        "scale_out": scale_out(measurements),
        "replica_sizes": replica_sizes(measurements),
        "method": [*method_paragraphs(measurements), replica_method(options)],
        "pages": pages,
    }


def _scale_json(scale: ScaleFigures) -> dict[str, Any]:
    """One size's figures, each endpoint's under its protocol."""
    return {
        "claims": scale.claims,
        "claims_loaded": scale.claims_loaded,
        "load_seconds": scale.load_seconds,
        "ingest_claims_per_second": scale.ingest_claims_per_second,
        "load_average": scale.load_average,
        "measure_seconds": scale.measure_seconds,
        "fingerprint": scale.fingerprint,
        "buffer_cache_hit_ratio": scale.buffer_cache_hit_ratio,
        "blocks_hit": scale.blocks_hit,
        "blocks_read": scale.blocks_read,
        "sizes": as_json(scale.sizes)
        | {
            "read_set_bytes": scale.sizes.read_set_bytes,
            "read_index_bytes": scale.sizes.read_index_bytes,
        },
        "endpoints": {
            protocol: {
                endpoint: _endpoint_json(scale.endpoints[protocol][endpoint])
                for endpoint in ENDPOINTS
            }
            for protocol in PROTOCOLS
        },
        "slowest_plans": scale.slowest_plans,
        "replica": replica_json(scale.replica) if scale.replica is not None else None,
    }


def _endpoint_json(figures: EndpointFigures) -> dict[str, Any]:
    return {
        "p50_ms": figures.latency.p50_ms,
        "p95_ms": figures.latency.p95_ms,
        "p99_ms": figures.latency.p99_ms,
        "calls": figures.latency.calls,
        "requests_per_second": figures.throughput.requests_per_second,
        "throughput_errors": figures.throughput.errors,
        "throughput_seconds": figures.throughput.seconds,
        "load_generator_cpu_cores": figures.throughput.load_generator_cpu,
        "samples_ms": figures.latency.samples_ms,
    }


def _projections_json(analysis: Analysis) -> dict[str, Any]:
    return {
        "latency_p95": {
            protocol: {
                endpoint: _projection_json(projection)
                for endpoint, projection in by_endpoint.items()
            }
            for protocol, by_endpoint in analysis.latency.items()
        },
        "throughput_fits": as_json(analysis.throughput),
        "memory": [
            {
                "name": limit.name,
                "measure": limit.measure,
                "limit": limit.limit_name,
                "limit_bytes": limit.limit_bytes,
            }
            | _projection_json(limit.projection, unit="claims")
            for limit in analysis.memory
        ],
    }


def measurements_from_json(data: dict[str, Any], objectives_ms: dict[str, float]) -> Measurements:
    """The measurements inside a report's JSON, to analyse again with other objectives."""
    options = ReportOptions(**(data["options"] | {"objectives_ms": objectives_ms}))
    scales = []
    for scale in data["scales"]:
        endpoints = {
            protocol: {
                endpoint: EndpointFigures(
                    LatencyFigures(
                        figures["p50_ms"],
                        figures["p95_ms"],
                        figures["p99_ms"],
                        figures["calls"],
                        figures["samples_ms"],
                    ),
                    Throughput(
                        figures["requests_per_second"],
                        figures["throughput_errors"],
                        figures["throughput_seconds"],
                        figures["load_generator_cpu_cores"],
                    ),
                )
                for endpoint, figures in by_endpoint.items()
            }
            for protocol, by_endpoint in scale["endpoints"].items()
        }
        sizes = scale["sizes"]
        scales.append(
            ScaleFigures(
                claims=scale["claims"],
                claims_loaded=scale["claims_loaded"],
                load_seconds=scale["load_seconds"],
                load_average=scale["load_average"],
                endpoints=endpoints,
                sizes=DatabaseSizes(
                    sizes["database_bytes"],
                    [TableSize(**table) for table in sizes["tables"]],
                    [IndexSize(**index) for index in sizes["indexes"]],
                ),
                blocks_hit=scale["blocks_hit"],
                blocks_read=scale["blocks_read"],
                fingerprint=scale["fingerprint"],
                measure_seconds=scale["measure_seconds"],
                slowest_plans=scale["slowest_plans"],
                replica=replica_from_json(scale["replica"]) if scale.get("replica") else None,
            )
        )
    return Measurements(
        options=options,
        machine=MachineFacts(**data["machine"]),
        server=ServerFacts(**data["server"]),
        database=data["database"],
        scales=scales,
        started_at=data["started_at"],
        seconds=data["runtime_seconds"],
    )


def _projection_json(projection: Projection, unit: str = "claims") -> dict[str, Any]:
    data: dict[str, Any] = as_json(projection)
    data["verdict"] = projection.verdict(unit)
    data["confidence"] = projection.confidence()
    data["chosen"] = data["chosen"]["model"]
    return data
