"""The dashboard's entry point: resolve the login and session secret, then serve on the shared
HTTP bootstrap with the read-only pool opened at start until SIGTERM.

Start-up refuses (one clear line, exit code 2) when a port is taken, the database cannot be
reached or, in production, the password or session secret is missing or well known. Shutdown is
graceful: uvicorn stops accepting, requests in flight get the grace period, then the pool closes.
"""

from __future__ import annotations

import secrets

from panoptic.core.http_server import HttpServerSpec, serve_http
from panoptic.core.logging import get_logger
from panoptic.core.service import PoolHolder
from panoptic.core.settings import (
    DEVELOPMENT_DASHBOARD_PASSWORD,
    DashboardSettings,
    DatabaseSettings,
    MonitoringSettings,
    ServerSettings,
)
from services.dashboard.app import Dashboard, DashboardConfig, build_app
from services.dashboard.auth import Credentials

log = get_logger("panoptic.dashboard")


def dashboard_config(
    settings: DashboardSettings, monitoring: MonitoringSettings
) -> DashboardConfig:
    """The app's configuration; in development, defaults for what is not set."""
    settings.refuse(settings.login_problems())
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
    return DashboardConfig(
        credentials=Credentials(settings.dashboard_user, password),
        session_secret=secret,
        session_seconds=settings.dashboard_session_minutes * 60,
        login_failures_per_minute=settings.dashboard_login_failures_per_minute,
        secure_cookie=settings.secure_cookie,
        statement_timeout=settings.dashboard_statement_timeout_seconds,
        not_indexed_minutes=monitoring.alert_not_indexed_minutes,
    )


def build_spec(
    server: ServerSettings,
    database_settings: DatabaseSettings,
    settings: DashboardSettings,
    monitoring: MonitoringSettings,
) -> HttpServerSpec:
    """The dashboard as the bootstrap runs it: its read-only pool open while it serves."""
    config = dashboard_config(settings, monitoring)
    database = PoolHolder(database_settings, "dashboard", read_only=True)
    on_start, on_stop = database.hooks()
    return HttpServerSpec(
        name="dashboard",
        host=server.bind_host,
        port=settings.dashboard_port,
        metrics_port=settings.dashboard_metrics_port,
        app=lambda: build_app(
            Dashboard(config, lambda: database.pool, reads=lambda: database.reads)
        ),
        on_start=on_start,
        on_stop=on_stop,
        grace_seconds=server.shutdown_grace_seconds,
        serving_fields=lambda: {"user": config.credentials.user},
    )


async def serve(
    server: ServerSettings,
    database: DatabaseSettings,
    settings: DashboardSettings,
    monitoring: MonitoringSettings,
) -> None:
    """Runs the dashboard until SIGTERM or SIGINT."""
    await serve_http(build_spec(server, database, settings, monitoring))
