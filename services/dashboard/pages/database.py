"""The database's health: sizes, row estimates, dead tuples, maintenance, cache, connections and
the slowest statements.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from services.dashboard import queries
from services.dashboard.state import dashboard_of


async def database_page(request: Request) -> Response:
    """Sizes, row estimates, dead tuples, maintenance, cache, connections, slow statements."""
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
        now=datetime.now(UTC),
    )
