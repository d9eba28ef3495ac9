"""The call stream's client on its own: what it writes on a stream when callers give up. The
whole path over real gRPC is in tests/integration/test_call_stream.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from panoptic.core.call_stream import _Open
from panoptic.v1 import call_stream_pb2


class _Exchange:
    """Stands in for a stream's `Exchange` call: keeps the messages to send, to read them."""

    def __call__(self, requests: AsyncIterator[call_stream_pb2.ExchangeRequest]) -> Any:
        self.requests = requests
        return self


@pytest.mark.asyncio
async def test_a_cancelled_call_is_not_sent_when_still_waiting_and_cancelled_once_sent() -> None:
    exchange = _Exchange()
    opened = _Open(exchange)
    for call_id in (1, 2):
        opened.send(call_stream_pb2.Call(id=call_id, method="/test.Service/Echo"))
    opened.cancel(1)  # still waiting to be written: it never is
    first = await asyncio.wait_for(anext(exchange.requests), 5)
    assert ([call.id for call in first.calls], list(first.cancelled_ids)) == ([2], [])
    opened.cancel(2)  # written: the server is told
    second = await asyncio.wait_for(anext(exchange.requests), 5)
    assert ([call.id for call in second.calls], list(second.cancelled_ids)) == ([], [2])
