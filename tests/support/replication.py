"""A primary and its streaming replicas on the embedded PostgreSQL, for tests of reads on
replicas: made with the suite's own `ensure_replicas`, as `panoptic up --replicas` makes them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from panoptic.bench.common import process_running
from panoptic.core.db import DatabaseUrl
from panoptic.suite.embedded_pg import DATABASE, EmbeddedPostgres, ensure_replicas


@dataclass
class ReplicatedDatabase:
    """The suite's database on a primary with streaming replicas, each on its own socket."""

    primary: EmbeddedPostgres
    replicas: list[EmbeddedPostgres]
    owner_url: DatabaseUrl

    @classmethod
    async def create(cls, base: Path, replicas: int) -> ReplicatedDatabase:
        """Starts a primary in `base`, makes the suite's database on it, migrated, and starts
        `replicas` replicas of it."""
        from panoptic.suite import migrate

        primary = EmbeddedPostgres(base / "postgres")
        primary.ensure_started()
        owner_url = DatabaseUrl(await primary.ensure_owner_database())
        await migrate.upgrade_async(owner_url)
        return cls(primary, ensure_replicas(primary, replicas), owner_url)

    def stop(self) -> None:
        """Stops every server (fast)."""
        for server in (*self.replicas, self.primary):
            server.stop()

    @property
    def replica_urls(self) -> str:
        """`PANOPTIC_REPLICA_URLS` for these replicas (each names its server only)."""
        return json.dumps([replica.url(database=DATABASE) for replica in self.replicas])

    async def run_on(self, server: EmbeddedPostgres, statement: str) -> None:
        """Runs a statement as the superuser on one server (e.g. `pg_wal_replay_pause()`)."""
        connection = await asyncpg.connect(server.url(database=DATABASE))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def replayed_everything(self, server: EmbeddedPostgres) -> bool:
        """Whether a replica has replayed all the primary has written so far."""
        primary = await asyncpg.connect(self.primary.url(database=DATABASE))
        replica = await asyncpg.connect(server.url(database=DATABASE))
        try:
            written = await primary.fetchval("SELECT pg_current_wal_lsn()")
            replayed = await replica.fetchval("SELECT pg_last_wal_replay_lsn()")
        finally:
            await asyncio.gather(primary.close(), replica.close())
        return bool(replayed >= written)


@contextlib.asynccontextmanager
async def replicated_database(base: Path, replicas: int) -> AsyncIterator[ReplicatedDatabase]:
    """`ReplicatedDatabase.create(base, replicas)` for the block, its servers stopped after."""
    database = await ReplicatedDatabase.create(base, replicas)
    try:
        yield database
    finally:
        database.stop()


def kill_server(server: EmbeddedPostgres, timeout: float = 30) -> None:
    """Kills a server's postmaster outright (SIGKILL, by the PID in its postmaster.pid) and
    waits until its processes are gone, so that it can be started again."""
    pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    # Its backends notice the postmaster's death and exit; the server starts again once the
    # last of them has left its shared memory.
    while process_running(pid) or server.is_running():
        if time.monotonic() > deadline:
            raise AssertionError(f"the server in {server.pgdata} did not die within {timeout} s")
        time.sleep(0.05)


def replica_env(database: ReplicatedDatabase, **overrides: str) -> Mapping[str, str]:
    """Settings for services reading `database`'s replicas, checked often in tests."""
    return {
        "PANOPTIC_REPLICA_URLS": database.replica_urls,
        "PANOPTIC_REPLICA_CHECK_INTERVAL_SECONDS": "0.1",
        "PANOPTIC_REPLICA_MAX_LAG_SECONDS": "2",
        "PANOPTIC_CONSISTENCY_WAIT_SECONDS": "0.05",
        "PANOPTIC_RETRIEVER_WORKERS": "1",
        **overrides,
    }
