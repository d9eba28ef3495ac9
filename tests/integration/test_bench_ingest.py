"""`panoptic bench ingest` runs end to end and reports both sides (figures are not judged)."""

from __future__ import annotations

import json
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
