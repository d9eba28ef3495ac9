"""The gateway while its retriever goes away and comes back: load, restarts and what they cost.

Tests drive it (`tests/integration/test_gateway_recovery.py`), and so does a run by hand for the
long outages, which the suite does not wait for:

    .venv/bin/python -m tests.support.recovery 30 60

starts a throwaway embedded PostgreSQL, a retriever and a gateway, and prints, for each outage
in seconds, how long after the retriever reported SERVING the first 200 came.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from panoptic.core.lifecycle import SUPERVISOR_PID_VARIABLE, WORKER_INDEX_VARIABLE
from tests.support.gateway import GatewayCorpus, base_url, load_corpus, running_gateway
from tests.support.processes import PanopticProcess, grpc_serving, service_env, start_grpc_service

# How often the health of a restarted retriever is polled: the resolution of the recovery time.
SERVING_POLL_SECONDS = 0.02


def recovery_env(database_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    """A stack's environment for these measurements: no rate limit and no response cache, so
    that every request reaches the retriever."""
    return service_env(
        database_url,
        data_dir,
        PANOPTIC_GATEWAY_RATE_LIMIT_PER_SECOND="0",
        PANOPTIC_GATEWAY_RESPONSE_CACHE_MIB="0",
        **overrides,
    )


def corpus_paths(corpus: GatewayCorpus) -> list[str]:
    """Reads of the corpus that answer 200 whenever the retriever serves."""
    return [
        *(f"/v1/claims/{corpus.claim(number)}" for number in range(1, 7)),
        f"/v1/actors/{corpus.ann}/claims",
        f"/v1/topics/{corpus.wind}",
    ]


@dataclass(frozen=True)
class Outcome:
    """One request through the gateway: when it was sent and answered, and the status (0: the
    client gave up or could not connect)."""

    path: str
    sent: float
    done: float
    status: int


@dataclass
class HttpLoad:
    """`clients` threads sending GETs through the gateway back to back, every outcome kept.

    Bounded: a client pauses `pause` seconds after each answer, so that fast failures do not
    turn into a flood of loopback requests.
    """

    url: str
    paths: Sequence[str]
    clients: int = 4
    pause: float = 0.01
    timeout: float = 60.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> HttpLoad:
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self, index: int) -> None:
        paths = itertools.cycle(self.paths[index % len(self.paths) :] + self.paths)
        with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
            while not self._stop.is_set():
                path = next(paths)
                sent = time.monotonic()
                try:
                    status = client.get(path).status_code
                except httpx.HTTPError:
                    status = 0
                self.outcomes.append(Outcome(path, sent, time.monotonic(), status))
                self._stop.wait(self.pause)

    def first_ok_after(self, moment: float) -> float | None:
        """When the first 200 answered after `moment` arrived, if one has."""
        return min(
            (o.done for o in list(self.outcomes) if o.status == 200 and o.done > moment),
            default=None,
        )

    def sent_within(self, start: float, end: float) -> tuple[Outcome, ...]:
        """The requests sent between the two moments."""
        return tuple(o for o in list(self.outcomes) if start <= o.sent <= end)

    def statuses(self) -> Counter[int]:
        """How many answers of each status the requests got."""
        return Counter(o.status for o in list(self.outcomes))


def start_retriever(env: Mapping[str, str], log_path: Path, **overrides: str) -> PanopticProcess:
    """Starts `panoptic retriever` and waits until its health check says SERVING."""
    return start_grpc_service("retriever", {**env, **overrides}, log_path, timeout=60)


def worker_overrides(index: int) -> dict[str, str]:
    """The environment that makes a `panoptic retriever` one of several processes sharing the
    port (SO_REUSEPORT), as `core.workers` starts them, supervised by this process."""
    return {
        "PANOPTIC_RETRIEVER_WORKERS": "1",
        WORKER_INDEX_VARIABLE: str(index),
        SUPERVISOR_PID_VARIABLE: str(os.getpid()),
    }


@dataclass(frozen=True)
class Recovery:
    """What one outage of the retriever looked like through the gateway."""

    outage_seconds: float
    serving_to_first_ok: float
    """From the retriever's health check saying SERVING to the first 200 through the gateway
    (negative when a request waiting in the gateway got through before the poll saw it)."""
    serving_to_ready: float
    """From SERVING to the gateway's /readyz answering 200."""
    during_outage: tuple[Outcome, ...]
    """The requests sent while the retriever was down."""
    ready_during_outage: int
    """What /readyz answered while the retriever was down."""

    def summary(self) -> str:
        """The figures on one line."""
        statuses = dict(Counter(o.status for o in self.during_outage))
        return (
            f"outage {self.outage_seconds:g} s: first 200 {self.serving_to_first_ok:+.3f} s and "
            f"/readyz 200 {self.serving_to_ready:+.3f} s after SERVING; requests sent during "
            f"the outage {statuses}, /readyz then {self.ready_during_outage}"
        )


def _poll_until(predicate: object, timeout: float = 120) -> float:
    """Polls quickly until `predicate()` holds; returns the moment it first did."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(SERVING_POLL_SECONDS)
    return time.monotonic()


def outage(
    env: Mapping[str, str], logs: Path, paths: Sequence[str], outage_seconds: float
) -> Recovery:
    """Stops the retriever (SIGTERM, by PID) under load, waits, starts it again on the same
    port, and measures when the gateway answers 200 and reports ready again.

    The retriever and gateway are started here and stopped before it returns.
    """
    retriever = start_retriever(env, logs / "retriever-0.log")
    try:
        with running_gateway(env, logs / "gateway.log"), HttpLoad(base_url(env), paths) as load:
            _poll_until(lambda: load.first_ok_after(0.0) is not None, timeout=30)
            retriever.stop()
            down = time.monotonic()
            time.sleep(outage_seconds / 2)
            ready_during_outage = httpx.get(base_url(env) + "/readyz", timeout=10).status_code
            time.sleep(outage_seconds / 2)
            restarted = time.monotonic()
            retriever = PanopticProcess(("retriever",), env, logs / "retriever-1.log").start()
            address = env["PANOPTIC_RETRIEVER_ADDRESS"]
            serving = _poll_until(lambda: grpc_serving(address))
            ready = _poll_until(
                lambda: httpx.get(base_url(env) + "/readyz", timeout=10).status_code == 200
            )
            _poll_until(lambda: load.first_ok_after(restarted) is not None)
        ok_at = load.first_ok_after(restarted)
        assert ok_at is not None
        return Recovery(
            outage_seconds,
            ok_at - serving,
            ready - serving,
            load.sent_within(down, restarted),
            ready_during_outage,
        )
    finally:
        retriever.stop()


async def _measure(outages: Sequence[float]) -> None:
    from panoptic.bench.common import benchmark_server, drop_database, fresh_database

    async with benchmark_server(None) as server:
        url = await fresh_database(server, "panoptic_recovery")
        try:
            corpus = await load_corpus(url)
            for seconds in outages:
                with tempfile.TemporaryDirectory(prefix="panoptic-recovery-") as directory:
                    env = recovery_env(url.value, Path(directory) / "data")
                    result = await asyncio.to_thread(
                        outage, env, Path(directory), corpus_paths(corpus), seconds
                    )
                print(result.summary(), flush=True)
        finally:
            await drop_database(server, url)


def main(argv: Sequence[str] | None = None) -> None:
    """Measures the recovery after each outage given in seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outages", nargs="+", type=float, help="outage lengths in seconds")
    arguments = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_measure(arguments.outages))


if __name__ == "__main__":
    main(sys.argv[1:])
