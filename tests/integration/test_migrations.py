"""The migrations against a real PostgreSQL: up and down, schema, roles, history guard, search."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from migrations.schema import AUTOGENERATE_OPTIONS, metadata
from panoptic.core.db import DatabaseUrl
from panoptic.suite import migrate
from tests.conftest import random_id
from tests.support.roles import execute_read_write

# The newest revision in migrations/versions: what `upgrade head` leaves a database at.
HEAD_REVISION = "0007"

TABLES = sorted(metadata.tables)
RETRIEVER_TABLES = [
    "actor_day_counts",
    "actor_topic_day_counts",
    "actors",
    "claim_revisions",
    "claim_topics",
    "claims",
    "topics",
]


# --- helpers ---------------------------------------------------------------------------------


async def connect(url: DatabaseUrl) -> asyncpg.Connection:
    return await asyncpg.connect(url.value)


def actor_row(**overrides: Any) -> dict[str, Any]:
    return {"id": random_id("actor"), "display_name": "Jane Doe", "kind": "PERSON"} | overrides


def topic_row(**overrides: Any) -> dict[str, Any]:
    return {"id": random_id("topic"), "display_name": "Energy policy"} | overrides


def claim_row(actor_id: str, topic_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": random_id("claim"),
        "actor_id": actor_id,
        "topic_ids": [topic_id],
        "text": "We will double the wind farms by 2030.",
        "stated_at": datetime(2024, 5, 1, 12, tzinfo=UTC),
        "language": "en",
        "confidence": 0.9,
        "state": "ACTIVE",
        "revision": 1,
        "content_hash": b"\x01" * 32,
    } | overrides


def revision_row(claim: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    snapshot = ("actor_id", "topic_ids", "text", "stated_at", "language", "confidence", "state")
    return (
        {"claim_id": claim["id"], "revision": claim["revision"], "change": "CREATED"}
        | {column: claim[column] for column in snapshot}
        | {"source_url": "", "source_title": "", "source_publisher": "", "request_id": "r-1"}
        | overrides
    )


async def insert(connection: asyncpg.Connection, table: str, row: dict[str, Any]) -> None:
    placeholders = ", ".join(f"${number}" for number in range(1, len(row) + 1))
    await connection.execute(
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({placeholders})", *row.values()
    )


async def insert_claim_with_history(connection: asyncpg.Connection) -> dict[str, Any]:
    """Inserts an actor, a topic, a claim on them, its link and its first revision."""
    actor, topic = actor_row(), topic_row()
    claim = claim_row(actor["id"], topic["id"])
    await insert(connection, "actors", actor)
    await insert(connection, "topics", topic)
    await insert(connection, "claims", claim)
    await insert(
        connection,
        "claim_topics",
        {
            "claim_id": claim["id"],
            "topic_id": topic["id"],
            "actor_id": actor["id"],
            "stated_at": claim["stated_at"],
        },
    )
    await insert(connection, "claim_revisions", revision_row(claim))
    return claim


async def schema_objects(url: DatabaseUrl) -> dict[str, list[Any]]:
    """What the migrations may have left in a database, besides alembic's own version table."""
    connection = await connect(url)
    try:
        return {
            "relations": await connection.fetch(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " AND relname NOT LIKE 'alembic_version%'"
            ),
            "types": await connection.fetch(
                "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace"
                " AND typname NOT LIKE '%alembic_version'"
            ),
            "functions": await connection.fetch(
                "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
            ),
            "extensions": await connection.fetch(
                "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'"
            ),
            "database_grants_to_our_roles": await connection.fetch(
                "SELECT grantee::regrole FROM pg_database, aclexplode(datacl)"
                " WHERE datname = current_database()"
                " AND grantee::regrole::text IN"
                " ('panoptic_indexer', 'panoptic_retriever', 'panoptic_dashboard')"
            ),
            "role_settings": await connection.fetch(
                "SELECT setconfig FROM pg_db_role_setting JOIN pg_database d"
                " ON d.oid = setdatabase WHERE d.datname = current_database()"
            ),
        }
    finally:
        await connection.close()


async def catalog_description(url: DatabaseUrl) -> dict[str, list[tuple[Any, ...]]]:
    """Our tables' columns, constraints and indexes as PostgreSQL itself prints them."""
    connection = await connect(url)
    try:
        columns = await connection.fetch(
            """
            SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                   a.attnotnull, a.attgenerated, pg_get_expr(d.adbin, d.adrelid)
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relname = ANY($1) AND c.relnamespace = 'public'::regnamespace
              AND a.attnum > 0 AND NOT a.attisdropped
            """,
            TABLES,
        )
        constraints = await connection.fetch(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE conrelid::regclass::text = ANY($1)",
            TABLES,
        )
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'public' AND tablename = ANY($1)",
            TABLES,
        )
    finally:
        await connection.close()
    return {
        name: sorted(tuple(row) for row in rows)
        for name, rows in (("columns", columns), ("constraints", constraints), ("indexes", indexes))
    }


@pytest_asyncio.fixture(loop_scope="session")
async def owner(database_url: DatabaseUrl) -> AsyncIterator[asyncpg.Connection]:
    """The owner on the session's database, in a transaction rolled back afterwards."""
    connection = await connect(database_url)
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


@pytest_asyncio.fixture(loop_scope="session")
async def retriever(database_url: DatabaseUrl) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the retriever's role, with the defaults the role carries."""
    connection = await connect(database_url.with_user("panoptic_retriever"))
    try:
        yield connection
    finally:
        await connection.close()


@pytest_asyncio.fixture(loop_scope="session")
async def indexer(database_url: DatabaseUrl) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the indexer's role."""
    connection = await connect(database_url.with_user("panoptic_indexer"))
    try:
        yield connection
    finally:
        await connection.close()


# --- up and down -----------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_downgrade_to_base_removes_everything_and_upgrade_works_again(
    scratch_database_url: DatabaseUrl,
) -> None:
    """Downgrading to base leaves no table, function, extension, grant or setting of ours."""
    empty = await schema_objects(scratch_database_url)
    await migrate.upgrade_async(scratch_database_url)
    assert await asyncio.to_thread(migrate.current_revision, scratch_database_url) == HEAD_REVISION

    await asyncio.to_thread(migrate.downgrade, scratch_database_url)

    assert await asyncio.to_thread(migrate.current_revision, scratch_database_url) is None
    assert await schema_objects(scratch_database_url) == empty
    assert all(not objects for objects in empty.values())
    connection = await connect(scratch_database_url)
    try:
        assert await connection.fetchval(
            "SELECT has_database_privilege('public', current_database(), 'CONNECT, TEMPORARY')"
        )
    finally:
        await connection.close()

    await migrate.upgrade_async(scratch_database_url)
    assert await asyncio.to_thread(migrate.current_revision, scratch_database_url) == HEAD_REVISION


@pytest.mark.asyncio(loop_scope="session")
async def test_upgrading_an_up_to_date_database_changes_nothing(
    scratch_database_url: DatabaseUrl,
) -> None:
    """A second upgrade to head runs no DDL: every catalog row of ours is the same version."""
    snapshot = (
        "SELECT oid, xmin::text, relacl::text FROM pg_class"
        " WHERE relnamespace = 'public'::regnamespace"
        " UNION ALL SELECT oid, xmin::text, proacl::text FROM pg_proc"
        " WHERE pronamespace = 'public'::regnamespace ORDER BY 1"
    )
    await migrate.upgrade_async(scratch_database_url)
    connection = await connect(scratch_database_url)
    try:
        before = await connection.fetch(snapshot)
        await migrate.upgrade_async(scratch_database_url)
        assert await connection.fetch(snapshot) == before
    finally:
        await connection.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_concurrent_upgrades_take_turns(scratch_database_url: DatabaseUrl) -> None:
    """Two processes migrating one new database at once both succeed, one after the other."""
    script = (
        "import sys\n"
        "from panoptic.core.db import DatabaseUrl\n"
        "from panoptic.suite.migrate import upgrade\n"
        "upgrade(DatabaseUrl(sys.argv[1]))\n"
    )
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            scratch_database_url.value,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = await asyncio.gather(*(process.communicate() for process in processes))

    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr.decode()
    assert await asyncio.to_thread(migrate.current_revision, scratch_database_url) == HEAD_REVISION


def test_offline_mode_writes_the_sql_without_connecting() -> None:
    """`alembic upgrade --sql` prints the SQL with its lock and `%` placeholders intact."""
    config = migrate.alembic_config(DatabaseUrl("postgresql://nobody@unreachable.invalid/none"))
    config.output_buffer = io.StringIO()

    command.upgrade(config, "head", sql=True)

    sql = config.output_buffer.getvalue()
    assert "pg_advisory_xact_lock" in sql
    assert "CREATE TABLE claim_revisions" in sql
    assert "format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database())" in sql
    assert "%%" not in sql


# --- the schema matches its description ------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_autogenerate_finds_no_difference(database_url: DatabaseUrl) -> None:
    """alembic's comparison of the migrated database with `migrations.schema` finds nothing."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts=AUTOGENERATE_OPTIONS)
        return list(compare_metadata(context, metadata))

    engine = migrate.migration_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(compare)
    finally:
        await engine.dispose()

    assert differences == []


@pytest.mark.asyncio(loop_scope="session")
async def test_schema_description_builds_the_same_tables_as_the_migration(
    database_url: DatabaseUrl, scratch_database_url: DatabaseUrl
) -> None:
    """`metadata.create_all` and the migration give identical columns, constraints and indexes.

    This covers what alembic's comparison skips: generated expressions, CHECK constraints,
    partial-index conditions and operator classes.
    """
    migrated = await connect(database_url)
    scratch = await connect(scratch_database_url)
    try:
        search_names = await migrated.fetchval(
            "SELECT pg_get_functiondef('panoptic_actor_search_names(text, text[])'::regprocedure)"
        )
        await scratch.execute("CREATE EXTENSION pg_trgm")
        await scratch.execute("CREATE EXTENSION btree_gin")
        await scratch.execute(search_names)
    finally:
        await migrated.close()
        await scratch.close()
    engine = migrate.migration_engine(scratch_database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
    finally:
        await engine.dispose()

    assert await catalog_description(scratch_database_url) == await catalog_description(
        database_url
    )


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("table", RETRIEVER_TABLES)
async def test_retriever_can_read_the_served_tables(
    retriever: asyncpg.Connection, table: str
) -> None:
    """The retriever may SELECT from every table the API serves."""
    assert await retriever.fetchval(f"SELECT count(*) FROM {table}") >= 0


@pytest.mark.asyncio(loop_scope="session")
async def test_retriever_cannot_read_idempotency_keys(retriever: asyncpg.Connection) -> None:
    """Idempotency keys hold the indexer's responses, which the retriever has no need to see."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await retriever.fetch("SELECT * FROM idempotency_keys")


RETRIEVER_WRITES = [
    "INSERT INTO actors (id, display_name, kind) VALUES ('x', 'X', 'OTHER')",
    "UPDATE claims SET text = text",
    "UPDATE topics SET display_name = display_name",
    "DELETE FROM claim_topics",
    "UPDATE actor_day_counts SET claim_count = 0",
    "DELETE FROM claim_revisions",
    "TRUNCATE actors CASCADE",
    "CREATE TABLE retriever_table (id int)",
]


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("statement", RETRIEVER_WRITES)
async def test_retriever_is_refused_writes(retriever: asyncpg.Connection, statement: str) -> None:
    """Its role's sessions are read-only, and its privileges refuse writes even when not."""
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await retriever.execute(statement)

    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await execute_read_write(retriever, statement)


@pytest.mark.asyncio(loop_scope="session")
async def test_indexer_can_insert_and_update_what_it_maintains(
    indexer: asyncpg.Connection,
) -> None:
    """The indexer may insert and update actors, topics, claims and links, and append history."""
    async with indexer.transaction():
        claim = await insert_claim_with_history(indexer)
        await insert(
            indexer,
            "idempotency_keys",
            {
                "request_id": random_id("request"),
                "method": "IndexClaims",
                "request_hash": b"\x02" * 32,
                "response": b"",
                "expire_time": datetime(2100, 1, 1, tzinfo=UTC),
            },
        )
        await indexer.execute(
            "UPDATE actors SET claim_count = claim_count + 1 WHERE id = $1", claim["actor_id"]
        )
        await indexer.execute(
            "UPDATE topics SET claim_count = claim_count + 1 WHERE id = ANY($1)",
            claim["topic_ids"],
        )
        await indexer.execute(
            "UPDATE claims SET text = 'Changed.', revision = 2 WHERE id = $1", claim["id"]
        )
        await indexer.execute(
            "UPDATE claim_topics SET is_current = false WHERE claim_id = $1", claim["id"]
        )
        await insert(indexer, "claim_revisions", revision_row(claim, revision=2, change="UPDATED"))
        await indexer.execute("UPDATE idempotency_keys SET response = response WHERE false")

    assert (
        await indexer.fetchval(
            "SELECT count(*) FROM claim_revisions WHERE claim_id = $1", claim["id"]
        )
        == 2
    )


INDEXER_REFUSALS = [
    "UPDATE claim_revisions SET reason = 'rewritten'",
    "CREATE TABLE indexer_table (id int)",
    *(f"DELETE FROM {table}" for table in TABLES),
    *(f"TRUNCATE {table} CASCADE" for table in TABLES),
]


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("statement", INDEXER_REFUSALS)
async def test_indexer_cannot_delete_rewrite_history_or_create(
    indexer: asyncpg.Connection, statement: str
) -> None:
    """The indexer can neither delete, truncate, change history nor create tables."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with indexer.transaction():
            await indexer.execute(statement)


@pytest.mark.asyncio(loop_scope="session")
async def test_retriever_role_is_read_only_by_default(retriever: asyncpg.Connection) -> None:
    """The migration makes read-only transactions the retriever's default in this database."""
    assert await retriever.fetchval("SHOW default_transaction_read_only") == "on"


@pytest.mark.asyncio(loop_scope="session")
async def test_set_role_password_quotes_role_and_password(database_url: DatabaseUrl) -> None:
    """A role name and password with quotes and backslashes are stored exactly as given."""
    role, password = f'Panoptic "test" {random_id()}\'s', 'it\'s a "secret" \\ ok'
    connection = await connect(database_url)
    try:
        if not await connection.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = user"):
            pytest.skip("reading a stored password needs a superuser")
        await connection.execute(
            await connection.fetchval("SELECT format('CREATE ROLE %I', $1::text)", role)
        )
        try:
            await migrate.set_role_password(database_url, role, password)
            stored = await connection.fetchval(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role
            )
        finally:
            await connection.execute(
                await connection.fetchval("SELECT format('DROP ROLE %I', $1::text)", role)
            )
    finally:
        await connection.close()

    assert scram_verifier_matches(stored, password)


def scram_verifier_matches(verifier: str, password: str) -> bool:
    """Whether a stored `SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey` is for `password`."""
    method, _, rest = verifier.partition("$")
    iterations_and_salt, _, keys = rest.partition("$")
    iterations, _, salt = iterations_and_salt.partition(":")
    stored_key = keys.partition(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    expected = base64.b64encode(hashlib.sha256(client_key).digest()).decode()
    return method == "SCRAM-SHA-256" and hmac.compare_digest(stored_key, expected)


# --- invariants ------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE claim_revisions SET reason = 'rewritten' WHERE claim_id = $1",
        "DELETE FROM claim_revisions WHERE claim_id = $1",
        "TRUNCATE claim_revisions",
    ],
)
async def test_owner_cannot_change_history(owner: asyncpg.Connection, statement: str) -> None:
    """Even the owner cannot update, delete or truncate claim revisions: a trigger refuses."""
    claim = await insert_claim_with_history(owner)
    arguments = [claim["id"]] if "$1" in statement else []

    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        async with owner.transaction():
            await owner.execute(statement, *arguments)


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize(
    ("table", "overrides", "constraint"),
    [
        ("actors", {"id": "Jane Doe"}, "ck_actors_id_slug"),
        ("actors", {"id": "jane-"}, "ck_actors_id_slug"),
        ("actors", {"id": "x" * 129}, "ck_actors_id_slug"),
        ("actors", {"kind": "ROBOT"}, "ck_actors_kind_known"),
        ("actors", {"display_name": ""}, "ck_actors_display_name_not_empty"),
        ("topics", {"id": "energy", "parent_id": "energy"}, "ck_topics_parent_not_self"),
        ("claims", {"confidence": 1.5}, "ck_claims_confidence_range"),
        ("claims", {"confidence": -0.1}, "ck_claims_confidence_range"),
        ("claims", {"state": "DELETED"}, "ck_claims_state_known"),
        ("claims", {"id": "a b"}, "ck_claims_id_format"),
        ("claims", {"revision": 0}, "ck_claims_revision_positive"),
        ("claims", {"topic_ids": []}, "ck_claims_topic_ids_not_empty"),
        ("claim_revisions", {"change": "UPDATED"}, "ck_claim_revisions_created_first"),
        ("claim_revisions", {"revision": 2}, "ck_claim_revisions_created_first"),
        ("claim_revisions", {"change": "ERASED"}, "ck_claim_revisions_change_known"),
    ],
)
async def test_check_constraints_reject_invalid_rows(
    owner: asyncpg.Connection, table: str, overrides: dict[str, Any], constraint: str
) -> None:
    """Each CHECK constraint refuses a row that breaks the invariant it names."""
    actor, topic = actor_row(), topic_row()
    await insert(owner, "actors", actor)
    await insert(owner, "topics", topic)
    claim = claim_row(actor["id"], topic["id"])
    if table == "claim_revisions":
        await insert(owner, "claims", claim)
    rows = {
        "actors": actor_row(**overrides),
        "topics": topic_row(**overrides),
        "claims": claim_row(actor["id"], topic["id"], **overrides),
        "claim_revisions": revision_row(claim, **overrides),
    }

    with pytest.raises(asyncpg.CheckViolationError) as raised:
        async with owner.transaction():
            await insert(owner, table, rows[table])
    assert raised.value.constraint_name == constraint


# --- search ----------------------------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="session")
async def test_search_vector_follows_the_text(owner: asyncpg.Connection) -> None:
    """The stored search_vector is to_tsvector('english', text), recomputed when text changes."""
    claim = await insert_claim_with_history(owner)
    matches = (
        "SELECT search_vector = to_tsvector('english', text)"
        " AND search_vector @@ websearch_to_tsquery('english', $2)"
        " FROM claims WHERE id = $1"
    )
    assert await owner.fetchval(matches, claim["id"], "wind farm")

    await owner.execute(
        "UPDATE claims SET text = 'Solar panels on every roof.' WHERE id = $1", claim["id"]
    )

    assert await owner.fetchval(matches, claim["id"], "solar panel")
    assert not await owner.fetchval(matches, claim["id"], "wind farm")


@pytest.mark.asyncio(loop_scope="session")
async def test_trigram_search_finds_an_actor_by_a_misspelled_alias(
    owner: asyncpg.Connection,
) -> None:
    """search_names holds name and aliases lowercased, and the trigram index finds typos in it."""
    actor = actor_row(display_name="Alexandria Ocasio-Cortez", aliases=["AOC", "Sandy Cortez"])
    await insert(owner, "actors", actor)
    assert await owner.fetchval("SELECT search_names FROM actors WHERE id = $1", actor["id"]) == (
        "alexandria ocasio-cortez aoc sandy cortez"
    )

    await owner.execute("SET LOCAL enable_seqscan = off")
    query = "SELECT id FROM actors WHERE $1 <% search_names ORDER BY $1 <<-> search_names"
    found = [row["id"] for row in await owner.fetch(query, "sandi cortes")]
    plan = "\n".join(row[0] for row in await owner.fetch(f"EXPLAIN {query}", "sandi cortes"))

    assert actor["id"] in found
    assert "ix_actors_search_names" in plan


@pytest.mark.asyncio(loop_scope="session")
async def test_0004_fills_link_actors_and_day_counts_from_existing_claims(
    scratch_database_url: DatabaseUrl,
) -> None:
    """Claims stored before 0004 get their links' actor and their day counts from the upgrade:
    active claims only, current links only, days in UTC."""
    await migrate.upgrade_async(scratch_database_url, "0003")
    connection = await connect(scratch_database_url)
    try:
        actor, topic, other_topic = actor_row(), topic_row(), topic_row()
        for table, row in (("actors", actor), ("topics", topic), ("topics", other_topic)):
            await insert(connection, table, row)
        late_evening = datetime(2024, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
        claims = [
            claim_row(actor["id"], topic["id"]),
            claim_row(actor["id"], topic["id"], stated_at=late_evening),
            claim_row(actor["id"], topic["id"], state="RETRACTED"),
        ]
        for claim in claims:
            await insert(connection, "claims", claim)
            await insert(
                connection,
                "claim_topics",
                {"claim_id": claim["id"], "topic_id": topic["id"], "stated_at": claim["stated_at"]},
            )
        await insert(
            connection,
            "claim_topics",
            {
                "claim_id": claims[0]["id"],
                "topic_id": other_topic["id"],
                "stated_at": claims[0]["stated_at"],
                "is_current": False,
            },
        )
    finally:
        await connection.close()

    await migrate.upgrade_async(scratch_database_url)

    connection = await connect(scratch_database_url)
    try:
        links = await connection.fetch("SELECT actor_id FROM claim_topics")
        assert [row["actor_id"] for row in links] == [actor["id"]] * 4
        days = await connection.fetch("SELECT * FROM actor_day_counts ORDER BY day")
        assert [(row["actor_id"], row["day"], row["claim_count"]) for row in days] == [
            (actor["id"], date(2024, 5, 1), 1),
            (actor["id"], date(2024, 5, 2), 1),
        ]
        topic_days = await connection.fetch(
            "SELECT topic_id, day, claim_count FROM actor_topic_day_counts ORDER BY day"
        )
        assert [tuple(row) for row in topic_days] == [
            (topic["id"], date(2024, 5, 1), 1),
            (topic["id"], date(2024, 5, 2), 1),
        ]
    finally:
        await connection.close()
