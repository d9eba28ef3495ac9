"""Prometheus gauges of each service's asyncpg pool, read when `/metrics` is scraped.

`panoptic_db_pool_size` counts the open connections, `panoptic_db_pool_idle` those not in use
and `panoptic_db_pool_max_size` the limit, each labelled with the service. A pool that is not
open (before start, after stop) reports nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import asyncpg
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

PoolSource = Callable[[], asyncpg.Pool | None]


class PoolCollector(Collector):
    """Reports the pools registered with `watch`."""

    def __init__(self) -> None:
        self._pools: dict[str, PoolSource] = {}

    def watch(self, service: str, pool: PoolSource) -> None:
        """Reports the pool `pool()` returns under `service` from now on."""
        self._pools[service] = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges, one sample per open pool."""
        size = GaugeMetricFamily(
            "panoptic_db_pool_size", "Open connections in the database pool.", labels=["service"]
        )
        idle = GaugeMetricFamily(
            "panoptic_db_pool_idle",
            "Open connections in the database pool not lent to a call.",
            labels=["service"],
        )
        limit = GaugeMetricFamily(
            "panoptic_db_pool_max_size",
            "Most connections the database pool may open.",
            labels=["service"],
        )
        for service, source in sorted(self._pools.items()):
            pool = source()
            if pool is None or pool.is_closing():
                continue
            size.add_metric([service], pool.get_size())
            idle.add_metric([service], pool.get_idle_size())
            limit.add_metric([service], pool.get_max_size())
        yield size
        yield idle
        yield limit


POOLS = PoolCollector()
REGISTRY.register(POOLS)


def watch_pool(service: str, pool: PoolSource) -> None:
    """Adds a service's pool to the gauges of this process's `/metrics`."""
    POOLS.watch(service, pool)
