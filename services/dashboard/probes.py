"""The dashboard's probes, served without a session: liveness, and readiness (the database
answers on the dashboard's role).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from panoptic.core.db import DATABASE_FAILURES
from services.dashboard.state import dashboard_of


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    """Readiness: the database answers on the dashboard's role."""
    try:
        async with dashboard_of(request).pool().acquire(timeout=2) as connection:
            await connection.fetchval("SELECT 1", timeout=2)
    except (RuntimeError, *DATABASE_FAILURES):  # RuntimeError: the pool is not open yet
        return PlainTextResponse("database unavailable\n", 503)
    return PlainTextResponse("ok\n")
