"""What several pages share: page sizes, the names shown beside ids, and the message for input
the read model refused.
"""

from __future__ import annotations

from typing import Final

from panoptic.core.refusals import DatabaseUnavailable, DeadlineExceeded, Refusal
from services.dashboard import queries
from services.dashboard.errors import invalid_message
from services.dashboard.state import Dashboard

CLAIMS_PER_PAGE: Final = 25
QUERY_MAX_CHARS: Final = 500


async def display_names(
    dashboard: Dashboard, actor_ids: set[str], topic_ids: set[str]
) -> queries.Names:
    """The display names of these actors and topics."""
    async with dashboard.reading() as connection:
        return await queries.names(connection, actor_ids, topic_ids)


def refused_input(error: Refusal) -> str:
    """What a page shows above its form when the read model refused the input; a read it could
    not finish is no fault of the input and goes on to its own error page."""
    if isinstance(error, DeadlineExceeded | DatabaseUnavailable):
        raise error
    return invalid_message(error)
