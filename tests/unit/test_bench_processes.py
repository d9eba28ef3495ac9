"""What the benchmarks read of processes from /proc (listening sockets, CPU time) and how
they keep load generators running."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from panoptic.bench.common import (
    LoadGenerators,
    backend_database,
    cpu_seconds,
    listening_processes,
)


def test_a_process_counts_as_listening_only_on_the_port_it_listens_on() -> None:
    with socket.socket() as listener, socket.socket() as bound_only:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        bound_only.bind(("127.0.0.1", 0))
        port, other = listener.getsockname()[1], bound_only.getsockname()[1]

        assert listening_processes([os.getpid()], port) == 1
        assert listening_processes([os.getpid()], other) == 0
    assert listening_processes([os.getpid()], port) == 0


def test_cpu_time_grows_with_work_and_is_kept_to_the_command_asked_for() -> None:
    pid = os.getpid()
    before = cpu_seconds([pid])[pid]
    started = time.process_time()
    while time.process_time() - started < 0.1:
        pass
    assert cpu_seconds([pid])[pid] >= before + 0.05

    command = Path(f"/proc/{pid}/comm").read_text().strip()
    assert set(cpu_seconds([pid], command=command)) == {pid}
    assert cpu_seconds([pid], command="postgres") == {}


def test_load_generators_run_until_the_block_ends_and_then_stop() -> None:
    """Generators that keep running pass the check; leaving the block stops every one."""
    forever = [sys.executable, "-c", "import time; time.sleep(60)"]
    with LoadGenerators([forever, forever]) as generators:
        generators.check_running()
        pids = generators.pids
    # Stopped and waited for: no process, not even a zombie, is left.
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def test_a_generator_that_stopped_early_fails_the_check_with_its_output() -> None:
    """A generator that exits before the window ends (it could not connect, say) means the
    window's load was not sustained: the check says so, with what the generator printed."""
    forever = [sys.executable, "-c", "import time; time.sleep(60)"]
    failing = [
        sys.executable,
        "-c",
        "import sys; print('connect to 127.0.0.1 failed'); sys.exit(1)",
    ]
    with LoadGenerators([forever, failing]) as generators:
        # Until the failing one has exited, leaving it for the check to reap.
        os.waitid(os.P_PID, generators.pids[1], os.WEXITED | os.WNOWAIT)
        with pytest.raises(RuntimeError, match=r"exit status 1\):\nconnect to 127.0.0.1 failed"):
            generators.check_running()


@pytest.mark.parametrize(
    ("title", "database"),
    [
        ("postgres: panoptic_retriever panoptic_bench_read [local] idle ", "panoptic_bench_read"),
        ("postgres: 15/main: panoptic bench 127.0.0.1(50412) SELECT ", "bench"),
        ("postgres: checkpointer ", None),
        ("postgres: 15/main: walwriter ", None),
        ("postgres: io worker 0 ", None),
        ("python -m panoptic retriever", None),
    ],
)
def test_a_backend_is_known_by_the_database_in_its_title(title: str, database: str | None) -> None:
    """Client backends name user, database, client and activity, behind the cluster's name
    when it has one; the server's own processes name no database."""
    assert backend_database(title) == database
