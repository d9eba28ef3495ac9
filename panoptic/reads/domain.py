"""The read model's requests as plain values, free of protobuf and SQL.

Its refusals are core's (`panoptic.core.refusals`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Generic, TypeVar

from panoptic.core.refusals import InvalidArgument
from panoptic.reads.queries import ActorRow, ClaimFilters, TopicRow

T = TypeVar("T")


class Interval(StrEnum):
    """A timeline's bucket width, named as `date_trunc` takes it."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class ClaimView(Enum):
    """How much of each claim a read returns (AIP-157)."""

    BASIC = "basic"
    """The claim's own fields: its actor and topics by id."""
    FULL = "full"
    """The claim's own fields and the names of its actor and topics (`Referents`)."""


@dataclass(frozen=True)
class Referents:
    """The actors and topics some claims name, by id: what the FULL view embeds in them."""

    actors: Mapping[str, ActorRow]
    topics: Mapping[str, TopicRow]


@dataclass(frozen=True)
class PageRequest:
    """The page a List or Search call asks for: its effective size and the caller's token."""

    size: int
    token: str = ""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the token for the next one (empty on the last page)."""

    items: list[T]
    next_page_token: str = ""
    referents: Referents | None = None
    """For claims read in the FULL view: the actors and topics they name."""


@dataclass(frozen=True)
class ClaimListing:
    """A ListClaims request."""

    filters: ClaimFilters
    descending: bool
    page: PageRequest
    view: ClaimView = ClaimView.BASIC


@dataclass(frozen=True)
class ClaimSearch:
    """A SearchClaims request."""

    query: str
    filters: ClaimFilters
    page: PageRequest
    view: ClaimView = ClaimView.BASIC


@dataclass(frozen=True)
class TimelineRequest:
    """A GetActorTimeline request."""

    actor_id: str
    interval: Interval
    topic_id: str | None
    stated_after: datetime | None
    stated_before: datetime | None
    sample_size: int


@dataclass(frozen=True)
class Violations:
    """Collects field violations while a request is checked."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, field_name: str, description: str) -> None:
        """Records one problem with one field."""
        self.items.append((field_name, description))

    def raise_if_any(self) -> None:
        """Raises `InvalidArgument` naming every problem recorded."""
        if self.items:
            raise InvalidArgument(self.items)
