"""PENDING (issue 20): names of the replica routing's metrics, until the routing defines them.

The Grafana database dashboard and the ReplicaLagHigh alert read these metrics, and
tests/unit/test_dashboards.py wants every metric they read named in the code. The replica
routing (retriever and dashboard) will define them; once it has, delete this module. Nothing
imports it. The names, types and labels below are the ones the dashboard and the alert expect.
"""

from __future__ import annotations

PENDING_REPLICA_METRICS = frozenset(
    {
        # gauge {replica}: replay lag of each configured replica, in seconds
        "panoptic_db_replica_lag_seconds",
        # gauge {replica}: WAL bytes the replica has not replayed
        "panoptic_db_replica_lag_bytes",
        # gauge {replica}: 1 while the replica takes reads, 0 while taken out
        "panoptic_db_replica_serving",
        # counter {server}: reads served, server = "primary" or a replica's name
        "panoptic_db_reads_total",
        # counter {replica, reason}: times a replica was taken out, reason = failed or lagging
        "panoptic_db_replica_ejections_total",
        # gauge: the configured bound, PANOPTIC_REPLICA_MAX_LAG_SECONDS
        "panoptic_db_replica_max_lag_seconds",
        # counter {outcome}: reads with a consistency token, outcome = replica, waited or primary
        "panoptic_db_consistent_reads_total",
    }
)
