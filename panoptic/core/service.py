"""What the indexer and the retriever share around their servicers: a database pool's life.

A service's entry point builds a `GrpcServerSpec` with `database_hooks`, so the pool opens
before the first call is accepted and closes after the last one has finished. While it is open,
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

from panoptic.core.db import create_pool, service_database_url
from panoptic.core.db_metrics import DatabaseStatsRefresher
from panoptic.core.lifecycle import worker_index
from panoptic.core.pool_metrics import sample_pool
from panoptic.core.settings import DatabaseSettings


@dataclass
class PoolHolder:
    """The process's one asyncpg pool, opened at start and closed at stop."""

    settings: DatabaseSettings
    service: str
    read_only: bool = False
    _pool: asyncpg.Pool | None = field(default=None, init=False)
    _stats: DatabaseStatsRefresher | None = field(default=None, init=False)
    _sampler: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool; only valid between start and stop."""
        if self._pool is None:
            raise RuntimeError("the database pool is not open")
        return self._pool

    async def open(self) -> None:
        """Connects with the service's own database role."""
        url = service_database_url(self.settings, self.service)
        self._pool = await create_pool(
            url,
            service=self.service,
            min_size=self.settings.db_pool_min_size,
            max_size=self.settings.db_pool_max_size,
            connect_timeout=self.settings.db_connect_timeout_seconds,
            read_only=self.read_only,
        )
        self._sampler = asyncio.create_task(sample_pool(self.service, self._pool))
        if worker_index() is None:
            self._stats = DatabaseStatsRefresher(
                lambda: self.pool, self.settings.db_stats_interval_seconds
            )
            self._stats.start()

    async def close(self) -> None:
        """Waits for borrowed connections to come back, then closes them."""
        if self._stats is not None:
            await self._stats.stop()
            self._stats = None
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def hooks(self) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
        """The (on_start, on_stop) pair for `GrpcServerSpec`."""
        return self.open, self.close
