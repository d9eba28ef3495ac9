"""The dashboard's entry point: resolve the login and session secret, open the read-only pool,
then serve with uvicorn until SIGTERM.

Start-up refuses (one clear line, exit code 2) when a port is taken, the database cannot be
reached or, in production, the password or session secret is missing or well known. Shutdown is
graceful: uvicorn stops accepting, requests in flight get the grace period, then the pool closes.
"""

from __future__ import annotations

import secrets

from panoptic.core.http_server import GracefulServer, http_config
from panoptic.core.logging import get_logger
from panoptic.core.metrics import start_metrics_server
from panoptic.core.ports import check_port_free
from panoptic.core.service import PoolHolder
from panoptic.core.settings import DEVELOPMENT_DASHBOARD_PASSWORD, Environment, Settings
from services.dashboard.app import Dashboard, DashboardConfig, build_app
from services.dashboard.auth import Credentials

log = get_logger("panoptic.dashboard")


def dashboard_config(settings: Settings) -> DashboardConfig:
    """The app's configuration; in development, defaults for what is not set."""
    settings.require_production_ready(database="dashboard", dashboard=True)
    password = (
        settings.dashboard_password.get_secret_value()
        if settings.dashboard_password is not None
        else DEVELOPMENT_DASHBOARD_PASSWORD
    )
    if settings.dashboard_password is None:
        log.warning(
            "dashboard login uses the development default; set PANOPTIC_DASHBOARD_PASSWORD",
            user=settings.dashboard_user,
        )
    secret = (
        settings.dashboard_session_secret.get_secret_value()
        if settings.dashboard_session_secret is not None
        else secrets.token_urlsafe(32)  # development: sessions last as long as the process
    )
    secure = settings.dashboard_secure_cookie
    return DashboardConfig(
        credentials=Credentials(settings.dashboard_user, password),
        session_secret=secret,
        session_seconds=settings.dashboard_session_minutes * 60,
        login_failures_per_minute=settings.dashboard_login_failures_per_minute,
        secure_cookie=secure if secure is not None else settings.env is Environment.PRODUCTION,
        statement_timeout=settings.dashboard_statement_timeout_seconds,
        not_indexed_minutes=settings.alert_not_indexed_minutes,
    )


async def serve(settings: Settings) -> None:
    """Runs the dashboard until SIGTERM or SIGINT."""
    config = dashboard_config(settings)
    check_port_free(
        settings.bind_host, settings.dashboard_port, "dashboard HTTP", "PANOPTIC_DASHBOARD_PORT"
    )
    database = PoolHolder(settings, "dashboard", read_only=True)
    await database.open()
    try:
        metrics_server = start_metrics_server(
            settings.bind_host, settings.dashboard_metrics_port, "dashboard"
        )
        try:
            app = build_app(Dashboard(config, lambda: database.pool))
            server = GracefulServer(
                http_config(
                    app,
                    host=settings.bind_host,
                    port=settings.dashboard_port,
                    grace_seconds=settings.shutdown_grace_seconds,
                ),
                "dashboard",
            )
            log.info(
                "serving",
                service="dashboard",
                address=f"{settings.bind_host}:{settings.dashboard_port}",
                metrics_port=settings.dashboard_metrics_port,
                user=config.credentials.user,
            )
            await server.serve()
        finally:
            metrics_server.shutdown()
    finally:
        await database.close()
        log.info("stopped", service="dashboard")
