"""Serving a Starlette app with uvicorn the way every Panoptic HTTP service does.

httptools, no access log (each app logs one summary line per request itself), no Server
header, and a graceful stop on SIGTERM or SIGINT: uvicorn stops accepting, requests in flight
get the grace period, and the process then exits 0 as the gRPC services do.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from panoptic.core.lifecycle import stop_when_orphaned
from panoptic.core.logging import get_logger

log = get_logger("panoptic.http")


class GracefulServer(uvicorn.Server):
    """uvicorn's server, with SIGTERM and SIGINT handled by our loop instead of re-raised.

    uvicorn re-raises a captured signal after its graceful shutdown, which would end the process
    with the signal instead of exit code 0. A second signal forces the exit.
    """

    def __init__(self, config: uvicorn.Config, service: str) -> None:
        super().__init__(config)
        self.service = service

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Routes SIGTERM and SIGINT to a graceful stop for the duration of `serve`."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop)
        orphan_watch = asyncio.ensure_future(stop_when_orphaned(self._stop))
        try:
            yield
        finally:
            orphan_watch.cancel()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    def _stop(self) -> None:
        if self.should_exit:
            self.force_exit = True
        else:
            log.info(
                "stopping",
                service=self.service,
                grace_seconds=self.config.timeout_graceful_shutdown,
            )
        self.should_exit = True


def http_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    grace_seconds: float,
    trusted_proxies: str = "",
) -> uvicorn.Config:
    """uvicorn's configuration for a Panoptic HTTP service.

    `trusted_proxies` (comma-separated IPs, "*" for any) are the proxies whose
    X-Forwarded-For names the client; none by default.
    """
    trusted = trusted_proxies.strip()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        timeout_graceful_shutdown=max(1, int(grace_seconds)),
        timeout_keep_alive=30,
    )
