"""Streaming replicas for the benchmarks: made beside their throwaway embedded server, and their
replay lag sampled while a load runs.

The lag is the one the services route reads by and export (`panoptic_db_replica_lag_seconds`
and `_bytes`): a `ReadRouter` with the replicas checks them every SAMPLE_SECONDS, as the
retriever does every PANOPTIC_REPLICA_CHECK_INTERVAL_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import asyncpg

from panoptic.core.errors import PanopticError
from panoptic.core.replicas import PRIMARY, ReadRouter, Server

if TYPE_CHECKING:
    from panoptic.bench.common import BenchServer
    from panoptic.suite.embedded_pg import EmbeddedPostgres

T = TypeVar("T")
# How often the lag is sampled during a load: finer than the services' default check (0.5 s).
SAMPLE_SECONDS = 0.2
# How long a replica may take to replay what a load wrote before the benchmark gives up on it.
CATCH_UP_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class LagFigures:
    """One replica's replay lag, sampled while a load ran."""

    samples: int
    max_seconds: float
    p95_seconds: float
    max_bytes: int
    p95_bytes: int
    caught_up_seconds: float
    """How long after the load ended the replica had replayed everything it wrote."""

    def describe(self) -> str:
        """`lag max 1.2 s (p95 0.8 s), 35.0 MiB (p95 20.1 MiB); caught up 0.4 s after`."""
        return (
            f"lag max {self.max_seconds:.2f} s (p95 {self.p95_seconds:.2f} s), "
            f"{self.max_bytes / 2**20:.1f} MiB (p95 {self.p95_bytes / 2**20:.1f} MiB) over "
            f"{self.samples} samples; caught up {self.caught_up_seconds:.1f} s after the load"
        )


def lag_figures(
    seconds: Sequence[float], lag_bytes: Sequence[int], caught_up_seconds: float
) -> LagFigures:
    """Max and p95 (inclusive, nearest rank) of lag samples; zeros when none was taken."""
    return LagFigures(
        samples=len(seconds),
        max_seconds=max(seconds, default=0.0),
        p95_seconds=_p95(seconds),
        max_bytes=max(lag_bytes, default=0),
        p95_bytes=int(_p95([float(value) for value in lag_bytes])),
        caught_up_seconds=caught_up_seconds,
    )


def _p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[94]


@contextlib.asynccontextmanager
async def bench_replicas(server: BenchServer, count: int) -> AsyncIterator[list[EmbeddedPostgres]]:
    """`count` streaming replicas of the benchmark's embedded server, stopped and removed at
    the end; none for count 0. A server given by DATABASE_URL gets none: refused."""
    if count == 0:
        yield []
        return
    if server.embedded is None:
        raise PanopticError(
            "replicas are made only of the benchmark's own embedded PostgreSQL: unset "
            "DATABASE_URL, or run without --replicas"
        )
    from panoptic.suite.embedded_pg import ensure_replicas

    replicas: list[EmbeddedPostgres] = []
    try:
        replicas = await asyncio.to_thread(ensure_replicas, server.embedded, count)
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()
            shutil.rmtree(replica.pgdata, ignore_errors=True)
            shutil.rmtree(replica.socket_dir, ignore_errors=True)


class LagSampler:
    """Samples replicas' replay lag behind a primary, as the services' read router sees it.

    Use as an async context manager (it opens a connection to each server), then
    `sample_during(load)`.
    """

    def __init__(self, primary_url: str, replicas: Sequence[EmbeddedPostgres]) -> None:
        self._primary_url = primary_url
        self._replica_urls = [replica.url() for replica in replicas]
        self._pools: list[asyncpg.Pool] = []
        self._router: ReadRouter | None = None

    @property
    def names(self) -> list[str]:
        """The replicas' names in figures: `replica-1`, `replica-2`..."""
        return [f"replica-{number}" for number in range(1, len(self._replica_urls) + 1)]

    async def __aenter__(self) -> LagSampler:
        if not self._replica_urls:
            return self
        for url in (self._primary_url, *self._replica_urls):
            self._pools.append(await asyncpg.create_pool(url, min_size=1, max_size=1))
        primary, *replicas = self._pools
        self._router = ReadRouter(
            Server.of_pool(PRIMARY, primary, is_primary=True, serving=True),
            [Server.of_pool(name, pool) for name, pool in zip(self.names, replicas, strict=True)],
            # Never taken out for lagging: the benchmark wants the figure, not the routing.
            max_lag_seconds=math.inf,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        for pool in self._pools:
            await pool.close()
        self._pools.clear()

    async def sample_during(self, load: Awaitable[T]) -> tuple[T, dict[str, LagFigures]]:
        """Awaits `load` while sampling each replica's lag, then waits until each has replayed
        all the primary wrote; returns the load's result and each replica's figures (none
        without replicas)."""
        if not self._replica_urls:
            return await load, {}
        router = self._require_router()
        samples: dict[str, tuple[list[float], list[int]]] = {name: ([], []) for name in self.names}

        async def sample() -> None:
            while True:
                await router.check()
                for replica in router.replicas:
                    if not math.isinf(replica.lag_seconds):
                        samples[replica.name][0].append(replica.lag_seconds)
                        samples[replica.name][1].append(replica.lag_bytes)
                await asyncio.sleep(SAMPLE_SECONDS)

        sampler = asyncio.create_task(sample())
        try:
            result = await load
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        caught_up = await self.until_caught_up()
        return result, {
            name: lag_figures(seconds, lag_bytes, caught_up[name])
            for name, (seconds, lag_bytes) in samples.items()
        }

    async def until_caught_up(self) -> dict[str, float]:
        """Seconds until each replica had replayed as far as the primary's position now."""
        if not self._replica_urls:
            return {}
        router = self._require_router()
        started = time.monotonic()
        target = await router.primary.pool().fetchval("SELECT pg_current_wal_lsn()")
        waited: dict[str, float] = {}
        while len(waited) < len(router.replicas):
            for replica in router.replicas:
                if replica.name in waited:
                    continue
                replayed = await replica.pool().fetchval("SELECT pg_last_wal_replay_lsn()")
                if replayed is not None and replayed >= target:
                    waited[replica.name] = time.monotonic() - started
            if time.monotonic() - started > CATCH_UP_TIMEOUT_SECONDS:
                raise RuntimeError(
                    f"a replica did not replay the primary's log within "
                    f"{CATCH_UP_TIMEOUT_SECONDS:.0f} s"
                )
            await asyncio.sleep(0.02)
        return waited

    def _require_router(self) -> ReadRouter:
        if self._router is None:
            raise RuntimeError("the lag sampler is not open")
        return self._router
