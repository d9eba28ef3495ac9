"""`panoptic bench gateway` runs end to end: every workload on every target, grpc-gateway (Go)
among them when built, each round's figures and the cache's hits (figures are not judged)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from panoptic.bench.gateway import DEFAULT_GRPC_GATEWAY
from panoptic.core.db import DatabaseUrl
from tests.support.processes import ROOT, service_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("wrk") is None,
        reason="wrk is missing: install Debian's wrk (make system-deps)",
    ),
]
SMALL_RUN = ("--claims", "300", "--seconds", "1", "--connections", "4")


def run_bench(database: DatabaseUrl, directory: Path, *options: str) -> tuple[str, dict[str, Any]]:
    """Runs the benchmark with `options`; its table and its JSON report."""
    output = directory / "gateway.json"
    result = subprocess.run(
        [sys.executable, "-m", "panoptic", "bench", "gateway", *SMALL_RUN, *options,
         "--json-output", str(output)],
        env=service_env(database.value, directory / "data"),
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    report: dict[str, Any] = json.loads(output.read_text())
    return result.stdout, report


@pytest.mark.skipif(
    not os.access(DEFAULT_GRPC_GATEWAY, os.X_OK),
    reason="grpc-gateway is not built: `make grpc-gateway` (Debian packages: make system-deps)",
)
def test_every_workload_runs_on_every_target_with_grpc_gateway_among_them(
    postgres_server_url: DatabaseUrl, tmp_path: Path
) -> None:
    """Two rounds of the three workloads: GetClaim's on the peer, both gateways and
    grpc-gateway, the list/search mix on all but the peer (it serves GetClaim alone); the
    second round runs the targets in the reverse order; every request is answered 2xx, also by
    grpc-gateway on every route; each round has the CPU per request of the target and of the
    retriever behind it; the response cache's hit ratio is reported per workload."""
    table, report = run_bench(postgres_server_url, tmp_path, "--rounds", "2")
    assert report["grpc_gateway"] == str(DEFAULT_GRPC_GATEWAY)
    workloads = {workload["name"]: workload for workload in report["workloads"]}
    assert list(workloads) == ["get-uniform", "get-zipf", "list-search"]
    everyone = ["peer", "gateway", "gateway-unary", "gateway+cache", "grpc-gateway"]
    for name, workload in workloads.items():
        expected = everyone if name.startswith("get-") else everyone[1:]
        assert workload["orders"] == [expected, expected[::-1]]
        assert 0 <= workload["cache_hit_ratio"] <= 1
        assert workload["gateway_own_ms"][0] > 0
        for target in expected:
            rounds = workload["rounds"][target]
            assert [r["round"] for r in rounds] == [1, 2]
            assert all(r["wrk"]["requests"] > 0 and r["wrk"]["errors"] == 0 for r in rounds)
            assert all(r["cpu_ms_per_request"] > 0 for r in rounds)
            behind = [r["retriever_cpu_ms_per_request"] for r in rounds]
            if target == "peer":
                assert behind == [None, None]
            else:
                assert all(b >= 0 for b in behind)
            spread = workload["spreads"][target]
            assert spread["low"] <= spread["median"] <= spread["high"]
        assert f"{name}: " in table
    assert table.count("hit ratio") == 3
    assert report["probe_upstream_ms"] > 0


def test_without_grpc_gateway_it_says_how_to_build_it_and_runs_the_rest(
    postgres_server_url: DatabaseUrl, tmp_path: Path
) -> None:
    """A missing binary is named with the make target that builds it; the peer and both
    gateways still run the workload asked for, with the Zipf exponent asked for."""
    missing = tmp_path / "no-such-gateway"
    table, report = run_bench(
        postgres_server_url, tmp_path, "--rounds", "1", "--workloads", "get-zipf",
        "--zipf-exponent", "1.2", "--grpc-gateway", str(missing),
    )  # fmt: skip
    assert "make grpc-gateway" in report["grpc_gateway"]
    assert f"grpc-gateway (Go): not built ({missing} is missing)" in table
    (workload,) = report["workloads"]
    assert workload["name"] == "get-zipf"
    assert "s=1.2" in workload["title"]
    assert workload["orders"] == [["peer", "gateway", "gateway-unary", "gateway+cache"]]
    assert report["zipf_exponent"] == 1.2
