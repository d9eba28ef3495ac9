"""The database schema as SQLAlchemy Core tables: alembic's `target_metadata`.

Migrations are written by hand and must leave the database exactly as described here; a test runs
alembic's autogenerate comparison to prove it. Services never import this module at run time:
they query with asyncpg and plain SQL.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, DOUBLE_PRECISION, TIMESTAMP, TSVECTOR

from panoptic.core.timestamps import in_range_sql
from panoptic.model.ids import CLAIM_ID, SLUG

# Names PostgreSQL reports in errors, so a constraint's name says which table and rule it is.
NAMING_CONVENTION: Final = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Every time column of the claims' tables, which hold only times the API accepts (0007).
TIME_COLUMNS: Final = {
    "claims": ("stated_at", "source_published_at", "create_time", "update_time"),
    "claim_topics": ("stated_at",),
    "claim_revisions": ("stated_at", "source_published_at", "record_time"),
}


def times_in_range(table: str, columns: tuple[str, ...] | None = None) -> str:
    """The condition that `table`'s time columns (or `columns` of it) hold accepted times."""
    return " AND ".join(in_range_sql(column) for column in columns or TIME_COLUMNS[table])


def _timestamp(name: str, *, recorded: bool = False) -> Column[Any]:
    """A `timestamptz` column; `recorded` ones default to the transaction's time."""
    return Column(
        name,
        TIMESTAMP(timezone=True),
        nullable=False,
        server_default=text("now()") if recorded else None,
    )


def _text(name: str, *, default_empty: bool = False) -> Column[Any]:
    """A not-null `text` column, optionally defaulting to the empty string."""
    return Column(name, Text, nullable=False, server_default=text("''") if default_empty else None)


actors = Table(
    "actors",
    metadata,
    Column("id", Text, primary_key=True),
    _text("display_name"),
    Column("aliases", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    _text("kind"),
    _text("description", default_empty=True),
    # Maintained by the indexer: the number of ACTIVE claims by this actor.
    Column("claim_count", BigInteger, nullable=False, server_default=text("0")),
    _timestamp("create_time", recorded=True),
    _timestamp("update_time", recorded=True),
    # What ListActors matches with trigrams: every name, lowercased, in one string.
    Column(
        "search_names",
        Text,
        Computed("panoptic_actor_search_names(display_name, aliases)", persisted=True),
    ),
    CheckConstraint(f"id ~ '{SLUG.pattern}'", name="id_slug"),
    CheckConstraint("display_name <> ''", name="display_name_not_empty"),
    CheckConstraint("kind IN ('PERSON', 'ORGANISATION', 'OTHER')", name="kind_known"),
    CheckConstraint("claim_count >= 0", name="claim_count_not_negative"),
    Index(
        None,
        "search_names",
        postgresql_using="gin",
        postgresql_ops={"search_names": "gin_trgm_ops"},
    ),
)

topics = Table(
    "topics",
    metadata,
    Column("id", Text, primary_key=True),
    _text("display_name"),
    Column("parent_id", Text, ForeignKey("topics.id"), nullable=True, index=True),
    Column("claim_count", BigInteger, nullable=False, server_default=text("0")),
    _timestamp("create_time", recorded=True),
    _timestamp("update_time", recorded=True),
    CheckConstraint(f"id ~ '{SLUG.pattern}'", name="id_slug"),
    CheckConstraint("display_name <> ''", name="display_name_not_empty"),
    CheckConstraint("parent_id <> id", name="parent_not_self"),
    CheckConstraint("claim_count >= 0", name="claim_count_not_negative"),
)

# The current state of each claim; its history is in claim_revisions.
claims = Table(
    "claims",
    metadata,
    Column("id", Text, primary_key=True),
    Column("actor_id", Text, ForeignKey("actors.id"), nullable=False),
    # The current topics, in the order the pipeline gave them.
    Column("topic_ids", ARRAY(Text), nullable=False),
    _text("text"),
    _timestamp("stated_at"),
    _text("source_url", default_empty=True),
    _text("source_title", default_empty=True),
    _text("source_publisher", default_empty=True),
    Column("source_published_at", TIMESTAMP(timezone=True), nullable=True),
    _text("language"),
    Column("confidence", DOUBLE_PRECISION, nullable=False),
    _text("state"),
    Column("revision", Integer, nullable=False),
    # A digest of the indexed content: re-indexing identical content is detected by comparing it.
    Column("content_hash", BYTEA, nullable=False),
    _timestamp("create_time", recorded=True),
    _timestamp("update_time", recorded=True),
    Column(
        "search_vector",
        TSVECTOR,
        Computed("to_tsvector('english'::regconfig, text)", persisted=True),
    ),
    CheckConstraint(f"id ~ '{CLAIM_ID.pattern}'", name="id_format"),
    CheckConstraint("cardinality(topic_ids) >= 1", name="topic_ids_not_empty"),
    CheckConstraint("text <> ''", name="text_not_empty"),
    CheckConstraint("language <> ''", name="language_not_empty"),
    CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    CheckConstraint("state IN ('ACTIVE', 'RETRACTED')", name="state_known"),
    CheckConstraint("revision >= 1", name="revision_positive"),
    CheckConstraint(times_in_range("claims"), name="times_in_range"),
    # Keyset paging: an actor's claims, and all claims, by statement time.
    Index(None, "actor_id", "stated_at", "id"),
    Index(None, "stated_at", "id"),
    # Full-text search, the words keyed with the statement year and month (UTC): a search
    # reads the newest periods' matches first (0005).
    Index(
        "ix_claims_search_vector_stated_periods",
        "search_vector",
        # As PostgreSQL prints them, so that alembic's comparison sees no difference.
        text("date_trunc('year'::text, (stated_at AT TIME ZONE 'UTC'::text))"),
        text("date_trunc('month'::text, (stated_at AT TIME ZONE 'UTC'::text))"),
        postgresql_using="gin",
    ),
    # An actor's active claims (lists and timelines) without visiting the table (0002).
    Index(
        "ix_claims_active_actor_id_stated_at_id",
        "actor_id",
        "stated_at",
        "id",
        postgresql_where=text("state = 'ACTIVE'"),
    ),
)

# Which topics each claim is (or was) on. The indexer may not delete, so a topic taken off a claim
# stays here with is_current false.
claim_topics = Table(
    "claim_topics",
    metadata,
    Column("claim_id", Text, ForeignKey("claims.id"), nullable=False),
    Column("topic_id", Text, ForeignKey("topics.id"), nullable=False),
    # The claim's stated_at and actor, copied here so that a topic's claims, and an actor's
    # claims on a topic (0004), page by one index.
    _timestamp("stated_at"),
    Column("is_current", Boolean, nullable=False, server_default=text("true")),
    Column("actor_id", Text, ForeignKey("actors.id"), nullable=False),
    PrimaryKeyConstraint("claim_id", "topic_id"),
    CheckConstraint(times_in_range("claim_topics"), name="times_in_range"),
    Index(None, "topic_id", "stated_at", "claim_id", postgresql_where=text("is_current")),
    Index(
        None, "topic_id", "actor_id", "stated_at", "claim_id", postgresql_where=text("is_current")
    ),
)


def _day_counts(name: str, *keys: Column[Any]) -> Table:
    """ACTIVE claims per UTC day of their stated_at, under `keys` (0004).

    Kept by the indexer in each batch's transaction, as `actors.claim_count` is; timelines sum
    days instead of counting claims. Derived data: no foreign keys, so keeping them costs no
    further lookups, and no CHECK on the count, which an upsert of a negative change would fail
    (PostgreSQL checks the proposed row before it finds the one to update).
    """
    return Table(
        name,
        metadata,
        *keys,
        Column("day", Date, nullable=False),
        Column("claim_count", BigInteger, nullable=False),
        PrimaryKeyConstraint(*(key.name for key in keys), "day"),
    )


actor_day_counts = _day_counts("actor_day_counts", _text("actor_id"))
actor_topic_day_counts = _day_counts("actor_topic_day_counts", _text("actor_id"), _text("topic_id"))

# Append-only: one row per revision of a claim, the claim as it was then. A trigger refuses
# UPDATE, DELETE and TRUNCATE, whoever asks.
claim_revisions = Table(
    "claim_revisions",
    metadata,
    Column("claim_id", Text, ForeignKey("claims.id"), nullable=False),
    Column("revision", Integer, nullable=False),
    _text("change"),
    _text("actor_id"),
    Column("topic_ids", ARRAY(Text), nullable=False),
    _text("text"),
    _timestamp("stated_at"),
    _text("source_url"),
    _text("source_title"),
    _text("source_publisher"),
    Column("source_published_at", TIMESTAMP(timezone=True), nullable=True),
    _text("language"),
    Column("confidence", DOUBLE_PRECISION, nullable=False),
    _text("state"),
    _timestamp("record_time", recorded=True),
    _text("request_id"),
    _text("reason", default_empty=True),
    PrimaryKeyConstraint("claim_id", "revision"),
    CheckConstraint("revision >= 1", name="revision_positive"),
    CheckConstraint(
        "change IN ('CREATED', 'UPDATED', 'RETRACTED', 'RESTORED')", name="change_known"
    ),
    # A claim's history starts with its creation, and only there.
    CheckConstraint("(revision = 1) = (change = 'CREATED')", name="created_first"),
    CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    CheckConstraint("state IN ('ACTIVE', 'RETRACTED')", name="state_known"),
    CheckConstraint(times_in_range("claim_revisions"), name="times_in_range"),
    # Claims indexed per hour (index-only) and the newest index time, for the dashboard (0003).
    Index(None, "record_time", "change"),
    # The dashboard's recent changes to existing claims (0003).
    Index(
        "ix_claim_revisions_changed_record_time",
        "record_time",
        postgresql_where=text("change <> 'CREATED'"),
    ),
)

# Append-only: one row per batch the indexer refused, for the dashboard's "rejected batches" (0003).
# The indexer may only insert; the dashboard's role reads.
indexer_rejections = Table(
    "indexer_rejections",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    _timestamp("record_time", recorded=True),
    _text("request_id", default_empty=True),
    # Machine-readable, as the indexer's rejection metric labels it (e.g. `INVALID_ARGUMENT`).
    _text("reason"),
    # How many field violations the refusal named.
    Column("field_count", Integer, nullable=False, server_default=text("0")),
    # A short human-readable account: the first violations, never the batch's content.
    _text("summary", default_empty=True),
    CheckConstraint("field_count >= 0", name="field_count_not_negative"),
    Index(None, "record_time"),
)

# The first response to each IndexClaims/RetractClaim request id, replayed on a retry (AIP-155).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("request_id", Text, primary_key=True),
    _text("method"),
    Column("request_hash", BYTEA, nullable=False),
    # The serialized first response.
    Column("response", BYTEA, nullable=False),
    _timestamp("create_time", recorded=True),
    # Expired keys are deleted in small batches by a job running as the owner.
    Column("expire_time", TIMESTAMP(timezone=True), nullable=False, index=True),
)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Whether alembic should look at a reflected object: only the tables described here."""
    if type_ == "table":
        return name in metadata.tables
    return True


# How alembic compares the database with `metadata`, in env.py's autogenerate and in the tests.
AUTOGENERATE_OPTIONS: Final[dict[str, Any]] = {
    "compare_type": True,
    "compare_server_default": True,
    "include_name": include_name,
}
