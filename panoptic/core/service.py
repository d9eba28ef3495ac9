"""What the services share around their handlers: a database pool's life.

A service's entry point builds its server spec with `PoolHolder.hooks`, so the pool opens
before the first call is accepted and closes after the last one has finished. A service that
reads may be given streaming replicas (`PANOPTIC_REPLICA_URLS`): their pools open and close with
the primary's, and `reads` routes each read (`core.replicas`). While it is open,
`/metrics` reports the pool's gauges and the database's cached size and row estimates; in a
worker process (`core.workers`) the pool's only, as the service's main process reads the
statistics for all its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from panoptic.core.db import DatabaseUrl, create_pool, service_database_url
from panoptic.core.db_metrics import DatabaseStatsRefresher
from panoptic.core.lifecycle import worker_index
from panoptic.core.pool_metrics import sample_pool
from panoptic.core.replicas import PRIMARY, ReadRouter, Server, replica_name, replica_url
from panoptic.core.settings import DatabaseSettings


@dataclass
class PoolHolder:
    """The process's one asyncpg pool, opened at start and closed at stop."""

    settings: DatabaseSettings
    service: str
    read_only: bool = False
    _pool: asyncpg.Pool | None = field(default=None, init=False)
    _replica_pools: dict[str, asyncpg.Pool] = field(default_factory=dict, init=False)
    _stats: DatabaseStatsRefresher | None = field(default=None, init=False)
    _sampler: asyncio.Task[None] | None = field(default=None, init=False)
    _reads: ReadRouter | None = field(default=None, init=False)

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool; only valid between start and stop."""
        if self._pool is None:
            raise RuntimeError("the database pool is not open")
        return self._pool

    @property
    def reads(self) -> ReadRouter:
        """Where each read goes: a replica or the primary; only valid between start and stop."""
        if self._reads is None:
            raise RuntimeError("the database pool is not open")
        return self._reads

    async def open(self) -> None:
        """Connects with the service's own database role, to the primary and, for a service
        that reads, to each replica (lazily: a replica down at start is checked again later)."""
        url = service_database_url(self.settings, self.service)
        self._pool = await self._create_pool(url, min_size=self.settings.db_pool_min_size)
        replicas = []
        if self.read_only:
            for server_url in self.settings.replica_urls:
                name = replica_name(server_url)
                pool = await self._create_pool(replica_url(url, server_url), min_size=0)
                self._replica_pools[name] = pool
                replicas.append(Server.of_pool(name, pool))
        self._reads = ReadRouter(
            Server(PRIMARY, True, lambda: self.pool, serving=True),
            replicas,
            max_lag_seconds=self.settings.replica_max_lag_seconds,
            check_interval=self.settings.replica_check_interval_seconds,
            consistency_wait=self.settings.consistency_wait_seconds,
        )
        self._reads.start()
        self._sampler = asyncio.create_task(sample_pool(self.service, self._pool))
        if worker_index() is None:
            self._stats = DatabaseStatsRefresher(
                lambda: self.pool, self.settings.db_stats_interval_seconds
            )
            self._stats.start()

    async def _create_pool(self, url: DatabaseUrl, *, min_size: int) -> asyncpg.Pool:
        return await create_pool(
            url,
            service=self.service,
            min_size=min_size,
            max_size=self.settings.db_pool_max_size,
            connect_timeout=self.settings.db_connect_timeout_seconds,
            read_only=self.read_only,
        )

    async def close(self) -> None:
        """Waits for borrowed connections to come back, then closes them."""
        if self._reads is not None:
            await self._reads.stop()
            self._reads = None
        if self._stats is not None:
            await self._stats.stop()
            self._stats = None
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        for pool in (*self._replica_pools.values(), self._pool):
            if pool is not None:
                await pool.close()
        self._replica_pools.clear()
        self._pool = None

    def hooks(self) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        """The (on_start, on_stop) pair for `GrpcServerSpec`."""
        return self.open, self.close
