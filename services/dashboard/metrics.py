"""The dashboard's own Prometheus metrics, served on `PANOPTIC_DASHBOARD_METRICS_PORT` beside
the HTTP request metrics it shares with the gateway (`panoptic.core.metrics`).
"""

from __future__ import annotations

from prometheus_client import Counter

LOGINS = Counter(
    "panoptic_dashboard_logins_total",
    "Login attempts by outcome: ok, wrong (credentials), throttled (429), refused (CSRF).",
    ("outcome",),
)
