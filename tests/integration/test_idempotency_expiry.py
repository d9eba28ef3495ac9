"""Expiring idempotency records: only expired ones go, in batches, without blocking writers."""

from __future__ import annotations

import asyncpg
import pytest

from panoptic.core.db import SERVICE_ROLES, DatabaseUrl
from services.indexer.repository import expire_requests
from tests.conftest import random_id


@pytest.mark.asyncio(loop_scope="session")
async def test_expiry_removes_only_expired_records(database_url: DatabaseUrl) -> None:
    """Records past their expiry time are deleted in batches; live ones are kept."""
    prefix = random_id("exp")
    owner = await asyncpg.connect(database_url.value)
    try:
        await owner.execute(
            "INSERT INTO idempotency_keys (request_id, method, request_hash, response, expire_time)"
            " SELECT $1 || ':' || kind || ':' || n, 'IndexClaims', '', '',"
            "        now() + CASE kind WHEN 'old' THEN interval '-1 hour' ELSE interval '1 day' END"
            " FROM generate_series(1, 25) AS n, unnest(ARRAY['old', 'live']) AS kind"
            " WHERE kind = 'old' OR n <= 5",
            prefix,
        )
        removed = await expire_requests(owner, batch_size=10)
        left = await owner.fetch(
            "SELECT request_id FROM idempotency_keys WHERE request_id LIKE $1 || ':%'", prefix
        )
    finally:
        await owner.close()
    assert removed >= 25
    assert sorted(row["request_id"] for row in left) == sorted(
        f"{prefix}:live:{n}" for n in range(1, 6)
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_expiry_skips_rows_a_writer_holds(database_url: DatabaseUrl) -> None:
    """A record locked by an open indexing transaction is skipped, not waited for."""
    request_id = random_id("held")
    owner = await asyncpg.connect(database_url.value)
    indexer = await asyncpg.connect(database_url.with_user(SERVICE_ROLES["indexer"]).value)
    try:
        await owner.execute(
            "INSERT INTO idempotency_keys (request_id, method, request_hash, response, expire_time)"
            " VALUES ($1, 'IndexClaims', '\\x00', '\\x00', now() - interval '1 minute')",
            request_id,
        )
        async with indexer.transaction():
            await indexer.execute(
                "SELECT 1 FROM idempotency_keys WHERE request_id = $1 FOR UPDATE", request_id
            )
            await expire_requests(owner)  # returns at once instead of blocking on the lock
        still_there = await owner.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE request_id = $1", request_id
        )
        assert still_there == 1
        await expire_requests(owner)
        assert (
            await owner.fetchval(
                "SELECT count(*) FROM idempotency_keys WHERE request_id = $1", request_id
            )
            == 0
        )
    finally:
        await indexer.close()
        await owner.close()
