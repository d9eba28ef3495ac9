"""`panoptic up --with-monitoring`: the suite plus a Prometheus with the alert rules."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import (
    PanopticProcess,
    free_port,
    run_panoptic,
    service_env,
    wait_for,
)

pytestmark = pytest.mark.slow


def _api(port: str, path: str) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]


def _answers(port: str) -> bool:
    try:
        _api(port, "status/buildinfo")
    except OSError:
        return False
    return True


def test_without_prometheus_it_says_how_to_install_it(tmp_path: Path) -> None:
    """With no `prometheus` on PATH, `up --with-monitoring` stops before starting anything,
    with one line saying how to install it."""
    env = service_env("", tmp_path / "data")
    del env["DATABASE_URL"]
    env["PATH"] = str(Path(sys.executable).parent)
    result = run_panoptic("up", "--with-monitoring", "--no-demo", env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "prometheus is not installed" in lines[0]
    assert "make system-deps" in lines[0]
    assert not (tmp_path / "data" / "postgres").exists()


@pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus is not installed (Debian package `prometheus`; `make system-deps`)",
)
def test_up_with_monitoring_scrapes_the_suite_and_stops_with_it(tmp_path: Path) -> None:
    """Prometheus scrapes every service `up` runs, evaluates the rules with the configured
    ClaimsNotIndexed window, and stops when the suite stops."""
    env = service_env("", tmp_path / "data")
    del env["DATABASE_URL"]
    port = str(free_port())
    env.update(PANOPTIC_PROMETHEUS_PORT=port, PANOPTIC_ALERT_NOT_INDEXED_MINUTES="0.5")
    up = PanopticProcess(("up", "--with-monitoring", "--no-demo"), env, tmp_path / "up.log")
    up.start()
    try:

        def ready() -> bool:
            if up.process.poll() is not None:
                raise AssertionError(f"panoptic up exited early:\n{up.output}")
            return "Panoptic is ready" in up.output

        wait_for(ready, timeout=120)
        assert f"prometheus      http://127.0.0.1:{port}" in up.output

        def scraped() -> set[str]:
            targets = _api(port, "targets")["activeTargets"]
            return {target["labels"]["job"] for target in targets if target["health"] == "up"}

        wait_for(lambda: {"indexer", "retriever"} <= scraped(), timeout=40, interval=0.5)
        window_query = "query?query=panoptic:claims_not_indexed_window_seconds"
        wait_for(lambda: bool(_api(port, window_query)["result"]), timeout=40, interval=0.5)
        assert float(_api(port, window_query)["result"][0]["value"][1]) == 30
        loaded = {
            rule["name"] for group in _api(port, "rules")["groups"] for rule in group["rules"]
        }
        assert {"ClaimsNotIndexed", "IndexerDown", "RetrieverDown"} <= loaded
    finally:
        code = up.stop(signal.SIGTERM)
    assert code == 0, up.output
    assert not _answers(port), "Prometheus outlived the suite"
    assert os.path.exists(tmp_path / "data" / "monitoring" / "prometheus.yml")
