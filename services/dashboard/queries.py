"""The dashboard's own SQL: the overview's figures and the database's health, as frozen values.

Claims, actors, topics, search, revisions and timelines are read through the retriever's
`queries` module (via its handler); what is here exists only for operators. Every function takes
a connection inside a read-only transaction opened by `panoptic.reads.queries.reading`.
Statistics come from PostgreSQL's catalogs and views, never from scanning a large table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

import asyncpg

from panoptic.core.timestamps import readable_sql

T = TypeVar("T")

# --- overview ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    """How much is stored. Active claims are exact (the actors' counters); all is an estimate."""

    active_claims: int
    claims_estimate: int
    actors: int
    topics: int
    revisions_estimate: int


@dataclass(frozen=True)
class HourCount:
    """Claim revisions recorded in one hour: new claims, and changes to existing ones."""

    hour: datetime
    created: int
    changed: int


@dataclass(frozen=True)
class RejectionReason:
    """Refused batches of one reason in the window, and the latest of them."""

    reason: str
    batches: int
    last_time: datetime


@dataclass(frozen=True)
class Rejection:
    """One refused batch."""

    record_time: datetime
    request_id: str
    reason: str
    field_count: int
    summary: str


@dataclass(frozen=True)
class Change:
    """A revision that changed an existing claim (updated, retracted or restored)."""

    claim_id: str
    revision: int
    change: str
    record_time: datetime
    actor_id: str
    reason: str


async def counts(connection: asyncpg.Connection) -> Counts:
    """The overview's counts: exact for actors, topics and active claims, else estimates."""
    row = await connection.fetchrow(
        """
        SELECT (SELECT coalesce(sum(claim_count), 0) FROM actors)::bigint AS active_claims,
               (SELECT count(*) FROM actors) AS actors,
               (SELECT count(*) FROM topics) AS topics,
               (SELECT greatest(reltuples, 0) FROM pg_class
                 WHERE oid = 'claims'::regclass)::bigint AS claims_estimate,
               (SELECT greatest(reltuples, 0) FROM pg_class
                 WHERE oid = 'claim_revisions'::regclass)::bigint AS revisions_estimate
        """
    )
    assert row is not None
    return Counts(
        active_claims=row["active_claims"],
        # Before the first ANALYZE reltuples is unknown (-1); the exact active count is a floor.
        claims_estimate=max(row["claims_estimate"], row["active_claims"]),
        actors=row["actors"],
        topics=row["topics"],
        revisions_estimate=max(row["revisions_estimate"], row["active_claims"]),
    )


async def revisions_per_hour(connection: asyncpg.Connection, since: datetime) -> list[HourCount]:
    """Revisions recorded per hour since `since` (UTC hours, empty hours left out)."""
    return await _fetch_as(
        HourCount,
        connection,
        f"""
        SELECT {readable_sql("date_trunc('hour', record_time, 'UTC')")} AS hour,
               count(*) FILTER (WHERE change = 'CREATED') AS created,
               count(*) FILTER (WHERE change <> 'CREATED') AS changed
          FROM claim_revisions
         WHERE record_time >= $1
         GROUP BY 1
         ORDER BY 1
        """,
        since,
    )


async def last_index_time(connection: asyncpg.Connection) -> datetime | None:
    """When the newest claim revision was recorded: the last batch that changed anything."""
    moment: datetime | None = await connection.fetchval(
        f"SELECT {readable_sql('max(record_time)')} FROM claim_revisions"
    )
    return moment


async def rejection_reasons(
    connection: asyncpg.Connection, since: datetime
) -> list[RejectionReason]:
    """Refused batches since `since`, counted by reason, most frequent first."""
    return await _fetch_as(
        RejectionReason,
        connection,
        """
        SELECT reason, count(*) AS batches, max(record_time) AS last_time
          FROM indexer_rejections
         WHERE record_time >= $1
         GROUP BY reason
         ORDER BY batches DESC, reason
        """,
        since,
    )


async def recent_rejections(connection: asyncpg.Connection, limit: int) -> list[Rejection]:
    """The newest refused batches."""
    return await _fetch_as(
        Rejection,
        connection,
        "SELECT record_time, request_id, reason, field_count, summary FROM indexer_rejections"
        " ORDER BY record_time DESC, id DESC LIMIT $1",
        limit,
    )


async def recent_changes(
    connection: asyncpg.Connection, since: datetime, limit: int
) -> list[Change]:
    """The newest revisions since `since` that changed an existing claim."""
    return await _fetch_as(
        Change,
        connection,
        f"""
        SELECT claim_id, revision, change, {readable_sql("record_time")} AS record_time,
               actor_id, reason
          FROM claim_revisions r
         WHERE r.record_time >= $1 AND change <> 'CREATED'
         -- the column, not the readable value of the same name: the index yields this order
         ORDER BY r.record_time DESC, claim_id, revision
         LIMIT $2
        """,
        since,
        limit,
    )


# --- topics and actors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicShare:
    """A topic an actor spoke on, with the number of the actor's active claims on it."""

    topic_id: str
    display_name: str
    claims: int


async def actor_topics(
    connection: asyncpg.Connection, actor_id: str, limit: int
) -> list[TopicShare]:
    """The topics of an actor's active claims, most claims first."""
    return await _fetch_as(
        TopicShare,
        connection,
        """
        SELECT l.topic_id, t.display_name, count(*) AS claims
          FROM claims c
          JOIN claim_topics l ON l.claim_id = c.id AND l.is_current
          JOIN topics t ON t.id = l.topic_id
         WHERE c.actor_id = $1 AND c.state = 'ACTIVE'
         GROUP BY l.topic_id, t.display_name
         ORDER BY claims DESC, l.topic_id
         LIMIT $2
        """,
        actor_id,
        limit,
    )


@dataclass(frozen=True)
class Names:
    """Display names of the actors and topics a page mentions, by id."""

    actors: dict[str, str]
    topics: dict[str, str]


async def names(connection: asyncpg.Connection, actor_ids: set[str], topic_ids: set[str]) -> Names:
    """The display names of the given actors and topics (unknown ids are left out)."""
    rows = await connection.fetch(
        "SELECT 'actor' AS kind, id, display_name FROM actors WHERE id = ANY($1::text[])"
        " UNION ALL"
        " SELECT 'topic', id, display_name FROM topics WHERE id = ANY($2::text[])",
        sorted(actor_ids),
        sorted(topic_ids),
    )
    return Names(
        actors={row["id"]: row["display_name"] for row in rows if row["kind"] == "actor"},
        topics={row["id"]: row["display_name"] for row in rows if row["kind"] == "topic"},
    )


@dataclass(frozen=True)
class TopicMatch:
    """A topic whose id or name contains the query."""

    id: str
    display_name: str
    parent_id: str | None
    claim_count: int


def like_pattern(query: str) -> str:
    """`query` as an ILIKE pattern matching it anywhere, its wildcards taken literally."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", query) + "%"


async def search_topics(
    connection: asyncpg.Connection, query: str, *, after: str | None, limit: int
) -> list[TopicMatch]:
    """Topics whose id or display name contains `query` (any case), in id order after `after`.

    Topics are few (tens to hundreds), so a scan is cheaper than an index to maintain.
    """
    return await _fetch_as(
        TopicMatch,
        connection,
        """
        SELECT id, display_name, parent_id, claim_count FROM topics
         WHERE (display_name ILIKE $1 OR id ILIKE $1) AND ($2::text IS NULL OR id > $2)
         ORDER BY id
         LIMIT $3
        """,
        like_pattern(query),
        after,
        limit,
    )


# --- database health -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    """The server and this database as a whole."""

    version: str
    started: datetime
    database: str
    size_bytes: int
    max_connections: int
    cache_hit_ratio: float | None
    """Share of block reads served from shared buffers since the statistics were reset."""
    commits: int
    rollbacks: int
    deadlocks: int
    temp_bytes: int
    stats_reset: datetime | None
    migration_version: str | None
    sees_all_sessions: bool
    """Whether this role may read other roles' sessions and statements (pg_read_all_stats)."""


@dataclass(frozen=True)
class TableHealth:
    """One table's size, row counts, dead tuples and maintenance times."""

    name: str
    rows_estimate: int
    live_rows: int
    dead_rows: int
    table_bytes: int
    index_bytes: int
    total_bytes: int
    seq_scans: int
    index_scans: int
    cache_hit_ratio: float | None
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None

    @property
    def vacuumed(self) -> tuple[datetime | None, bool]:
        """The latest vacuum, manual or automatic, and whether it was automatic."""
        return _latest(self.last_vacuum, self.last_autovacuum)

    @property
    def analyzed(self) -> tuple[datetime | None, bool]:
        """The latest analyze, manual or automatic, and whether it was automatic."""
        return _latest(self.last_analyze, self.last_autoanalyze)

    @property
    def dead_ratio(self) -> float:
        """Dead tuples as a share of all tuples (0 when the table is empty)."""
        total = self.live_rows + self.dead_rows
        return self.dead_rows / total if total else 0.0


@dataclass(frozen=True)
class IndexHealth:
    """One index's size and use."""

    table: str
    name: str
    size_bytes: int
    scans: int
    tuples_read: int


@dataclass(frozen=True)
class ConnectionGroup:
    """Sessions on this database of one role in one state (state None: not visible to us)."""

    role: str
    application: str
    state: str | None
    sessions: int
    oldest_transaction: datetime | None


@dataclass(frozen=True)
class Statement:
    """One normalized statement from pg_stat_statements."""

    query: str
    calls: int
    total_ms: float
    mean_ms: float
    max_ms: float
    rows: int
    cache_hit_ratio: float | None


@dataclass(frozen=True)
class Statements:
    """The slowest statements, or why they cannot be shown."""

    available: bool
    note: str
    items: tuple[Statement, ...] = ()


# A statement whose text may hold a password is never shown (pg_stat_statements keeps the
# literal text of some utility statements, such as ALTER ROLE ... PASSWORD '...').
_SECRET_STATEMENT: Final = re.compile(r"\b(PASSWORD|ENCRYPTED)\b", re.IGNORECASE)
HIDDEN_STATEMENT: Final = "(statement hidden: its text may contain a password)"
STATEMENT_TEXT_LIMIT: Final = 4000


async def server_info(connection: asyncpg.Connection) -> ServerInfo:
    """Version, uptime, size, cache hit ratio and counters of this database, and its schema
    migration version."""
    row = await connection.fetchrow(
        """
        SELECT current_setting('server_version') AS version,
               pg_postmaster_start_time() AS started,
               current_database() AS database,
               pg_database_size(current_database()) AS size_bytes,
               current_setting('max_connections')::int AS max_connections,
               d.blks_hit AS blocks_hit, d.blks_read AS blocks_read,
               d.xact_commit AS commits, d.xact_rollback AS rollbacks, d.deadlocks,
               d.temp_bytes, d.stats_reset,
               pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS sees_all_sessions
          FROM pg_stat_database d
         WHERE d.datname = current_database()
        """
    )
    assert row is not None
    version = None
    if await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
        version = await connection.fetchval("SELECT version_num FROM alembic_version")
    return _as(ServerInfo, row, migration_version=version)


async def table_health(connection: asyncpg.Connection) -> list[TableHealth]:
    """Every table of the current schema, largest first."""
    return await _fetch_as(
        TableHealth,
        connection,
        """
        SELECT s.relname AS name,
               -- reltuples is -1 until the first ANALYZE; the live count stands in until then.
               (CASE WHEN c.reltuples < 0 THEN s.n_live_tup ELSE c.reltuples END)::bigint
                   AS rows_estimate,
               s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows,
               pg_table_size(s.relid) AS table_bytes,
               pg_indexes_size(s.relid) AS index_bytes,
               pg_total_relation_size(s.relid) AS total_bytes,
               s.seq_scan AS seq_scans, coalesce(s.idx_scan, 0) AS index_scans,
               io.heap_blks_hit AS blocks_hit, io.heap_blks_read AS blocks_read,
               s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze
          FROM pg_stat_user_tables s
          JOIN pg_class c ON c.oid = s.relid
          LEFT JOIN pg_statio_user_tables io ON io.relid = s.relid
         WHERE s.schemaname = current_schema()
         ORDER BY total_bytes DESC, name
        """,
    )


async def index_health(connection: asyncpg.Connection) -> list[IndexHealth]:
    """Every index of the current schema, largest first."""
    return await _fetch_as(
        IndexHealth,
        connection,
        """
        SELECT relname AS "table", indexrelname AS name,
               pg_relation_size(indexrelid) AS size_bytes,
               idx_scan AS scans, idx_tup_read AS tuples_read
          FROM pg_stat_user_indexes
         WHERE schemaname = current_schema()
         ORDER BY size_bytes DESC, indexrelname
        """,
    )


async def connections(connection: asyncpg.Connection) -> list[ConnectionGroup]:
    """Client sessions on this database by role, application and state."""
    return await _fetch_as(
        ConnectionGroup,
        connection,
        """
        SELECT coalesce(usename, '') AS role, coalesce(application_name, '') AS application,
               state, count(*) AS sessions, min(xact_start) AS oldest_transaction
          FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend'
         GROUP BY 1, 2, 3
         ORDER BY 1, 2, 3
        """,
    )


# How the slowest statements may be ordered: by time per call, or by time in all.
STATEMENT_ORDERS: Final = {"mean": "mean_exec_time", "total": "total_exec_time"}


async def slowest_statements(
    connection: asyncpg.Connection, limit: int, order: str = "mean"
) -> Statements:
    """This database's statements with the highest mean (or total) time, if pg_stat_statements
    is there."""
    schema = await connection.fetchval(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    )
    if schema is None:
        return Statements(False, "the pg_stat_statements extension is not installed here")
    view = await connection.fetchval("SELECT format('%I.pg_stat_statements', $1::text)", schema)
    try:
        async with connection.transaction():  # a savepoint: the outer transaction goes on
            rows = await connection.fetch(
                f"""
                SELECT query, calls, total_exec_time AS total_ms, mean_exec_time AS mean_ms,
                       max_exec_time AS max_ms, rows,
                       shared_blks_hit AS blocks_hit, shared_blks_read AS blocks_read
                  FROM {view}
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND calls > 0
                 ORDER BY {STATEMENT_ORDERS[order]} DESC
                 LIMIT $1
                """,
                limit,
            )
    except asyncpg.ObjectNotInPrerequisiteStateError:
        return Statements(
            False,
            "pg_stat_statements is installed but not loaded "
            "(add it to the server's shared_preload_libraries)",
        )
    except asyncpg.InsufficientPrivilegeError:
        return Statements(False, "this role may not read pg_stat_statements")
    items = tuple(_as(Statement, row, query=_shown_statement(row["query"])) for row in rows)
    return Statements(True, "", items)


def _shown_statement(query: str | None) -> str:
    """The statement's text as the page shows it: never one that may hold a password."""
    if query is None:
        return "(not visible to this role)"
    if _SECRET_STATEMENT.search(query):
        return HIDDEN_STATEMENT
    text = " ".join(query.split())
    return text if len(text) <= STATEMENT_TEXT_LIMIT else text[:STATEMENT_TEXT_LIMIT] + " …"


def _latest(manual: datetime | None, automatic: datetime | None) -> tuple[datetime | None, bool]:
    if automatic is not None and (manual is None or automatic > manual):
        return automatic, True
    return manual, False


async def _fetch_as(
    value: Callable[..., T], connection: asyncpg.Connection, query: str, *args: Any
) -> list[T]:
    """Each row of the query as `value` (see `_as`)."""
    return [_as(value, row) for row in await connection.fetch(query, *args)]


def _as(value: Callable[..., T], row: asyncpg.Record, **given: Any) -> T:
    """A row as a value whose fields its columns are named after, but for those `given`.

    A row's `blocks_hit` and `blocks_read` become the value's `cache_hit_ratio`.
    """
    columns = dict(row)
    if "blocks_hit" in columns:
        columns["cache_hit_ratio"] = _ratio(columns.pop("blocks_hit"), columns.pop("blocks_read"))
    return value(**(columns | given))


def _ratio(hits: int | None, reads: int | None) -> float | None:
    """hits / (hits + reads), or None before any block was read."""
    total = (hits or 0) + (reads or 0)
    return (hits or 0) / total if total else None
