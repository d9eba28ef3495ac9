"""The dashboard's Prometheus metrics, served on `PANOPTIC_DASHBOARD_METRICS_PORT`.

Requests are labelled by route template (`/claims/{claim_id}`), never by the raw path, so the
number of series stays bounded whatever is requested; the names match the gateway's.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ("route", "method", "status"),
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to sending its response headers, by route template.",
    ("route",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LOGINS = Counter(
    "panoptic_dashboard_logins_total",
    "Login attempts by outcome: ok, wrong (credentials), throttled (429), refused (CSRF).",
    ("outcome",),
)
