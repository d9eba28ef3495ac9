"""The retriever run as several worker processes on one port (`core.workers`), as real
processes, alone and behind the gateway."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from panoptic.bench.common import memory_mib
from panoptic.core.db import DatabaseUrl
from tests.support.gateway import running_stack
from tests.support.processes import (
    PanopticProcess,
    grpc_serving,
    run_panoptic,
    service_env,
    wait_for,
)

WORKERS = 2
POOL_MAX_SIZE = 3


@pytest.fixture
def env(database_url: DatabaseUrl, tmp_path: Path) -> dict[str, str]:
    """A retriever's environment with two workers, each with a pool of up to three; its
    temporary files (the metrics directory a killed main process leaves) under `tmp_path`."""
    return service_env(
        database_url.value,
        tmp_path / "data",
        PANOPTIC_RETRIEVER_WORKERS=str(WORKERS),
        PANOPTIC_DB_POOL_MAX_SIZE=str(POOL_MAX_SIZE),
        TMPDIR=str(tmp_path),
    )


@pytest.fixture
def retriever(env: dict[str, str], tmp_path: Path) -> Iterator[PanopticProcess]:
    """A serving `panoptic retriever` with its workers; stopped (SIGTERM, by PID) afterwards."""
    process = PanopticProcess(("retriever",), env, tmp_path / "retriever.log").start()
    try:
        address = f"127.0.0.1:{env['PANOPTIC_RETRIEVER_PORT']}"
        wait_for(lambda: len(_workers(process)) == WORKERS and grpc_serving(address))
        wait_for(lambda: _serving_workers(process) == set(range(WORKERS)))
        yield process
    finally:
        process.stop()


def _workers(process: PanopticProcess) -> list[psutil.Process]:
    """The worker processes: children running the service (not multiprocessing's tracker)."""
    children = psutil.Process(process.process.pid).children()
    return [child for child in children if "spawn_main" in " ".join(child.cmdline())]


def _log_lines(process: PanopticProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in process.output.splitlines() if line.startswith("{")]


def _serving_workers(process: PanopticProcess) -> set[object]:
    return {line.get("worker") for line in _log_lines(process) if line["event"] == "serving"}


def _scrape(env: dict[str, str]) -> str:
    url = f"http://127.0.0.1:{env['PANOPTIC_RETRIEVER_METRICS_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def _metric(body: str, pattern: str) -> float:
    match = re.search(rf"^{pattern} (\S+)$", body, re.MULTILINE)
    assert match, f"{pattern} not in /metrics"
    return float(match.group(1))


def test_connections_spread_over_the_workers_and_metrics_add_up(
    retriever: PanopticProcess, env: dict[str, str]
) -> None:
    """Each connection lands on one worker; between them they serve every call, and the one
    /metrics endpoint counts the calls of both, their pools together and the database."""
    address = f"127.0.0.1:{env['PANOPTIC_RETRIEVER_PORT']}"
    calls = 40
    for _ in range(calls):  # a connection each: the kernel picks a worker per connection
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

    served_by = [
        line.get("worker")
        for line in _log_lines(retriever)
        if line["event"] == "rpc" and line.get("method") == "grpc.health.v1.Health/Check"
    ]
    assert set(served_by) == set(range(WORKERS)), served_by  # 40 calls, 2 workers: both serve

    handled = (
        r'grpc_server_handled_total\{grpc_code="OK",grpc_method="Check",'
        r'grpc_service="grpc.health.v1.Health",grpc_type="unary"\}'
    )
    body = _scrape(env)
    assert _metric(body, handled) == len(served_by)
    assert _metric(body, r'panoptic_db_pool_max_size\{service="retriever"\}') == (
        WORKERS * POOL_MAX_SIZE
    )
    wait_for(lambda: "panoptic_db_size_bytes" in _scrape(env))
    assert _metric(_scrape(env), "panoptic_db_size_bytes") > 0


def test_a_worker_that_dies_takes_the_service_down_whole(
    retriever: PanopticProcess, env: dict[str, str]
) -> None:
    """When a worker dies, the main process stops the others and exits non-zero, saying which,
    so that whatever supervises the service restarts it; the port is free again."""
    started = next(line for line in _log_lines(retriever) if line["event"] == "workers started")
    first, second = (psutil.Process(pid) for pid in started["pids"])
    first.kill()
    code = retriever.wait(timeout=30)
    assert code != 0
    assert "retriever-worker-0 was killed by SIGKILL; stopped the other workers" in (
        retriever.output
    )
    assert not second.is_running()
    assert not grpc_serving(f"127.0.0.1:{env['PANOPTIC_RETRIEVER_PORT']}")


def test_workers_stop_by_themselves_when_the_main_process_is_killed(
    retriever: PanopticProcess,
) -> None:
    """A main process killed outright (SIGKILL) leaves no worker behind."""
    workers = _workers(retriever)
    retriever.stop(signal.SIGKILL)
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, f"workers still running: {alive}"
    # What it cannot clean up: its metrics directory, in the temporary directory it was given.
    assert list(Path(retriever.env["TMPDIR"]).glob("panoptic-retriever-metrics-*"))


def test_a_worker_count_out_of_range_is_refused(env: dict[str, str]) -> None:
    """PANOPTIC_RETRIEVER_WORKERS below 1 ends the command with one clear line."""
    result = run_panoptic("retriever", env={**env, "PANOPTIC_RETRIEVER_WORKERS": "0"})
    assert result.returncode == 2
    assert "invalid setting PANOPTIC_RETRIEVER_WORKERS" in result.stderr


def test_the_gateways_calls_reach_every_worker(database_url: DatabaseUrl, tmp_path: Path) -> None:
    """The gateway's calls take turns over its connections to the retriever, so that every
    worker serves its share (16 connections: all on one of 2 workers has a chance of 2^-15)."""
    env = service_env(
        database_url.value,
        tmp_path / "data",
        PANOPTIC_RETRIEVER_WORKERS=str(WORKERS),
        PANOPTIC_GATEWAY_RETRIEVER_CONNECTIONS="16",
        PANOPTIC_GATEWAY_RESPONSE_CACHE_MIB="0",
    )
    with running_stack(env, tmp_path) as url:
        for number in range(32):
            response = httpx.get(f"{url}/v1/claims/no-such-claim-{number}", timeout=10)
            assert response.status_code == 404
    lines = [
        json.loads(line)
        for line in (tmp_path / "retriever.log").read_text().splitlines()
        if line.startswith("{")
    ]
    served_by = [
        line.get("worker")
        for line in lines
        if line["event"] == "rpc" and line["method"].endswith("/GetClaim")
    ]
    assert len(served_by) == 32
    assert set(served_by) == set(range(WORKERS))


def test_benchmarks_count_the_workers_memory(retriever: PanopticProcess) -> None:
    """The memory the benchmarks report for the retriever is its main process's and its
    workers' added up, not the main process's alone."""
    main = psutil.Process(retriever.process.pid)
    resident, peak = memory_mib(main.pid)
    alone = main.memory_info().rss / 2**20
    workers = sum(worker.memory_info().rss for worker in _workers(retriever)) / 2**20
    assert resident >= alone + workers * 0.9  # a little may be freed between the readings
    assert peak >= resident * 0.9
