"""Lookups by key that concurrent callers share: one query serves every caller waiting for it.

A retriever under load receives many GetClaim calls at once. Each one alone costs a query: a
pool checkout, a round trip to PostgreSQL, a statement executed there, its rows decoded here.
`KeyedBatcher` lets them share: a lookup starts a query at once while fewer than
`max_in_flight` are running, and otherwise waits for the next one, which then fetches every
key that queued meanwhile (`WHERE id = ANY($1)`). A lone caller therefore pays what it did
before, with no timer to wait for, and under load each query serves many callers: the same
"data loader" pattern GraphQL servers use.

Each caller waits on a future of its own, so a caller that gives up (its deadline passes or
its call is cancelled) leaves the others' results alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Fetches the values of some keys within a time limit (seconds); keys without one are absent.
Fetch = Callable[[Sequence[K], float], Awaitable[dict[K, V]]]


class KeyedBatcher(Generic[K, V]):
    """Coalesces concurrent lookups of values by key into few `fetch` calls."""

    def __init__(self, fetch: Fetch[K, V], *, max_in_flight: int, max_batch: int) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self._fetch = fetch
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        # Keys not yet fetched, each with its callers' futures and the longest time they allow.
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._time_allowed = 0.0
        self._in_flight = 0
        self._dispatch_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: K, timeout: float) -> V | None:
        """The value for `key`, or None if there is none; TimeoutError after `timeout` seconds.

        A failure of the fetch that served the key is raised here, to every caller it served.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        self._time_allowed = max(self._time_allowed, timeout)
        if not self._dispatch_scheduled:
            # Callbacks and tasks already scheduled run first, so calls that arrived together
            # join one batch.
            self._dispatch_scheduled = True
            loop.call_soon(self._dispatch)
        # A timer on this caller's own future, cheaper than asyncio.timeout on the hot path.
        timer = loop.call_later(timeout, _expire, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _dispatch(self) -> None:
        """Starts fetches for the waiting keys, as many as may run, each for up to a batch."""
        self._dispatch_scheduled = False
        while self._waiting and self._in_flight < self._max_in_flight:
            batch: dict[K, list[asyncio.Future[V | None]]] = {}
            for key in self._waiting:
                batch[key] = self._waiting[key]
                if len(batch) == self._max_batch:
                    break
            for key in batch:
                del self._waiting[key]
            time_allowed = self._time_allowed
            if not self._waiting:
                self._time_allowed = 0.0
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._serve(batch, time_allowed))
            # The loop keeps only weak references to tasks.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(
        self, batch: dict[K, list[asyncio.Future[V | None]]], time_allowed: float
    ) -> None:
        try:
            values = await self._fetch(list(batch), time_allowed)
        except Exception as error:  # handed to every caller, who raise it
            for future in _pending(batch):
                future.set_exception(error)
        else:
            for key, futures in batch.items():
                value = values.get(key)
                for future in futures:
                    if not future.done():
                        future.set_result(value)
        finally:
            # Only when the fetch itself was cancelled (the server stopping) is any left.
            for future in _pending(batch):
                future.cancel()
            self._in_flight -= 1
            if self._waiting and not self._dispatch_scheduled:
                self._dispatch_scheduled = True
                asyncio.get_running_loop().call_soon(self._dispatch)


def _pending(batch: dict[K, list[asyncio.Future[V | None]]]) -> list[asyncio.Future[V | None]]:
    """The futures of a batch whose callers still wait."""
    return [future for futures in batch.values() for future in futures if not future.done()]


def _expire(future: asyncio.Future[V | None]) -> None:
    """Ends a caller's wait with TimeoutError when its time is up."""
    if not future.done():
        future.set_exception(TimeoutError())
