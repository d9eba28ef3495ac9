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

How lag is measured: a replica that has replayed the log as far as the primary's position
read just before lags by nothing. Otherwise it lags by the time since the last transaction it
replayed was committed, `now() - pg_last_xact_replay_timestamp()`, the usual measure, which
stays small while the primary writes steadily and grows when the replica stops replaying. With
the primary down, the last position it was seen at stands: replicas that replayed what they
received keep serving reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from prometheus_client import Counter, Gauge

from panoptic.core.db import DATABASE_FAILURES, DatabaseUrl, is_database_unavailable
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
       CASE WHEN pg_last_wal_replay_lsn() >= $1::pg_lsn THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
       END AS lag_seconds
"""
REPLAYED = "SELECT pg_last_wal_replay_lsn()"

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
    query = dict(item.partition("=")[::2] for item in parts.query.split("&") if item)
    return f"{query.get('host', 'local')}:{query.get('port', '5432')}"


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
                replica.replayed = max(replica.replayed, replayed)
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
        while True:
            try:
                result = await read(server)
            except Exception as error:
                if server.is_primary or not _replica_failure(error):
                    raise
                self.take_out(server, "failed", error)
                server = await self.choose_for(position, time_left)
                continue
            READS.labels(server.name).inc(count)
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
        for replica in self.replicas:
            for gauge in (LAG_SECONDS, LAG_BYTES, SERVING):
                with contextlib.suppress(KeyError):
                    gauge.remove(replica.name)

    async def check(self) -> None:
        """Reads the primary's position, then each replica's state, and routes by what it saw."""
        with contextlib.suppress(*DATABASE_FAILURES):
            position = await self.primary.pool().fetchval(
                PRIMARY_POSITION, timeout=CHECK_TIMEOUT_SECONDS
            )
            self._primary_position = max(self._primary_position, position)
        await asyncio.gather(*(self._check_replica(replica) for replica in self.replicas))

    async def _keep_checking(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.check_interval)

    async def _check_replica(self, replica: Server) -> None:
        try:
            row = await replica.pool().fetchrow(
                REPLICA_STATE, self._primary_position, timeout=CHECK_TIMEOUT_SECONDS
            )
        except (*DATABASE_FAILURES, RuntimeError) as error:
            # RuntimeError: the replica's pool is not open (it could not be reached at start).
            replica.lag_seconds = math.inf
            self.take_out(replica, "failed", error)
            return
        if not row["in_recovery"] or row["replayed"] is None:
            # Promoted, or a primary given as a replica: not a replica of this primary.
            self.take_out(replica, "failed")
            return
        replica.replayed = max(replica.replayed, row["replayed"])
        lag = row["lag_seconds"]
        replica.lag_seconds = math.inf if lag is None else max(0.0, lag)
        replica.lag_bytes = max(0, self._primary_position - replica.replayed)
        LAG_SECONDS.labels(replica.name).set(replica.lag_seconds)
        LAG_BYTES.labels(replica.name).set(replica.lag_bytes)
        if replica.lag_seconds > self.max_lag_seconds:
            self.take_out(replica, "lagging")
        elif not replica.serving:
            replica.serving = True
            SERVING.labels(replica.name).set(1)
            log.info("replica serving reads", replica=replica.name)


def _replica_failure(error: BaseException) -> bool:
    """Whether a read failed because of the replica rather than the request: it is down, or
    replaying the log cancelled the read (a conflict with recovery, SQLSTATE 40001)."""
    return is_database_unavailable(error) or isinstance(
        error, (DatabaseUnavailable, asyncpg.SerializationError)
    )
