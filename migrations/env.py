"""Alembic's entry point: migrates the database the caller names, or else `DATABASE_URL`'s.

From code (`panoptic.suite.migrate`) the URL arrives in `config.attributes["database_url"]`; from
the `alembic` command line it is read from the environment, as the services read it.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Connection

from migrations.engine import migration_engine
from migrations.schema import AUTOGENERATE_OPTIONS, metadata
from panoptic.core.db import DatabaseUrl, DatabaseUrlError

# Held until the migration's transaction ends, so concurrent runs on one database take turns and
# the later one finds the work done. The key is the bytes of "panoptic".
MIGRATION_LOCK = f"SELECT pg_advisory_xact_lock({int.from_bytes(b'panoptic', 'big')})"

config = context.config

# Only the alembic command line reads alembic.ini; called from code, logging stays the app's.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> DatabaseUrl:
    """The URL handed over by `panoptic.suite.migrate`, or `DATABASE_URL` from the environment."""
    given = config.attributes.get("database_url")
    if isinstance(given, DatabaseUrl):
        return given
    # The same variables the settings accept (panoptic.core.settings.Settings.database_url).
    value = os.environ.get("DATABASE_URL") or os.environ.get("PANOPTIC_DATABASE_URL")
    if not value:
        raise CommandError(
            "DATABASE_URL is not set: export it as the owner's URL, "
            "e.g. postgresql://panoptic_owner@localhost:5432/panoptic"
        )
    try:
        return DatabaseUrl(value)
    except DatabaseUrlError as error:
        raise CommandError(str(error)) from None


def run_migrations_offline() -> None:
    """Writes the migrations' SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(
        dialect_name="postgresql",
        # Keeps `%` in the SQL as written instead of doubling it for a driver.
        dialect_opts={"paramstyle": "named"},
        literal_binds=True,
        target_metadata=metadata,
        **AUTOGENERATE_OPTIONS,
    )
    with context.begin_transaction():
        context.execute(MIGRATION_LOCK)
        context.run_migrations()


def _run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, **AUTOGENERATE_OPTIONS)
    with context.begin_transaction():
        context.execute(MIGRATION_LOCK)
        context.run_migrations()


async def run_migrations_online() -> None:
    """Migrates over one asyncpg connection, all revisions in one transaction."""
    engine = migration_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
