"""An index of each actor's active claims by statement time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Timelines count an actor's ACTIVE claims per bucket and lists page through them by
(stated_at, id); with the state in the index's predicate both become index-only scans
(measured at 100k claims: a 21k-claim actor's monthly timeline went from 88 ms to 10 ms).

Built inside the migration's transaction, under its advisory lock, like every revision: no
deployment holds data yet. A later index on a large live table should be built CONCURRENTLY in
an autocommit block instead, so as not to hold back the indexer's writes while it builds.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Creates the partial index."""
    op.execute(
        "CREATE INDEX ix_claims_active_actor_id_stated_at_id"
        " ON claims (actor_id, stated_at, id) WHERE state = 'ACTIVE'"
    )


def downgrade() -> None:
    """Drops it again."""
    op.execute("DROP INDEX ix_claims_active_actor_id_stated_at_id")
