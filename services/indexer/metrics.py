"""The indexer's own Prometheus metrics, beside the shared gRPC server metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CLAIMS_INDEXED = Counter(
    "panoptic_indexer_claims_total",
    "Claims processed by committed requests, by outcome (created, updated, unchanged, retracted).",
    ("outcome",),
)
BATCHES = Counter(
    "panoptic_indexer_batches_total",
    "Indexing requests (batches and retractions) by result: committed, replayed, rejected, failed.",
    ("result",),
)
BATCH_SECONDS = Histogram(
    "panoptic_indexer_batch_seconds",
    "Time to validate, write and commit one batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LAST_COMMIT = Gauge(
    "panoptic_indexer_last_commit_timestamp_seconds",
    "Unix time of the last successful commit of an indexing request.",
)
REJECTED = Counter(
    "panoptic_indexer_rejected_requests_total",
    "Requests refused before anything was written, by reason.",
    ("reason",),
)
OPEN_STREAMS = Gauge(
    "panoptic_indexer_open_streams",
    "StreamIndexClaims calls in progress: pipelines connected right now.",
)
PIPELINES_EXPECTED = Gauge(
    "panoptic_indexer_pipelines_expected",
    "Pipelines that should be sending claims (PANOPTIC_PIPELINES_EXPECTED); above 0, the "
    "ClaimsNotIndexed alert expects commits even when no pipeline is connected.",
)
