"""The database's health: sizes, row estimates, dead tuples, maintenance, cache, connections,
the slowest statements, and the replicas the claim pages read from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from panoptic.core.replicas import ReadRouter, Server
from services.dashboard import queries
from services.dashboard.state import dashboard_of


@dataclass(frozen=True)
class ReadServer:
    """A server the claim pages read from, as this process's router last saw it."""

    name: str
    is_primary: bool
    serving: bool
    # While a replica is taken out: "failed" (it did not answer, or is no standby) or "lagging".
    out_because: str | None
    # None: not known (the primary; a replica that has not answered a check yet, or has failed).
    lag_seconds: float | None
    lag_bytes: int | None
    reads_served: int


def read_servers(router: ReadRouter) -> list[ReadServer]:
    """The router's replicas in the order configured, then the primary."""

    def seen(server: Server) -> ReadServer:
        answering = server.serving or server.out_because == "lagging"
        measured = not server.is_primary and answering and not math.isinf(server.lag_seconds)
        return ReadServer(
            name=server.name,
            is_primary=server.is_primary,
            serving=server.serving,
            out_because=None if server.serving else server.out_because,
            lag_seconds=server.lag_seconds if measured else None,
            lag_bytes=server.lag_bytes if measured else None,
            reads_served=server.reads_served,
        )

    return [seen(server) for server in (*router.replicas, router.primary)]


async def database_page(request: Request) -> Response:
    """Sizes, row estimates, dead tuples, maintenance, cache, connections, slow statements,
    and how reads are routed to the replicas."""
    dashboard = dashboard_of(request)
    statement_order = request.query_params.get("statements", "mean")
    if statement_order not in queries.STATEMENT_ORDERS:
        statement_order = "mean"
    async with dashboard.reading() as connection:
        server = await queries.server_info(connection)
        tables = await queries.table_health(connection)
        indexes = await queries.index_health(connection)
        sessions = await queries.connections(connection)
        statements = await queries.slowest_statements(connection, 15, statement_order)
    router = dashboard.routing()
    return dashboard.render(
        request,
        "database.html",
        section="database",
        server=server,
        tables=tables,
        indexes=indexes,
        sessions=sessions,
        statements=statements,
        statement_order=statement_order,
        read_servers=read_servers(router) if router.replicas else [],
        max_lag_seconds=router.max_lag_seconds,
        now=datetime.now(UTC),
    )
