"""The gateway's own Prometheus metrics, served on `PANOPTIC_GATEWAY_METRICS_PORT` beside
the HTTP request metrics it shares with the dashboard (`panoptic.core.metrics`).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from panoptic.core.metrics import LATENCY_BUCKETS

UPSTREAM_DURATION = Histogram(
    "panoptic_gateway_upstream_seconds",
    "Duration of the gateway's gRPC calls to the retriever, by method and status code.",
    ("grpc_method", "grpc_code"),
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_CALLS = Counter(
    "panoptic_gateway_upstream_calls_total",
    "The gateway's calls to the retriever answered with a response, by carrier: a call "
    "stream (stream) or a unary call (unary: no stream could carry it, or streams are off).",
    ("carrier",),
)
OWN_DURATION = Histogram(
    "panoptic_gateway_own_seconds",
    "Time a transcoded request spent in the gateway itself (total minus the gRPC call).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
RATE_LIMITED = Counter(
    "panoptic_gateway_rate_limited_total",
    "Requests refused with 429 by the per-client rate limit.",
)
DESCRIPTOR_RELOADS = Counter(
    "panoptic_gateway_descriptor_reloads_total",
    "Times the routes were rebuilt from new descriptors, by outcome (applied or refused).",
    ("outcome",),
)
ROUTES = Gauge("panoptic_gateway_routes", "Routes currently exposed.")
CACHE_LOOKUPS = Counter(
    "panoptic_gateway_cache_lookups_total",
    "Lookups in the gateway's response cache, by result (hit or miss).",
    ("result",),
)
