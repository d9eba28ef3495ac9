"""Every time in claims, their topic links and their history lies in the accepted range.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

A claim stated at 0001-01-01T00:00:00Z was stored as -infinity (asyncpg sends `datetime.min` so)
and then failed searches and its own correction. The API now refuses every time outside
[0001-01-02T00:00:00Z, 9999-12-31T00:00:00Z) (`panoptic.core.timestamps`), and a CHECK per
table, `ck_<table>_times_in_range`, makes such times impossible here as well.

Existing rows:
- `claims` and `claim_topics` hold current state, derived from what pipelines sent: a time
  outside the range is repaired to the nearest one inside it (-infinity to 0001-01-02, infinity
  to the last microsecond before 9999-12-31), which is also how the indexer reads such a time,
  and the day counts of the actors concerned are counted again from their claims, as 0004 first
  counted them. The pipeline can then correct the claim through the indexer (a new revision)
  or retract it. The constraints are added NOT VALID and validated afterwards, which scans the
  tables without blocking reads or writes.
- `claim_revisions` is history, which not even the owner may rewrite (its trigger refuses):
  an old entry keeps the time it recorded, and reads bring it within range as they return it.
  The constraint guards every new revision; it is validated only when no recorded entry breaks
  it, and otherwise stays NOT VALID with a notice saying so.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from migrations.schema import TIME_COLUMNS, times_in_range
from panoptic.core.timestamps import clamped_sql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Current state, which may be repaired; history is not.
REPAIRED_TABLES = ("claims", "claim_topics")


def upgrade() -> None:
    """Repairs current state, recounts the days it moved, adds and validates the constraints."""
    # Every name and condition spliced into these statements is a constant of this module or
    # of `migrations.schema`; nothing comes from outside.
    op.execute(
        "CREATE TEMPORARY TABLE repaired_actors ON COMMIT DROP AS"  # noqa: S608 - constants only
        " SELECT DISTINCT actor_id FROM claims"
        f" WHERE NOT ({times_in_range('claims')})"
        " UNION SELECT DISTINCT actor_id FROM claim_topics"
        f" WHERE NOT ({times_in_range('claim_topics')})"
    )
    for table in REPAIRED_TABLES:
        for column in TIME_COLUMNS[table]:
            op.execute(
                f"UPDATE {table} SET {column} = {clamped_sql(column)}"  # noqa: S608 - constants only
                f" WHERE NOT ({times_in_range(table, (column,))})"
            )
    _recount_days()
    for table in TIME_COLUMNS:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT ck_{table}_times_in_range"
            f" CHECK ({times_in_range(table)}) NOT VALID"
        )
    for table in REPAIRED_TABLES:
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT ck_{table}_times_in_range")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM claim_revisions WHERE NOT ({times_in_range("claim_revisions")}))
            THEN
                RAISE NOTICE 'claim_revisions records times outside the accepted range: '
                    'ck_claim_revisions_times_in_range guards new revisions only (NOT VALID)';
            ELSE
                ALTER TABLE claim_revisions VALIDATE CONSTRAINT ck_claim_revisions_times_in_range;
            END IF;
        END
        $$
        """
    )


def _recount_days() -> None:
    """Counts the repaired actors' days again from their claims (as 0004 filled them)."""
    for table in ("actor_day_counts", "actor_topic_day_counts"):
        op.execute(
            f"DELETE FROM {table} WHERE actor_id IN (SELECT actor_id FROM repaired_actors)"  # noqa: S608 - constants only
        )
    op.execute(
        "INSERT INTO actor_day_counts (actor_id, day, claim_count)"
        " SELECT actor_id, (stated_at AT TIME ZONE 'UTC')::date, count(*) FROM claims"
        " WHERE state = 'ACTIVE' AND actor_id IN (SELECT actor_id FROM repaired_actors)"
        " GROUP BY 1, 2"
    )
    op.execute(
        "INSERT INTO actor_topic_day_counts (actor_id, topic_id, day, claim_count)"
        " SELECT c.actor_id, l.topic_id, (c.stated_at AT TIME ZONE 'UTC')::date, count(*)"
        " FROM claims c JOIN claim_topics l ON l.claim_id = c.id AND l.is_current"
        " WHERE c.state = 'ACTIVE' AND c.actor_id IN (SELECT actor_id FROM repaired_actors)"
        " GROUP BY 1, 2, 3"
    )


def downgrade() -> None:
    """Drops the constraints; repaired times stay repaired."""
    for table in TIME_COLUMNS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT ck_{table}_times_in_range")
