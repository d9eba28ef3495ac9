"""The text index keys each claim's words with its statement month and year.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

A search ranks the newest matches of its words (a bounded window). For a word matching a few
thousand claims, finding the newest ones meant reading every match from the table, so its cost
grew with the table (6x from 100k to 1M claims). With the month and the year (UTC) beside the
words in one GIN index (btree_gin, a trusted extension shipped with PostgreSQL), the retriever
reads one month's or one year's matches at a time, newest first, and stops once it has enough.
The index replaces the one on the words alone, which it serves as well.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Builds the words-and-periods index, then drops the words-only one."""
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute(
        "CREATE INDEX ix_claims_search_vector_stated_periods ON claims USING gin (search_vector,"
        " date_trunc('year', stated_at AT TIME ZONE 'UTC'),"
        " date_trunc('month', stated_at AT TIME ZONE 'UTC'))"
    )
    op.execute("DROP INDEX ix_claims_search_vector")


def downgrade() -> None:
    """Puts the words-only index back."""
    op.execute("CREATE INDEX ix_claims_search_vector ON claims USING gin (search_vector)")
    op.execute("DROP INDEX ix_claims_search_vector_stated_periods")
    op.execute("DROP EXTENSION IF EXISTS btree_gin")
