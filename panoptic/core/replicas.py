"""Reads on PostgreSQL streaming replicas: which server serves a read, and keeping track of them.

A process that reads (the retriever, the dashboard) may be given replica URLs besides its primary
(`PANOPTIC_REPLICA_URLS`). `ReadRouter` keeps, per replica, a pool and what a check every
`PANOPTIC_REPLICA_CHECK_INTERVAL_SECONDS` saw: whether it answers, is in recovery, how far it has
replayed the primary's log and how far behind that is, in seconds and bytes. Reads go to the
replicas in turn, only to those that answered the last check and lag at most
`PANOPTIC_REPLICA_MAX_LAG_SECONDS`; a replica that fails a read or a check is taken out until a
check finds it well again, and with none left the primary serves. Writes never come here.

A read carrying a consistency token (`core.consistency`) is served only where the log has been
replayed at least to the token's position: a replica known to be that far, else one that gets
there within a short wait (`PANOPTIC_CONSISTENCY_WAIT_SECONDS`, at most half of what is left of
the read's deadline), else the primary. Replay only moves forward, so once a server has shown
a position, every later read there sees the write behind it. Each read decides for itself:
there is no per-client stickiness that a lagging replica could break.

How lag is measured: a replica that has replayed the log as far as the primary's position at the
last check lags by nothing; otherwise by an upper bound on the age of what it lacks (`_lag`).
With the primary down, the last position it was seen at stands, so replicas that replayed what
they received keep serving reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
from prometheus_client import Counter, Gauge

from panoptic.core.db import DATABASE_FAILURES, DatabaseUrl, is_database_unavailable
from panoptic.core.lifecycle import worker_index
from panoptic.core.logging import get_logger
from panoptic.core.refusals import DatabaseUnavailable

T = TypeVar("T")
log = get_logger("panoptic.replicas")

PRIMARY: Final = "primary"
# How often a read waiting for a replica to replay a token's position asks it again.
POSITION_POLL_SECONDS: Final = 0.005
CHECK_TIMEOUT_SECONDS: Final = 2.0

# Log positions (`pg_lsn`) travel as integers: asyncpg's codec for the type.
PRIMARY_POSITION = "SELECT pg_current_wal_lsn()"
REPLICA_STATE = """
SELECT pg_is_in_recovery() AS in_recovery,
       pg_last_wal_replay_lsn() AS replayed,
       pg_last_wal_receive_lsn() AS received,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_last_replayed
"""
# The primary's positions kept to date a replica's position: at one check every 0.5 s, the
# last ~8 minutes. A replica further behind is dated to the oldest.
POSITIONS_KEPT: Final = 1_000
REPLAYED = "SELECT pg_last_wal_replay_lsn()"
CAUGHT_UP = "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn"

# Several worker processes of one service each check the replicas: a scrape shows the worst.
LAG_SECONDS = Gauge(
    "panoptic_db_replica_lag_seconds",
    "How far the replica's replay is behind the primary, in seconds.",
    ["replica"],
    multiprocess_mode="livemax",
)
LAG_BYTES = Gauge(
    "panoptic_db_replica_lag_bytes",
    "Write-ahead log the replica has not replayed yet, in bytes.",
    ["replica"],
    multiprocess_mode="livemax",
)
SERVING = Gauge(
    "panoptic_db_replica_serving",
    "1 while the replica takes reads, 0 while it is taken out.",
    ["replica"],
    multiprocess_mode="livemin",
)
MAX_LAG = Gauge(
    "panoptic_db_replica_max_lag_seconds",
    "The lag above which a replica takes no reads (PANOPTIC_REPLICA_MAX_LAG_SECONDS).",
    multiprocess_mode="livemax",
)
READS = Counter(
    "panoptic_db_reads",
    "Reads served, by the server that served them: the primary or a replica.",
    ["server"],
)
EJECTIONS = Counter(
    "panoptic_db_replica_ejections",
    "Times a replica was taken out of the reads: it failed, or it lagged too far.",
    ["replica", "reason"],
)
CONSISTENT_READS = Counter(
    "panoptic_db_consistent_reads",
    "Reads with a consistency token, by where they were served: a replica that had caught up,"
    " one that caught up within the wait, or the primary.",
    ["outcome"],
)


def replica_url(service_url: DatabaseUrl, server_url: str) -> DatabaseUrl:
    """The URL a service reads a replica with: its own role, password and database as on the
    primary, on the server (host, port, options) that `server_url` names."""
    server = urlsplit(server_url)
    own = urlsplit(service_url.value)
    credentials = own.netloc.rpartition("@")[0]
    host = server.netloc.rpartition("@")[2]
    netloc = f"{credentials}@{host}" if credentials else host
    return DatabaseUrl(urlunsplit(own._replace(netloc=netloc, query=server.query)))


def replica_name(server_url: str) -> str:
    """A replica's name in metrics and logs: its host and port, or its socket directory."""
    parts = urlsplit(server_url)
    if parts.hostname:
        return f"{parts.hostname}:{parts.port or 5432}"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return f"{query.get('host', 'localhost')}:{query.get('port', '5432')}"


class NotReplayedYet(Exception):
    """A replica has not replayed as far as a read must see: it restarted since it was last
    seen that far (a crashed replica replays again from an earlier point)."""


@dataclass(eq=False)
class Server:
    """A server reads can go to, and what the last check saw of it."""

    name: str
    is_primary: bool
    pool: Callable[[], asyncpg.Pool]
    serving: bool = False
    replayed: int = 0
    lag_seconds: float = math.inf
    lag_bytes: int = 0
    # Why the replica is taken out, while it is: "failed" or "lagging".
    out_because: str = "failed"
    # Reads this process's router has sent here (READS counts them too, for Prometheus).
    reads_served: int = 0

    @classmethod
    def of_pool(
        cls, name: str, pool: asyncpg.Pool, *, is_primary: bool = False, serving: bool = False
    ) -> Server:
        """A server whose pool is already open (the primary's may open later: then pass a
        callable to the constructor instead)."""
        return cls(name, is_primary, lambda: pool, serving=serving)


@dataclass
class ReadRouter:
    """Chooses the server of each read; `start` and `stop` run the replicas' checks."""

    primary: Server
    replicas: Sequence[Server] = ()
    max_lag_seconds: float = 5.0
    check_interval: float = 0.5
    consistency_wait: float = 0.2
    _turn: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _primary_position: int = field(default=0, init=False)
    # (monotonic time, the primary's position then), oldest first.
    _positions: deque[tuple[float, int]] = field(
        default_factory=lambda: deque(maxlen=POSITIONS_KEPT), init=False
    )
    _checker: asyncio.Task[None] | None = field(default=None, init=False)

    @classmethod
    def primary_only(cls, pool: Callable[[], asyncpg.Pool]) -> ReadRouter:
        """A router with no replicas: every read on the primary."""
        return cls(Server(PRIMARY, True, pool, serving=True))

    # --- choosing ----------------------------------------------------------------------------

    def choose(self) -> Server:
        """The server of a read without a token: the serving replicas in turn, else the
        primary."""
        serving = [replica for replica in self.replicas if replica.serving]
        if not serving:
            return self.primary
        return serving[next(self._turn) % len(serving)]

    async def choose_for(self, position: int | None, time_left: float) -> Server:
        """The server of a read that must see the log up to `position` (None: any server)."""
        if position is None:
            return self.choose()
        ready = [r for r in self.replicas if r.serving and r.replayed >= position]
        if ready:
            CONSISTENT_READS.labels("replica").inc()
            return ready[next(self._turn) % len(ready)]
        replica = await self._wait_for(position, min(self.consistency_wait, time_left / 2))
        if replica is not None:
            CONSISTENT_READS.labels("waited").inc()
            return replica
        CONSISTENT_READS.labels(PRIMARY).inc()
        return self.primary

    async def _wait_for(self, position: int, budget: float) -> Server | None:
        """A serving replica that replays up to `position` within `budget` seconds, if any."""
        candidates = [r for r in self.replicas if r.serving]
        if not candidates:
            return None
        loop = asyncio.get_running_loop()
        until = loop.time() + budget
        replica = candidates[next(self._turn) % len(candidates)]
        while True:
            try:
                replayed = await replica.pool().fetchval(REPLAYED, timeout=max(budget, 0.05))
            except DATABASE_FAILURES:
                return None
            if replayed is not None:
                replica.replayed = replayed
            if replica.replayed >= position:
                return replica
            if loop.time() + POSITION_POLL_SECONDS > until:
                return None
            await asyncio.sleep(POSITION_POLL_SECONDS)

    async def run(
        self,
        read: Callable[[Server], Awaitable[T]],
        position: int | None = None,
        time_left: float = math.inf,
        *,
        count: int = 1,
    ) -> T:
        """Runs `read` on the server chosen for it; when a replica fails it, takes the replica
        out and runs it again on the next choice (reads change nothing, so this is safe).
        `count` is how many calls the read serves (GetClaims share one)."""
        server = await self.choose_for(position, time_left)
        for _ in self.replicas:
            try:
                result = await read(server)
            except NotReplayedYet:
                server = self.primary
                continue
            except Exception as error:
                if server.is_primary or not _replica_failure(error):
                    raise
                self.take_out(server, "failed", error)
                server = await self.choose_for(position, time_left)
                continue
            _served(server, count)
            return result
        result = await read(server if server.is_primary else self.primary)
        _served(self.primary, count)
        return result

    def take_out(self, replica: Server, reason: str, error: BaseException | None = None) -> None:
        """Stops sending reads to `replica` until a check finds it well."""
        if not replica.serving:
            return
        replica.serving = False
        replica.out_because = reason
        SERVING.labels(replica.name).set(0)
        EJECTIONS.labels(replica.name, reason).inc()
        log.warning(
            "replica taken out of reads",
            replica=replica.name,
            reason=reason,
            error=None if error is None else str(error).splitlines()[0:1],
            lag_seconds=None if math.isinf(replica.lag_seconds) else replica.lag_seconds,
        )

    # --- checking ----------------------------------------------------------------------------

    def start(self) -> None:
        """Starts checking the replicas in the background (nothing to do without any)."""
        if self.replicas and self._checker is None:
            MAX_LAG.set(self.max_lag_seconds)
            self._checker = asyncio.create_task(self._keep_checking())

    async def stop(self) -> None:
        """Stops the checks and withdraws the replicas' gauges."""
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
        # A worker's gauges are withdrawn by the main process when the worker exits
        # (prometheus_client's multiprocess mode cannot remove labels).
        if worker_index() is not None:
            return
        for replica in self.replicas:
            for gauge in (LAG_SECONDS, LAG_BYTES, SERVING):
                with contextlib.suppress(KeyError):
                    gauge.remove(replica.name)

    async def check(self) -> None:
        """Reads the primary's position, then each replica's state, and routes by what it saw.

        The replicas are measured against the primary's position; while the primary does not
        answer, against the freshest replica's, as there is nowhere fresher to read from.
        """
        primary_answered = False
        with contextlib.suppress(*DATABASE_FAILURES):
            position = await self.primary.pool().fetchval(
                PRIMARY_POSITION, timeout=CHECK_TIMEOUT_SECONDS
            )
            self._primary_position = max(self._primary_position, position)
            self._positions.append((asyncio.get_running_loop().time(), self._primary_position))
            primary_answered = True
        states = await asyncio.gather(*(self._state_of(replica) for replica in self.replicas))
        reference = self._primary_position
        if not primary_answered:
            received = [state["received"] or state["replayed"] for state in states if state]
            reference = max(received, default=reference)
        for replica, state in zip(self.replicas, states, strict=True):
            if state is not None:
                self._judge(replica, state, reference)

    async def _keep_checking(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.check_interval)

    async def _state_of(self, replica: Server) -> asyncpg.Record | None:
        """What a replica says of itself; None, and the replica out, when it says nothing."""
        try:
            state: asyncpg.Record = await replica.pool().fetchrow(
                REPLICA_STATE, timeout=CHECK_TIMEOUT_SECONDS
            )
        except (*DATABASE_FAILURES, RuntimeError) as error:
            # RuntimeError: the replica's pool is not open (it could not be reached at start).
            self.take_out(replica, "failed", error)
            return None
        if not state["in_recovery"] or state["replayed"] is None:
            # Promoted, or a primary given as a replica: not a replica of this primary.
            self.take_out(replica, "failed")
            return None
        return state

    def _judge(self, replica: Server, state: asyncpg.Record, reference: int) -> None:
        """Records a replica's lag, and takes it out or puts it back by it."""
        # As it says now: a replica restarted after a crash replays again from an earlier point.
        replica.replayed = state["replayed"]
        replica.lag_seconds = self._lag(replica.replayed, reference, state["since_last_replayed"])
        replica.lag_bytes = max(0, self._primary_position - replica.replayed)
        LAG_SECONDS.labels(replica.name).set(replica.lag_seconds)
        LAG_BYTES.labels(replica.name).set(replica.lag_bytes)
        if replica.lag_seconds > self.max_lag_seconds:
            self.take_out(replica, "lagging")
        elif not replica.serving:
            replica.serving = True
            SERVING.labels(replica.name).set(1)
            log.info("replica serving reads", replica=replica.name)

    def _lag(self, replayed: int, reference: int, since_last_replayed: float | None) -> float:
        """How stale a replica's reads may be, in seconds: an upper bound, the tighter of two.

        Nothing, if it has replayed as far as `reference`. Otherwise, what it lacks was
        committed after the last transaction it replayed (`since_last_replayed` ago), and
        after the newest check that found the primary no further than it is now. The first
        alone would jump to the length of an idle spell for the moment a replica takes to
        replay the write that ends it; the second alone is no finer than a check.
        """
        if replayed >= reference:
            return 0.0
        now = asyncio.get_running_loop().time()
        dated = math.inf
        for moment, position in reversed(self._positions):
            dated = now - moment
            if position <= replayed:
                break
        if since_last_replayed is None:
            return dated
        return max(0.0, min(since_last_replayed, dated))


async def confirm_replayed(
    connection: asyncpg.Connection, server: Server, position: int | None
) -> None:
    """In a read's transaction on a replica, before the read: `NotReplayedYet` unless the
    replica has replayed up to `position` (None, or the primary: nothing to confirm).

    What the checks saw may be older than a restart of the replica; what it says inside the
    read's own transaction is not, and it only moves forward from there.
    """
    if position is None or server.is_primary:
        return
    if not await connection.fetchval(CAUGHT_UP, position):
        server.replayed = 0
        raise NotReplayedYet()


def _served(server: Server, count: int) -> None:
    """Counts `count` reads served by `server`."""
    server.reads_served += count
    READS.labels(server.name).inc(count)


def _replica_failure(error: BaseException) -> bool:
    """Whether a read failed because of the replica rather than the request: it is down, or
    replaying the log cancelled the read (a conflict with recovery, SQLSTATE 40001)."""
    return is_database_unavailable(error) or isinstance(
        error, (DatabaseUnavailable, asyncpg.SerializationError)
    )
