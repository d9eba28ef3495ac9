"""Expiring idempotency records: only expired ones go, in batches, without blocking writers."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import pytest

from panoptic.core.db import SERVICE_ROLES, DatabaseUrl
from services.indexer.repository import expire_requests
from tests.conftest import random_id
from tests.support.processes import run_panoptic, service_env


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


@pytest.mark.asyncio(loop_scope="session")
async def test_the_expire_requests_command_removes_expired_records(
    database_url: DatabaseUrl, tmp_path: Path
) -> None:
    """`panoptic expire-requests` connects as the owner, expires, and says how many went."""
    request_id = random_id("cli-expired")
    owner = await asyncpg.connect(database_url.value)
    try:
        await owner.execute(
            "INSERT INTO idempotency_keys (request_id, method, request_hash, response, expire_time)"
            " VALUES ($1, 'IndexClaims', '', '', now() - interval '1 minute')",
            request_id,
        )
        result = await asyncio.to_thread(
            run_panoptic, "expire-requests", env=service_env(database_url.value, tmp_path)
        )
        assert result.returncode == 0, result.stderr
        match = re.fullmatch(r"expired (\d+) idempotency records\n", result.stdout)
        assert match is not None, result.stdout
        assert int(match.group(1)) >= 1
        assert not await owner.fetchval(
            "SELECT EXISTS (SELECT FROM idempotency_keys WHERE request_id = $1)", request_id
        )
    finally:
        await owner.close()
