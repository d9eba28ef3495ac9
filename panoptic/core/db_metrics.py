"""Database size, table size and row-estimate gauges, read in the background and cached.

A scrape never waits for PostgreSQL: each service re-reads a small snapshot of catalog
statistics every `PANOPTIC_DB_STATS_INTERVAL_SECONDS` (30 s) on its own pool, and `/metrics`
reports the last one. The queries read statistics only (`pg_database_size`, `pg_class.reltuples`,
`pg_total_relation_size`, `pg_stat_database`), so they cost the same on an empty database and a
large one, and work on the retriever's read-only role. When a refresh fails, the gauges are left
out rather than reported stale.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import asyncpg
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from panoptic.core.logging import get_logger

log = get_logger("panoptic.db_metrics")

# Longest a refresh may wait for a pooled connection or a query: the pool serves calls first.
QUERY_TIMEOUT_SECONDS = 5.0

DATABASE_QUERY = """
SELECT pg_database_size(current_database()) AS size_bytes,
       (SELECT sum(numbackends) FROM pg_stat_database)::bigint AS connections,
       current_setting('max_connections')::bigint AS max_connections
"""

# Every table of the schema the service works in; `reltuples` is -1 until the table's first
# ANALYZE, and then the live-tuple count of the statistics collector stands in for it.
TABLES_QUERY = """
SELECT c.relname AS name,
       CASE WHEN c.reltuples < 0 THEN coalesce(s.n_live_tup, 0) ELSE c.reltuples END
           AS rows_estimate,
       pg_total_relation_size(c.oid) AS size_bytes
  FROM pg_class AS c
  JOIN pg_namespace AS n ON n.oid = c.relnamespace
  LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
 WHERE c.relkind = 'r' AND n.nspname = current_schema()
 ORDER BY c.relname
"""


@dataclass(frozen=True)
class TableStats:
    """One table's estimated row count and its size with indexes and TOAST."""

    name: str
    rows_estimate: float
    size_bytes: int


@dataclass(frozen=True)
class DatabaseStats:
    """One reading of the database's statistics."""

    size_bytes: int
    connections: int
    """Backends connected to any database of the server."""
    max_connections: int
    tables: tuple[TableStats, ...]


async def read_database_stats(connection: asyncpg.Connection) -> DatabaseStats:
    """Reads the statistics; two catalog queries, no table is scanned."""
    database = await connection.fetchrow(DATABASE_QUERY, timeout=QUERY_TIMEOUT_SECONDS)
    tables = await connection.fetch(TABLES_QUERY, timeout=QUERY_TIMEOUT_SECONDS)
    assert database is not None
    return DatabaseStats(
        size_bytes=int(database["size_bytes"]),
        connections=int(database["connections"] or 0),
        max_connections=int(database["max_connections"]),
        tables=tuple(
            TableStats(row["name"], float(row["rows_estimate"]), int(row["size_bytes"]))
            for row in tables
        ),
    )


class DatabaseStatsCollector(Collector):
    """Reports the last snapshot; reports nothing before the first or after a failed refresh."""

    def __init__(self) -> None:
        self._stats: DatabaseStats | None = None

    def update(self, stats: DatabaseStats | None) -> None:
        """Replaces the snapshot (None: unknown). Scrapes run on another thread; one assignment
        is atomic, so they see either snapshot whole."""
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges of the current snapshot."""
        stats = self._stats
        if stats is None:
            return
        yield GaugeMetricFamily(
            "panoptic_db_size_bytes",
            "Size of the database on disk (pg_database_size).",
            value=stats.size_bytes,
        )
        yield GaugeMetricFamily(
            "panoptic_db_server_connections",
            "Backends connected to the PostgreSQL server, all databases (pg_stat_database).",
            value=stats.connections,
        )
        yield GaugeMetricFamily(
            "panoptic_db_server_max_connections",
            "The server's max_connections.",
            value=stats.max_connections,
        )
        rows = GaugeMetricFamily(
            "panoptic_db_table_rows_estimate",
            "Estimated rows per table (pg_class.reltuples, as of the last ANALYZE).",
            labels=["table"],
        )
        size = GaugeMetricFamily(
            "panoptic_db_table_size_bytes",
            "Size of each table with its indexes and TOAST (pg_total_relation_size).",
            labels=["table"],
        )
        for table in stats.tables:
            rows.add_metric([table.name], table.rows_estimate)
            size.add_metric([table.name], table.size_bytes)
        yield rows
        yield size


DATABASE_STATS = DatabaseStatsCollector()
REGISTRY.register(DATABASE_STATS)


class DatabaseStatsRefresher:
    """Re-reads the statistics every `interval` seconds on a background task."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        interval: float,
        collector: DatabaseStatsCollector = DATABASE_STATS,
    ) -> None:
        self._pool = pool
        self._interval = interval
        self._collector = collector
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        """Reads a snapshot now; returns whether it succeeded."""
        try:
            async with self._pool().acquire(timeout=QUERY_TIMEOUT_SECONDS) as connection:
                stats = await read_database_stats(connection)
        except Exception as error:  # any failure: monitoring must never take the service down
            log.warning("could not read database statistics", error=type(error).__name__)
            self._collector.update(None)
            return False
        self._collector.update(stats)
        return True

    def start(self) -> None:
        """Starts refreshing, the first time right away."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="database-stats")

    async def stop(self) -> None:
        """Stops refreshing and withdraws the gauges."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._collector.update(None)

    async def _run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval)
