"""A shared HTTP cache (RFC 9111) of successful transcoded responses, inside the gateway.

Each route's Cache-Control already lets any shared cache (a CDN, a proxy) reuse its responses
for `max-age` seconds; this is that cache, one hop closer, so a popular claim costs one gRPC
call per `max-age` instead of one per request. Entries are kept for at most the route's max-age
and answered with an `Age` header; the total size is bounded, least recently used first out. A
request with `Cache-Control: no-cache` goes to the retriever and refreshes the entry.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.gateway.responses import Representation

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age=(\d+)")
_UNCACHEABLE = re.compile(r"no-store|no-cache|private")

CacheKey = tuple[str, bytes, bytes]
"""(route template, raw path, raw query string)."""


def shared_max_age(cache_control: str) -> float:
    """How long a shared cache may keep a response with this Cache-Control (0: not at all)."""
    if _UNCACHEABLE.search(cache_control):
        return 0.0
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else 0.0


@dataclass(slots=True)
class CachedResponse:
    """One stored response."""

    representation: Representation
    stored_at: float
    expires_at: float

    def age(self, now: float) -> int:
        """Whole seconds since it was stored, for the Age header."""
        return int(now - self.stored_at)


class ResponseCache:
    """Bounded by bytes; expired entries are dropped when met."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[CacheKey, CachedResponse] = OrderedDict()

    def get(self, key: CacheKey) -> CachedResponse | None:
        """The fresh entry for `key`, if any."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.expires_at <= self.clock():
            self._drop(key)
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: CacheKey, representation: Representation, max_age: float) -> None:
        """Stores a response for `max_age` seconds, evicting the least recently used."""
        cost = _cost(representation)
        if max_age <= 0 or cost > self.max_bytes // 16:
            return
        now = self.clock()
        if key in self._entries:
            self._drop(key)
        self._entries[key] = CachedResponse(representation, now, now + max_age)
        self.size += cost
        while self.size > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key)
        self.size -= _cost(entry.representation)


def _cost(representation: Representation) -> int:
    # The body, and room for its brotli and gzip forms, added when first asked for (each is
    # smaller than the JSON it encodes).
    return 2 * len(representation.body) + 200
