"""What the benchmarks read of processes from /proc: listening sockets and CPU time."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from panoptic.bench.common import cpu_seconds, listening_processes


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
