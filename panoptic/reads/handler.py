"""Read logic: each call in one read-only transaction bounded by the caller's deadline.

The handler turns checked request values into queries, keyset positions into page tokens and
back, and database failures into refusals (`panoptic.core.refusals`). It never sees protobuf;
the SQL is in `queries`. GetClaim, the hot path, is the exception to one transaction per call:
concurrent GetClaims share one statement (see `batching`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import asyncpg

from panoptic.core.db import KeptConnection, database_refusals
from panoptic.core.refusals import DeadlineExceeded, InvalidArgument, NotFound
from panoptic.core.replicas import ReadRouter, Server, confirm_replayed
from panoptic.model.claims import ClaimRow
from panoptic.reads import metrics, queries
from panoptic.reads.batching import KeyedBatcher
from panoptic.reads.domain import (
    ClaimListing,
    ClaimSearch,
    ClaimView,
    Page,
    PageRequest,
    Referents,
    TimelineRequest,
)
from panoptic.reads.paging import InvalidPageToken, PageTokenCodec, Scalar
from panoptic.reads.queries import (
    ActorRow,
    ClaimFilters,
    ClaimKey,
    RevisionRow,
    ScoreKey,
    SearchHit,
    TimelineBucket,
    TopicRow,
)

T = TypeVar("T")

DEFAULT_STATEMENT_TIMEOUT: Final = 10.0
# Relevance is ranked among at most this many of the newest matches (see queries.search_claims):
# the cost of a word found in half the claims grows with it, not with the table
# (docs/performance.md#the-search-window).
DEFAULT_SEARCH_WINDOW: Final = 2_000
# pg_trgm word similarity from which a name matches a ListActors query: "jon smiht" scores 0.38
# against "John Smith", "pembruk" 0.63 against "Pembrook"; weaker matches still come last.
DEFAULT_NAME_SIMILARITY: Final = 0.3
# GetClaim's shared lookups (see `batching`): one query at a time, for up to a thousand ids.
# While it runs, the calls arriving meanwhile queue for the next; with two in flight the second
# slot was nearly always free and batches stayed at one call, sharing nothing
# (docs/performance.md#getclaim-queries-in-flight).
CLAIM_QUERIES_IN_FLIGHT: Final = 1
CLAIM_BATCH_SIZE: Final = 1_000
# Below this much time left there is no point starting a read.
MIN_BUDGET_SECONDS: Final = 0.002

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


class RetrieverHandler:
    """Runs the RetrieverService's reads against the database: on the server `reads` chooses
    for each (a replica or the primary, `core.replicas`).

    Every read takes `must_see`, the log position of a consistency token, or None: a read that
    carries one is served only where the log has been replayed that far.
    """

    def __init__(
        self,
        reads: Callable[[], ReadRouter],
        tokens: PageTokenCodec,
        *,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        search_window: int = DEFAULT_SEARCH_WINDOW,
        name_similarity: float = DEFAULT_NAME_SIMILARITY,
    ) -> None:
        self._reads = reads
        self._tokens = tokens
        self._statement_timeout = statement_timeout
        self._search_window = search_window
        self._name_similarity = name_similarity
        # Concurrent GetClaims share queries: at most this many run at once, each for up to
        # `max_batch` ids, and calls arriving meanwhile wait for the next (see `batching`).
        self._claims = KeyedBatcher(
            self._fetch_claims, max_in_flight=CLAIM_QUERIES_IN_FLIGHT, max_batch=CLAIM_BATCH_SIZE
        )
        # One kept connection per server GetClaims are read from, made on first use.
        self._claims_connections: dict[str, KeptConnection] = {}

    # --- claims ----------------------------------------------------------------------------------

    async def get_claim(
        self, claim_id: str, time_left: float | None, must_see: int | None = None
    ) -> ClaimRow:
        """One claim, retracted or not."""
        timeout = self._timeout(time_left)
        if must_see is None:
            with database_refusals:
                claim = await self._claims.get(claim_id, timeout)
        else:
            # Not shared with other calls: the server must have replayed this call's position.
            claims = await self._read(
                lambda connection: queries.get_claims(connection, [claim_id]), time_left, must_see
            )
            claim = claims.get(claim_id)
        if claim is None:
            raise _claim_not_found(claim_id)
        return claim

    async def get_full_claim(
        self, claim_id: str, time_left: float | None, must_see: int | None = None
    ) -> tuple[ClaimRow, Referents]:
        """One claim, retracted or not, and the actor and topics it names (the FULL view).

        Not shared with other calls as `get_claim`'s are: the claim and its referents are read
        in one transaction, so that they agree, and the BASIC hot path stays as it is.
        """

        async def read(connection: asyncpg.Connection) -> tuple[ClaimRow, Referents]:
            claim = (await queries.get_claims(connection, [claim_id])).get(claim_id)
            if claim is None:
                raise _claim_not_found(claim_id)
            return claim, await _referents(connection, [claim])

        return await self._read(read, time_left, must_see)

    async def _fetch_claims(self, claim_ids: Sequence[str], timeout: float) -> dict[str, ClaimRow]:
        # One statement, its own transaction: read-only by the role's default, bounded by
        # `timeout` (asyncpg cancels it in the server), on a connection kept between batches.
        metrics.CLAIMS_PER_QUERY.observe(len(claim_ids))

        async def fetch(server: Server) -> dict[str, ClaimRow]:
            connection = self._claims_connections.get(server.name)
            if connection is None:
                connection = self._claims_connections[server.name] = KeptConnection(server.pool)
            return await queries.get_claims(connection, claim_ids, timeout)

        return await self._reads().run(fetch, None, timeout, count=len(claim_ids))

    async def list_claims(
        self, request: ClaimListing, time_left: float | None, must_see: int | None = None
    ) -> Page[ClaimRow]:
        """A page of claims matching the filters, in statement-time order."""
        binding = {**_filter_binding(request.filters), "descending": request.descending}
        after = None
        if request.page.token:
            after = self._open(request.page, "ListClaims", binding, _claim_key)

        async def read(connection: asyncpg.Connection) -> tuple[list[ClaimRow], Referents | None]:
            rows = await queries.list_claims(
                connection,
                request.filters,
                descending=request.descending,
                after=after,
                limit=request.page.size + 1,
            )
            if not rows:
                await _check_references(connection, request.filters)
            if request.view is not ClaimView.FULL:
                return rows, None
            return rows, await _referents(connection, rows[: request.page.size])

        rows, referents = await self._read(read, time_left, must_see)
        items, last = _split(rows, request.page.size)
        token = "" if last is None else self._issue("ListClaims", binding, _claim_position(last))
        return Page(items, token, referents)

    async def search_claims(
        self, request: ClaimSearch, time_left: float | None, must_see: int | None = None
    ) -> Page[SearchHit]:
        """A page of claims matching a text query, most relevant first."""
        binding = {**_filter_binding(request.filters), "query": request.query}
        floor: ClaimKey | None = None
        after: ScoreKey | None = None
        if request.page.token:
            floor, after = self._open(request.page, "SearchClaims", binding, _search_position)

        async def read(
            connection: asyncpg.Connection,
        ) -> tuple[queries.SearchPage, Referents | None]:
            page = await queries.search_claims(
                connection,
                request.query,
                request.filters,
                window=self._search_window,
                floor=floor,
                after=after,
                limit=request.page.size + 1,
            )
            if not page.hits:
                await _check_references(connection, request.filters)
            if request.view is not ClaimView.FULL:
                return page, None
            shown = [hit.claim for hit in page.hits[: request.page.size]]
            return page, await _referents(connection, shown)

        page, referents = await self._read(read, time_left, must_see, custom_plans=True)
        items, last = _split(page.hits, request.page.size)
        token = ""
        if last is not None and page.floor is not None:
            position = [last.score, last.claim.id, *_claim_position(page.floor)]
            token = self._issue("SearchClaims", binding, position)
        return Page(items, token, referents)

    async def list_revisions(
        self,
        claim_id: str,
        page: PageRequest,
        time_left: float | None,
        must_see: int | None = None,
    ) -> Page[RevisionRow]:
        """A page of a claim's revisions, oldest first."""
        binding: dict[str, Scalar] = {"claimId": claim_id}
        after = 0
        if page.token:
            after = self._open(page, "ListClaimRevisions", binding, _revision_position)

        async def read(connection: asyncpg.Connection) -> list[RevisionRow]:
            rows = await queries.list_revisions(
                connection, claim_id, after=after, limit=page.size + 1
            )
            if not rows and not await queries.claim_exists(connection, claim_id):
                raise _claim_not_found(claim_id)
            return rows

        items, last = _split(await self._read(read, time_left, must_see), page.size)
        token = "" if last is None else self._issue("ListClaimRevisions", binding, [last.revision])
        return Page(items, token)

    # --- actors ----------------------------------------------------------------------------------

    async def get_actor(
        self, actor_id: str, time_left: float | None, must_see: int | None = None
    ) -> ActorRow:
        """One actor."""
        actor = await self._read(
            lambda connection: queries.get_actor(connection, actor_id), time_left, must_see
        )
        if actor is None:
            raise _actor_not_found(actor_id)
        return actor

    async def batch_get_actors(
        self, actor_ids: Sequence[str], time_left: float | None, must_see: int | None = None
    ) -> list[ActorRow]:
        """Actors by id in the order asked, repeats included; NOT_FOUND for the first missing."""
        found = await self._read(
            lambda connection: queries.get_actors(connection, actor_ids), time_left, must_see
        )
        return _in_order(found, actor_ids, _actor_not_found)

    async def list_actors(
        self,
        query: str | None,
        page: PageRequest,
        time_left: float | None,
        must_see: int | None = None,
    ) -> Page[ActorRow]:
        """A page of actors: by id, or by how well their names match `query`."""
        binding: dict[str, Scalar] = {"query": query}
        if query is None:
            after_id = self._open(page, "ListActors", binding, _id_position) if page.token else None
            actors = await self._read(
                lambda connection: queries.list_actors(
                    connection, after=after_id, limit=page.size + 1
                ),
                time_left,
                must_see,
            )
            items, last = _split(actors, page.size)
            token = "" if last is None else self._issue("ListActors", binding, [last.id])
            return Page(items, token)

        after = self._open(page, "ListActors", binding, _score_position) if page.token else None
        matches = await self._read(
            lambda connection: queries.search_actors(
                connection, query, after=after, limit=page.size + 1
            ),
            time_left,
            must_see,
            word_similarity_threshold=self._name_similarity,
        )
        found, last_match = _split(matches, page.size)
        token = ""
        if last_match is not None:
            position: list[Scalar] = [last_match.score, last_match.actor.id]
            token = self._issue("ListActors", binding, position)
        return Page([match.actor for match in found], token)

    async def actor_timeline(
        self, request: TimelineRequest, time_left: float | None, must_see: int | None = None
    ) -> list[TimelineBucket]:
        """An actor's active claims per period, oldest period first, empty ones left out."""

        async def read(connection: asyncpg.Connection) -> list[TimelineBucket]:
            buckets = await queries.actor_timeline(
                connection,
                request.actor_id,
                interval=request.interval.value,
                topic_id=request.topic_id,
                stated_after=request.stated_after,
                stated_before=request.stated_before,
                sample_size=request.sample_size,
            )
            if not buckets:
                await _check_references(
                    connection, ClaimFilters(actor_id=request.actor_id, topic_id=request.topic_id)
                )
            return buckets

        return await self._read(read, time_left, must_see)

    # --- topics ----------------------------------------------------------------------------------

    async def get_topic(
        self, topic_id: str, time_left: float | None, must_see: int | None = None
    ) -> TopicRow:
        """One topic."""
        topic = await self._read(
            lambda connection: queries.get_topic(connection, topic_id), time_left, must_see
        )
        if topic is None:
            raise _topic_not_found(topic_id)
        return topic

    async def batch_get_topics(
        self, topic_ids: Sequence[str], time_left: float | None, must_see: int | None = None
    ) -> list[TopicRow]:
        """Topics by id in the order asked, repeats included; NOT_FOUND for the first missing."""
        found = await self._read(
            lambda connection: queries.get_topics(connection, topic_ids), time_left, must_see
        )
        return _in_order(found, topic_ids, _topic_not_found)

    async def list_topics(
        self,
        parent_id: str | None,
        page: PageRequest,
        time_left: float | None,
        must_see: int | None = None,
    ) -> Page[TopicRow]:
        """A page of topics by id, only the children of `parent_id` if given."""
        binding: dict[str, Scalar] = {"parentId": parent_id}
        after = self._open(page, "ListTopics", binding, _id_position) if page.token else None

        async def read(connection: asyncpg.Connection) -> list[TopicRow]:
            topics = await queries.list_topics(
                connection, parent_id=parent_id, after=after, limit=page.size + 1
            )
            if not topics and parent_id is not None:
                await _check_references(connection, ClaimFilters(topic_id=parent_id))
            return topics

        items, last = _split(await self._read(read, time_left, must_see), page.size)
        token = "" if last is None else self._issue("ListTopics", binding, [last.id])
        return Page(items, token)

    # --- plumbing --------------------------------------------------------------------------------

    async def _read(
        self,
        read: Callable[[asyncpg.Connection], Awaitable[T]],
        time_left: float | None,
        must_see: int | None,
        **options: Any,
    ) -> T:
        """`read` in one read-only transaction on the server chosen for it, within the deadline
        (`options` go to `queries.reading`); a replica that fails it hands it to the next."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout(time_left)

        async def on(server: Server) -> T:
            with database_refusals:
                timeout = self._timeout(deadline - loop.time())
                async with queries.reading(server.pool(), timeout, **options) as connection:
                    await confirm_replayed(connection, server, must_see)
                    return await read(connection)

        return await self._reads().run(on, must_see, deadline - loop.time())

    def _timeout(self, time_left: float | None) -> float:
        """Seconds a read may take: what is left of the deadline, at most the configured cap."""
        if time_left is None:
            return self._statement_timeout
        if time_left < MIN_BUDGET_SECONDS:
            raise DeadlineExceeded()
        return min(time_left, self._statement_timeout)

    def _issue(self, method: str, binding: Mapping[str, Scalar], position: Sequence[Scalar]) -> str:
        return self._tokens.issue(method, binding, position)

    def _open(
        self,
        page: PageRequest,
        method: str,
        binding: Mapping[str, Scalar],
        position: Callable[[list[Scalar]], T],
    ) -> T:
        """The keyset position in a page token; INVALID_ARGUMENT when it cannot be used here."""
        try:
            return position(self._tokens.open(page.token, method, binding))
        except (InvalidPageToken, TypeError, ValueError, OverflowError):
            raise InvalidArgument(
                [
                    (
                        "pageToken",
                        "is not a token this service issued for this request's filters;"
                        " repeat the call with the same filters and the nextPageToken of the"
                        " previous page, or leave it empty for the first page",
                    )
                ],
                "INVALID_PAGE_TOKEN",
            ) from None


async def _check_references(connection: asyncpg.Connection, filters: ClaimFilters) -> None:
    """NOT_FOUND when the actor or topic a request names does not exist."""
    if filters.actor_id is None and filters.topic_id is None:
        return
    actor_missing, topic_missing = await queries.missing_references(
        connection, filters.actor_id, filters.topic_id
    )
    if actor_missing:
        raise _actor_not_found(filters.actor_id or "")
    if topic_missing:
        raise _topic_not_found(filters.topic_id or "")


async def _referents(connection: asyncpg.Connection, claims: Sequence[ClaimRow]) -> Referents:
    """The actors and topics `claims` name: two statements for a page, however many claims."""
    actors = await queries.get_actors(connection, [claim.actor_id for claim in claims])
    topics = await queries.get_topics(
        connection, [topic_id for claim in claims for topic_id in claim.topic_ids]
    )
    return Referents(actors, topics)


def _in_order(
    found: Mapping[str, T], ids: Sequence[str], missing: Callable[[str], NotFound]
) -> list[T]:
    """What was found for each id, in the order of `ids`; `missing(id)` for the first not found
    (AIP-231: a batch get succeeds or fails whole)."""
    for wanted in ids:
        if wanted not in found:
            raise missing(wanted)
    return [found[wanted] for wanted in ids]


def _split(rows: list[T], size: int) -> tuple[list[T], T | None]:
    """The page's rows, and its last row when another page follows (rows holds size + 1)."""
    if len(rows) > size:
        return rows[:size], rows[size - 1]
    return rows, None


def _filter_binding(filters: ClaimFilters) -> dict[str, Scalar]:
    """The filters as a page token binds them."""
    return {
        "actorId": filters.actor_id,
        "topicId": filters.topic_id,
        "statedAfter": _micros(filters.stated_after) if filters.stated_after else None,
        "statedBefore": _micros(filters.stated_before) if filters.stated_before else None,
        "language": filters.language,
        "showRetracted": filters.show_retracted,
    }


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: Scalar) -> datetime:
    if not isinstance(micros, int) or isinstance(micros, bool):
        raise TypeError("not a time")
    return _EPOCH + micros * _MICROSECOND


def _text(value: Scalar) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _number(value: Scalar) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError("not a number")
    return float(value)


def _claim_position(key: ClaimRow | ClaimKey) -> list[Scalar]:
    return [_micros(key.stated_at), key.id]


def _claim_key(position: list[Scalar]) -> ClaimKey:
    stated_at, claim_id = position
    return ClaimKey(_moment(stated_at), _text(claim_id))


def _search_position(position: list[Scalar]) -> tuple[ClaimKey, ScoreKey]:
    score, claim_id, floor_stated_at, floor_id = position
    return (
        ClaimKey(_moment(floor_stated_at), _text(floor_id)),
        ScoreKey(_number(score), _text(claim_id)),
    )


def _score_position(position: list[Scalar]) -> ScoreKey:
    score, actor_id = position
    return ScoreKey(_number(score), _text(actor_id))


def _revision_position(position: list[Scalar]) -> int:
    (revision,) = position
    if not isinstance(revision, int) or isinstance(revision, bool):
        raise TypeError("not a revision")
    return revision


def _id_position(position: list[Scalar]) -> str:
    (last_id,) = position
    return _text(last_id)


def _claim_not_found(claim_id: str) -> NotFound:
    return NotFound(f"claim {claim_id!r} does not exist", "CLAIM_NOT_FOUND", {"claimId": claim_id})


def _actor_not_found(actor_id: str) -> NotFound:
    return NotFound(f"actor {actor_id!r} does not exist", "ACTOR_NOT_FOUND", {"actorId": actor_id})


def _topic_not_found(topic_id: str) -> NotFound:
    return NotFound(f"topic {topic_id!r} does not exist", "TOPIC_NOT_FOUND", {"topicId": topic_id})
