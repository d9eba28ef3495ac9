"""`panoptic bench read` runs end to end and reports every figure (figures are not judged)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from panoptic.bench.read import ENDPOINTS
from panoptic.core.db import DatabaseUrl
from tests.support.processes import ROOT, service_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("h2load") is None,
        reason="h2load is missing: install Debian's nghttp2-client (make system-deps)",
    ),
]


def test_read_benchmark_reports_latencies_throughput_and_cpu_per_call(
    postgres_server_url: DatabaseUrl, tmp_path: Path
) -> None:
    """Two small scales: each read's percentiles at each, the p95 growth, and per round the
    rates of GetClaim and of the health check with the CPU a call of each cost."""
    env = service_env(postgres_server_url.value, tmp_path / "data")
    output = tmp_path / "read.json"
    result = subprocess.run(
        [sys.executable, "-m", "panoptic", "bench", "read", "--scales", "1k,2k", "--calls", "10",
         "--throughput-rounds", "2", "--throughput-seconds", "0.4", "--in-flight", "2,4",
         "--json-output", str(output)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert "CPU per call: GetClaim" in result.stdout
    assert "throughput at 2k, 2 in flight: median ratio" in result.stdout
    assert "throughput at 2k, 4 in flight: median ratio" in result.stdout
    report = json.loads(output.read_text())
    assert [scale["claims"] for scale in report["scales"]] == [1000, 2000]
    assert set(report["growth_p95"]) == set(ENDPOINTS)
    for scale in report["scales"]:
        for endpoint in ENDPOINTS:
            figures = scale["latency_ms"][endpoint]
            assert 0 < figures["p50_ms"] <= figures["p95_ms"]
        # Two rounds, each at both levels of calls in flight.
        assert sorted(round_["in_flight"] for round_ in scale["throughput"]) == [2, 2, 4, 4]
        for round_ in scale["throughput"]:
            assert round_["get_claim_rps"] > 0
            assert round_["health_check_rps"] > 0
            # The test's server runs here, so its backends' CPU is read too.
            assert round_["get_claim_cost"]["retriever_us"] > 0
            assert round_["claims_per_query"] >= 1  # from the retriever's own histogram
            assert round_["get_claim_cost"]["database_us"] > 0
            assert round_["health_check_cost"]["retriever_us"] > 0
    assert len(report["throughput_ratios"]) == 8
    assert set(report["median_ratios"]) == {"1k", "2k"}
    assert set(report["median_ratios"]["2k"]) == {"2", "4"}
