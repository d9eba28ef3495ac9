"""KeyedBatcher: concurrent lookups share fetches, and no caller's fate touches another's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from panoptic.reads.batching import GATHER_TURNS, KeyedBatcher


class Store:
    """A fetch over a dict that records each call's keys, can be held back, and fails once
    when given a `failure`."""

    def __init__(self, values: dict[str, int]) -> None:
        self.values = values
        self.calls: list[list[str]] = []
        self.time_allowed: list[float] = []
        self.release = asyncio.Event()
        self.release.set()
        self.called = asyncio.Event()
        self.failure: Exception | None = None

    async def fetch(self, keys: Sequence[str], timeout: float) -> dict[str, int]:
        self.calls.append(list(keys))
        self.time_allowed.append(timeout)
        self.called.set()
        await self.release.wait()
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure
        return {key: self.values[key] for key in keys if key in self.values}


async def _started(store: Store, fetches: int) -> None:
    """Waits until `fetches` fetches have begun."""
    async with asyncio.timeout(5):
        while len(store.calls) < fetches:
            store.called.clear()
            await store.called.wait()


async def _turns(count: int = 4 * GATHER_TURNS) -> None:
    """Lets the loop turn `count` times, so that whatever the batcher would do by then (it
    counts turns, never time) is done: what a test then finds not done, it will not do."""
    for _ in range(count):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_a_lone_lookup_is_one_fetch_of_its_key() -> None:
    """A lookup with no company fetches its own key at once; a missing key is None."""
    store = Store({"a": 1})
    batcher = KeyedBatcher(store.fetch, max_in_flight=2, max_batch=10)

    assert await batcher.get("a", 1.0) == 1
    assert await batcher.get("missing", 1.0) is None
    assert store.calls == [["a"], ["missing"]]


@pytest.mark.asyncio
async def test_lookups_arriving_together_share_one_fetch() -> None:
    """Lookups made in the same turn of the loop share one fetch, each key fetched once."""
    store = Store({"a": 1, "b": 2})
    batcher = KeyedBatcher(store.fetch, max_in_flight=2, max_batch=10)

    results = await asyncio.gather(*(batcher.get(key, 1.0) for key in ["a", "b", "a", "zz"]))

    assert results == [1, 2, 1, None]
    assert store.calls == [["a", "b", "zz"]]


@pytest.mark.asyncio
async def test_lookups_queue_while_fetches_run_and_go_together_in_the_next() -> None:
    """While the only fetch allowed runs, lookups queue, then go together in the next fetch."""
    store = Store({str(number): number for number in range(10)})
    store.release.clear()
    batcher = KeyedBatcher(store.fetch, max_in_flight=1, max_batch=10)
    first = asyncio.ensure_future(batcher.get("0", 1.0))
    await _started(store, 1)
    waiting = [asyncio.ensure_future(batcher.get(str(number), 1.0)) for number in range(1, 6)]
    await _turns()
    assert store.calls == [["0"]], "a second fetch started while the only slot was busy"

    store.release.set()

    assert await first == 0
    assert await asyncio.gather(*waiting) == [1, 2, 3, 4, 5]
    assert store.calls == [["0"], ["1", "2", "3", "4", "5"]]


@pytest.mark.asyncio
async def test_a_batch_holds_at_most_max_batch_keys() -> None:
    """A fetch is given at most `max_batch` keys; the rest go in the fetches after it."""
    store = Store({str(number): number for number in range(7)})
    batcher = KeyedBatcher(store.fetch, max_in_flight=1, max_batch=3)

    results = await asyncio.gather(*(batcher.get(str(number), 1.0) for number in range(7)))

    assert results == list(range(7))
    assert [len(keys) for keys in store.calls] == [3, 3, 1]


@pytest.mark.asyncio
async def test_a_fetch_is_allowed_the_longest_time_its_callers_allow() -> None:
    """A shared fetch may take as long as the most patient of its callers allows."""
    store = Store({"a": 1, "b": 2})
    batcher = KeyedBatcher(store.fetch, max_in_flight=1, max_batch=10)

    await asyncio.gather(batcher.get("a", 0.5), batcher.get("b", 2.0))

    assert store.time_allowed == [2.0]


@pytest.mark.asyncio
async def test_a_failed_fetch_fails_its_own_callers_only() -> None:
    """A fetch's failure reaches the callers it served, and a later lookup is fetched anew."""
    store = Store({"a": 1, "b": 2})
    store.release.clear()
    store.failure = ConnectionError("database gone")
    batcher = KeyedBatcher(store.fetch, max_in_flight=1, max_batch=10)
    doomed = [asyncio.ensure_future(batcher.get(key, 1.0)) for key in ("a", "b")]
    await _started(store, 1)
    later = asyncio.ensure_future(batcher.get("a", 1.0))
    await asyncio.sleep(0)

    store.release.set()
    outcomes = await asyncio.gather(*doomed, return_exceptions=True)
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)

    assert await later == 1


@pytest.mark.parametrize("leaving_by", ["deadline", "cancellation"])
@pytest.mark.asyncio
async def test_a_caller_leaving_a_shared_fetch_leaves_the_others_their_values(
    leaving_by: str,
) -> None:
    """A caller whose deadline passes, or whose call is cancelled, during a shared fetch
    leaves; the fetch goes on and the others get their values."""
    store = Store({"a": 1})
    store.release.clear()
    batcher = KeyedBatcher(store.fetch, max_in_flight=1, max_batch=10)
    staying = asyncio.ensure_future(batcher.get("a", 5.0))
    leaving = asyncio.ensure_future(batcher.get("a", 0.05 if leaving_by == "deadline" else 5.0))
    await _started(store, 1)
    if leaving_by == "cancellation":
        leaving.cancel()

    with pytest.raises(TimeoutError if leaving_by == "deadline" else asyncio.CancelledError):
        await leaving
    store.release.set()

    assert await staying == 1


@pytest.mark.parametrize(("in_flight", "batch"), [(0, 1), (1, 0)])
def test_limits_must_be_positive(in_flight: int, batch: int) -> None:
    """A batcher with no fetch allowed in flight or no key per batch is refused."""

    async def fetch(keys: Sequence[str], timeout: float) -> dict[str, int]:
        return {}

    with pytest.raises(ValueError, match="at least 1"):
        KeyedBatcher(fetch, max_in_flight=in_flight, max_batch=batch)


@pytest.mark.asyncio
async def test_lookups_after_a_quiet_spell_are_served_by_the_runners_already_started() -> None:
    """A runner waits for the next lookup once none is left: lookups that come one at a time
    wake it, and no more runner tasks than `max_in_flight` ever exist."""
    store = Store({"a": 1, "b": 2})
    batcher = KeyedBatcher(store.fetch, max_in_flight=2, max_batch=10)

    def runners() -> int:
        """This batcher's runner tasks (other tests' batchers leave theirs to the collector,
        which may take them at any time)."""
        frames = (getattr(task.get_coro(), "cr_frame", None) for task in asyncio.all_tasks())
        return sum(
            1
            for frame in frames
            if frame is not None
            and frame.f_code.co_qualname == "KeyedBatcher._run"
            and frame.f_locals.get("self") is batcher
        )

    for key in ["a", "b", "a", "missing", "b"]:
        assert await batcher.get(key, 1.0) == store.values.get(key)
        await _turns()

    assert runners() == 1
    assert store.calls == [["a"], ["b"], ["a"], ["missing"], ["b"]]


@pytest.mark.asyncio
async def test_fetches_run_side_by_side_up_to_max_in_flight() -> None:
    """With two fetches allowed, a second lookup starts its own fetch while the first runs; a
    third waits for a free runner and takes every key that queued meanwhile."""
    store = Store({str(number): number for number in range(5)})
    store.release.clear()
    batcher = KeyedBatcher(store.fetch, max_in_flight=2, max_batch=10)
    first = asyncio.ensure_future(batcher.get("0", 1.0))
    await _started(store, 1)
    second = asyncio.ensure_future(batcher.get("1", 1.0))
    await _started(store, 2)
    queued = [asyncio.ensure_future(batcher.get(key, 1.0)) for key in ("2", "3")]
    await _turns()
    assert store.calls == [["0"], ["1"]]

    store.release.set()

    assert await asyncio.gather(first, second, *queued) == [0, 1, 2, 3]
    assert store.calls == [["0"], ["1"], ["2", "3"]]


@pytest.mark.asyncio
async def test_lookups_made_within_the_gathering_turns_join_the_first_ones_batch() -> None:
    """A batch is fetched `GATHER_TURNS` turns of the event loop after its first lookup: the
    lookups made by then join it, a later one goes in the next batch."""
    store = Store({"a": 1, "b": 2, "c": 3})
    batcher = KeyedBatcher(store.fetch, max_in_flight=1, max_batch=10)

    async def after_turns(turns: int, key: str) -> int | None:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await batcher.get(key, 1.0)

    results = await asyncio.gather(
        batcher.get("a", 1.0),
        after_turns(GATHER_TURNS - 1, "b"),
        after_turns(GATHER_TURNS + 2, "c"),
    )

    assert results == [1, 2, 3]
    assert store.calls == [["a", "b"], ["c"]]
