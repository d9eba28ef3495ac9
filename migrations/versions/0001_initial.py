"""The initial schema: actors, topics, claims with their history, idempotency keys, and roles.

Revision ID: 0001
Revises:
Create Date: 2025-11-27

Written by hand; `migrations/schema.py` describes the same tables and a test proves they match.
Roles are cluster-wide while everything else here belongs to one database, so role creation
tolerates a role that exists already (made by another database's migration, perhaps at the
same moment) and the downgrade drops a role only when no other database still uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Creates the tables, their search support, the history guard, the roles and grants."""
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    # array_to_string is only STABLE in general (it calls the element type's output function),
    # but for text[] it cannot change, so an IMMUTABLE wrapper may feed a generated column.
    op.execute(
        """
        CREATE FUNCTION panoptic_actor_search_names(display_name text, aliases text[])
        RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN lower(array_to_string(array_prepend(display_name, aliases), ' '))
        """
    )

    op.execute(
        """
        CREATE TABLE actors (
            id text NOT NULL,
            display_name text NOT NULL,
            aliases text[] NOT NULL DEFAULT '{}'::text[],
            kind text NOT NULL,
            description text NOT NULL DEFAULT '',
            claim_count bigint NOT NULL DEFAULT 0,
            create_time timestamptz NOT NULL DEFAULT now(),
            update_time timestamptz NOT NULL DEFAULT now(),
            search_names text GENERATED ALWAYS AS (panoptic_actor_search_names(display_name, aliases)) STORED,
            CONSTRAINT pk_actors PRIMARY KEY (id),
            CONSTRAINT ck_actors_id_slug CHECK (id ~ '^[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?$'),
            CONSTRAINT ck_actors_display_name_not_empty CHECK (display_name <> ''),
            CONSTRAINT ck_actors_kind_known CHECK (kind IN ('PERSON', 'ORGANISATION', 'OTHER')),
            CONSTRAINT ck_actors_claim_count_not_negative CHECK (claim_count >= 0)
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_actors_search_names ON actors USING gin (search_names gin_trgm_ops)"
    )

    op.execute(
        """
        CREATE TABLE topics (
            id text NOT NULL,
            display_name text NOT NULL,
            parent_id text NULL,
            claim_count bigint NOT NULL DEFAULT 0,
            create_time timestamptz NOT NULL DEFAULT now(),
            update_time timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_topics PRIMARY KEY (id),
            CONSTRAINT fk_topics_parent_id_topics FOREIGN KEY (parent_id) REFERENCES topics (id),
            CONSTRAINT ck_topics_id_slug CHECK (id ~ '^[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?$'),
            CONSTRAINT ck_topics_display_name_not_empty CHECK (display_name <> ''),
            CONSTRAINT ck_topics_parent_not_self CHECK (parent_id <> id),
            CONSTRAINT ck_topics_claim_count_not_negative CHECK (claim_count >= 0)
        )
        """
    )
    op.execute("CREATE INDEX ix_topics_parent_id ON topics (parent_id)")

    op.execute(
        """
        CREATE TABLE claims (
            id text NOT NULL,
            actor_id text NOT NULL,
            topic_ids text[] NOT NULL,
            text text NOT NULL,
            stated_at timestamptz NOT NULL,
            source_url text NOT NULL DEFAULT '',
            source_title text NOT NULL DEFAULT '',
            source_publisher text NOT NULL DEFAULT '',
            source_published_at timestamptz NULL,
            language text NOT NULL,
            confidence double precision NOT NULL,
            state text NOT NULL,
            revision integer NOT NULL,
            content_hash bytea NOT NULL,
            create_time timestamptz NOT NULL DEFAULT now(),
            update_time timestamptz NOT NULL DEFAULT now(),
            search_vector tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, text)) STORED,
            CONSTRAINT pk_claims PRIMARY KEY (id),
            CONSTRAINT fk_claims_actor_id_actors FOREIGN KEY (actor_id) REFERENCES actors (id),
            CONSTRAINT ck_claims_id_format CHECK (id ~ '^[A-Za-z0-9._~-]{1,128}$'),
            CONSTRAINT ck_claims_topic_ids_not_empty CHECK (cardinality(topic_ids) >= 1),
            CONSTRAINT ck_claims_text_not_empty CHECK (text <> ''),
            CONSTRAINT ck_claims_language_not_empty CHECK (language <> ''),
            CONSTRAINT ck_claims_confidence_range CHECK (confidence >= 0 AND confidence <= 1),
            CONSTRAINT ck_claims_state_known CHECK (state IN ('ACTIVE', 'RETRACTED')),
            CONSTRAINT ck_claims_revision_positive CHECK (revision >= 1)
        )
        """
    )
    op.execute("CREATE INDEX ix_claims_actor_id_stated_at_id ON claims (actor_id, stated_at, id)")
    op.execute("CREATE INDEX ix_claims_stated_at_id ON claims (stated_at, id)")
    op.execute("CREATE INDEX ix_claims_search_vector ON claims USING gin (search_vector)")

    op.execute(
        """
        CREATE TABLE claim_topics (
            claim_id text NOT NULL,
            topic_id text NOT NULL,
            stated_at timestamptz NOT NULL,
            is_current boolean NOT NULL DEFAULT true,
            CONSTRAINT pk_claim_topics PRIMARY KEY (claim_id, topic_id),
            CONSTRAINT fk_claim_topics_claim_id_claims FOREIGN KEY (claim_id) REFERENCES claims (id),
            CONSTRAINT fk_claim_topics_topic_id_topics FOREIGN KEY (topic_id) REFERENCES topics (id)
        )
        """
    )
    # Only current links are paged; links kept for history stay out of the index.
    op.execute(
        "CREATE INDEX ix_claim_topics_topic_id_stated_at_claim_id"
        " ON claim_topics (topic_id, stated_at, claim_id) WHERE is_current"
    )

    op.execute(
        """
        CREATE TABLE claim_revisions (
            claim_id text NOT NULL,
            revision integer NOT NULL,
            change text NOT NULL,
            actor_id text NOT NULL,
            topic_ids text[] NOT NULL,
            text text NOT NULL,
            stated_at timestamptz NOT NULL,
            source_url text NOT NULL,
            source_title text NOT NULL,
            source_publisher text NOT NULL,
            source_published_at timestamptz NULL,
            language text NOT NULL,
            confidence double precision NOT NULL,
            state text NOT NULL,
            record_time timestamptz NOT NULL DEFAULT now(),
            request_id text NOT NULL,
            reason text NOT NULL DEFAULT '',
            CONSTRAINT pk_claim_revisions PRIMARY KEY (claim_id, revision),
            CONSTRAINT fk_claim_revisions_claim_id_claims FOREIGN KEY (claim_id) REFERENCES claims (id),
            CONSTRAINT ck_claim_revisions_revision_positive CHECK (revision >= 1),
            CONSTRAINT ck_claim_revisions_change_known CHECK (change IN ('CREATED', 'UPDATED', 'RETRACTED', 'RESTORED')),
            CONSTRAINT ck_claim_revisions_created_first CHECK ((revision = 1) = (change = 'CREATED')),
            CONSTRAINT ck_claim_revisions_confidence_range CHECK (confidence >= 0 AND confidence <= 1),
            CONSTRAINT ck_claim_revisions_state_known CHECK (state IN ('ACTIVE', 'RETRACTED'))
        )
        """
    )
    # Privileges keep the services from rewriting history; these triggers also stop the owner
    # (a mistaken UPDATE in psql, a cleanup script). DROP TABLE is still possible on purpose.
    op.execute(
        """
        CREATE FUNCTION panoptic_forbid_history_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% on %: claim revisions are append-only', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation',
                      HINT = 'Record a change as a new revision instead.';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER claim_revisions_append_only BEFORE UPDATE OR DELETE ON claim_revisions"
        " FOR EACH ROW EXECUTE FUNCTION panoptic_forbid_history_change()"
    )
    op.execute(
        "CREATE TRIGGER claim_revisions_no_truncate BEFORE TRUNCATE ON claim_revisions"
        " FOR EACH STATEMENT EXECUTE FUNCTION panoptic_forbid_history_change()"
    )

    op.execute(
        """
        CREATE TABLE idempotency_keys (
            request_id text NOT NULL,
            method text NOT NULL,
            request_hash bytea NOT NULL,
            response bytea NOT NULL,
            create_time timestamptz NOT NULL DEFAULT now(),
            expire_time timestamptz NOT NULL,
            CONSTRAINT pk_idempotency_keys PRIMARY KEY (request_id)
        )
        """
    )
    op.execute("CREATE INDEX ix_idempotency_keys_expire_time ON idempotency_keys (expire_time)")

    _create_roles_and_grants()


def _create_roles_and_grants() -> None:
    # Another database's migration may create the same role at the same moment: the loser of
    # that race sees unique_violation (it waited on the catalog's unique index), not
    # duplicate_object.
    op.execute(
        """
        DO $$
        BEGIN
            CREATE ROLE panoptic_indexer LOGIN;
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
            CREATE ROLE panoptic_retriever LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$
        """
    )

    # Nobody but the owner creates objects or connects, unless granted below.
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute(
        """
        DO $$
        BEGIN
            EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO panoptic_indexer, panoptic_retriever',
                           current_database());
            -- Set in this database only, not role-wide: the role is shared by every database in
            -- the cluster, and concurrent role-wide ALTER ROLE ... SET from two databases'
            -- migrations fails with "tuple concurrently updated".
            EXECUTE format('ALTER ROLE panoptic_retriever IN DATABASE %I SET default_transaction_read_only = on',
                           current_database());
        END
        $$
        """
    )
    op.execute("GRANT USAGE ON SCHEMA public TO panoptic_indexer, panoptic_retriever")

    # The indexer writes but never deletes, and may only append to history.
    op.execute(
        "GRANT SELECT, INSERT, UPDATE ON actors, topics, claims, claim_topics, idempotency_keys"
        " TO panoptic_indexer"
    )
    op.execute("GRANT SELECT, INSERT ON claim_revisions TO panoptic_indexer")

    # The retriever reads what the API serves; idempotency keys are not part of it.
    op.execute(
        "GRANT SELECT ON actors, topics, claims, claim_topics, claim_revisions"
        " TO panoptic_retriever"
    )


def downgrade() -> None:
    """Leaves the database as it was before: no tables, functions, extension, grants or roles."""
    op.execute(
        """
        DO $$
        DECLARE
            role_name text;
        BEGIN
            FOREACH role_name IN ARRAY ARRAY['panoptic_indexer', 'panoptic_retriever'] LOOP
                CONTINUE WHEN NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name);
                EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), role_name);
                EXECUTE format('REVOKE ALL ON SCHEMA public FROM %I', role_name);
            END LOOP;
            -- PostgreSQL's default for a new database.
            EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
        END
        $$
        """
    )

    # Dropping the tables drops their grants, indexes and triggers with them.
    op.execute("DROP TABLE idempotency_keys")
    op.execute("DROP TABLE claim_revisions")
    op.execute("DROP FUNCTION panoptic_forbid_history_change()")
    op.execute("DROP TABLE claim_topics")
    op.execute("DROP TABLE claims")
    op.execute("DROP TABLE topics")
    op.execute("DROP TABLE actors")
    op.execute("DROP FUNCTION panoptic_actor_search_names(text, text[])")
    # Fails, rather than cascading, if something else in the database has come to use it.
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")

    # Roles are shared by every database in the cluster: one still granted something in another
    # database is kept (DROP ROLE fails with dependent_objects_still_exist), less this database's
    # setting for it. The setting is reset only then because ALTER ROLE locks the role: two
    # databases downgrading at once would each hold that lock while waiting for the other's DROP.
    op.execute(
        """
        DO $$
        BEGIN
            DROP ROLE IF EXISTS panoptic_retriever;
        EXCEPTION WHEN dependent_objects_still_exist OR deadlock_detected THEN
            EXECUTE format('ALTER ROLE panoptic_retriever IN DATABASE %I RESET default_transaction_read_only',
                           current_database());
        END
        $$
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            DROP ROLE IF EXISTS panoptic_indexer;
        EXCEPTION WHEN dependent_objects_still_exist OR deadlock_detected THEN
            NULL;
        END
        $$
        """
    )
