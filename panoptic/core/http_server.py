"""Serving an ASGI app with uvicorn the way every Panoptic HTTP service does.

`HttpServerSpec` and `serve_http` are the HTTP counterpart of the gRPC bootstrap
(`panoptic.core.grpc_server`): the port checked before anything opens, the service's resources
opened, `/metrics` served, then httptools with no access log (`http_observability` logs one
summary line per request), no Server header, and a graceful stop on SIGTERM or SIGINT: uvicorn
stops accepting, requests in flight get the grace period, the resources close, and the process
exits 0 as the gRPC services do.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from panoptic.core.lifecycle import stop_when_orphaned
from panoptic.core.logging import get_logger
from panoptic.core.metrics import start_metrics_server
from panoptic.core.ports import check_port_free

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

    `trusted_proxies` (comma-separated IPs and CIDR networks, "*" for any) are the proxies
    whose X-Forwarded-For names the client; none by default. uvicorn reads the networks itself.
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


def _no_fields() -> Mapping[str, object]:
    return {}


@dataclass(frozen=True)
class HttpServerSpec:
    """What an HTTP service brings to `serve_http`, as `GrpcServerSpec` is for gRPC."""

    name: str
    """Short service name for logs, metrics and the port variables, e.g. `gateway`."""
    host: str
    port: int
    metrics_port: int
    app: Callable[[], ASGIApp]
    """Builds the ASGI app, once `on_start` has opened what it needs."""
    on_start: Callable[[], Awaitable[object]] | None = None
    """Opens the service's resources (a pool, a channel) before it accepts requests."""
    on_stop: Callable[[], Awaitable[object]] | None = None
    """Closes them after the last request, or after a failed start (so it must accept what
    `on_start` left half open, or never opened)."""
    grace_seconds: float = 10.0
    trusted_proxies: str = ""
    """Comma-separated IPs and CIDR networks ("*" for any) whose X-Forwarded-For names the
    client."""
    serving_fields: Callable[[], Mapping[str, object]] = _no_fields
    """What the service adds to its "serving" log line, asked once it has started."""

    def check_port_free(self) -> None:
        """Raises `PortInUse`, naming the variable that moves it, when the HTTP port is taken."""
        check_port_free(
            self.host, self.port, f"{self.name} HTTP", f"PANOPTIC_{self.name.upper()}_PORT"
        )

    async def stop(self) -> None:
        """Runs `on_stop`, if any."""
        if self.on_stop is not None:
            await self.on_stop()


async def serve_http(spec: HttpServerSpec) -> None:
    """Runs the service until SIGTERM or SIGINT, then stops it gracefully.

    A start that fails (a port taken, resources that do not open) closes what it opened and
    raises; `panoptic`'s command line turns that into one line and exit code 2.
    """
    try:
        spec.check_port_free()
        if spec.on_start is not None:
            await spec.on_start()
        metrics_server = start_metrics_server(spec.host, spec.metrics_port, spec.name)
    except BaseException:
        await spec.stop()
        raise
    try:
        config = http_config(
            spec.app(),
            host=spec.host,
            port=spec.port,
            grace_seconds=spec.grace_seconds,
            trusted_proxies=spec.trusted_proxies,
        )
        log.info(
            "serving",
            service=spec.name,
            address=f"{spec.host}:{spec.port}",
            metrics_port=spec.metrics_port,
            **spec.serving_fields(),
        )
        await GracefulServer(config, spec.name).serve()
    finally:
        await spec.stop()
        metrics_server.shutdown()
        log.info("stopped", service=spec.name)


__all__ = ["GracefulServer", "HttpServerSpec", "http_config", "serve_http"]
