"""The retriever's SQL: every read it makes, as plain asyncpg queries returning frozen values.

Each function takes a connection inside a read-only transaction opened by `reading`, which also
bounds every statement by the caller's deadline. Statements whose shape depends on the filters
are assembled from the fixed fragments below, one prepared statement per combination, so a
cached generic plan never has to serve a filter it was not planned for; values always travel as
`$n` parameters.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

# --- values --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimRow:
    """A claim's current state (or, inside a `RevisionRow`, its state at that revision)."""

    id: str
    actor_id: str
    topic_ids: tuple[str, ...]
    text: str
    stated_at: datetime
    source_url: str
    source_title: str
    source_publisher: str
    source_published_at: datetime | None
    language: str
    confidence: float
    state: str
    revision: int
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True)
class RevisionRow:
    """One entry of a claim's history."""

    revision: int
    change: str
    record_time: datetime
    request_id: str
    reason: str
    claim: ClaimRow


@dataclass(frozen=True)
class ActorRow:
    """An actor, with its count of active claims."""

    id: str
    display_name: str
    aliases: tuple[str, ...]
    kind: str
    description: str
    claim_count: int
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True)
class ActorMatch:
    """An actor found by a name query, with how well its names match (0 to 1)."""

    actor: ActorRow
    score: float


@dataclass(frozen=True)
class TopicRow:
    """A topic, with its count of active claims."""

    id: str
    display_name: str
    parent_id: str | None
    claim_count: int


@dataclass(frozen=True)
class SearchHit:
    """A claim matching a text query, its relevance, and an HTML excerpt marking the match."""

    claim: ClaimRow
    score: float
    highlight: str


@dataclass(frozen=True)
class TimelineBucket:
    """One period of an actor's timeline: its start, its claim count, its newest claims."""

    start_time: datetime
    claim_count: int
    samples: tuple[ClaimRow, ...]


@dataclass(frozen=True)
class ClaimFilters:
    """The filters ListClaims and SearchClaims share; None means "any"."""

    actor_id: str | None = None
    topic_id: str | None = None
    stated_after: datetime | None = None
    stated_before: datetime | None = None
    language: str | None = None
    show_retracted: bool = False


@dataclass(frozen=True)
class ClaimKey:
    """Where a claim sits in statement-time order: the keyset of claim lists."""

    stated_at: datetime
    id: str


@dataclass(frozen=True)
class ScoreKey:
    """Where a result sits in relevance order (score descending, then id)."""

    score: float
    id: str


@dataclass(frozen=True)
class SearchPage:
    """A page of search hits and the oldest candidate they were ranked among.

    `floor` is None only when nothing matched at all.
    """

    hits: list[SearchHit]
    floor: ClaimKey | None


# --- transactions --------------------------------------------------------------------------------


@asynccontextmanager
async def reading(
    pool: asyncpg.Pool,
    timeout: float,
    *,
    custom_plans: bool = False,
    word_similarity_threshold: float | None = None,
) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a read-only transaction whose statements stop after `timeout` seconds.

    A statement running out of time raises `asyncpg.QueryCanceledError`. `custom_plans` plans
    each statement for its actual values (search, whose best plan depends on how common the
    words are); `word_similarity_threshold` sets pg_trgm's cut-off for `%>`.
    """
    # SET takes no parameters; these are numbers formatted here, never caller text.
    settings = [f"SET LOCAL statement_timeout = {max(1, math.ceil(timeout * 1000))}"]
    if custom_plans:
        settings.append("SET LOCAL plan_cache_mode = force_custom_plan")
    if word_similarity_threshold is not None:
        settings.append(
            f"SET LOCAL pg_trgm.word_similarity_threshold = {float(word_similarity_threshold)}"
        )
    async with pool.acquire(timeout=timeout) as connection, connection.transaction(readonly=True):
        # One round trip for all settings: several statements in one simple query.
        await connection.execute("; ".join(settings))
        yield connection


@asynccontextmanager
async def point_reading(pool: asyncpg.Pool, timeout: float) -> AsyncIterator[asyncpg.Connection]:
    """A connection for one single-statement lookup by primary key, in one round trip.

    No explicit transaction and no SET: a lone statement is its own transaction, read-only by
    the role's default, and the caller passes `timeout` to the statement (asyncpg cancels it
    server-side when it runs out, raising TimeoutError). The hot path (GetClaim) thus costs one
    round trip instead of four.
    """
    async with pool.acquire(timeout=timeout) as connection:
        yield connection


# --- claims --------------------------------------------------------------------------------------

_CLAIM_COLUMNS: Final = (
    "c.id, c.actor_id, c.topic_ids, c.text, c.stated_at, c.source_url, c.source_title,"
    " c.source_publisher, c.source_published_at, c.language, c.confidence, c.state,"
    " c.revision, c.create_time, c.update_time"
)


def _claim(row: asyncpg.Record) -> ClaimRow:
    return ClaimRow(
        id=row["id"],
        actor_id=row["actor_id"],
        topic_ids=tuple(row["topic_ids"]),
        text=row["text"],
        stated_at=row["stated_at"],
        source_url=row["source_url"],
        source_title=row["source_title"],
        source_publisher=row["source_publisher"],
        source_published_at=row["source_published_at"],
        language=row["language"],
        confidence=row["confidence"],
        state=row["state"],
        revision=row["revision"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


async def get_claim(
    connection: asyncpg.Connection, claim_id: str, timeout: float | None = None
) -> ClaimRow | None:
    """One claim by id, retracted or not."""
    row = await connection.fetchrow(
        f"SELECT {_CLAIM_COLUMNS} FROM claims c WHERE c.id = $1", claim_id, timeout=timeout
    )
    return None if row is None else _claim(row)


class _Params:
    """Collects query values and hands out their `$n` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _filter_conditions(
    filters: ClaimFilters, params: _Params, *, key: tuple[str, str], topic_driven: bool
) -> list[str]:
    """The WHERE conditions of `filters` on claims `c`; `key` names the statement-time column
    to bound (the driving index's), and a topic-driven query has its topic condition already."""
    conditions = []
    if filters.actor_id is not None:
        conditions.append(f"c.actor_id = {params(filters.actor_id)}")
    if filters.topic_id is not None and not topic_driven:
        conditions.append(
            "EXISTS (SELECT FROM claim_topics t WHERE t.claim_id = c.id"
            f" AND t.topic_id = {params(filters.topic_id)} AND t.is_current)"
        )
    if not filters.show_retracted:
        conditions.append("c.state = 'ACTIVE'")
    if filters.stated_after is not None:
        conditions.append(f"{key[0]} >= {params(filters.stated_after)}")
    if filters.stated_before is not None:
        conditions.append(f"{key[0]} < {params(filters.stated_before)}")
    if filters.language is not None:
        conditions.append(f"c.language = {params(filters.language)}")
    return conditions


async def list_claims(
    connection: asyncpg.Connection,
    filters: ClaimFilters,
    *,
    descending: bool,
    after: ClaimKey | None,
    limit: int,
) -> list[ClaimRow]:
    """Claims matching `filters` in statement-time order (then id), after `after` if given.

    With a topic, the topic's current links (a partial index on topic, time, claim) drive the
    scan, joined to claims by primary key. With an actor and a topic together, whichever has
    fewer active claims drives it: the cost of a keyset page is bounded by the rows the driving
    index has to walk, and the smaller set bounds that walk however rarely the two overlap.
    """
    topic_driven = filters.topic_id is not None
    if filters.topic_id is not None and filters.actor_id is not None:
        counts = await connection.fetchrow(
            "SELECT (SELECT claim_count FROM actors WHERE id = $1) AS actor_claims,"
            " (SELECT claim_count FROM topics WHERE id = $2) AS topic_claims",
            filters.actor_id,
            filters.topic_id,
        )
        assert counts is not None  # a SELECT without FROM returns one row
        topic_driven = (counts["topic_claims"] or 0) < (counts["actor_claims"] or 0)
    params = _Params()
    if topic_driven:
        key = ("l.stated_at", "l.claim_id")
        source = "claim_topics l JOIN claims c ON c.id = l.claim_id"
        conditions = [f"l.topic_id = {params(filters.topic_id)}", "l.is_current"]
    else:
        key = ("c.stated_at", "c.id")
        source = "claims c"
        conditions = []
    conditions += _filter_conditions(filters, params, key=key, topic_driven=topic_driven)
    direction = "DESC" if descending else "ASC"
    if after is not None:
        operator = "<" if descending else ">"
        conditions.append(
            f"({key[0]}, {key[1]}) {operator} ({params(after.stated_at)}, {params(after.id)})"
        )
    where = " AND ".join(conditions) or "true"
    rows = await connection.fetch(
        f"SELECT {_CLAIM_COLUMNS} FROM {source} WHERE {where}"
        f" ORDER BY {key[0]} {direction}, {key[1]} {direction} LIMIT {params(limit)}",
        *params.values,
    )
    return [_claim(row) for row in rows]


async def missing_references(
    connection: asyncpg.Connection, actor_id: str | None, topic_id: str | None
) -> tuple[bool, bool]:
    """Whether the named actor and topic are missing: (actor missing, topic missing)."""
    row = await connection.fetchrow(
        "SELECT $1::text IS NOT NULL AND NOT EXISTS (SELECT FROM actors WHERE id = $1) AS actor,"
        " $2::text IS NOT NULL AND NOT EXISTS (SELECT FROM topics WHERE id = $2) AS topic",
        actor_id,
        topic_id,
    )
    assert row is not None
    return bool(row["actor"]), bool(row["topic"])


# --- search --------------------------------------------------------------------------------------

# ts_headline wraps matches in these, and they become <mark> and </mark> afterwards. They are
# private-use characters, removed from the text first so that a claim cannot forge a mark.
_MARK_START: Final = "\ue000"
_MARK_STOP: Final = "\ue001"
_HEADLINE_OPTIONS: Final = (
    f'StartSel="{_MARK_START}", StopSel="{_MARK_STOP}", MaxWords=50, MinWords=25'
)
# The claim's text as HTML before ts_headline sees it: its parser takes `<b>` for a tag and
# drops it, while an entity such as `&lt;` is one token that it keeps whole or leaves out.
_ESCAPED_TEXT: Final = (
    f"replace(replace(replace(replace(replace("
    f"translate(c.text, '{_MARK_START}{_MARK_STOP}', ''),"
    " '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '\"', '&quot;'), '''', '&#39;')"
)


def _highlight_html(headline: str) -> str:
    """ts_headline's output over the escaped text, its markers turned into <mark> tags."""
    return headline.replace(_MARK_START, "<mark>").replace(_MARK_STOP, "</mark>")


async def search_claims(
    connection: asyncpg.Connection,
    query: str,
    filters: ClaimFilters,
    *,
    window: int,
    floor: ClaimKey | None,
    after: ScoreKey | None,
    limit: int,
) -> SearchPage:
    """Claims matching a web-search `query`, most relevant first, with highlighted excerpts.

    Ranking is bounded: relevance (`ts_rank_cd`) is computed for at most the newest `window`
    matches, not all of them. For a common word PostgreSQL then walks the statement-time index
    backwards and stops after `window` matches instead of ranking every match in the table
    (full-text search with LIMIT otherwise grows with the number of matching rows); a rare word
    is served from the GIN index as usual. Statements are planned for the actual query (see
    `reading`), so the planner picks between the two by the word's frequency: the rows read are
    about min(matches, window / share of rows matching), at worst sqrt(window * table rows).

    The first page records the oldest candidate as the `floor`; later pages rank exactly the
    matches at or after that floor, so claims added between pages cannot push earlier
    candidates out (no gaps), and a page resumes strictly after the last (score, id) returned
    (no duplicates). The query is parsed once, as a function in FROM, and excerpts are made
    only for the returned page.
    """
    params = _Params()
    text = params(query)
    conditions = ["c.search_vector @@ q"]
    conditions += _filter_conditions(
        filters, params, key=("c.stated_at", "c.id"), topic_driven=False
    )
    if floor is None:
        bound = f"ORDER BY c.stated_at DESC, c.id DESC LIMIT {params(window)}"
    else:
        conditions.append(f"(c.stated_at, c.id) >= ({params(floor.stated_at)}, {params(floor.id)})")
        bound = ""
    resume = ""
    if after is not None:
        score, last_id = params(after.score), params(after.id)
        resume = f"WHERE s.score < {score}::real OR (s.score = {score}::real AND s.id > {last_id})"
    rows = await connection.fetch(
        f"""
        WITH candidates AS MATERIALIZED (
            SELECT c.id, c.stated_at, c.search_vector
            FROM websearch_to_tsquery('english', {text}) AS q, claims c
            WHERE {" AND ".join(conditions)}
            {bound}
        ), scored AS MATERIALIZED (
            SELECT k.id, ts_rank_cd(k.search_vector, q) AS score
            FROM websearch_to_tsquery('english', {text}) AS q, candidates k
        ), page AS (
            SELECT s.id, s.score FROM scored s
            {resume}
            ORDER BY s.score DESC, s.id
            LIMIT {params(limit)}
        )
        SELECT {_CLAIM_COLUMNS}, p.score,
            ts_headline('english', {_ESCAPED_TEXT}, q, '{_HEADLINE_OPTIONS}') AS headline,
            f.stated_at AS floor_stated_at, f.id AS floor_id
        FROM page p
        JOIN claims c ON c.id = p.id
        CROSS JOIN websearch_to_tsquery('english', {text}) AS q
        CROSS JOIN (
            SELECT k.stated_at, k.id FROM candidates k ORDER BY k.stated_at, k.id LIMIT 1
        ) f
        ORDER BY p.score DESC, p.id
        """,
        *params.values,
    )
    hits = [SearchHit(_claim(row), row["score"], _highlight_html(row["headline"])) for row in rows]
    if floor is None and rows:
        floor = ClaimKey(rows[0]["floor_stated_at"], rows[0]["floor_id"])
    return SearchPage(hits, floor)


# --- revisions -----------------------------------------------------------------------------------


async def list_revisions(
    connection: asyncpg.Connection, claim_id: str, *, after: int, limit: int
) -> list[RevisionRow]:
    """A claim's revisions numbered above `after`, oldest first."""
    rows = await connection.fetch(
        "SELECT r.revision, r.change, r.record_time, r.request_id, r.reason, r.claim_id AS id,"
        " r.actor_id, r.topic_ids, r.text, r.stated_at, r.source_url, r.source_title,"
        " r.source_publisher, r.source_published_at, r.language, r.confidence, r.state,"
        " c.create_time, r.record_time AS update_time"
        " FROM claim_revisions r JOIN claims c ON c.id = r.claim_id"
        " WHERE r.claim_id = $1 AND r.revision > $2 ORDER BY r.revision LIMIT $3",
        claim_id,
        after,
        limit,
    )
    return [
        RevisionRow(
            revision=row["revision"],
            change=row["change"],
            record_time=row["record_time"],
            request_id=row["request_id"],
            reason=row["reason"],
            claim=_claim(row),
        )
        for row in rows
    ]


async def claim_exists(connection: asyncpg.Connection, claim_id: str) -> bool:
    """Whether a claim with this id exists."""
    return bool(
        await connection.fetchval("SELECT EXISTS (SELECT FROM claims WHERE id = $1)", claim_id)
    )


# --- actors --------------------------------------------------------------------------------------

_ACTOR_COLUMNS: Final = (
    "a.id, a.display_name, a.aliases, a.kind, a.description, a.claim_count,"
    " a.create_time, a.update_time"
)


def _actor(row: asyncpg.Record) -> ActorRow:
    return ActorRow(
        id=row["id"],
        display_name=row["display_name"],
        aliases=tuple(row["aliases"]),
        kind=row["kind"],
        description=row["description"],
        claim_count=row["claim_count"],
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


async def get_actor(connection: asyncpg.Connection, actor_id: str) -> ActorRow | None:
    """One actor by id."""
    row = await connection.fetchrow(
        f"SELECT {_ACTOR_COLUMNS} FROM actors a WHERE a.id = $1", actor_id
    )
    return None if row is None else _actor(row)


async def list_actors(
    connection: asyncpg.Connection, *, after: str | None, limit: int
) -> list[ActorRow]:
    """Actors in id order, after the id `after` if given."""
    params = _Params()
    where = "true" if after is None else f"a.id > {params(after)}"
    rows = await connection.fetch(
        f"SELECT {_ACTOR_COLUMNS} FROM actors a WHERE {where} ORDER BY a.id LIMIT {params(limit)}",
        *params.values,
    )
    return [_actor(row) for row in rows]


async def search_actors(
    connection: asyncpg.Connection, query: str, *, after: ScoreKey | None, limit: int
) -> list[ActorMatch]:
    """Actors with a name or alias like `query`, best match first (then by id).

    `search_names %> query` (pg_trgm's word similarity, above the transaction's threshold) is
    served by the trigram GIN index: the query is compared with the best-matching stretch of
    the names, so a partial name or a typo in one word still matches.
    """
    params = _Params()
    text = params(query)
    score = f"word_similarity({text}, a.search_names)"
    resume = ""
    if after is not None:
        last_score, last_id = params(after.score), params(after.id)
        resume = (
            f" AND ({score} < {last_score}::real"
            f" OR ({score} = {last_score}::real AND a.id > {last_id}))"
        )
    rows = await connection.fetch(
        f"SELECT {_ACTOR_COLUMNS}, {score} AS score FROM actors a"
        f" WHERE a.search_names %> {text}{resume}"
        f" ORDER BY score DESC, a.id LIMIT {params(limit)}",
        *params.values,
    )
    return [ActorMatch(_actor(row), row["score"]) for row in rows]


# --- timelines -----------------------------------------------------------------------------------


async def actor_timeline(
    connection: asyncpg.Connection,
    actor_id: str,
    *,
    interval: str,
    topic_id: str | None,
    stated_after: datetime | None,
    stated_before: datetime | None,
    sample_size: int,
) -> list[TimelineBucket]:
    """An actor's active claims counted per `interval` (day, week, month, year) in UTC.

    One pass over the actor's claims counts each bucket; then, per bucket, the newest
    `sample_size` claims are read backwards from the (actor, stated_at, id) index. Empty buckets
    do not appear.
    """
    params = _Params()
    filters = ClaimFilters(
        actor_id=actor_id, topic_id=topic_id, stated_after=stated_after, stated_before=stated_before
    )
    where = " AND ".join(
        _filter_conditions(filters, params, key=("c.stated_at", "c.id"), topic_driven=False)
    )
    unit = params(interval)
    rows = await connection.fetch(
        f"""
        SELECT b.bucket, b.claim_count, {_CLAIM_COLUMNS}
        FROM (
            SELECT date_trunc({unit}, c.stated_at, 'UTC') AS bucket, count(*) AS claim_count
            FROM claims c
            WHERE {where}
            GROUP BY 1
        ) b
        CROSS JOIN LATERAL (
            SELECT {_CLAIM_COLUMNS}
            FROM claims c
            WHERE {where} AND c.stated_at >= b.bucket
                AND c.stated_at < (b.bucket AT TIME ZONE 'UTC' + ('1 ' || {unit})::interval)
                    AT TIME ZONE 'UTC'
            ORDER BY c.stated_at DESC, c.id DESC
            LIMIT {params(sample_size)}
        ) c
        ORDER BY b.bucket, c.stated_at DESC, c.id DESC
        """,
        *params.values,
    )
    buckets: list[TimelineBucket] = []
    samples: list[ClaimRow] = []
    for index, row in enumerate(rows):
        samples.append(_claim(row))
        if index + 1 == len(rows) or rows[index + 1]["bucket"] != row["bucket"]:
            buckets.append(TimelineBucket(row["bucket"], row["claim_count"], tuple(samples)))
            samples = []
    return buckets


# --- topics --------------------------------------------------------------------------------------

_TOPIC_COLUMNS: Final = "t.id, t.display_name, t.parent_id, t.claim_count"


def _topic(row: asyncpg.Record) -> TopicRow:
    return TopicRow(
        id=row["id"],
        display_name=row["display_name"],
        parent_id=row["parent_id"],
        claim_count=row["claim_count"],
    )


async def get_topic(connection: asyncpg.Connection, topic_id: str) -> TopicRow | None:
    """One topic by id."""
    row = await connection.fetchrow(
        f"SELECT {_TOPIC_COLUMNS} FROM topics t WHERE t.id = $1", topic_id
    )
    return None if row is None else _topic(row)


async def list_topics(
    connection: asyncpg.Connection, *, parent_id: str | None, after: str | None, limit: int
) -> list[TopicRow]:
    """Topics in id order, only the children of `parent_id` if given, after `after` if given."""
    params = _Params()
    conditions = []
    if parent_id is not None:
        conditions.append(f"t.parent_id = {params(parent_id)}")
    if after is not None:
        conditions.append(f"t.id > {params(after)}")
    where = " AND ".join(conditions) or "true"
    rows = await connection.fetch(
        f"SELECT {_TOPIC_COLUMNS} FROM topics t WHERE {where} ORDER BY t.id LIMIT {params(limit)}",
        *params.values,
    )
    return [_topic(row) for row in rows]
