"""Acting as one of the service roles the migrations create."""

from __future__ import annotations

import asyncpg


async def execute_read_write(connection: asyncpg.Connection, statement: str) -> None:
    """Runs `statement` in a transaction made read-write whatever the session's default."""
    async with connection.transaction():
        await connection.execute("SET TRANSACTION READ WRITE")
        await connection.execute(statement)
