"""The indexer's SQL: every statement it runs, on one connection inside one transaction.

Writes go through `unnest` of parallel arrays, one statement per table per batch (new claims,
their first revisions and their topic links in one), so a batch of a thousand claims costs a
handful of round trips. Existing claims are locked in id order before
they are read, so concurrent writers of one claim queue up instead of losing an update, and
batches touching the same claims cannot deadlock on them.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import asyncpg

from panoptic.core.db import DatabaseUrl
from panoptic.core.timestamps import clamped_sql, readable_sql
from panoptic.model.claims import (
    CONTENT_COLUMNS,
    TIME_COLUMNS,
    ClaimContent,
    ClaimRow,
    ClaimState,
    claim_columns,
    claim_from_record,
)
from services.indexer.domain import ActorRecord, Change, CountDeltas, CurrentClaim, TopicRecord

# The content columns, in `ClaimContent`'s order; written from twelve parallel arrays ($1-$12)
# through `unnest`, its rows named `u`.
_CLAIM_COLUMNS: Final = ", ".join(CONTENT_COLUMNS)
# Each array's type: text but for these.
_ARRAY_TYPES: Final = {
    "stated_at": "timestamptz",
    "source_published_at": "timestamptz",
    "confidence": "float8",
}
_CLAIM_ARRAYS: Final = claim_columns(
    lambda name: f"${CONTENT_COLUMNS.index(name) + 1}::{_ARRAY_TYPES.get(name, 'text')}[]",
    CONTENT_COLUMNS,
)
# The same columns read back from `u`; topic lists arrive as '{a,b}' text and are cast.
_CLAIM_VALUES: Final = claim_columns(
    lambda name: "u.topic_ids::text[]" if name == "topic_ids" else f"u.{name}", CONTENT_COLUMNS
)
# What an update sets from `u`: every content column but the id.
_CLAIM_SETS: Final = claim_columns(
    lambda name: f"{name} = {'u.topic_ids::text[]' if name == 'topic_ids' else f'u.{name}'}",
    CONTENT_COLUMNS[1:],
)
# The stored claim as the indexer reads it back to change it. A time outside the accepted range
# (stored before migration 0007, which repairs such times the same way) is taken as the nearest
# accepted one, so that the claim can be corrected or retracted and its day counts follow.
_STORED_CLAIM_COLUMNS: Final = claim_columns(
    lambda name: (
        f"{clamped_sql(name)} AS {name}"
        if name in ("stated_at", "source_published_at")
        else f"{readable_sql(name)} AS {name}"
        if name in TIME_COLUMNS
        else name
    )
)
# A revision's columns: the content's (its id as claim_id), then what the revision records.
_REVISION_COLUMNS: Final = (
    f"claim_id, {_CLAIM_COLUMNS.removeprefix('id, ')}, revision, change, reason, request_id"
)
_TOPIC_IDS: Final = CONTENT_COLUMNS.index("topic_ids")
_STATE: Final = CONTENT_COLUMNS.index("state")
_CONTENT: Final = operator.attrgetter(*CONTENT_COLUMNS)

K = TypeVar("K", str, tuple[Any, ...])


def _claim_arrays(claims: Sequence[ClaimContent]) -> list[list[Any]]:
    """The claims as twelve parallel arrays; topic lists travel as `{a,b}` literals."""
    arrays = [list(column) for column in zip(*map(_CONTENT, claims), strict=True)]
    arrays[_TOPIC_IDS] = [_text_array_literal(topic_ids) for topic_ids in arrays[_TOPIC_IDS]]
    arrays[_STATE] = [state.value for state in arrays[_STATE]]
    return arrays


def _changed_counts(changes: Mapping[K, int]) -> tuple[list[K], list[int]]:
    """The keys whose count changes, sorted, and their changes in the same order.

    The keys alone are sorted: sorting (key, change) pairs compared nested tuples, and building
    the lists took twice as long for a batch's day counts.
    """
    keys = sorted(key for key, delta in changes.items() if delta)
    return keys, [changes[key] for key in keys]


def _text_array_literal(values: Iterable[str]) -> str:
    # Slugs only ([a-z0-9-]), so no quoting is needed; a 2-D array cannot be passed otherwise.
    return "{" + ",".join(values) + "}"


class IndexRepository:
    """Reads and writes of one indexing transaction."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    # --- idempotency ---------------------------------------------------------------------------

    async def lock_request_id(self, request_id: str) -> None:
        """Serialises concurrent calls with one request id until this transaction ends."""
        await self._db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 155))", request_id
        )

    async def find_request(self, request_id: str) -> tuple[str, bytes, bytes] | None:
        """The (method, request hash, response) stored for a request id, if any."""
        row = await self._db.fetchrow(
            "SELECT method, request_hash, response FROM idempotency_keys"
            " WHERE request_id = $1 AND expire_time > now()",
            request_id,
        )
        return (
            None
            if row is None
            else (row["method"], bytes(row["request_hash"]), bytes(row["response"]))
        )

    async def save_request(
        self, request_id: str, method: str, request_hash: bytes, response: bytes, keep: timedelta
    ) -> None:
        """Remembers a request's first response for `keep` (an expired record is replaced)."""
        await self._db.execute(
            "INSERT INTO idempotency_keys (request_id, method, request_hash, response, expire_time)"
            " VALUES ($1, $2, $3, $4, now() + $5::interval)"
            " ON CONFLICT (request_id) DO UPDATE SET method = EXCLUDED.method,"
            " request_hash = EXCLUDED.request_hash, response = EXCLUDED.response,"
            " create_time = now(), expire_time = EXCLUDED.expire_time",
            request_id,
            method,
            request_hash,
            response,
            keep,
        )

    # --- references ----------------------------------------------------------------------------

    async def existing_actor_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of these actor ids are stored."""
        rows = await self._db.fetch("SELECT id FROM actors WHERE id = ANY($1::text[])", list(ids))
        return {row["id"] for row in rows}

    async def topic_ancestry(self, ids: Iterable[str]) -> dict[str, str | None]:
        """Stored topics among `ids` and all their ancestors, each with its parent."""
        rows = await self._db.fetch(
            "WITH RECURSIVE up AS ("
            "  SELECT id, parent_id FROM topics WHERE id = ANY($1::text[])"
            "  UNION SELECT t.id, t.parent_id FROM topics t JOIN up ON t.id = up.parent_id"
            ") SELECT id, parent_id FROM up",
            list(ids),
        )
        return {row["id"]: row["parent_id"] for row in rows}

    # --- actors and topics ---------------------------------------------------------------------

    async def upsert_topics(self, topics: Sequence[TopicRecord]) -> int:
        """Creates or changes topics; returns how many were new or different."""
        if not topics:
            return 0
        ordered = sorted(topics, key=lambda topic: topic.id)
        rows = await self._db.fetch(
            "INSERT INTO topics AS t (id, display_name, parent_id)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[])"
            " ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name,"
            " parent_id = EXCLUDED.parent_id, update_time = now()"
            " WHERE (t.display_name, t.parent_id)"
            " IS DISTINCT FROM (EXCLUDED.display_name, EXCLUDED.parent_id)"
            " RETURNING t.id",
            [topic.id for topic in ordered],
            [topic.display_name for topic in ordered],
            [topic.parent_id for topic in ordered],
        )
        return len(rows)

    async def upsert_actors(self, actors: Sequence[ActorRecord]) -> int:
        """Creates or changes actors; returns how many were new or different."""
        if not actors:
            return 0
        ordered = sorted(actors, key=lambda actor: actor.id)
        rows = await self._db.fetch(
            "INSERT INTO actors AS a (id, display_name, aliases, kind, description)"
            " SELECT u.id, u.display_name, u.aliases::text[], u.kind, u.description"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])"
            "   AS u(id, display_name, aliases, kind, description)"
            " ON CONFLICT (id) DO UPDATE SET display_name = EXCLUDED.display_name,"
            " aliases = EXCLUDED.aliases, kind = EXCLUDED.kind,"
            " description = EXCLUDED.description, update_time = now()"
            " WHERE (a.display_name, a.aliases, a.kind, a.description) IS DISTINCT FROM"
            " (EXCLUDED.display_name, EXCLUDED.aliases, EXCLUDED.kind, EXCLUDED.description)"
            " RETURNING a.id",
            [actor.id for actor in ordered],
            [actor.display_name for actor in ordered],
            [_quoted_array_literal(actor.aliases) for actor in ordered],
            [actor.kind for actor in ordered],
            [actor.description for actor in ordered],
        )
        return len(rows)

    async def adjust_claim_counts(self, deltas: CountDeltas) -> None:
        """Applies count changes, in key order so that concurrent batches lock rows alike."""
        for table, changes in (("actors", deltas.actors), ("topics", deltas.topics)):
            ids, changed = _changed_counts(changes)
            if ids:
                await self._db.execute(
                    f"UPDATE {table} SET claim_count = claim_count + d.delta"
                    " FROM unnest($1::text[], $2::bigint[]) AS d(id, delta)"
                    f" WHERE {table}.id = d.id",
                    ids,
                    changed,
                )
        day_counts: tuple[tuple[str, tuple[str, ...], Mapping[tuple[Any, ...], int]], ...] = (
            ("actor_day_counts", ("actor_id", "day"), deltas.actor_days),
            ("actor_topic_day_counts", ("actor_id", "topic_id", "day"), deltas.actor_topic_days),
        )
        for table, keys, day_changes in day_counts:
            days, changed = _changed_counts(day_changes)
            if days:
                columns = ", ".join(keys)
                arrays = ", ".join(
                    f"${number}::{'date' if key == 'day' else 'text'}[]"
                    for number, key in enumerate(keys, start=1)
                )
                await self._db.execute(
                    f"INSERT INTO {table} AS t ({columns}, claim_count)"
                    f" SELECT * FROM unnest({arrays}, ${len(keys) + 1}::bigint[])"
                    f" ON CONFLICT ({columns})"
                    " DO UPDATE SET claim_count = t.claim_count + EXCLUDED.claim_count",
                    *(list(part) for part in zip(*days, strict=True)),
                    changed,
                )

    # --- claims --------------------------------------------------------------------------------

    async def lock_claims(self, ids: Sequence[str]) -> dict[str, CurrentClaim]:
        """The stored claims among `ids`, locked for update until the transaction ends."""
        rows = await self._db.fetch(
            "SELECT id, revision, content_hash, state, actor_id, topic_ids,"
            f" {clamped_sql('stated_at')} AS stated_at FROM claims"
            " WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
            list(ids),
        )
        return {
            row["id"]: CurrentClaim(
                id=row["id"],
                revision=row["revision"],
                content_hash=bytes(row["content_hash"]),
                state=ClaimState(row["state"]),
                actor_id=row["actor_id"],
                topic_ids=tuple(row["topic_ids"]),
                stated_at=row["stated_at"],
            )
            for row in rows
        }

    async def create_claims(self, claims: Sequence[ClaimContent], request_id: str) -> set[str]:
        """Inserts new claims at revision 1, each with its CREATED revision and its topic links;
        returns the ids inserted (a claim raced in by a concurrent batch gets none of the three).

        One statement: the batch's arrays are encoded and sent once, where a statement per
        table sent them three times (most of the indexer's time went into that encoding). A
        claim just inserted has no links yet, so they are inserted without an upsert.
        """
        if not claims:
            return set()
        ordered = sorted(claims, key=lambda claim: claim.id)
        rows = await self._db.fetch(
            f"WITH u AS (SELECT * FROM unnest({_CLAIM_ARRAYS}, $13::bytea[])"
            f"   AS u({_CLAIM_COLUMNS}, content_hash)),"
            f" inserted AS (INSERT INTO claims ({_CLAIM_COLUMNS}, revision, content_hash)"
            f"   SELECT {_CLAIM_VALUES}, 1, u.content_hash FROM u"
            "   ON CONFLICT (id) DO NOTHING RETURNING id),"
            f" revised AS (INSERT INTO claim_revisions ({_REVISION_COLUMNS})"
            f"   SELECT {_CLAIM_VALUES}, 1, 'CREATED', '', $14 FROM u JOIN inserted USING (id)),"
            " linked AS (INSERT INTO claim_topics (claim_id, topic_id, actor_id, stated_at)"
            "   SELECT u.id, topic_id, u.actor_id, u.stated_at"
            "   FROM u JOIN inserted USING (id), unnest(u.topic_ids::text[]) AS topic_id)"
            " SELECT id FROM inserted",
            *_claim_arrays(ordered),
            [claim.content_hash for claim in ordered],
            request_id,
        )
        return {row["id"] for row in rows}

    async def update_claims(
        self, claims: Sequence[tuple[ClaimContent, int]]
    ) -> dict[str, datetime]:
        """Replaces the current state of locked claims with new content at new revisions;
        returns each one's new update time."""
        if not claims:
            return {}
        contents = [content for content, _ in claims]
        rows = await self._db.fetch(
            f"UPDATE claims SET {_CLAIM_SETS}, revision = u.revision,"
            " content_hash = u.content_hash, update_time = now()"
            f" FROM unnest({_CLAIM_ARRAYS}, $13::int[], $14::bytea[])"
            f" AS u({_CLAIM_COLUMNS}, revision, content_hash)"
            " WHERE claims.id = u.id RETURNING claims.id, claims.update_time",
            *_claim_arrays(contents),
            [revision for _, revision in claims],
            [content.content_hash for content in contents],
        )
        return {row["id"]: row["update_time"] for row in rows}

    async def append_revisions(
        self, revisions: Sequence[tuple[ClaimContent, int, Change, str]], request_id: str
    ) -> None:
        """Adds history entries: (content, revision, change, reason) each."""
        if not revisions:
            return
        contents = [content for content, _, _, _ in revisions]
        await self._db.execute(
            f"INSERT INTO claim_revisions ({_REVISION_COLUMNS})"
            f" SELECT {_CLAIM_VALUES}, u.revision, u.change, u.reason, $16"
            f" FROM unnest({_CLAIM_ARRAYS}, $13::int[], $14::text[], $15::text[])"
            f" AS u({_CLAIM_COLUMNS}, revision, change, reason)",
            *_claim_arrays(contents),
            [revision for _, revision, _, _ in revisions],
            [change.value for _, _, change, _ in revisions],
            [reason for _, _, _, reason in revisions],
            request_id,
        )

    async def link_topics(self, claims: Sequence[ClaimContent], replaced: Sequence[str]) -> None:
        """Makes each claim's links match its topics; links of `replaced` claims are retired."""
        if replaced:
            await self._db.execute(
                "UPDATE claim_topics SET is_current = false"
                " WHERE claim_id = ANY($1::text[]) AND is_current",
                list(replaced),
            )
        if not claims:
            return
        links = sorted(
            (claim.id, topic, claim.actor_id, claim.stated_at)
            for claim in claims
            for topic in claim.topic_ids
        )
        await self._db.execute(
            "INSERT INTO claim_topics (claim_id, topic_id, actor_id, stated_at)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])"
            " ON CONFLICT (claim_id, topic_id) DO UPDATE SET actor_id = EXCLUDED.actor_id,"
            " stated_at = EXCLUDED.stated_at, is_current = true",
            *(list(column) for column in zip(*links, strict=True)),
        )

    async def fetch_claim(self, claim_id: str, *, lock: bool = False) -> ClaimRow | None:
        """A claim's full current state; with `lock`, locked for update until the transaction
        ends."""
        row = await self._db.fetchrow(
            f"SELECT {_STORED_CLAIM_COLUMNS} FROM claims"
            f" WHERE id = $1{' FOR UPDATE' if lock else ''}",
            claim_id,
        )
        return None if row is None else claim_from_record(row)


async def record_rejection(
    connection: asyncpg.Connection, request_id: str, reason: str, field_count: int, summary: str
) -> None:
    """Notes a refused request for operators (the dashboard's "recent rejected batches")."""
    await connection.execute(
        "INSERT INTO indexer_rejections (request_id, reason, field_count, summary)"
        " VALUES ($1, $2, $3, $4)",
        request_id[:128],
        reason,
        field_count,
        summary[:1000],
    )


async def expire_requests(connection: asyncpg.Connection, *, batch_size: int = 1000) -> int:
    """Deletes expired idempotency records in small batches; returns how many went.

    Runs as the owner (the indexer's role may not delete). `SKIP LOCKED` and small batches keep
    it from blocking indexing or holding long locks.
    """
    removed = 0
    while True:
        status = await connection.execute(
            "DELETE FROM idempotency_keys WHERE request_id IN ("
            " SELECT request_id FROM idempotency_keys WHERE expire_time <= now()"
            " ORDER BY expire_time LIMIT $1 FOR UPDATE SKIP LOCKED)",
            batch_size,
        )
        count = int(status.split()[-1])
        removed += count
        if count < batch_size:
            return removed


async def expire_requests_as_owner(owner_url: DatabaseUrl) -> int:
    """`expire_requests` on a connection of its own as the owner (`DATABASE_URL`'s role)."""
    connection = await asyncpg.connect(owner_url.value)
    try:
        return await expire_requests(connection)
    finally:
        await connection.close()


def _quoted_array_literal(values: Iterable[str]) -> str:
    """A text[] literal for free text such as aliases: every element quoted and escaped."""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"') for value in values)
    return "{" + ",".join(f'"{value}"' for value in escaped) + "}"
