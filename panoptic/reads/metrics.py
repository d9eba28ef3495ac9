"""The retriever's own Prometheus metrics, beside the shared gRPC server metrics."""

from __future__ import annotations

from prometheus_client import Histogram

CLAIMS_PER_QUERY = Histogram(
    "panoptic_retriever_claims_per_query",
    "Claims GetClaim's shared queries looked up, one observation per query: how much concurrent "
    "GetClaim calls shared (see panoptic/reads/batching.py).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
