"""Lookups by key that concurrent callers share: one query serves every caller waiting for it.

A retriever under load receives many GetClaim calls at once. Each one alone costs a query: a
pool checkout, a round trip to PostgreSQL, a statement executed there, its rows decoded here.
`KeyedBatcher` lets them share: a lookup starts a query at once while fewer than
`max_in_flight` are running, and otherwise waits for the next one, which then fetches every
key that queued meanwhile (`WHERE id IN (...)`). A lone caller therefore pays little more than
its own query, with no timer to wait for, and under load each query serves many callers: the
same "data loader" pattern GraphQL servers use.

Calls that arrive together still reach `get` several turns of the event loop apart: gRPC
accepts them one at a time and hands each over once its request has been read. So a batch is
taken only after the loop has turned `GATHER_TURNS` times, and the calls already inside gRPC
join it. With the loop otherwise idle those turns take microseconds; under load they take as
long as the other calls' work, which is when company is coming.

Each caller waits on a future of its own, so a caller that gives up (its deadline passes or
its call is cancelled) leaves the others' results alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Fetches the values of some keys within a time limit (seconds); keys without one are absent.
Fetch = Callable[[Sequence[K], float], Awaitable[dict[K, V]]]

# Turns of the event loop between a batch's first lookup and its query. Fewer gather fewer
# calls per query; more gather more but serve no more calls a second. Turns beat a timer
# (uvloop's timers count whole milliseconds), stopping once the loop goes quiet (calls come in
# bursts), and waiting only for the calls gRPC has begun (most of the company has not been
# accepted yet): see docs/performance.md#gathering-getclaim-calls.
GATHER_TURNS: Final = 8


class KeyedBatcher(Generic[K, V]):
    """Coalesces concurrent lookups of values by key into few `fetch` calls.

    Fetches run in runner tasks, at most `max_in_flight` of them, started as lookups need
    them and kept while the loop runs. A runner fetches batch after batch while keys wait,
    then waits for a lookup to wake it: a lookup pays for a wake-up, not for a task of its own.
    A runner, not a caller, runs a fetch, so a caller cancelled mid-fetch cancels nothing the
    others wait for.
    """

    def __init__(self, fetch: Fetch[K, V], *, max_in_flight: int, max_batch: int) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self._fetch = fetch
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        # Keys not yet fetched, each with its callers' futures and the longest time they allow.
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._time_allowed = 0.0
        self._runners = 0
        # Runners waiting for a key, each on a future that a lookup resolves to wake it.
        self._idle: list[asyncio.Future[None]] = []
        # A runner was started or woken and has not taken its batch yet: the keys arriving
        # meanwhile join that batch, so no other runner is needed for them.
        self._runner_coming = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: K, timeout: float) -> V | None:
        """The value for `key`, or None if there is none; TimeoutError after `timeout` seconds.

        A failure of the fetch that served the key is raised here, to every caller it served.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        futures = self._waiting.get(key)
        if futures is None:
            self._waiting[key] = [future]
        else:
            futures.append(future)
        if timeout > self._time_allowed:
            self._time_allowed = timeout
        if not self._runner_coming:
            self._call_runner(loop)
        # A timer on this caller's own future, cheaper than asyncio.timeout on the hot path.
        timer = loop.call_later(timeout, _expire, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _call_runner(self, loop: asyncio.AbstractEventLoop) -> None:
        """Sends a runner for the waiting keys: an idle one woken, or a new one while fewer
        than `max_in_flight` exist. It gathers for `GATHER_TURNS` turns of the loop before it
        takes its batch."""
        while self._idle:
            woken = self._idle.pop()
            if not woken.cancelled():  # as it is once its runner is being stopped
                self._runner_coming = True
                woken.set_result(None)
                return
        if self._runners < self._max_in_flight:
            self._runner_coming = True
            self._runners += 1
            task = loop.create_task(self._run())
            # The loop keeps only weak references to tasks.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        """Fetches the waiting keys a batch at a time, and waits to be woken when none wait.

        A runner starts, or is woken, as the one coming for the keys waiting
        (`_runner_coming`): the lookup that started or woke it saw to that.
        """
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] | None = None
        try:
            while True:
                for _ in range(GATHER_TURNS):
                    await asyncio.sleep(0)
                self._runner_coming = False
                await self._serve(*self._take_batch())
                if self._waiting and not self._runner_coming:
                    # Keys queued while it fetched, and no other runner is coming for them.
                    self._runner_coming = True
                    continue
                woken = loop.create_future()
                self._idle.append(woken)
                await woken
        finally:
            # Only the loop shutting down ends a runner.
            self._runners -= 1
            if woken in self._idle:
                self._idle.remove(woken)

    def _take_batch(self) -> tuple[dict[K, list[asyncio.Future[V | None]]], float]:
        """Up to `max_batch` of the waiting keys, oldest first, and the time they allow."""
        if len(self._waiting) <= self._max_batch:
            batch, self._waiting = self._waiting, {}
        else:
            batch = {}
            for key in self._waiting:
                batch[key] = self._waiting[key]
                if len(batch) == self._max_batch:
                    break
            for key in batch:
                del self._waiting[key]
        time_allowed = self._time_allowed
        if not self._waiting:
            self._time_allowed = 0.0
        return batch, time_allowed

    async def _serve(
        self, batch: dict[K, list[asyncio.Future[V | None]]], time_allowed: float
    ) -> None:
        try:
            values = await self._fetch(list(batch), time_allowed)
        except asyncio.CancelledError:
            # The fetch itself was cancelled (the server stopping): so are its callers.
            for future in _pending(batch):
                future.cancel()
            raise
        except Exception as error:  # handed to every caller, who raise it
            for future in _pending(batch):
                future.set_exception(error)
        else:
            for key, futures in batch.items():
                value = values.get(key)
                for future in futures:
                    if not future.done():
                        future.set_result(value)


def _pending(batch: dict[K, list[asyncio.Future[V | None]]]) -> list[asyncio.Future[V | None]]:
    """The futures of a batch whose callers still wait."""
    return [future for futures in batch.values() for future in futures if not future.done()]


def _expire(future: asyncio.Future[V | None]) -> None:
    """Ends a caller's wait with TimeoutError when its time is up."""
    if not future.done():
        future.set_exception(TimeoutError())
