"""What the admin dashboard reads: refused batches, an index on revision times, its own role.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

- `indexer_rejections`: append-only, one row per batch the indexer refused (the indexer may only
  insert; the dashboard reads it for "recent rejected batches by reason").
- Two indexes on `claim_revisions.record_time`: claims indexed per hour and the newest index time,
  and the recent changes to existing claims, without scanning the history.
- `panoptic_dashboard`: a read-only login role of its own, not the retriever's. The dashboard
  needs `pg_read_all_stats` to show other roles' sessions and pg_stat_statements' texts, which
  may hold literal values (an `ALTER ROLE ... PASSWORD` is one); the retriever, which the public
  reaches through the gateway, must not be able to read them.
- `pg_stat_statements`, where the server has it and this role may create it; nothing fails when
  it cannot (the dashboard then says the extension is unavailable).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Creates the table, the index, the role with its grants, and the extension if possible."""
    op.execute(
        """
        CREATE TABLE indexer_rejections (
            id bigint GENERATED ALWAYS AS IDENTITY,
            record_time timestamptz NOT NULL DEFAULT now(),
            request_id text NOT NULL DEFAULT '',
            reason text NOT NULL,
            field_count integer NOT NULL DEFAULT 0,
            summary text NOT NULL DEFAULT '',
            CONSTRAINT pk_indexer_rejections PRIMARY KEY (id),
            CONSTRAINT ck_indexer_rejections_field_count_not_negative CHECK (field_count >= 0)
        )
        """
    )
    op.execute("CREATE INDEX ix_indexer_rejections_record_time ON indexer_rejections (record_time)")
    # With the change kind in the index, claims per hour (new against changed) is an index-only
    # scan of the window: the table is append-only, so its pages are soon all-visible.
    op.execute(
        "CREATE INDEX ix_claim_revisions_record_time_change ON claim_revisions (record_time, change)"
    )
    # Recent updates, retractions and restorations, without walking past every new claim.
    op.execute(
        "CREATE INDEX ix_claim_revisions_changed_record_time ON claim_revisions (record_time)"
        " WHERE change <> 'CREATED'"
    )
    # Identity values come from the table's own sequence: INSERT is the only privilege needed.
    op.execute("GRANT INSERT ON indexer_rejections TO panoptic_indexer")

    op.execute(
        """
        DO $$
        BEGIN
            CREATE ROLE panoptic_dashboard LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO panoptic_dashboard', current_database());
            EXECUTE format('ALTER ROLE panoptic_dashboard IN DATABASE %I SET default_transaction_read_only = on',
                           current_database());
        END
        $$
        """
    )
    op.execute("GRANT USAGE ON SCHEMA public TO panoptic_dashboard")
    op.execute(
        "GRANT SELECT ON actors, topics, claims, claim_topics, claim_revisions,"
        " indexer_rejections, alembic_version TO panoptic_dashboard"
    )
    # pg_read_all_stats only reads statistics. Granting it needs a superuser (or ADMIN on it);
    # an owner with only CREATEROLE goes on without it, and the dashboard shows its own sessions.
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT pg_has_role('panoptic_dashboard', 'pg_read_all_stats', 'MEMBER') THEN
                GRANT pg_read_all_stats TO panoptic_dashboard;
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'panoptic_dashboard was not granted pg_read_all_stats: %', SQLERRM;
        END
        $$
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_stat_statements')
               AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_stat_statements') THEN
                CREATE EXTENSION pg_stat_statements;
                -- Marks it as made here: the downgrade drops it only then, never a DBA's.
                COMMENT ON EXTENSION pg_stat_statements IS 'created by Panoptic migration 0003';
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_stat_statements was not created: %', SQLERRM;
        END
        $$
        """
    )


def downgrade() -> None:
    """Removes the table, the index, the extension if created here, and the role."""
    op.execute(
        """
        DO $$
        BEGIN
            IF obj_description((SELECT oid FROM pg_extension WHERE extname = 'pg_stat_statements'),
                               'pg_extension') = 'created by Panoptic migration 0003' THEN
                DROP EXTENSION pg_stat_statements;
            END IF;
        END
        $$
        """
    )
    op.execute("DROP INDEX ix_claim_revisions_changed_record_time")
    op.execute("DROP INDEX ix_claim_revisions_record_time_change")
    op.execute("DROP TABLE indexer_rejections")
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'panoptic_dashboard') THEN
                EXECUTE format('REVOKE ALL ON DATABASE %I FROM panoptic_dashboard', current_database());
                REVOKE ALL ON SCHEMA public FROM panoptic_dashboard;
                REVOKE ALL ON actors, topics, claims, claim_topics, claim_revisions, alembic_version
                    FROM panoptic_dashboard;
            END IF;
        END
        $$
        """
    )
    # As in 0001: the role is shared by the cluster's databases and kept while another uses it.
    # Its pg_read_all_stats membership is not an object of this database and goes with the role.
    op.execute(
        """
        DO $$
        BEGIN
            DROP ROLE IF EXISTS panoptic_dashboard;
        EXCEPTION WHEN dependent_objects_still_exist OR deadlock_detected THEN
            EXECUTE format('ALTER ROLE panoptic_dashboard IN DATABASE %I RESET default_transaction_read_only',
                           current_database());
        END
        $$
        """
    )
