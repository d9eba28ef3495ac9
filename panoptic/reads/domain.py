"""The read model's requests as plain values, free of protobuf and SQL.

Its refusals are core's (`panoptic.core.refusals`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from panoptic.core.refusals import InvalidArgument
from panoptic.reads.queries import ClaimFilters

T = TypeVar("T")


class Interval(StrEnum):
    """A timeline's bucket width, named as `date_trunc` takes it."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


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


@dataclass(frozen=True)
class ClaimListing:
    """A ListClaims request."""

    filters: ClaimFilters
    descending: bool
    page: PageRequest


@dataclass(frozen=True)
class ClaimSearch:
    """A SearchClaims request."""

    query: str
    filters: ClaimFilters
    page: PageRequest


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
