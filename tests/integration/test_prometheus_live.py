"""A real Prometheus (Debian's `prometheus`) scraping the running suite, with the real rules.

The indexer, the retriever, and the gateway and the dashboard where their commands exist, run
as processes on loopback; Prometheus scrapes them every second with the configuration `panoptic up
--with-monitoring` renders, ClaimsNotIndexed's window cut to 30 s. After some traffic, every
dashboard panel and every rule must evaluate, and read series that exist; then, with no more
commits while a pipeline holds a stream open, ClaimsNotIndexed must fire within its window.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from panoptic.cli import main as cli
from panoptic.core.db import DatabaseUrl
from panoptic.suite import monitoring
from panoptic.v1 import (
    indexer_service_pb2,
    indexer_service_pb2_grpc,
    retriever_service_pb2,
    retriever_service_pb2_grpc,
)
from tests.support.indexer import (
    actor,
    address_of,
    bearer,
    claim,
    index_request,
    start_indexer,
    topic,
)
from tests.support.processes import (
    PanopticProcess,
    answers_200,
    free_port,
    grpc_serving,
    service_env,
    start_serving,
    wait_for,
)
from tests.support.promql import (
    RATE_INTERVAL,
    metric_name,
    panel_expressions,
    rule_expressions,
    rules,
    selectors,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="prometheus is not installed (Debian package `prometheus`; `make system-deps`)",
    ),
]

WINDOW_SECONDS = 30
# Selectors of events this test does not cause, with the reason; expressions reading them only
# have to evaluate, not to return data.
NOT_PRODUCED = {
    'panoptic_indexer_batches_total{job="indexer",result="failed"}': "no batch fails here",
    'panoptic_indexer_batches_total{result="failed"}': "no batch fails here",
    'http_requests_total{job="gateway",status=~"5.."}': "the gateway answers no 5xx here",
    'ALERTS{alertstate="firing"}': "nothing fires before the last test",
    **dict.fromkeys(
        (
            "panoptic_db_replica_lag_seconds",
            "panoptic_db_replica_lag_bytes",
            "panoptic_db_replica_serving",
            "panoptic_db_replica_max_lag_seconds",
            "panoptic_db_replica_ejections_total",
            "panoptic_db_consistent_reads_total",
        ),
        "no replica is configured here",
    ),
}
GATEWAY_AVAILABLE = "gateway" in cli.commands
DASHBOARD_AVAILABLE = "dashboard" in cli.commands


@dataclass
class Suite:
    """The running services and the Prometheus scraping them."""

    env: dict[str, str]
    prometheus_url: str
    jobs: set[str]
    last_commit: float = 0.0

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result; fails the test on any error Prometheus reports."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        result: list[dict[str, Any]] = data["result"]
        return result

    def api(self, path: str, **params: str) -> Any:
        """A GET on Prometheus' HTTP API; fails the test unless it says success."""
        url = f"{self.prometheus_url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{path} {params}: {error.read().decode()}") from None
        assert body["status"] == "success", body
        assert not body.get("warnings"), body
        return body["data"]


def _start(
    args: tuple[str, ...], env: dict[str, str], log: Path, ready_url: str
) -> PanopticProcess:
    """Starts a `panoptic` command and waits until `ready_url` answers 200."""
    return start_serving(args, env, log, functools.partial(answers_200, ready_url))


@pytest.fixture(scope="module")
def suite(database_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """The services and Prometheus, started once for the module and stopped by PID after it."""
    logs = tmp_path_factory.mktemp("logs")
    env = service_env(
        database_url.value,
        tmp_path_factory.mktemp("data"),
        # No pipeline is expected: the alert must rely on seeing pipelines call.
        PANOPTIC_PIPELINES_EXPECTED="0",
        PANOPTIC_DB_STATS_INTERVAL_SECONDS="2",
    )
    started: list[PanopticProcess | subprocess.Popen[bytes]] = []
    try:
        started.append(start_indexer(env, logs / "indexer.log"))
        metrics_ports = {"indexer": int(env["PANOPTIC_INDEXER_METRICS_PORT"])}
        started.append(
            _start(
                ("retriever",),
                env,
                logs / "retriever.log",
                f"http://127.0.0.1:{env['PANOPTIC_RETRIEVER_METRICS_PORT']}/metrics",
            )
        )
        wait_for(lambda: grpc_serving(env["PANOPTIC_RETRIEVER_ADDRESS"]))
        metrics_ports["retriever"] = int(env["PANOPTIC_RETRIEVER_METRICS_PORT"])
        if GATEWAY_AVAILABLE:
            started.append(
                _start(
                    ("gateway",),
                    env,
                    logs / "gateway.log",
                    f"http://127.0.0.1:{env['PANOPTIC_GATEWAY_PORT']}/readyz",
                )
            )
            metrics_ports["gateway"] = int(env["PANOPTIC_GATEWAY_METRICS_PORT"])
        if DASHBOARD_AVAILABLE:
            started.append(
                _start(
                    ("dashboard",),
                    env,
                    logs / "dashboard.log",
                    f"http://127.0.0.1:{env['PANOPTIC_DASHBOARD_PORT']}/readyz",
                )
            )
            metrics_ports["dashboard"] = int(env["PANOPTIC_DASHBOARD_METRICS_PORT"])

        directory = tmp_path_factory.mktemp("prometheus")
        config = monitoring.write_files(
            directory,
            monitoring.suite_targets(metrics_ports, "127.0.0.1"),
            window_seconds=WINDOW_SECONDS,
            scrape_interval="1s",
            evaluation_interval="1s",
        )
        port = free_port()
        command = monitoring.prometheus_command(
            monitoring.find_prometheus(), config, directory / "data", f"127.0.0.1:{port}"
        )
        with (directory / "prometheus.log").open("wb") as log:
            prometheus = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        started.append(prometheus)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers_200(f"{url}/-/ready"), timeout=30)
        yield Suite(env, url, set(metrics_ports))
    finally:
        for process in reversed(started):
            if isinstance(process, PanopticProcess):
                process.stop()
            else:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture(scope="module")
def traffic(suite: Suite) -> Suite:
    """Indexes a few batches (unary and streamed), reads them back, and makes some mistakes
    (an invalid batch, a wrong token, a missing claim, a bad page size); then waits until
    Prometheus has scraped the result."""
    env = suite.env
    author, subject = actor(), topic()
    claims = [claim(author.id, [subject.id]) for _ in range(6)]
    with grpc.insecure_channel(address_of(env)) as channel:
        indexer = indexer_service_pb2_grpc.IndexerServiceStub(channel)
        indexer.IndexClaims(
            index_request(claims[0], actors=(author,), topics=(subject,)),
            metadata=bearer(env),
            timeout=10,
        )
        indexer.IndexClaims(index_request(claims[1]), metadata=bearer(env), timeout=10)
        indexer.StreamIndexClaims(
            iter([index_request(item) for item in claims[2:]]), metadata=bearer(env), timeout=10
        )
        for metadata, bad in (
            (bearer(env), index_request(claim(author.id, [subject.id], text=""))),
            ((("authorization", "Bearer wrong-token"),), index_request(claims[0])),
        ):
            with pytest.raises(grpc.RpcError):
                indexer.IndexClaims(bad, metadata=metadata, timeout=10)
    suite.last_commit = time.time()
    with grpc.insecure_channel(env["PANOPTIC_RETRIEVER_ADDRESS"]) as channel:
        retriever = retriever_service_pb2_grpc.RetrieverServiceStub(channel)
        calls = [
            lambda: retriever.GetClaim(
                retriever_service_pb2.GetClaimRequest(claim_id=claims[0].id)
            ),
            lambda: retriever.ListClaims(
                retriever_service_pb2.ListClaimsRequest(actor_id=author.id)
            ),
            lambda: retriever.SearchClaims(retriever_service_pb2.SearchClaimsRequest(query="wind")),
            lambda: retriever.GetClaim(retriever_service_pb2.GetClaimRequest(claim_id="no-such")),
            lambda: retriever.ListClaims(retriever_service_pb2.ListClaimsRequest(page_size=-1)),
        ]
        for call in calls:
            with contextlib.suppress(grpc.RpcError):  # the mistakes are meant to fail
                call()
    if GATEWAY_AVAILABLE:
        base = f"http://127.0.0.1:{env['PANOPTIC_GATEWAY_PORT']}"
        for path in (f"/v1/claims/{claims[0].id}", "/v1/claims", "/v1/claims/no-such-claim"):
            with contextlib.suppress(urllib.error.HTTPError):  # the missing claim is a 404
                urllib.request.urlopen(base + path, timeout=5).close()
    if DASHBOARD_AVAILABLE:
        base = f"http://127.0.0.1:{env['PANOPTIC_DASHBOARD_PORT']}"
        for path in ("/login", "/", "/readyz"):  # `/` redirects to the login page
            urllib.request.urlopen(base + path, timeout=5).close()
    traffic_ended = time.time()
    wanted = len(claims)

    def scraped() -> bool:
        created = suite.query('sum(panoptic_indexer_claims_total{outcome="created"})')
        reads = suite.query('sum(grpc_server_handled_total{job="retriever",grpc_code!="OK"})')
        return (
            bool(created)
            and float(created[0]["value"][1]) >= wanted
            and bool(reads)
            and float(reads[0]["value"][1]) >= 2
        )

    wait_for(scraped, timeout=20, interval=0.5)
    # Every rate() needs two samples of the new values: two scrapes of each target, begun after
    # the traffic ended.
    first = _scrapes_begun_after(suite, traffic_ended)
    _scrapes_begun_after(suite, max(first))
    return suite


def _scrapes_begun_after(suite: Suite, moment: float) -> list[float]:
    """Waits until every target's last scrape began after `moment` (Unix time); when each began.

    Prometheus shows a scrape as a target's last once its samples are stored, so they can be
    queried by then.
    """
    starts: list[float] = []

    def all_after() -> bool:
        targets = suite.api("targets")["activeTargets"]
        starts[:] = [_unix_time(target["lastScrape"]) for target in targets]
        return bool(starts) and min(starts) > moment

    wait_for(all_after, timeout=20, interval=0.2)
    return starts


def test_every_target_is_scraped(suite: Suite) -> None:
    """Prometheus scrapes every started service, under the job name the rules select."""

    def all_up() -> bool:
        targets = suite.api("targets")["activeTargets"]
        return {target["labels"]["job"] for target in targets if target["health"] == "up"} == (
            suite.jobs
        )

    wait_for(all_up, timeout=15, interval=0.5)


def test_every_selector_reads_scraped_series(traffic: Suite) -> None:
    """Each series selector of every panel and rule matches series the suite exports (except
    events this test does not cause, and services not started)."""
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    missing = []
    for expression in [*panel_expressions(), *rule_expressions()]:
        for selector in selectors(expression.expr):
            if selector in NOT_PRODUCED or metric_name(selector) in recorded:
                continue
            if not _job_started(selector, traffic.jobs):
                continue
            if not traffic.query(f"count({selector})"):
                missing.append(f"{expression.where}: {selector}")
    assert not missing, "selectors matching no series:\n" + "\n".join(sorted(set(missing)))


def test_every_panel_expression_evaluates_and_returns_data(traffic: Suite) -> None:
    """Each panel's query evaluates without error and, when everything it reads exists,
    returns data."""
    empty = []
    for expression in panel_expressions():
        result = traffic.query(expression.expr.replace(RATE_INTERVAL, "1m"))
        reads = selectors(expression.expr)
        expected = all(
            selector not in NOT_PRODUCED and _job_started(selector, traffic.jobs)
            for selector in reads
        )
        if expected and not result:
            empty.append(expression.where)
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_every_rule_evaluates_and_no_alert_fires_on_a_healthy_suite(traffic: Suite) -> None:
    """Prometheus reports every loaded rule healthy, every rule's expression evaluates, and
    while batches are being committed none of the alerts fires."""

    def evaluated() -> list[dict[str, Any]]:
        groups = traffic.api("rules")["groups"]
        loaded = [rule for group in groups for rule in group["rules"]]
        never = "0001-01-01T00:00:00Z"  # what Prometheus reports before a rule's first evaluation
        return loaded if all(rule["lastEvaluation"] != never for rule in loaded) else []

    wait_for(lambda: bool(evaluated()), timeout=10, interval=0.5)
    for rule in evaluated():
        assert rule["health"] == "ok", rule
        assert not rule.get("lastError"), rule
        if rule["type"] == "alerting":
            assert rule["state"] != "firing", rule
    for expression in rule_expressions():
        traffic.query(expression.expr)


def test_claims_not_indexed_fires_within_its_window_once_commits_stop(traffic: Suite) -> None:
    """A pipeline holds a StreamIndexClaims open and sends nothing: with no commit since the
    traffic and no pipeline expected, ClaimsNotIndexed fires once its 30 s window has passed,
    and not before."""
    release = threading.Event()

    def idle_pipeline() -> Iterator[indexer_service_pb2.IndexClaimsRequest]:
        release.wait(WINDOW_SECONDS + 30)
        yield from ()

    deadline = traffic.last_commit + WINDOW_SECONDS + 20
    with grpc.insecure_channel(address_of(traffic.env)) as channel:
        stream = indexer_service_pb2_grpc.IndexerServiceStub(channel).StreamIndexClaims.future(
            idle_pipeline(), metadata=bearer(traffic.env), timeout=WINDOW_SECONDS + 40
        )
        try:
            while not (firing := _firing(traffic, "ClaimsNotIndexed")):
                assert time.time() < deadline, "ClaimsNotIndexed did not fire within its window"
                time.sleep(0.5)
        finally:
            release.set()
        assert stream.result(timeout=10).batches == 0
    (alert,) = firing
    active_at = _unix_time(alert["activeAt"])
    assert active_at >= traffic.last_commit + WINDOW_SECONDS - 2, "fired before the window passed"
    assert float(alert["value"]) > WINDOW_SECONDS
    assert alert["labels"]["severity"] == "critical"
    assert "runbook" in alert["annotations"]


def _firing(suite: Suite, name: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in suite.api("alerts")["alerts"]
        if alert["labels"]["alertname"] == name and alert["state"] == "firing"
    ]


def _job_started(selector: str, jobs: set[str]) -> bool:
    """False for a selector that names only jobs of services this test did not start."""
    if 'job="' in selector:
        job = selector.split('job="', 1)[1].split('"', 1)[0]
        return job in jobs
    return True


def _unix_time(rfc3339: str) -> float:
    """Prometheus' UTC times (`2026-01-02T03:04:05.123456789Z`) as Unix time."""
    seconds, _, fraction = rfc3339.removesuffix("Z").partition(".")
    whole = datetime.fromisoformat(seconds).replace(tzinfo=UTC).timestamp()
    return whole + float(f"0.{fraction or 0}")
