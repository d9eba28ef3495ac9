"""Benchmarks stopped by a signal clean up: SIGTERM (what `timeout`, a CI runner or a container
stop sends) as SIGINT (Ctrl-C) leaves no process and no throwaway database behind.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.processes import PanopticProcess, free_port, service_env, wait_for

pytestmark = pytest.mark.slow

# The smallest run of each command that starts servers; it is stopped long before its end.
COMMANDS = {
    "ingest": (
        "bench", "ingest", "--claims", "1000", "--rounds", "1", "--streams", "1",
        "--port", str(free_port()), "--metrics-port", str(free_port()),
    ),
    "read": ("bench", "read", "--scales", "1000", "--calls", "10", "--throughput-rounds", "1",
             "--throughput-seconds", "0.2", "--in-flight", "1"),
    "gateway": ("bench", "gateway", "--claims", "100", "--rounds", "1", "--seconds", "1",
                "--connections", "1"),
    "report": ("bench", "report", "--quick", "--scales", "1000", "--calls", "10"),
}  # fmt: skip


def postgres_in(directory: Path) -> list[psutil.Process]:
    """The PostgreSQL processes running on a data directory under `directory`."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(directory) in command:
            found.append(process)
    return found


def services_of(process: psutil.Process) -> list[psutil.Process]:
    """The `panoptic <service>` processes a benchmark has started."""
    with_services = []
    for child in process.children(recursive=True):
        try:
            if "panoptic" in child.cmdline():
                with_services.append(child)
        except psutil.Error:
            continue
    return with_services


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `processes` still running (a zombie has ended)."""
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            continue
    return running


@pytest.fixture
def leftovers() -> Iterator[list[psutil.Process]]:
    """Processes the test saw; any still running at the end are killed (by PID)."""
    seen: list[psutil.Process] = []
    yield seen
    for process in alive(seen):
        process.kill()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_benchmark_stopped_by_a_signal_leaves_no_process_or_database(
    command: str, signum: int, tmp_path: Path, leftovers: list[psutil.Process]
) -> None:
    """Signalled once its embedded PostgreSQL and a service run, a benchmark exits, and none
    of the processes it started (children, grandchildren, its PostgreSQL) nor its throwaway
    data directory is left."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**service_env("", tmp_path / "data"), "TMPDIR": str(scratch)}
    del env["DATABASE_URL"]  # a throwaway embedded PostgreSQL
    bench = PanopticProcess(COMMANDS[command], env, tmp_path / "bench.log").start()
    root = psutil.Process(bench.process.pid)

    def started() -> bool:
        if bench.process.poll() is not None:
            raise AssertionError(f"the benchmark ended early:\n{bench.output}")
        return bool(postgres_in(scratch)) and bool(services_of(root))

    try:
        wait_for(started, timeout=120, interval=0.2)
        leftovers.extend([*root.children(recursive=True), *postgres_in(scratch)])
    finally:
        code = bench.stop(signum, timeout=90)
    assert code != 0, bench.output
    assert not alive(leftovers), (alive(leftovers), bench.output)
    assert not postgres_in(scratch), bench.output
    assert not list(scratch.iterdir()), bench.output
