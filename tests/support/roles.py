"""Acting as one of the service roles the migrations create."""

from __future__ import annotations

import asyncpg
import pytest

from panoptic.core.db import DatabaseUrl
from panoptic.core.service import PoolHolder
from panoptic.core.settings import Settings


async def execute_read_write(connection: asyncpg.Connection, statement: str) -> None:
    """Runs `statement` in a transaction made read-write whatever the session's default."""
    async with connection.transaction():
        await connection.execute("SET TRANSACTION READ WRITE")
        await connection.execute(statement)


def retriever_pool_holder(database_url: DatabaseUrl, monkeypatch: pytest.MonkeyPatch) -> PoolHolder:
    """A pool holder, not yet open, that opens its pool exactly as the retriever does: on the
    retriever's role, read-only, with the settings the environment gives (`database_url`'s
    server, none of the retriever's own overrides)."""
    for variable in ("PANOPTIC_RETRIEVER_DATABASE_URL", "PANOPTIC_RETRIEVER_DB_PASSWORD"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url.value)
    return PoolHolder(Settings().database, "retriever", read_only=True)
