"""The indexer's values: what a batch asks for and what indexing did, free of protobuf and SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from panoptic.core.refusals import FailedPrecondition, InvalidArgument, NotFound
from panoptic.model.claims import ClaimContent, ClaimState


class Change(StrEnum):
    """What a revision records; stored by these names."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    RETRACTED = "RETRACTED"
    RESTORED = "RESTORED"


class Outcome(StrEnum):
    """What indexing did to one claim."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ActorRecord:
    """An actor as a pipeline sends it."""

    id: str
    display_name: str
    aliases: tuple[str, ...]
    kind: str
    description: str


@dataclass(frozen=True)
class TopicRecord:
    """A topic as a pipeline sends it."""

    id: str
    display_name: str
    parent_id: str | None


@dataclass(frozen=True)
class IndexBatch:
    """One batch: actors and topics to upsert, then claims to index, all or nothing."""

    request_id: str
    actors: tuple[ActorRecord, ...]
    topics: tuple[TopicRecord, ...]
    claims: tuple[ClaimContent, ...]


@dataclass(frozen=True)
class References:
    """The actors and topics a batch names, by position: what its claims and topics refer to
    must exist in the batch or in the database. None stands for an id too malformed to look up.
    """

    actor_ids: frozenset[str]
    """The actors the batch itself defines."""
    topics: tuple[tuple[str | None, str | None], ...]
    """Each topic of the batch: (id, parent id)."""
    claims: tuple[tuple[str | None, tuple[str | None, ...]], ...]
    """Each claim of the batch: (actor id, topic ids)."""

    @classmethod
    def of(cls, batch: IndexBatch) -> References:
        """What a valid batch names."""
        return cls(
            frozenset(actor.id for actor in batch.actors),
            tuple((topic.id, topic.parent_id) for topic in batch.topics),
            tuple((claim.actor_id, claim.topic_ids) for claim in batch.claims),
        )


@dataclass(frozen=True)
class CurrentClaim:
    """The stored current state of a claim, as far as indexing needs it."""

    id: str
    revision: int
    content_hash: bytes
    state: ClaimState
    actor_id: str
    topic_ids: tuple[str, ...]
    stated_at: datetime


@dataclass(frozen=True)
class ClaimResult:
    """What happened to one claim of a batch."""

    claim_id: str
    revision: int
    outcome: Outcome
    change: Change | None = None
    """The revision written, if any."""


@dataclass(frozen=True)
class BatchResult:
    """What indexing one batch did."""

    claims: tuple[ClaimResult, ...]
    actors_upserted: int = 0
    topics_upserted: int = 0

    def count(self, outcome: Outcome) -> int:
        """How many claims had this outcome."""
        return sum(1 for claim in self.claims if claim.outcome is outcome)


@dataclass(frozen=True)
class Replay:
    """A request id seen before with the same payload: its first response, as stored."""

    response: bytes


@dataclass(frozen=True)
class RetractRequest:
    """A request to retract one claim."""

    request_id: str
    claim_id: str
    reason: str


@dataclass(frozen=True)
class Counted:
    """What the claim counts see of a claim: who, on what, on which day, and whether active."""

    actor_id: str
    topic_ids: tuple[str, ...]
    stated_at: datetime
    active: bool

    @classmethod
    def of(cls, claim: ClaimContent | CurrentClaim) -> Counted:
        """A claim, new or stored, as the counts see it."""
        return cls(
            claim.actor_id, claim.topic_ids, claim.stated_at, claim.state is ClaimState.ACTIVE
        )

    @property
    def day(self) -> date:
        """The UTC day of its stated_at, as the day counts key it."""
        return self.stated_at.astimezone(UTC).date()


@dataclass
class CountDeltas:
    """Changes one batch makes to the counts of ACTIVE claims: per actor, per topic, and per
    actor (and topic) and day."""

    actors: dict[str, int] = field(default_factory=dict)
    topics: dict[str, int] = field(default_factory=dict)
    actor_days: dict[tuple[str, date], int] = field(default_factory=dict)
    actor_topic_days: dict[tuple[str, str, date], int] = field(default_factory=dict)

    def add(self, claim: Counted, sign: int) -> None:
        """Counts (sign=1) or uncounts (sign=-1) one active claim."""
        day = claim.day
        self.actors[claim.actor_id] = self.actors.get(claim.actor_id, 0) + sign
        actor_day = (claim.actor_id, day)
        self.actor_days[actor_day] = self.actor_days.get(actor_day, 0) + sign
        for topic_id in claim.topic_ids:
            self.topics[topic_id] = self.topics.get(topic_id, 0) + sign
            key = (claim.actor_id, topic_id, day)
            self.actor_topic_days[key] = self.actor_topic_days.get(key, 0) + sign

    def move(self, before: Counted | None, after: Counted) -> None:
        """Accounts for a claim going from `before` (None: it is new) to `after`."""
        if before is not None and before.active:
            self.add(before, -1)
        if after.active:
            self.add(after, 1)


class RequestIdReused(FailedPrecondition):
    """A request id already used for a different payload (AIP-155)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"request id {request_id!r} was already used for a different request; "
            "use a new request id for new content",
            "REQUEST_ID_REUSED",
            {"requestId": request_id},
        )


class UnknownReferences(InvalidArgument):
    """Claims or topics that name actors or topics that exist nowhere, or topic cycles."""

    def __init__(self, violations: list[tuple[str, str]], request_id: str) -> None:
        super().__init__(violations, "UNKNOWN_REFERENCE", {"requestId": request_id})


class ClaimNotFound(NotFound):
    """A retraction names a claim that does not exist."""

    def __init__(self, claim_id: str) -> None:
        super().__init__(
            f"claim {claim_id!r} does not exist", "CLAIM_NOT_FOUND", {"claimId": claim_id}
        )
