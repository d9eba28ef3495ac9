"""How a service process runs, and stops when the process that started it goes away.

`up` starts each service in a session of its own, so that a Ctrl-C in the terminal reaches the
supervisor alone, which then stops the services one by one, gracefully. The price is that a
supervisor killed outright (SIGKILL, a crash) cannot stop them; so each service watches its
parent and stops by itself, gracefully, when the supervisor that started it is gone. A worker
process of a service (`core.workers`) watches the service's main process the same way.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from panoptic.core.logging import get_logger

T = TypeVar("T")

# Set by `panoptic up` for the services it starts, and by a service's main process for its
# workers; unset when a service runs alone.
SUPERVISOR_PID_VARIABLE = "PANOPTIC_SUPERVISOR_PID"
# Set in a worker process of a service that runs several (`core.workers`): its number, from 0.
WORKER_INDEX_VARIABLE = "PANOPTIC_WORKER_INDEX"

log = get_logger("panoptic.lifecycle")


class Interrupted(Exception):
    """A command stopped by a signal, once it has stopped what it started."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine on uvloop where available: it serves gRPC faster than asyncio's own loop
    (docs/performance.md#uvloop)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def worker_index() -> int | None:
    """This process's number among its service's workers; None in a service's only process."""
    value = os.environ.get(WORKER_INDEX_VARIABLE, "")
    return int(value) if value.isdigit() else None


def supervisor_pid() -> int | None:
    """The pid of the `panoptic up` that started this process, if one did."""
    value = os.environ.get(SUPERVISOR_PID_VARIABLE, "")
    return int(value) if value.isdigit() else None


async def stop_when_orphaned(stop: Callable[[], None], interval: float = 1.0) -> None:
    """Calls `stop` once the supervisor is no longer this process's parent."""
    expected = supervisor_pid()
    if expected is None:
        return
    while os.getppid() == expected:  # noqa: ASYNC110 - the parent can only be polled
        await asyncio.sleep(interval)
    log.warning("the supervisor is gone; stopping", supervisor_pid=expected)
    stop()
