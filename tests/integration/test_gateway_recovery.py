"""The gateway rides out restarts of the retriever: real processes on loopback, under load.

A retriever that comes back is used at once (no reconnect backoff of seconds), no request in
flight fails when it is restarted gracefully, and a rolling restart of two retriever processes
sharing one port fails no request. The 30 and 60 s outages of issue 18 are measured by hand
with the same code (`python -m tests.support.recovery 30 60`): the suite does not wait for them.
"""

from __future__ import annotations

import asyncio
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from panoptic.core.db import DatabaseUrl
from tests.support.gateway import GatewayCorpus, base_url, running_gateway
from tests.support.processes import PanopticProcess, grpc_serving, wait_for
from tests.support.recovery import (
    HttpLoad,
    corpus_paths,
    outage,
    recovery_env,
    start_retriever,
    worker_overrides,
)

pytestmark = pytest.mark.slow

# Requests held in the retriever while it stops gracefully.
IN_FLIGHT = 24
# Rounds of the rolling restart, each replacing both retriever processes.
ROLLING_RESTARTS = 2


def test_the_gateway_answers_again_as_soon_as_the_retriever_is_back(
    database_url: DatabaseUrl, corpus: GatewayCorpus, tmp_path: Path
) -> None:
    """A 10 s outage under load: a call waits for the retriever within its deadline, so that a
    call with 30 s to go is answered 200 once it is back, while one with 2 s gets a clear 503
    when its deadline runs out, never a hang; /readyz follows the retriever down and up. How
    soon after the retriever says SERVING the first 200 comes is printed (issue 18 asks for
    under 1 s), not asserted: a loaded machine must not fail the test."""
    env = recovery_env(
        database_url.value,
        tmp_path / "data",
        PANOPTIC_GATEWAY_DEADLINE_SECONDS="2",
        PANOPTIC_GATEWAY_METHOD_DEADLINES='{"ListClaims": 30}',
    )
    result = outage(env, tmp_path, corpus_paths(corpus), outage_seconds=10)
    print(f"\n{result.summary()}")
    assert result.ready_during_outage == 503
    waited = [o.status for o in result.during_outage if o.path.endswith("/claims")]
    short = [o.status for o in result.during_outage if not o.path.endswith("/claims")]
    assert waited, "no ListClaims was sent while the retriever was down"
    assert short, "no GetClaim or GetTopic was sent while the retriever was down"
    assert set(waited) == {200}, waited
    assert 503 in short, short
    # Those sent in the outage's last 2 s may have waited long enough for the retriever, or
    # have run out of time just as a connection came up.
    assert set(short) <= {200, 503, 504}, short


def _started(env: dict[str, str], method: str) -> float:
    """How many calls of `method` the retriever's workers have started, from its /metrics."""
    url = f"http://127.0.0.1:{env['PANOPTIC_RETRIEVER_METRICS_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        if family.name == "grpc_server_started"
        for sample in family.samples
        if sample.labels.get("grpc_method") == method
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_a_graceful_restart_of_the_retriever_fails_no_request_in_flight(
    database_url: DatabaseUrl, corpus: GatewayCorpus, tmp_path: Path
) -> None:
    """SIGTERM to the retriever while the gateway has calls in it (held on a table lock, so
    that they are certainly in flight), then requests while it drains and stops, then the
    retriever started again: every request is answered 200, those in the retriever when it
    stopped and those that reached the gateway while it was going."""
    env = recovery_env(
        database_url.value,
        tmp_path / "data",
        PANOPTIC_SHUTDOWN_GRACE_SECONDS="30",
        PANOPTIC_GATEWAY_DEADLINE_SECONDS="60",
    )
    url = base_url(env)
    paths = [f"/v1/claims/{corpus.claim(number % 6 + 1)}" for number in range(IN_FLIGHT)]
    retriever = start_retriever(env, tmp_path / "retriever.log")
    with running_gateway(env, tmp_path / "gateway.log"), ThreadPoolExecutor(2 * IN_FLIGHT) as pool:
        try:
            before = _started(env, "GetClaim")
            owner = await asyncpg.connect(database_url.value)
            try:
                async with owner.transaction():
                    await owner.execute("LOCK TABLE claims IN ACCESS EXCLUSIVE MODE")
                    held = [pool.submit(httpx.get, url + path, timeout=120) for path in paths]
                    await asyncio.to_thread(
                        wait_for, lambda: _started(env, "GetClaim") >= before + IN_FLIGHT
                    )
                    retriever.process.terminate()
                    address = env["PANOPTIC_RETRIEVER_ADDRESS"]
                    await asyncio.to_thread(wait_for, lambda: not grpc_serving(address))
                    late = [pool.submit(httpx.get, url + path, timeout=120) for path in paths]
            finally:
                await owner.close()
            assert [answer.result().status_code for answer in held] == [200] * IN_FLIGHT
            assert retriever.wait(timeout=60) == 0
            retriever = start_retriever(env, tmp_path / "retriever-again.log")
            assert [answer.result().status_code for answer in late] == [200] * IN_FLIGHT
        finally:
            retriever.stop()


def _replace(
    process: PanopticProcess, env: dict[str, str], index: int, log: Path
) -> PanopticProcess:
    """Stops one of the retriever's processes gracefully (SIGTERM, by PID) and starts its
    replacement on the same port, returning once the replacement says it serves."""
    assert process.stop() == 0
    replacement = PanopticProcess(("retriever",), {**env, **worker_overrides(index)}, log).start()

    def serving() -> bool:
        if replacement.process.poll() is not None:
            raise AssertionError(f"the replacement exited early:\n{replacement.output}")
        return '"event": "serving"' in replacement.output

    wait_for(serving, timeout=60)
    return replacement


def test_a_rolling_restart_of_the_retriever_fails_no_request(
    database_url: DatabaseUrl, corpus: GatewayCorpus, tmp_path: Path
) -> None:
    """Two retriever processes share the port (SO_REUSEPORT, as a service's workers do); each
    in turn is stopped gracefully and replaced while clients read through the gateway: not one
    request fails."""
    env = recovery_env(database_url.value, tmp_path / "data")
    instances = [
        start_retriever(env, tmp_path / f"retriever-{index}.log", **worker_overrides(index))
        for index in range(2)
    ]
    try:
        with (
            running_gateway(env, tmp_path / "gateway.log"),
            HttpLoad(base_url(env), corpus_paths(corpus), clients=8) as load,
        ):
            for turn in range(ROLLING_RESTARTS * 2):
                index = turn % 2
                instances[index] = _replace(
                    instances[index], env, index, tmp_path / f"retriever-{turn}.log"
                )
            after = len(load.outcomes)
            wait_for(lambda: len(load.outcomes) > after + 100)
        statuses = load.statuses()
        print(f"\nrolling restart: {dict(statuses)}")
        assert set(statuses) == {200}, statuses
    finally:
        for instance in instances:
            instance.stop()
