"""`panoptic up --replicas N`: streaming replicas of the embedded PostgreSQL, read by the
retriever through the gateway, kept across restarts."""

from __future__ import annotations

import json
import re
import signal
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest

from panoptic.suite.embedded_pg import EmbeddedPostgres
from panoptic.v1 import indexer_service_pb2_grpc
from tests.support.indexer import actor, claim, index_request, scrape, topic, value
from tests.support.processes import PanopticProcess, run_panoptic, service_env, wait_for

pytestmark = pytest.mark.slow


def _ready(process: PanopticProcess) -> bool:
    if process.process.poll() is not None:
        raise AssertionError(f"panoptic up exited early:\n{process.output}")
    return "Panoptic is ready" in process.output


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        body: dict[str, object] = json.loads(reply.read())
    return body


def test_up_with_replicas_reads_them_and_keeps_them(tmp_path: Path) -> None:
    """`up --replicas 2` starts two replicas, prints them, and the retriever reads them: a
    write's token read through the gateway finds it; the replicas keep their data across a
    restart, and a restart with fewer drops the slot of the one no longer run."""
    data_dir = tmp_path / "data"
    env = service_env("", data_dir)
    del env["DATABASE_URL"]
    primary = EmbeddedPostgres(data_dir / "postgres")
    replicas = [EmbeddedPostgres(data_dir / f"postgres-replica-{n}") for n in (1, 2)]
    gateway = f"http://127.0.0.1:{env['PANOPTIC_GATEWAY_PORT']}"
    metrics = env["PANOPTIC_RETRIEVER_METRICS_PORT"]
    jane, energy = actor(), topic()
    new = claim(jane.id, [energy.id])

    first = PanopticProcess(("up", "--no-demo", "--replicas", "2"), env, tmp_path / "up-1.log")
    first.start()
    try:
        wait_for(lambda: _ready(first), timeout=180)
        assert len(re.findall(r"replica \d\s+streaming", first.output)) == 2, first.output
        assert all(replica.is_running() for replica in replicas)
        wait_for(lambda: value(scrape(metrics), "panoptic_db_replica_serving") == 2)
        token = (("authorization", f"Bearer {env['PANOPTIC_INDEXER_TOKEN']}"),)
        with grpc.insecure_channel(f"127.0.0.1:{env['PANOPTIC_INDEXER_PORT']}") as channel:
            written = indexer_service_pb2_grpc.IndexerServiceStub(channel).IndexClaims(
                index_request(new, actors=(jane,), topics=(energy,)), metadata=token, timeout=10
            )
        query = urllib.parse.urlencode({"consistencyToken": written.consistency_token})
        assert _get(f"{gateway}/v1/claims/{new.id}?{query}")["id"] == new.id
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(f"{gateway}/v1/claims/{new.id}?consistencyToken=forged")
        assert refused.value.code == 400
        error = json.loads(refused.value.read())["error"]
        violations = [d for d in error["details"] if "fieldViolations" in d]
        assert violations[0]["fieldViolations"][0]["field"] == "consistencyToken"
        for size in range(1, 21):  # each a different URL: none is the gateway cache's
            _get(f"{gateway}/v1/actors/{jane.id}/claims?pageSize={size}")
        reads = scrape(metrics)["panoptic_db_reads_total"]
        by_server = {labels["server"]: number for labels, number in reads}
        assert sum(n for server, n in by_server.items() if server != "primary") >= 20, by_server
    finally:
        assert first.stop(signal.SIGINT) == 0, first.output
    assert not any(server.is_running() for server in (primary, *replicas))

    second = PanopticProcess(("up", "--no-demo", "--replicas", "1"), env, tmp_path / "up-2.log")
    second.start()
    try:
        wait_for(lambda: _ready(second), timeout=120)
        assert replicas[0].is_running()
        assert not replicas[1].is_running()
        assert primary.replication_slots() == {"panoptic_replica_1"}
        wait_for(lambda: value(scrape(metrics), "panoptic_db_replica_serving") == 1)
        # Served by the replica it kept: no token, and the primary takes no reads meanwhile.
        assert _get(f"{gateway}/v1/claims/{new.id}")["id"] == new.id
    finally:
        assert second.stop(signal.SIGTERM) == 0, second.output


def test_replicas_of_an_external_database_are_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    """With DATABASE_URL set, `--replicas` is refused with a one-line reason."""
    env = service_env("postgresql://nobody@127.0.0.1:1/none", tmp_path / "data")
    result = run_panoptic("up", "--no-demo", "--replicas", "1", env=env)
    assert result.returncode != 0
    assert "PANOPTIC_REPLICA_URLS" in result.stderr
    assert "Traceback" not in result.stderr
