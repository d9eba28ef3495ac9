"""The database gauges against a real PostgreSQL: read with each service's own role, cached,
started and stopped with the pool."""

from __future__ import annotations

import asyncpg
import pytest
from prometheus_client import generate_latest
from prometheus_client.core import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from panoptic.core.db import SERVICE_ROLES, DatabaseUrl
from panoptic.core.db_metrics import (
    DatabaseStatsCollector,
    DatabaseStatsRefresher,
    read_database_stats,
)
from tests.support.corpus import batches_of, index_requests
from tests.support.roles import retriever_pool_holder

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCHEMA_TABLES = {"actors", "topics", "claims", "claim_topics", "claim_revisions"}


def scraped() -> dict[str, list[tuple[dict[str, str], float]]]:
    """This process's /metrics, by sample name."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


@pytest.mark.parametrize("service", ["indexer", "retriever"])
async def test_each_role_reads_the_statistics(database_url: DatabaseUrl, service: str) -> None:
    """Each service's own role, the retriever's read-only one included, reads the database's
    size, the server's connections and every table's size and row estimate."""
    connection = await asyncpg.connect(
        database_url.with_user(SERVICE_ROLES[service]).value,
        server_settings={"default_transaction_read_only": "on"},
    )
    try:
        stats = await read_database_stats(connection)
    finally:
        await connection.close()
    assert stats.size_bytes > 1_000_000
    assert 1 <= stats.connections <= stats.max_connections
    tables = {table.name: table for table in stats.tables}
    assert tables.keys() >= SCHEMA_TABLES
    assert all(table.size_bytes > 0 for table in tables.values())
    assert all(table.rows_estimate >= 0 for table in tables.values())


async def test_row_estimates_follow_indexing_and_analyze(
    scratch_database_url: DatabaseUrl,
) -> None:
    """In a new database the estimate is the live row count until the first ANALYZE, then
    pg_class.reltuples: both count claims just indexed."""
    from panoptic.suite import migrate

    await migrate.upgrade_async(scratch_database_url)
    records = [
        {"actor": {"id": "metrics-actor", "displayName": "Metrics", "kind": "ACTOR_KIND_OTHER"}},
        {"topic": {"id": "metrics-topic", "displayName": "Metrics"}},
    ] + [
        {
            "claim": {
                "id": f"metrics-claim-{index}",
                "actorId": "metrics-actor",
                "topicIds": ["metrics-topic"],
                "text": f"Statement number {index} about metrics.",
                "statedAt": "2024-01-02T03:04:05Z",
                "language": "en",
                "confidence": 0.5,
            }
        }
        for index in range(20)
    ]
    connection = await asyncpg.connect(scratch_database_url.value)
    try:

        async def claims_estimate() -> float:
            stats = await read_database_stats(connection)
            return next(table.rows_estimate for table in stats.tables if table.name == "claims")

        assert await claims_estimate() == 0
        await index_requests(scratch_database_url, batches_of(records, prefix="db-metrics"))
        for _ in range(100):  # the statistics collector publishes the inserts within a second
            if await claims_estimate() == 20:
                break
            await connection.execute("SELECT pg_sleep(0.05)")
        assert await claims_estimate() == 20
        await connection.execute("ANALYZE claims")
        assert await claims_estimate() == 20
    finally:
        await connection.close()


async def test_pool_holder_exports_pool_and_database_gauges_while_open(
    database_url: DatabaseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the pool is open, /metrics has its pool gauges (labelled with the service) and the
    cached database gauges; after close, neither."""
    holder = retriever_pool_holder(database_url, monkeypatch)
    await holder.open()
    try:
        for _ in range(50):
            if "panoptic_db_size_bytes" in scraped():
                break
            await holder.pool.execute("SELECT pg_sleep(0.1)")
        samples = scraped()
        assert samples["panoptic_db_size_bytes"][0][1] > 0
        assert ({"service": "retriever"}, 10.0) in samples["panoptic_db_pool_max_size"]
        tables = {labels["table"] for labels, _ in samples["panoptic_db_table_rows_estimate"]}
        assert tables >= SCHEMA_TABLES
    finally:
        await holder.close()
    samples = scraped()
    assert "panoptic_db_size_bytes" not in samples
    assert not [labels for labels, _ in samples.get("panoptic_db_pool_size", []) if labels]


async def test_a_failed_refresh_withdraws_the_gauges(database_url: DatabaseUrl) -> None:
    """When the database cannot be read, the gauges disappear rather than go stale."""
    collector = DatabaseStatsCollector()
    pool = await asyncpg.create_pool(database_url.value, min_size=1, max_size=1)
    refresher = DatabaseStatsRefresher(lambda: pool, interval=60, collector=collector)
    try:
        assert await refresher.refresh()
        assert [family.name for family in collector.collect()]
    finally:
        await pool.close()
    assert not await refresher.refresh()
    assert list(collector.collect()) == []
