"""Prometheus metrics shared by every service, and the `/metrics` HTTP endpoint.

gRPC server metrics carry the names and labels of go-grpc-prometheus, so dashboards and alerts
written for Go services work unchanged. The HTTP services (gateway, dashboard) share one pair
of request metrics, labelled by route template (`/v1/claims/{claim_id}`), never by the raw
path, so that the number of series stays bounded whatever clients send. Service-specific
metrics live with their service.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from panoptic.core.ports import check_port_free

_GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

GRPC_STARTED = Counter(
    "grpc_server_started_total", "Total number of RPCs started on the server.", _GRPC_LABELS
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "Total number of RPCs completed on the server, regardless of success or failure.",
    (*_GRPC_LABELS, "grpc_code"),
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Histogram of response latency (seconds) of gRPC that had been application-level "
    "handled by the server.",
    _GRPC_LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRPC_MSG_RECEIVED = Counter(
    "grpc_server_msg_received_total",
    "Total number of RPC stream messages received on the server.",
    _GRPC_LABELS,
)
GRPC_MSG_SENT = Counter(
    "grpc_server_msg_sent_total",
    "Total number of gRPC stream messages sent by the server.",
    _GRPC_LABELS,
)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ("route", "method", "status"),
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving an HTTP request to answering it, by route template.",
    ("route",),
    buckets=LATENCY_BUCKETS,
)


class MetricsServer(Protocol):
    """What `start_metrics_server` returns: something that can be shut down."""

    def shutdown(self) -> None: ...


def start_metrics_server(
    host: str, port: int, service: str, registry: CollectorRegistry = REGISTRY
) -> MetricsServer:
    """Serves the process's metrics at `http://host:port/metrics` from a background thread."""
    check_port_free(host, port, f"{service} metrics", f"PANOPTIC_{service.upper()}_METRICS_PORT")
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


AUTH_REJECTED = Counter(
    "panoptic_auth_rejected_total",
    "Calls refused for a missing or wrong bearer token.",
    ("grpc_service",),
)
