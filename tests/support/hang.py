"""A handler's wait that never ends by itself, for tests of who cancels it."""

from __future__ import annotations

import asyncio


class Hang:
    """Awaited, waits until cancelled; says when it began and whether it was cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
