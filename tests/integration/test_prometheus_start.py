"""`monitoring.start_prometheus` leaves no Prometheus behind when its start does not finish."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import psutil
import pytest

from panoptic.core.settings import Settings
from panoptic.suite import monitoring
from panoptic.suite.monitoring import MonitoringUnavailable
from tests.support.processes import free_port

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="prometheus is not installed (Debian package `prometheus`; `make system-deps`)",
    ),
]

# Prometheus listens on 127.0.0.1; its readiness is asked of another loopback address, where
# nothing answers, so the start waits for as long as the test wants.
UNANSWERED_HOST = "127.0.0.2"


def _settings(tmp_path: Path) -> Settings:
    return Settings().model_copy(
        update={"data_dir": tmp_path, "bind_host": "127.0.0.1", "prometheus_port": free_port()}
    )


def _prometheus_children() -> list[psutil.Process]:
    return [child for child in psutil.Process().children() if child.name() == "prometheus"]


async def test_a_cancelled_start_stops_prometheus(tmp_path: Path) -> None:
    """Ctrl-C during `up --with-monitoring`'s start cancels the wait: the process goes too."""
    starting = asyncio.ensure_future(
        monitoring.start_prometheus(_settings(tmp_path), {"indexer": 1}, UNANSWERED_HOST)
    )
    for _ in range(100):
        await asyncio.sleep(0.05)
        if _prometheus_children():
            break
    started = _prometheus_children()
    assert started, "Prometheus did not start"
    assert not starting.done()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert not any(process.is_running() and process.status() != "zombie" for process in started)


async def test_a_start_that_times_out_stops_prometheus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Prometheus never ready is given up on, stopped, and reported with its log's path."""
    monkeypatch.setattr(monitoring, "READY_TIMEOUT_SECONDS", 1.0)
    with pytest.raises(MonitoringUnavailable, match=r"not ready after 1 s; its log is .*"):
        await monitoring.start_prometheus(_settings(tmp_path), {"indexer": 1}, UNANSWERED_HOST)
    assert not _prometheus_children()
