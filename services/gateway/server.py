"""The gateway's entry point: load and check the API, then serve it on the shared HTTP bootstrap.

Start-up refuses (one clear line, exit code 2) when the configured services would expose
anything but reads, when the descriptors cannot be loaded, or when a port is taken. Shutdown is
graceful: uvicorn stops accepting, requests in flight get the grace period, then the gRPC
channel closes.
"""

from __future__ import annotations

from collections.abc import Mapping

from panoptic.core.http_server import HttpServerSpec, serve_http
from panoptic.core.settings import GatewaySettings, ServerSettings
from services.gateway.app import build_app
from services.gateway.upstream import Upstream


def build_spec(server: ServerSettings, settings: GatewaySettings) -> HttpServerSpec:
    """The gateway as the bootstrap runs it: its API loaded at start, its channel closed at stop."""
    upstream = Upstream(settings, server)

    def serving_fields() -> Mapping[str, object]:
        surface = upstream.surface
        return {
            "routes": len(surface.routes) if surface is not None else 0,
            "descriptors": settings.gateway_descriptor_source,
        }

    return HttpServerSpec(
        name="gateway",
        host=server.bind_host,
        port=settings.gateway_port,
        metrics_port=settings.gateway_metrics_port,
        app=lambda: build_app(settings, upstream),
        on_start=upstream.start,
        on_stop=upstream.close,
        grace_seconds=server.shutdown_grace_seconds,
        trusted_proxies=settings.gateway_trusted_proxies,
        serving_fields=serving_fields,
    )


async def serve(server: ServerSettings, settings: GatewaySettings) -> None:
    """Runs the gateway until SIGTERM or SIGINT."""
    await serve_http(build_spec(server, settings))
