"""The retriever's SQL: every read it makes, as plain asyncpg queries returning frozen values.

Each function takes a connection inside a read-only transaction opened by `reading`, which also
bounds every statement by the caller's deadline; `get_claims`, a single statement, runs as its
own transaction instead (read-only by the role's default), bounded by its `timeout`. Statements
whose shape depends on the filters are assembled from the fixed fragments below, one prepared
statement per combination, so a cached generic plan never has to serve a filter it was not
planned for; values always travel as `$n` parameters.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, Final, Protocol, TypeVar

import asyncpg

from panoptic.core.timestamps import readable_sql
from panoptic.model.claims import TIME_COLUMNS, ClaimRow, claim_columns, claim_from_record

T = TypeVar("T")

# --- values --------------------------------------------------------------------------------------


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


# --- claims --------------------------------------------------------------------------------------


def _readable(column: str) -> str:
    """A time column as read: any value its type allows comes back as a datetime (see
    `readable_sql`), so that no stored row can fail a read; named as the column."""
    return f"{readable_sql(column)} AS {column.rpartition('.')[2]}"


# A claim's columns as every read selects them, first or from a known position (see
# `claim_from_record`).
_CLAIM_COLUMNS: Final = claim_columns(
    lambda name: _readable(f"c.{name}") if name in TIME_COLUMNS else f"c.{name}"
)


class RowSource(Protocol):
    """Runs a statement for its rows: an asyncpg connection, or GetClaim's `KeptConnection`."""

    async def fetch(
        self, query: str, *args: Any, timeout: float | None = None
    ) -> list[asyncpg.Record]: ...


@functools.cache
def _by_ids(select: str, count: int) -> str:
    """`select`, which ends in an id column, for `count` ids at once (`IN ($1)` is planned as
    `= $1`)."""
    placeholders = ", ".join(f"${number}" for number in range(1, count + 1))
    return f"{select} IN ({placeholders})"


def _padded(ids: Sequence[str]) -> list[str]:
    """The ids, the last repeated to make a power of two of them (see `get_claims`)."""
    count = 1 << (len(ids) - 1).bit_length()
    return [*ids, *[ids[-1]] * (count - len(ids))]


async def _fetch_by_ids(
    connection: RowSource,
    select: str,
    ids: Sequence[str],
    build: Callable[[asyncpg.Record], T],
) -> list[T]:
    """The rows of `select` (see `_by_ids`) for the distinct `ids`, each built into a value."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        return []
    padded = _padded(unique)
    return [build(row) for row in await connection.fetch(_by_ids(select, len(padded)), *padded)]


_CLAIMS_BY_ID: Final = f"SELECT {_CLAIM_COLUMNS} FROM claims c WHERE c.id"


async def get_claims(
    connection: RowSource, claim_ids: Sequence[str], timeout: float | None = None
) -> dict[str, ClaimRow]:
    """Claims by id, retracted or not; ids with no claim are absent from the result.

    The ids go to a statement with a power of two of parameters, the last id repeated to fill
    it, so that a handful of statements serve every count and PostgreSQL plans each once.
    `= ANY($1)` of an array was planned anew on every run, its generic plan being estimated for
    an array of unknown length, at half as much again of the server's CPU or more
    (docs/performance.md#claims-by-id-a-power-of-two-of-parameters).
    """
    if not claim_ids:
        return {}
    padded = _padded(claim_ids)
    rows = await connection.fetch(_by_ids(_CLAIMS_BY_ID, len(padded)), *padded, timeout=timeout)
    return {claim.id: claim for claim in map(claim_from_record, rows)}


class _Params:
    """Collects query values and hands out their `$n` placeholders."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _filter_conditions(
    filters: ClaimFilters, params: _Params, *, key: tuple[str, str], by_links: bool
) -> list[str]:
    """The WHERE conditions of `filters` on claims `c`; `key` names the statement-time column
    to bound (the driving index's). A query `by_links` has its topic and actor conditions on
    the links already (see `_claim_source`)."""
    conditions = []
    if filters.actor_id is not None and not by_links:
        conditions.append(f"c.actor_id = {params(filters.actor_id)}")
    if filters.topic_id is not None and not by_links:
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


@dataclass(frozen=True)
class _Source:
    """Where a query's claims come from: FROM, the conditions so far, and the keyset columns
    (statement time, id) of the index that yields them in order."""

    tables: str
    conditions: list[str]
    key: tuple[str, str]


def _claim_source(filters: ClaimFilters, params: _Params) -> _Source:
    """Claims matching `filters`, from the index that bounds the walk to a page's rows.

    With a topic, the topic's current links drive: one range of the (topic, actor, stated_at)
    index with an actor too, of the (topic, stated_at) one without; each link joined to its
    claim by primary key. Otherwise the claims' own (actor, stated_at) or (stated_at) index.
    """
    if filters.topic_id is None:
        key = ("c.stated_at", "c.id")
        conditions = _filter_conditions(filters, params, key=key, by_links=False)
        return _Source("claims c", conditions, key)
    key = ("l.stated_at", "l.claim_id")
    conditions = [f"l.topic_id = {params(filters.topic_id)}", "l.is_current"]
    if filters.actor_id is not None:
        conditions.append(f"l.actor_id = {params(filters.actor_id)}")
    conditions += _filter_conditions(filters, params, key=key, by_links=True)
    return _Source("claim_topics l JOIN claims c ON c.id = l.claim_id", conditions, key)


async def list_claims(
    connection: asyncpg.Connection,
    filters: ClaimFilters,
    *,
    descending: bool,
    after: ClaimKey | None,
    limit: int,
) -> list[ClaimRow]:
    """Claims matching `filters` in statement-time order (then id), after `after` if given."""
    params = _Params()
    source = _claim_source(filters, params)
    key, conditions = source.key, source.conditions
    direction = "DESC" if descending else "ASC"
    if after is not None:
        operator = "<" if descending else ">"
        conditions.append(
            f"({key[0]}, {key[1]}) {operator} ({params(after.stated_at)}, {params(after.id)})"
        )
    where = " AND ".join(conditions) or "true"
    rows = await connection.fetch(
        f"SELECT {_CLAIM_COLUMNS} FROM {source.tables} WHERE {where}"
        f" ORDER BY {key[0]} {direction}, {key[1]} {direction} LIMIT {params(limit)}",
        *params.values,
    )
    return [claim_from_record(row) for row in rows]


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
    matches, not all of them. The first page finds them the cheapest of three ways (see
    `_cheapest_finding`): for a very common word, by walking the statement-time index backwards
    and testing each claim until `window` match; for a rare one, by gathering every match from
    the text index and keeping the newest; in between, by gathering matches month by month or
    year by year, newest first, until `window` are found (the text index keys each claim's words
    with its month and year), so that older periods are never read. Full-text search with LIMIT
    otherwise grows with the number of matches.

    The first page records the oldest candidate as the `floor`; later pages rank exactly the
    matches at or after that floor, so claims added between pages cannot push earlier
    candidates out (no gaps), and a page resumes strictly after the last (score, id) returned
    (no duplicates). The query is parsed once, as a function in FROM, and excerpts are made
    only for the returned page.
    """
    params = _Params()
    text = params(query)
    conditions = ["c.search_vector @@ q"]
    conditions += _filter_conditions(filters, params, key=("c.stated_at", "c.id"), by_links=False)
    if floor is not None:
        finding = _Finding.AFTER_FLOOR
    else:
        finding = await _cheapest_finding(connection, query, filters, window)
    found = _candidates(finding, text, conditions, filters, params, window=window, floor=floor)
    rows = await connection.fetch(
        _ranked_page(found, text, params, after=after, limit=limit), *params.values
    )
    hits = [
        SearchHit(claim_from_record(row), row["score"], _highlight_html(row["headline"]))
        for row in rows
    ]
    if floor is None and rows:
        floor = ClaimKey(rows[0]["floor_stated_at"], rows[0]["floor_id"])
    return SearchPage(hits, floor)


def _candidates(
    finding: _Finding,
    text: str,
    conditions: list[str],
    filters: ClaimFilters,
    params: _Params,
    *,
    window: int,
    floor: ClaimKey | None,
) -> str:
    """SQL: the candidates a search ranks (id, stated_at, search_vector), found as `finding`
    says, from the claims meeting `conditions` (the text match first)."""
    if finding is _Finding.WALK:
        # `IS TRUE` hides the text condition from the text index: only the walk is left.
        conditions[0] = "(c.search_vector @@ q) IS TRUE"
        return f"""
            SELECT c.id, c.stated_at, c.search_vector
            FROM websearch_to_tsquery('english', {text}) AS q, claims c
            WHERE {" AND ".join(conditions)}
            ORDER BY c.stated_at DESC, c.id DESC LIMIT {params(window)}"""
    if finding.period is not None:
        return _gathered_by_period(finding.period, text, conditions, filters, params, window)
    bound = ""
    if floor is not None:
        conditions.append(f"(c.stated_at, c.id) >= ({params(floor.stated_at)}, {params(floor.id)})")
    else:
        # An order no index yields: the matches are gathered, then sorted.
        bound = (
            f"ORDER BY c.stated_at + interval '0 seconds' DESC, c.id DESC LIMIT {params(window)}"
        )
    return f"""
            SELECT c.id, c.stated_at, c.search_vector
            FROM websearch_to_tsquery('english', {text}) AS q, claims c
            WHERE {" AND ".join(conditions)}
            {bound}"""


def _ranked_page(
    found: str, text: str, params: _Params, *, after: ScoreKey | None, limit: int
) -> str:
    """SQL: the `found` candidates ranked, the page after `after`, each claim with its score and
    excerpt, and the oldest candidate (the floor) on every row."""
    resume = ""
    if after is not None:
        score, last_id = params(after.score), params(after.id)
        resume = f"WHERE s.score < {score}::real OR (s.score = {score}::real AND s.id > {last_id})"
    return f"""
        WITH candidates AS MATERIALIZED ({found}
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
            {readable_sql("f.stated_at")} AS floor_stated_at, f.id AS floor_id
        FROM page p
        JOIN claims c ON c.id = p.id
        CROSS JOIN websearch_to_tsquery('english', {text}) AS q
        CROSS JOIN (
            SELECT k.stated_at, k.id FROM candidates k ORDER BY k.stated_at, k.id LIMIT 1
        ) f
        ORDER BY p.score DESC, p.id
        """


class _Finding(Enum):
    """How a search finds its candidates: the newest `window` matches, or those after a floor."""

    WALK = "walk"
    GATHER = "gather"
    GATHER_BY_YEAR = "gather by year"
    GATHER_BY_MONTH = "gather by month"
    AFTER_FLOOR = "after floor"

    @property
    def period(self) -> str | None:
        """The calendar period it gathers by, if it does."""
        return {"gather by year": "year", "gather by month": "month"}.get(self.value)


def _period_start(period: str, moment: str) -> str:
    """SQL: the start of the UTC calendar `period` (year, month) holding `moment`, exactly as
    the text index keys each claim beside its words (0005)."""
    return f"date_trunc('{period}', {moment} AT TIME ZONE 'UTC')"


def _gathered_by_period(
    period: str,
    text: str,
    conditions: list[str],
    filters: ClaimFilters,
    params: _Params,
    window: int,
) -> str:
    """The newest `window` claims meeting `conditions`, from the text index a period at a time.

    Each period's matches come from the index (words and period together), are sorted, and the
    periods run newest first until `window` rows are out: older periods are never read. They
    run from the newest claim's to the oldest's, within the filters' statement-time range.
    """
    newest = f"(SELECT {readable_sql('max(stated_at)')} FROM claims)"
    oldest = f"(SELECT {readable_sql('min(stated_at)')} FROM claims)"
    if filters.stated_before is not None:
        newest = f"least({newest}, {params(filters.stated_before)})"
    if filters.stated_after is not None:
        oldest = f"greatest({oldest}, {params(filters.stated_after)})"
    return f"""
            SELECT k.id, k.stated_at, k.search_vector
            FROM websearch_to_tsquery('english', {text}) AS q
            CROSS JOIN generate_series(
                {_period_start(period, newest)}, {_period_start(period, oldest)},
                interval '-1 {period}'
            ) AS p
            CROSS JOIN LATERAL (
                SELECT c.id, c.stated_at, c.search_vector
                FROM claims c
                WHERE {" AND ".join(conditions)} AND {_period_start(period, "c.stated_at")} = p
                -- An order no index yields: the period's matches are gathered, then sorted.
                ORDER BY c.stated_at + interval '0 seconds' DESC, c.id DESC
            ) k
            LIMIT {params(window)}"""


# The cost of each way, per row, in claims walked along the statement-time index, as measured:
# PostgreSQL's own cost model takes a walked row to be several times cheaper than it is, and so
# walks where gathering is cheaper (docs/performance.md#how-search-finds-its-matches).
# Gathering a match from the text index and sorting it:
_GATHERED_ROW_COST: Final = 1.3
# Probing the text index for one period's matches: a little per claim in the period, plus more
# per match of the words or per claim in the period, whichever are fewer.
_PROBE_COST_PER_CLAIM: Final = 0.0033
_PROBE_COST_PER_MATCH: Final = 0.047


async def _cheapest_finding(
    connection: asyncpg.Connection, query: str, filters: ClaimFilters, window: int
) -> _Finding:
    """The cheapest way to find the newest `window` matches, by PostgreSQL's own estimates
    (EXPLAIN, no execution) of the claims the filters keep (n) and the matches among them (m).

    Walking reads about window * n / m claims; gathering reads all m matches; gathering by
    period probes the newest periods until about `window` matches are out, assuming that the
    matches spread evenly over time.
    """
    params = _Params()
    kept = (
        " AND ".join(
            _filter_conditions(filters, params, key=("c.stated_at", "c.id"), by_links=False)
        )
        or "true"
    )
    kept_rows = await _estimated_rows(
        connection, f"SELECT FROM claims c WHERE {kept}", list(params.values)
    )
    text = params(query)
    matches = await _estimated_rows(
        connection,
        f"SELECT FROM websearch_to_tsquery('english', {text}) AS q, claims c"
        f" WHERE c.search_vector @@ q AND {kept}",
        params.values,
    )
    if matches <= window:
        return _Finding.GATHER
    span = await connection.fetchrow(
        f"SELECT {readable_sql('min(stated_at)')} AS oldest,"
        f" {readable_sql('max(stated_at)')} AS newest,"
        " (SELECT reltuples FROM pg_class WHERE oid = 'claims'::regclass) AS claims"
        " FROM claims"
    )
    if span is None or span["newest"] is None:
        return _Finding.GATHER
    newest = min(span["newest"], filters.stated_before or span["newest"]).astimezone(UTC)
    oldest = max(span["oldest"], filters.stated_after or span["oldest"]).astimezone(UTC)
    periods = {
        _Finding.GATHER_BY_YEAR: max(1, newest.year - oldest.year + 1),
        _Finding.GATHER_BY_MONTH: max(
            1, (newest.year - oldest.year) * 12 + newest.month - oldest.month + 1
        ),
    }
    claims = max(float(span["claims"]), kept_rows)
    return _cheapest(window, kept_rows, matches, claims=claims, periods=periods)


def _cheapest(
    window: int,
    kept_rows: float,
    matches: float,
    *,
    claims: float,
    periods: dict[_Finding, int],
) -> _Finding:
    """The way with the lowest estimated cost, for `matches` among `kept_rows` claims in a table
    of `claims`; `periods` holds how many years and months gathering by period would span."""
    costs = {
        _Finding.WALK: window * kept_rows / matches,
        _Finding.GATHER: _GATHERED_ROW_COST * matches,
    }
    for finding, count in periods.items():
        probes = min(count, math.ceil(window * count / matches))
        in_period = claims / count
        per_probe = _PROBE_COST_PER_CLAIM * in_period + _PROBE_COST_PER_MATCH * min(
            matches, in_period
        )
        gathered = min(matches, probes * matches / count)
        costs[finding] = probes * per_probe + _GATHERED_ROW_COST * gathered
    return min(costs, key=lambda finding: costs[finding])


async def _estimated_rows(connection: asyncpg.Connection, query: str, values: list[Any]) -> float:
    """The rows PostgreSQL expects `query` to return (the top plan node's estimate, which for a
    parallel plan's Gather is the total)."""
    plan = await connection.fetchval(f"EXPLAIN (FORMAT JSON) {query}", *values)
    return float(json.loads(plan)[0]["Plan"]["Plan Rows"])


# --- revisions -----------------------------------------------------------------------------------


# A revision's claim: the claim as that revision recorded it, created when the claim was and
# updated when the revision was recorded.
_REVISION_CLAIM_COLUMNS: Final = claim_columns(
    lambda name: {
        "id": "r.claim_id AS id",
        "create_time": _readable("c.create_time"),
        "update_time": f"{readable_sql('r.record_time')} AS update_time",
    }.get(name, _readable(f"r.{name}") if name in TIME_COLUMNS else f"r.{name}")
)


async def list_revisions(
    connection: asyncpg.Connection, claim_id: str, *, after: int, limit: int
) -> list[RevisionRow]:
    """A claim's revisions numbered above `after`, oldest first."""
    rows = await connection.fetch(
        f"SELECT r.change, {_readable('r.record_time')}, r.request_id, r.reason,"
        f" {_REVISION_CLAIM_COLUMNS}"
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
            claim=claim_from_record(row, 4),
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
    f" {_readable('a.create_time')}, {_readable('a.update_time')}"
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


async def get_actors(connection: RowSource, actor_ids: Sequence[str]) -> dict[str, ActorRow]:
    """Actors by id, in one statement however many (as `get_claims`); ids with no actor are
    absent from the result."""
    select = f"SELECT {_ACTOR_COLUMNS} FROM actors a WHERE a.id"
    return {actor.id: actor for actor in await _fetch_by_ids(connection, select, actor_ids, _actor)}


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

    Counts come from the per-day counts the indexer keeps (`actor_day_counts`, or
    `actor_topic_day_counts` with a topic), summed per bucket: the cost follows the span of
    days, not the number of claims. Only the part of a day that `stated_after` or
    `stated_before` cuts off is counted claim by claim (less than a day at each end). Then, per
    bucket, the newest `sample_size` claims are read backwards from an index (see
    `_claim_source`). Empty buckets do not appear.
    """
    params = _Params()
    unit = params(interval)
    filters = ClaimFilters(
        actor_id=actor_id, topic_id=topic_id, stated_after=stated_after, stated_before=stated_before
    )
    counted = _counted(unit, filters, _DaySplit.of(stated_after, stated_before), params)
    rows = await connection.fetch(
        _buckets_with_samples(unit, counted, filters, params, sample_size), *params.values
    )
    return _buckets(rows)


def _counted(unit: str, filters: ClaimFilters, days: _DaySplit, params: _Params) -> list[str]:
    """SQL: the statements whose rows (bucket, claims) add up to each bucket's count: whole days
    from the day counts, parts of days claim by claim."""
    counted = []
    if days.whole:
        table, keys = "actor_day_counts d", [f"d.actor_id = {params(filters.actor_id)}"]
        if filters.topic_id is not None:
            table = "actor_topic_day_counts d"
            keys.append(f"d.topic_id = {params(filters.topic_id)}")
        if days.first is not None:
            keys.append(f"d.day >= {params(days.first)}")
        if days.end is not None:
            keys.append(f"d.day < {params(days.end)}")
        counted.append(
            f"SELECT date_trunc({unit}, d.day::timestamp) AT TIME ZONE 'UTC' AS bucket,"
            f" d.claim_count AS claims FROM {table} WHERE {' AND '.join(keys)}"
        )
    for start, stop in days.parts:
        part = _claim_source(replace(filters, stated_after=start, stated_before=stop), params)
        counted.append(
            f"SELECT date_trunc({unit}, {part.key[0]}, 'UTC') AS bucket, 1::bigint AS claims"
            f" FROM {part.tables}"
            f" WHERE {' AND '.join(part.conditions)}"
        )
    return counted


def _buckets_with_samples(
    unit: str, counted: list[str], filters: ClaimFilters, params: _Params, sample_size: int
) -> str:
    """SQL: each non-empty bucket's start and count, on one row per sample: its newest
    `sample_size` claims within the filters, newest first."""
    sample = _claim_source(filters, params)
    key = sample.key
    sample_conditions = [
        *sample.conditions,
        f"{key[0]} >= b.bucket",
        f"{key[0]} < (b.bucket AT TIME ZONE 'UTC' + ('1 ' || {unit})::interval) AT TIME ZONE 'UTC'",
    ]
    return f"""
        SELECT {_readable("b.bucket")}, b.claim_count, {_CLAIM_COLUMNS}
        FROM (
            SELECT k.bucket, sum(k.claims) AS claim_count
            FROM ({" UNION ALL ".join(counted)}) k
            GROUP BY k.bucket
            HAVING sum(k.claims) > 0
        ) b
        CROSS JOIN LATERAL (
            SELECT {_CLAIM_COLUMNS}
            FROM {sample.tables}
            WHERE {" AND ".join(sample_conditions)}
            ORDER BY {key[0]} DESC, {key[1]} DESC
            LIMIT {params(sample_size)}
        ) c
        ORDER BY b.bucket, c.stated_at DESC, c.id DESC
        """


def _buckets(rows: list[asyncpg.Record]) -> list[TimelineBucket]:
    """The rows of `_buckets_with_samples`, one bucket per run of rows with the same start."""
    buckets: list[TimelineBucket] = []
    samples: list[ClaimRow] = []
    for index, row in enumerate(rows):
        samples.append(claim_from_record(row, 2))
        if index + 1 == len(rows) or rows[index + 1]["bucket"] != row["bucket"]:
            buckets.append(TimelineBucket(row["bucket"], int(row["claim_count"]), tuple(samples)))
            samples = []
    return buckets


@dataclass(frozen=True)
class _DaySplit:
    """A range of statement times as whole UTC days [first, end) and the parts of days at its
    ends, as [start, stop) ranges of times; None bounds are open."""

    first: date | None
    end: date | None
    parts: tuple[tuple[datetime | None, datetime | None], ...]

    @property
    def whole(self) -> bool:
        """Whether the range holds any whole day."""
        return self.first is None or self.end is None or self.first < self.end

    @classmethod
    def of(cls, after: datetime | None, before: datetime | None) -> _DaySplit:
        """The split of [after, before)."""
        first = None if after is None else _day_of(after) + timedelta(days=_cut(after))
        end = None if before is None else _day_of(before)
        if first is not None and end is not None and first >= end:
            return cls(first, end, ((after, before),))
        parts: list[tuple[datetime | None, datetime | None]] = []
        if after is not None and first is not None and _cut(after):
            parts.append((after, _midnight(first)))
        if before is not None and end is not None and _cut(before):
            parts.append((_midnight(end), before))
        return cls(first, end, tuple(parts))


def _day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _cut(moment: datetime) -> int:
    """1 if `moment` falls inside a UTC day rather than at its start, else 0."""
    return int(moment != _midnight(_day_of(moment)))


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


async def get_topics(connection: RowSource, topic_ids: Sequence[str]) -> dict[str, TopicRow]:
    """Topics by id, in one statement however many (as `get_claims`); ids with no topic are
    absent from the result."""
    select = f"SELECT {_TOPIC_COLUMNS} FROM topics t WHERE t.id"
    return {topic.id: topic for topic in await _fetch_by_ids(connection, select, topic_ids, _topic)}


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
