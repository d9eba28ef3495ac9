"""No service role can fill the disk through what no table privilege governs: large objects
and temporary tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from panoptic.core.db import DatabaseUrl
from tests.support.roles import execute_read_write

SERVICE_ROLES = ["panoptic_indexer", "panoptic_retriever", "panoptic_dashboard"]

# What a client can do with large objects: create one (as psql's \lo_import does), or open,
# write, grow or delete one that exists. `{oid}` is a large object the owner made.
LARGE_OBJECT_WRITES = [
    "SELECT lo_create(0)",
    "SELECT lo_creat(-1)",
    "SELECT lo_from_bytea(0, '\\x00'::bytea)",
    "SELECT lo_import('/etc/hostname')",
    "SELECT lo_open({oid}, 131072)",  # INV_WRITE
    "SELECT lowrite(lo_open({oid}, 131072), '\\x00'::bytea)",
    "SELECT lo_put({oid}, 0, '\\x00'::bytea)",
    "SELECT lo_truncate(lo_open({oid}, 131072), 1000000)",
    "SELECT lo_unlink({oid})",
]


@pytest_asyncio.fixture(loop_scope="session")
async def owners_large_object(database_url: DatabaseUrl) -> AsyncIterator[int]:
    """A large object the owner made, which may still do so; unlinked afterwards."""
    connection = await asyncpg.connect(database_url.value)
    try:
        oid: int = await connection.fetchval("SELECT lo_from_bytea(0, 'kept'::bytea)")
        yield oid
        await connection.execute("SELECT lo_unlink($1)", oid)
    finally:
        await connection.close()


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("role", SERVICE_ROLES)
@pytest.mark.parametrize("statement", LARGE_OBJECT_WRITES)
async def test_service_roles_cannot_create_or_write_large_objects(
    database_url: DatabaseUrl, owners_large_object: int, role: str, statement: str
) -> None:
    """Each service role is refused every large-object write, even in a read-write transaction."""
    connection = await asyncpg.connect(database_url.with_user(role).value)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await execute_read_write(connection, statement.format(oid=owners_large_object))
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM pg_largeobject_metadata WHERE lomowner = $1::regrole", role
            )
            == 0
        )
    finally:
        await connection.close()


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("role", SERVICE_ROLES)
async def test_service_roles_cannot_create_temporary_tables(
    database_url: DatabaseUrl, role: str
) -> None:
    """Temporary tables, the other way to write without a table privilege, are refused too."""
    connection = await asyncpg.connect(database_url.with_user(role).value)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await execute_read_write(connection, "CREATE TEMP TABLE scratch (payload text)")
    finally:
        await connection.close()
