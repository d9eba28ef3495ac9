"""`panoptic bench ingest` runs end to end and reports both sides (figures are not judged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from panoptic.core.db import DatabaseUrl
from tests.support.processes import ROOT, free_port, service_env

pytestmark = pytest.mark.slow


def test_ingest_benchmark_reports_copy_and_indexer_rates(
    postgres_server_url: DatabaseUrl, tmp_path: Path
) -> None:
    """A small run prints the table and writes JSON with both rates, the ratio and the RSS."""
    env = service_env(postgres_server_url.value, tmp_path / "data")
    output = tmp_path / "ingest.json"
    result = subprocess.run(
        [sys.executable, "-m", "panoptic", "bench", "ingest", "--claims", "2000",
         "--rounds", "1", "--batch-size", "250", "--json-output", str(output),
         "--port", str(free_port()), "--metrics-port", str(free_port())],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "COPY claims/s" in result.stdout
    report = json.loads(output.read_text())
    assert report["claims"] == 2000
    (round_,) = report["rounds"]
    assert round_["copy_rows_per_second"] > 0
    assert round_["indexer_claims_per_second"] > 0
    assert round_["indexer_peak_rss_mib"] > 10
    assert report["median_ratio"] == pytest.approx(round_["ratio"])


def test_ingest_with_a_replica_reports_its_replay_lag(tmp_path: Path) -> None:
    """With --replicas 1 on its own embedded server, each round gives the replica's lag during
    the indexer's run: samples, max and p95 in seconds and bytes, and the catch-up time."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PANOPTIC_")}
    env.pop("DATABASE_URL", None)
    env["PANOPTIC_DATA_DIR"] = str(tmp_path / "data")
    output = tmp_path / "ingest.json"
    result = subprocess.run(
        [sys.executable, "-m", "panoptic", "bench", "ingest", "--claims", "2000",
         "--rounds", "1", "--batch-size", "250", "--replicas", "1", "--json-output", str(output),
         "--port", str(free_port()), "--metrics-port", str(free_port())],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "replica-1 during the indexer's run: lag max" in result.stdout
    (round_,) = json.loads(output.read_text())["rounds"]
    assert round_["indexer_claims_per_second"] > 0
    lag = round_["replica_lag"]["replica-1"]
    assert lag["samples"] >= 1
    assert 0 <= lag["p95_seconds"] <= lag["max_seconds"]
    assert 0 <= lag["p95_bytes"] <= lag["max_bytes"]
    assert lag["caught_up_seconds"] >= 0


def test_replicas_of_a_server_given_by_database_url_are_refused(
    postgres_server_url: DatabaseUrl, tmp_path: Path
) -> None:
    """The benchmark copies only its own embedded server: --replicas with DATABASE_URL is a
    usage error naming the option, before anything runs."""
    env = service_env(postgres_server_url.value, tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "panoptic", "bench", "ingest", "--replicas", "1"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--replicas" in result.stderr
    assert "DATABASE_URL" in result.stderr
