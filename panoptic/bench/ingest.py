"""`panoptic bench ingest`: claims/s through the indexer against a raw COPY, side by side.

Each round indexes the same synthetic claims twice, each time into a fresh, migrated database
on the same server: once with asyncpg's COPY straight into the tables (the fastest a writer
could be: current state only, no history, no idempotency, no validation) and once through
`StreamIndexClaims` of a real indexer process (validation, history, idempotency records,
topic links and counts, one transaction per batch). Requests are built before the clock
starts, so the client's JSON parsing is not measured. The machine is noisy: rounds alternate
the two and the report takes medians. With streaming replicas (`--replicas`), both sides run
while the replicas replay everything, and each replica's replay lag is sampled during the
indexer's runs.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field

import asyncpg
import grpc

from panoptic.bench.common import (
    BENCH_TOKEN,
    ServiceProcess,
    corpus_requests,
    drop_database,
    fresh_database,
)
from panoptic.bench.replication import LagFigures, LagSampler
from panoptic.core.db import DatabaseUrl
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc
from services.indexer.convert import batch_from_request
from services.indexer.domain import IndexBatch


@dataclass(frozen=True)
class IngestRound:
    """One round's figures."""

    copy_rows_per_second: float
    """COPY of the claims alone: the strict baseline the ratio is taken against."""
    copy_with_links_rows_per_second: float
    """COPY of the claims and their topic links, the rows needed to serve them."""
    indexer_claims_per_second: float
    indexer_peak_rss_mib: float
    replica_lag: dict[str, LagFigures] = field(default_factory=dict)
    """Each streaming replica's replay lag during the indexer's run, by replica."""

    @property
    def ratio(self) -> float:
        """Indexer throughput as a fraction of the claims-only COPY's."""
        return self.indexer_claims_per_second / self.copy_rows_per_second


@dataclass(frozen=True)
class IngestReport:
    """The benchmark's result."""

    claims: int
    batch_size: int
    rounds: list[IngestRound]

    @property
    def median_ratio(self) -> float:
        """The median of the rounds' ratios."""
        return statistics.median(r.ratio for r in self.rounds)

    def describe(self) -> str:
        """A table for people."""
        lines = [
            f"ingest benchmark: {self.claims} claims, batches of {self.batch_size}",
            f"{'round':>6}  {'COPY claims/s':>13}  {'COPY+links/s':>12}  "
            f"{'indexer claims/s':>16}  {'ratio':>5}  {'indexer peak RSS':>16}",
        ]
        for number, result in enumerate(self.rounds, start=1):
            lines.append(
                f"{number:>6}  {result.copy_rows_per_second:>13,.0f}  "
                f"{result.copy_with_links_rows_per_second:>12,.0f}  "
                f"{result.indexer_claims_per_second:>16,.0f}  {result.ratio:>5.2f}  "
                f"{result.indexer_peak_rss_mib:>12.0f} MiB"
            )
        copy = statistics.median(r.copy_rows_per_second for r in self.rounds)
        links = statistics.median(r.copy_with_links_rows_per_second for r in self.rounds)
        indexer = statistics.median(r.indexer_claims_per_second for r in self.rounds)
        peak = max(r.indexer_peak_rss_mib for r in self.rounds)
        lines.append(
            f"{'median':>6}  {copy:>13,.0f}  {links:>12,.0f}  {indexer:>16,.0f}  "
            f"{self.median_ratio:>5.2f}  {peak:>12.0f} MiB (max)"
        )
        lines.append(
            "ratio = indexer claims/s over COPY of the claims alone; the indexer also writes "
            "topic links, a revision per claim, idempotency records and counts"
        )
        for number, result in enumerate(self.rounds, start=1):
            for name, lag in result.replica_lag.items():
                lines.append(f"round {number}, {name} during the indexer's run: {lag.describe()}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        """The figures as JSON-ready values."""
        return {
            "claims": self.claims,
            "batch_size": self.batch_size,
            "rounds": [asdict(r) | {"ratio": r.ratio} for r in self.rounds],
            "median_ratio": self.median_ratio,
        }


async def copy_baseline(url: DatabaseUrl, batches: Sequence[IndexBatch]) -> tuple[float, float]:
    """Claims/s of COPY into claims alone, and with claim_topics; actors and topics first."""
    connection = await asyncpg.connect(url.value)
    try:
        actors = [a for batch in batches for a in batch.actors]
        topics = [t for batch in batches for t in batch.topics]
        await connection.copy_records_to_table(
            "topics",
            records=[(t.id, t.display_name, None) for t in topics],
            columns=("id", "display_name", "parent_id"),
        )
        await connection.execute(
            "UPDATE topics SET parent_id = p.parent FROM unnest($1::text[], $2::text[])"
            " AS p(id, parent) WHERE topics.id = p.id",
            [t.id for t in topics],
            [t.parent_id for t in topics],
        )
        await connection.copy_records_to_table(
            "actors",
            records=[
                (a.id, a.display_name, list(a.aliases), a.kind, a.description) for a in actors
            ],
            columns=("id", "display_name", "aliases", "kind", "description"),
        )
        claims = [c for batch in batches for c in batch.claims]
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "claims",
            records=[
                (
                    c.id, c.actor_id, list(c.topic_ids), c.text, c.stated_at, c.source_url,
                    c.source_title, c.source_publisher, c.source_published_at, c.language,
                    c.confidence, c.state.value, 1, c.content_hash,
                )
                for c in claims
            ],
            columns=(
                "id", "actor_id", "topic_ids", "text", "stated_at", "source_url", "source_title",
                "source_publisher", "source_published_at", "language", "confidence", "state",
                "revision", "content_hash",
            ),
        )  # fmt: skip
        claims_done = time.perf_counter()
        await connection.copy_records_to_table(
            "claim_topics",
            records=[
                (c.id, topic, c.actor_id, c.stated_at) for c in claims for topic in c.topic_ids
            ],
            columns=("claim_id", "topic_id", "actor_id", "stated_at"),
        )
        links_done = time.perf_counter()
    finally:
        await connection.close()
    return len(claims) / (claims_done - started), len(claims) / (links_done - started)


async def _stream(
    requests: Sequence[indexer_service_pb2.IndexClaimsRequest],
) -> AsyncIterator[indexer_service_pb2.IndexClaimsRequest]:
    for request in requests:
        yield request


async def indexer_run(
    url: DatabaseUrl,
    requests: Sequence[indexer_service_pb2.IndexClaimsRequest],
    port: int,
    metrics_port: int,
    streams: int,
) -> tuple[float, float]:
    """Claims/s through a fresh indexer process, and its peak RSS in MiB."""
    async with ServiceProcess("indexer", url, port, metrics_port) as indexer:
        metadata = (("authorization", f"Bearer {BENCH_TOKEN}"),)
        # The first batch carries every actor and topic; it goes alone, before the clock.
        first, rest = requests[0], list(requests[1:])
        slices = [rest[i::streams] for i in range(streams)]
        async with grpc.aio.insecure_channel(indexer.address) as channel:
            stub = indexer_service_pb2_grpc.IndexerServiceStub(channel)
            await stub.IndexClaims(first, metadata=metadata)
            started = time.perf_counter()
            await asyncio.gather(
                *(stub.StreamIndexClaims(_stream(part), metadata=metadata) for part in slices)
            )
            elapsed = time.perf_counter() - started
        claims = sum(len(request.claims) for request in rest)
        return claims / elapsed, indexer.peak_rss_mib()


async def run_ingest_benchmark(
    server: DatabaseUrl,
    *,
    claims: int,
    batch_size: int,
    rounds: int,
    streams: int,
    seed: int = 42,
    port: int = 50151,
    metrics_port: int = 9151,
    lag: LagSampler | None = None,
) -> IngestReport:
    """Runs `rounds` alternating COPY and indexer runs; `server` may create databases.

    With `lag`, its replicas' lag is sampled during each indexer run.
    """
    print(f"building {claims} claims in batches of {batch_size}...", file=sys.stderr)
    requests = list(corpus_requests(claims, batch_size, seed))
    batches = [batch_from_request(request) for request in requests]
    results = []
    for number in range(1, rounds + 1):
        copy_url = await fresh_database(server, "panoptic_bench_copy")
        copy_rate, copy_links_rate = await copy_baseline(copy_url, batches)
        await drop_database(server, copy_url)
        index_url = await fresh_database(server, "panoptic_bench_indexer")
        run = indexer_run(index_url, requests, port, metrics_port, streams)
        replica_lag: dict[str, LagFigures] = {}
        if lag is None:
            rate, peak = await run
        else:
            (rate, peak), replica_lag = await lag.sample_during(run)
        await drop_database(server, index_url)
        results.append(IngestRound(copy_rate, copy_links_rate, rate, peak, replica_lag))
        print(
            f"round {number}/{rounds}: COPY {copy_rate:,.0f} rows/s, indexer {rate:,.0f} "
            f"claims/s, ratio {rate / copy_rate:.2f}",
            file=sys.stderr,
            flush=True,
        )
        for name, figures in replica_lag.items():
            print(f"round {number}/{rounds}: {name} {figures.describe()}", file=sys.stderr)
    return IngestReport(claims, batch_size, results)
