"""No role of Panoptic's may create, write or delete large objects.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

PostgreSQL lets every role (PUBLIC) call the large-object functions, and large objects belong to
no table, so no table privilege governs them: the read-only retriever and dashboard roles could
fill the disk with `lo_from_bytea` in a read-write transaction they opened themselves, and so
could the indexer. Panoptic keeps nothing in large objects, so this database takes the functions
from PUBLIC; the owner (and a superuser) keep them. Server-side `lo_import`/`lo_export` are
superuser-only already.

Only a function's owner (the bootstrap superuser) can take it from PUBLIC. An owner that is not
a superuser gets a warning from PostgreSQL instead, and the migration goes on with a notice, as
0003 does for `pg_read_all_stats`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every function that creates, opens, reads, writes, truncates or deletes a large object.
LARGE_OBJECT_FUNCTIONS = (
    "lo_creat(integer)",
    "lo_create(oid)",
    "lo_from_bytea(oid, bytea)",
    "lo_open(oid, integer)",
    "lo_close(integer)",
    "loread(integer, integer)",
    "lowrite(integer, bytea)",
    "lo_lseek(integer, integer, integer)",
    "lo_lseek64(integer, bigint, integer)",
    "lo_tell(integer)",
    "lo_tell64(integer)",
    "lo_truncate(integer, integer)",
    "lo_truncate64(integer, bigint)",
    "lo_get(oid)",
    "lo_get(oid, bigint, integer)",
    "lo_put(oid, bigint, bytea)",
    "lo_unlink(oid)",
)
_FUNCTION_LIST = ", ".join(f"pg_catalog.{function}" for function in LARGE_OBJECT_FUNCTIONS)


def upgrade() -> None:
    """Takes the large-object functions from PUBLIC, or says why it could not."""
    op.execute(f"REVOKE EXECUTE ON FUNCTION {_FUNCTION_LIST} FROM PUBLIC")
    op.execute(
        """
        DO $$
        BEGIN
            IF has_function_privilege('public', 'pg_catalog.lo_from_bytea(oid, bytea)', 'EXECUTE')
            THEN
                RAISE NOTICE 'large-object functions stay open to every role: only their owner '
                             '(a superuser) can take them from PUBLIC';
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    """Gives the large-object functions back to PUBLIC, as PostgreSQL ships them."""
    op.execute(f"GRANT EXECUTE ON FUNCTION {_FUNCTION_LIST} TO PUBLIC")
