"""The connection alembic migrates with: asyncpg, with the database URL exactly as given."""

from __future__ import annotations

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from panoptic.core.db import APPLICATION_NAME, DatabaseUrl


def migration_engine(url: DatabaseUrl) -> AsyncEngine:
    """An SQLAlchemy engine over asyncpg that connects with the URL exactly as given.

    asyncpg parses the libpq-style URL itself, so Unix-socket URLs such as
    `postgresql://u@/db?host=%2Ftmp%2Fpg&port=5432` work unchanged.
    """

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(
            url.value,
            server_settings={"application_name": APPLICATION_NAME.format(service="migrate")},
        )

    return create_async_engine("postgresql+asyncpg://", async_creator=connect, poolclass=NullPool)
