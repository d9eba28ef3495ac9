"""Prometheus gauges of each service's asyncpg pool, sampled every second while it is open.

`panoptic_db_pool_size` counts the open connections, `panoptic_db_pool_idle` those not in use
and `panoptic_db_pool_max_size` the limit, each labelled with the service. A pool that is not
open (before start, after stop) reports nothing. They are plain gauges set by a sampling task,
not read at scrape time, so that a service run as several worker processes (`core.workers`)
reports the sum of its workers' pools: each worker writes its own, and the main process adds
up those of the workers alive (prometheus_client's multiprocess mode, `livesum`).
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from prometheus_client import Gauge

from panoptic.core.lifecycle import worker_index

SAMPLE_SECONDS = 1.0

POOL_SIZE = Gauge(
    "panoptic_db_pool_size",
    "Open connections in the database pool.",
    ["service"],
    multiprocess_mode="livesum",
)
POOL_IDLE = Gauge(
    "panoptic_db_pool_idle",
    "Open connections in the database pool not lent to a call.",
    ["service"],
    multiprocess_mode="livesum",
)
POOL_MAX_SIZE = Gauge(
    "panoptic_db_pool_max_size",
    "Most connections the database pool may open.",
    ["service"],
    multiprocess_mode="livesum",
)


async def sample_pool(service: str, pool: asyncpg.Pool, every: float = SAMPLE_SECONDS) -> None:
    """Copies the pool's sizes into the gauges every `every` seconds until cancelled or the
    pool closes; then withdraws the service's samples."""
    try:
        while not pool.is_closing():
            POOL_SIZE.labels(service).set(pool.get_size())
            POOL_IDLE.labels(service).set(pool.get_idle_size())
            POOL_MAX_SIZE.labels(service).set(pool.get_max_size())
            await asyncio.sleep(every)
    finally:
        # A worker's samples are withdrawn by the main process when the worker exits.
        if worker_index() is None:
            for gauge in (POOL_SIZE, POOL_IDLE, POOL_MAX_SIZE):
                with contextlib.suppress(KeyError):
                    gauge.remove(service)
