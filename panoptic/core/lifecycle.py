"""Services started by `panoptic up` stop when their supervisor goes away.

`up` starts each service in a session of its own, so that a Ctrl-C in the terminal reaches the
supervisor alone, which then stops the services one by one, gracefully. The price is that a
supervisor killed outright (SIGKILL, a crash) cannot stop them; so each service watches its
parent and stops by itself, gracefully, when the supervisor that started it is gone.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from panoptic.core.logging import get_logger

# Set by `panoptic up` for the services it starts; unset when a service runs alone.
SUPERVISOR_PID_VARIABLE = "PANOPTIC_SUPERVISOR_PID"

log = get_logger("panoptic.lifecycle")


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
