"""`panoptic up` (what `make run` runs) as a newcomer starts it, on an embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import urllib.request
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from panoptic.suite.embedded_pg import DATABASE, OWNER_ROLE, EmbeddedPostgres
from tests.support.processes import (
    PanopticProcess,
    run_panoptic,
    running_grpc_service,
    service_env,
    wait_for,
)

pytestmark = pytest.mark.slow

COUNT_CLAIMS = "SELECT count(*) FROM claims"


def _ready(process: PanopticProcess) -> bool:
    if process.process.poll() is not None:
        raise AssertionError(f"panoptic up exited early:\n{process.output}")
    return "Panoptic is ready" in process.output


def _health(address: str, service: str) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return int(reply.status)


async def _owner_query(server: EmbeddedPostgres, sql: str) -> object:
    connection = await asyncpg.connect(server.url(user=OWNER_ROLE, database=DATABASE))
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def test_up_serves_the_suite_keeps_data_and_refuses_a_second_instance(tmp_path: Path) -> None:
    """First start loads the demo corpus through the indexer and serves every service (the
    REST API answers with it); data persists across a restart, which loads nothing again; a
    second `up` is refused."""
    data_dir = tmp_path / "data"
    env = service_env("", data_dir)
    del env["DATABASE_URL"]
    del env["PANOPTIC_INDEXER_TOKEN"]
    server = EmbeddedPostgres(data_dir / "postgres")
    marker = f"persisted-{time.time_ns()}"

    first = PanopticProcess(("up",), env, tmp_path / "up-1.log").start()
    try:
        wait_for(lambda: _ready(first), timeout=180)
        assert "demo data: indexed 20000 claims" in first.output
        assert asyncio.run(_owner_query(server, COUNT_CLAIMS)) == 20000
        for name, service in (
            ("INDEXER", "panoptic.v1.IndexerService"),
            ("RETRIEVER", "panoptic.v1.RetrieverService"),
        ):
            address = f"127.0.0.1:{env[f'PANOPTIC_{name}_PORT']}"
            assert _health(address, service) == health_pb2.HealthCheckResponse.SERVING
        gateway = f"http://127.0.0.1:{env['PANOPTIC_GATEWAY_PORT']}"
        with urllib.request.urlopen(f"{gateway}/v1/claims?pageSize=3", timeout=10) as reply:
            page = json.loads(reply.read())
        assert len(page["claims"]) == 3
        assert page["nextPageToken"]
        dashboard = f"http://127.0.0.1:{env['PANOPTIC_DASHBOARD_PORT']}/readyz"
        with urllib.request.urlopen(dashboard, timeout=10) as reply:
            assert reply.status == 200
        token = re.search(r"indexer token\s+(\S+)", first.output)
        assert token is not None, first.output
        assert (data_dir / "indexer-token").read_text().strip() == token.group(1)

        second = run_panoptic("up", "--no-demo", env=env)
        assert second.returncode == 2
        assert "already running" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.process.poll() is None, "the first instance must keep running"

        asyncio.run(_owner_query(server, f"COMMENT ON DATABASE {DATABASE} IS '{marker}'"))
    finally:
        assert first.stop(signal.SIGINT) == 0, first.output
    assert not server.is_running(), "up must stop the embedded PostgreSQL it started"

    restarted = PanopticProcess(("up",), env, tmp_path / "up-2.log").start()
    try:
        wait_for(lambda: _ready(restarted), timeout=120)
        assert "demo data: not loaded (the database already holds claims)" in restarted.output
        query = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = "
        comment = asyncio.run(_owner_query(server, f"{query}'{DATABASE}'"))
        assert comment == marker
    finally:
        assert restarted.stop(signal.SIGTERM) == 0, restarted.output
    assert not server.is_running(), "up must stop the embedded PostgreSQL it started"


def test_ctrl_c_during_the_demo_load_stops_the_suite_and_the_next_start_finishes_the_load(
    tmp_path: Path,
) -> None:
    """Ctrl-C while the demo corpus loads stops everything without waiting for the load; the
    next start loads the rest, and no claim is written twice."""
    data_dir = tmp_path / "data"
    env = service_env("", data_dir)
    del env["DATABASE_URL"]
    del env["PANOPTIC_INDEXER_TOKEN"]
    server = EmbeddedPostgres(data_dir / "postgres")

    first = PanopticProcess(("up",), env, tmp_path / "up-1.log").start()
    try:
        # The first batches are in: the load has begun, and has most of its claims to go.
        wait_for(lambda: server.is_running() and _claims_so_far(server) > 0, timeout=180)
    finally:
        assert first.stop(signal.SIGINT) == 0, first.output
    assert "Panoptic is ready" not in first.output
    assert "stopping Panoptic" in first.output
    assert not server.is_running(), "up must stop the embedded PostgreSQL it started"
    server.ensure_started()
    try:
        interrupted_at = asyncio.run(_owner_query(server, COUNT_CLAIMS))
    finally:
        server.stop()
    assert isinstance(interrupted_at, int)
    assert 0 < interrupted_at < 20000, "the load must have been cut short"

    restarted = PanopticProcess(("up",), env, tmp_path / "up-2.log").start()
    try:
        wait_for(lambda: _ready(restarted), timeout=180)
        assert "demo data: indexed" in restarted.output
        assert asyncio.run(_owner_query(server, COUNT_CLAIMS)) == 20000
        # One revision per claim: batches indexed before the interruption were not redone.
        revisions = "SELECT count(*) FROM claim_revisions"
        assert asyncio.run(_owner_query(server, revisions)) == 20000
    finally:
        assert restarted.stop(signal.SIGINT) == 0, restarted.output
    assert not (data_dir / "demo-corpus.loading").exists()


def _claims_so_far(server: EmbeddedPostgres) -> int:
    """Claims in the database, or 0 while it does not accept connections yet."""
    try:
        count = asyncio.run(_owner_query(server, COUNT_CLAIMS))
    except (OSError, asyncpg.PostgresError):
        return 0
    assert isinstance(count, int)
    return count


def test_services_stop_by_themselves_when_up_is_killed(tmp_path: Path) -> None:
    """A supervisor killed outright (SIGKILL) leaves no service running: each stops itself, and
    the retriever's workers with it."""
    import psutil

    data_dir = tmp_path / "data"
    env = service_env("", data_dir)
    del env["DATABASE_URL"]
    up = PanopticProcess(("up", "--no-demo"), env, tmp_path / "up.log").start()
    server = EmbeddedPostgres(data_dir / "postgres")
    try:
        wait_for(lambda: _ready(up), timeout=120)
        services = psutil.Process(up.process.pid).children()
        assert {" ".join(p.cmdline()[-1:]) for p in services} == {
            "indexer", "retriever", "gateway", "dashboard",
        }  # fmt: skip
        retriever = next(p for p in services if "retriever" in p.cmdline())
        everything = psutil.Process(up.process.pid).children(recursive=True)
        assert len(retriever.children()) >= 2  # the retriever's workers (and their tracker)
        up.stop(signal.SIGKILL)
        _, alive = psutil.wait_procs(everything, timeout=30)
        assert not alive, f"still running after the supervisor died: {alive}"
    finally:
        up.stop(signal.SIGKILL)
        server.stop()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_database_starts_stops_it(tmp_path: Path, signum: int) -> None:
    """SIGTERM (a container or CI stop), like Ctrl-C, heeded as soon as the embedded PostgreSQL
    runs, before any service: `up` exits cleanly and leaves no PostgreSQL and no service
    running, its data kept for the next start."""
    import psutil

    data_dir = tmp_path / "data"
    env = service_env("", data_dir)
    del env["DATABASE_URL"]
    server = EmbeddedPostgres(data_dir / "postgres")
    up = PanopticProcess(("up", "--no-demo"), env, tmp_path / "up.log").start()
    try:
        wait_for(server.is_running, timeout=120, interval=0.05)
        started = psutil.Process(up.process.pid).children(recursive=True)
    finally:
        code = up.stop(signum, timeout=60)
    assert code == 0, up.output
    assert "Panoptic is ready" not in up.output
    assert not server.is_running(), f"the embedded PostgreSQL outlived up:\n{up.output}"
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, f"still running after up stopped: {alive}"
    assert server.is_initialised()


@pytest.mark.parametrize("service", ["indexer", "retriever"])
def test_a_service_run_alone_finds_the_running_embedded_database(
    tmp_path: Path, service: str
) -> None:
    """Without DATABASE_URL, `panoptic indexer` or `panoptic retriever` run on their own serve
    from the embedded PostgreSQL that `make run` keeps in the data directory, as the README's
    `panoptic indexer`, `panoptic retriever` commands promise."""
    data_dir = tmp_path / "data"
    env = service_env("", data_dir)
    del env["DATABASE_URL"]
    migrated = run_panoptic("migrate", env=env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    server = EmbeddedPostgres(data_dir / "postgres")
    server.ensure_started()
    try:
        with running_grpc_service(service, env, tmp_path / f"{service}.log") as address:
            assert _health(address, "") == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop()
