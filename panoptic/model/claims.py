"""A claim, defined once: its columns, its two values, and its message.

`ClaimRow` is what a claim IS, as stored (a claims row, or a revision's copy of one);
`ClaimContent` is what a request CARRIES, the part a pipeline decides: `ClaimRow`'s first twelve
columns. The SQL column lists, the row mapping and the API message all follow from `ClaimRow`'s
fields, so that adding a field touches the proto, a migration and these two definitions.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, NamedTuple

from panoptic.core.timestamps import timestamp_fields
from panoptic.v1 import resources_pb2


class ClaimState(StrEnum):
    """Whether a claim stands; stored by these names."""

    ACTIVE = "ACTIVE"
    RETRACTED = "RETRACTED"


class ClaimRow(NamedTuple):
    """A claim's current state (or, inside a revision, its state at that revision).

    A named tuple where the other values are frozen dataclasses: one is built for every claim
    read, and a named tuple, as immutable, is built in under half the time
    (docs/performance.md#claim-rows-as-named-tuples).
    """

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


# The columns a pipeline decides, `ClaimContent`'s fields: a change to any of them is a revision.
CONTENT_COLUMNS: Final = ClaimRow._fields[:12]
# The columns that hold times, which reads bring within what a datetime represents.
TIME_COLUMNS: Final = frozenset(("stated_at", "source_published_at", "create_time", "update_time"))
_WIDTH: Final = len(ClaimRow._fields)


@dataclass(frozen=True)
class ClaimContent:
    """Everything about a claim that a pipeline decides; a change to any of it is a revision."""

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
    state: ClaimState

    @classmethod
    def of(cls, claim: ClaimRow) -> ClaimContent:
        """The content of a stored claim."""
        values = {name: getattr(claim, name) for name in CONTENT_COLUMNS}
        values["state"] = ClaimState(claim.state)
        return cls(**values)

    @functools.cached_property
    def content_hash(self) -> bytes:
        """A digest of the content, equal for identical content (how "unchanged" is told)."""
        digest = hashlib.sha256()
        for part in (
            self.actor_id,
            "\x1f".join(self.topic_ids),
            self.text,
            self.stated_at.isoformat(),
            self.source_url,
            self.source_title,
            self.source_publisher,
            self.source_published_at.isoformat() if self.source_published_at else "",
            self.language,
            self.state.value,
        ):
            encoded = part.encode()
            digest.update(struct.pack(">I", len(encoded)))
            digest.update(encoded)
        digest.update(struct.pack(">d", self.confidence))
        return digest.digest()


def claim_columns(spell: Callable[[str], str], names: Sequence[str] = ClaimRow._fields) -> str:
    """A list of the claim's columns (all of `ClaimRow`'s, or `names`) in that order, each as
    `spell` writes it: a SELECT list that `claim_from_record` reads back, or a SET or VALUES list.
    """
    return ", ".join(spell(name) for name in names)


def claim_from_record(record: Any, start: int = 0) -> ClaimRow:
    """The claim in a row whose columns from `start` on are `claim_columns`'s.

    By position, not by name: a slice of an asyncpg record and one unpacking cost less than
    half of fifteen lookups by name, for every claim read.
    """
    claim_id, actor_id, topic_ids, *rest = record[start : start + _WIDTH]
    return ClaimRow(claim_id, actor_id, tuple(topic_ids), *rest)


_STATES: Final[dict[str, resources_pb2.ClaimState]] = {
    ClaimState.ACTIVE.value: resources_pb2.CLAIM_STATE_ACTIVE,
    ClaimState.RETRACTED.value: resources_pb2.CLAIM_STATE_RETRACTED,
}


def claim_message(claim: ClaimRow) -> resources_pb2.Claim:
    """A claim as the API shows it.

    Sub-messages go in as dicts, which protobuf builds in place; a message given instead is
    built, then copied (see `timestamp_fields`).
    """
    source: dict[str, object] = {
        "url": claim.source_url,
        "title": claim.source_title,
        "publisher": claim.source_publisher,
    }
    if claim.source_published_at is not None:
        source["published_at"] = timestamp_fields(claim.source_published_at)
    return resources_pb2.Claim(
        id=claim.id,
        actor_id=claim.actor_id,
        topic_ids=claim.topic_ids,
        text=claim.text,
        stated_at=timestamp_fields(claim.stated_at),
        source=source,
        language=claim.language,
        confidence=claim.confidence,
        state=_STATES[claim.state],
        revision=claim.revision,
        create_time=timestamp_fields(claim.create_time),
        update_time=timestamp_fields(claim.update_time),
    )
