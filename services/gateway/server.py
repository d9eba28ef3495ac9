"""The gateway's entry point: load and check the API, then serve it with uvicorn until SIGTERM.

Start-up refuses (one clear line, exit code 2) when the configured services would expose
anything but reads, when the descriptors cannot be loaded, or when a port is taken. Shutdown is
graceful: uvicorn stops accepting, requests in flight get the grace period, then the gRPC
channel closes.
"""

from __future__ import annotations

from panoptic.core.http_server import GracefulServer, http_config
from panoptic.core.logging import get_logger
from panoptic.core.metrics import start_metrics_server
from panoptic.core.ports import check_port_free
from panoptic.core.settings import Settings
from services.gateway.app import build_app
from services.gateway.upstream import Upstream

log = get_logger("panoptic.gateway")


async def serve(settings: Settings) -> None:
    """Runs the gateway until SIGTERM or SIGINT."""
    check_port_free(
        settings.bind_host, settings.gateway_port, "gateway HTTP", "PANOPTIC_GATEWAY_PORT"
    )
    upstream = Upstream(settings)
    try:
        surface = await upstream.start()
    except BaseException:
        await upstream.close()
        raise
    metrics_server = start_metrics_server(
        settings.bind_host, settings.gateway_metrics_port, "gateway"
    )
    config = http_config(
        build_app(settings, upstream),
        host=settings.bind_host,
        port=settings.gateway_port,
        grace_seconds=settings.shutdown_grace_seconds,
        trusted_proxies=settings.gateway_trusted_proxies,
    )
    server = GracefulServer(config, "gateway")
    log.info(
        "serving",
        service="gateway",
        address=f"{settings.bind_host}:{settings.gateway_port}",
        metrics_port=settings.gateway_metrics_port,
        routes=len(surface.routes),
        descriptors=settings.gateway_descriptor_source,
    )
    try:
        await server.serve()
    finally:
        await upstream.close()
        metrics_server.shutdown()
        log.info("stopped", service="gateway")
