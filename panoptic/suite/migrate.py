"""Schema migrations run from code (`panoptic migrate`, `panoptic up`, the tests) through alembic.

The URL is handed to alembic directly, so nothing depends on alembic.ini or the working directory.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

import migrations
from migrations.engine import migration_engine
from panoptic.core.db import DatabaseUrl

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent

# alembic makes the running migration's context a module global (`alembic.context`), so two
# migrations in one process at once would trample each other; other processes are kept in turn
# by the advisory lock env.py takes.
_one_migration_at_a_time = threading.Lock()


def alembic_config(url: DatabaseUrl) -> Config:
    """An alembic configuration for the installed migrations, migrating the database at `url`.

    Built without alembic.ini, so alembic configures no logging of its own: what it logs goes
    wherever the process's logging sends it.
    """
    config = Config()
    # ConfigParser would read a `%` in the path as interpolation.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["database_url"] = url
    return config


def upgrade(url: DatabaseUrl, revision: str = "head") -> None:
    """Migrates the database up to `revision`; does nothing if it is there already.

    Runs its own event loop: from async code, use `upgrade_async`.
    """
    with _one_migration_at_a_time:
        command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: DatabaseUrl, revision: str = "head") -> None:
    """`upgrade` for async callers, run in a worker thread."""
    await asyncio.to_thread(upgrade, url, revision)


def downgrade(url: DatabaseUrl, revision: str = "base") -> None:
    """Migrates the database down to `revision`; `base` removes everything the migrations made."""
    with _one_migration_at_a_time:
        command.downgrade(alembic_config(url), revision)


def current_revision(url: DatabaseUrl) -> str | None:
    """The revision the database is at, or None if it was never migrated."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async def connect_and_read() -> str | None:
        engine = migration_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(connect_and_read())


async def set_role_password(url: DatabaseUrl, role: str, password: str) -> None:
    """Sets a service role's password, connected as the owner at `url`.

    PostgreSQL quotes the role and the password itself (`format` with %I and %L), and stores the
    password hashed as its `password_encryption` setting says.
    """
    if not password:
        raise ValueError(f"refusing to set an empty password for role {role!r}")
    connection = await asyncpg.connect(url.value)
    try:
        statement = await connection.fetchval(
            "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, password
        )
        await connection.execute(statement)
    finally:
        await connection.close()
