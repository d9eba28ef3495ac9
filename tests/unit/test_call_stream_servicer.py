"""The call stream's server side on its own: its limit of calls in flight, its end when the
server stops, and the context its calls' handlers see. The whole path over real gRPC is in
tests/integration/test_call_stream.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from panoptic.core import call_stream
from panoptic.core.call_stream import CallStreamServicer, StreamedCallContext
from panoptic.v1 import call_stream_pb2
from tests.support.hang import Hang

METHOD = "/test.Service/Echo"


class _Peer:
    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"


def _echo(release: asyncio.Event) -> grpc.RpcMethodHandler:
    """A method that echoes its request once `release` is set."""

    async def echo(request: bytes, context: Any) -> bytes:
        await release.wait()
        return request

    return grpc.unary_unary_rpc_method_handler(echo, bytes, bytes)


def _servicer(
    release: asyncio.Event, stopping: asyncio.Event, max_seconds: float | None = None
) -> CallStreamServicer:
    """A server whose one method, `METHOD`, is `_echo`."""
    handler = _echo(release)
    return CallStreamServicer(
        lambda method: handler if method == METHOD else None, stopping, max_seconds=max_seconds
    )


async def _requests(
    batches: list[list[int]], hold: asyncio.Event
) -> AsyncIterator[call_stream_pb2.ExchangeRequest]:
    """The batches of calls, then (until `hold` is set) nothing more, then the end."""
    for ids in batches:
        yield call_stream_pb2.ExchangeRequest(
            calls=[call_stream_pb2.Call(id=n, method=METHOD, request=b"%d" % n) for n in ids]
        )
    await hold.wait()


@pytest.mark.asyncio
async def test_calls_beyond_the_limit_in_flight_are_refused_and_the_rest_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(call_stream, "MAX_CALLS_IN_FLIGHT", 3)
    release, stopping, hold = asyncio.Event(), asyncio.Event(), asyncio.Event()
    stream = _servicer(release, stopping).Exchange(_requests([[1, 2, 3, 4, 5]], hold), _Peer())
    refused = await anext(stream)
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert [(reply.id, reply.code) for reply in refused.replies] == [(4, exhausted), (5, exhausted)]
    assert "over 3 calls in flight" in refused.replies[0].message
    release.set()
    answered = await anext(stream)
    assert {(reply.id, reply.code, reply.response) for reply in answered.replies} == {
        (1, 0, b"1"),
        (2, 0, b"2"),
        (3, 0, b"3"),
    }
    hold.set()
    assert [response async for response in stream] == []


@pytest.mark.asyncio
@pytest.mark.parametrize("ending", ["the server stops", "the stream has lived its time"])
async def test_a_stream_ends_by_answering_the_calls_it_took(ending: str) -> None:
    """When the server stops, or a stream has lived the time the server gives one, the stream
    takes no more calls, answers those it took, and ends."""
    release, stopping, hold = asyncio.Event(), asyncio.Event(), asyncio.Event()
    aged = ending == "the stream has lived its time"
    servicer = _servicer(release, stopping, max_seconds=0.05 if aged else None)
    stream = servicer.Exchange(_requests([[1, 2]], hold), _Peer())
    following = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.01)  # let the stream take both calls
    if ending == "the server stops":
        stopping.set()
    await asyncio.sleep(0.1)
    assert not following.done()  # the calls taken are still running: no reply, no end yet
    release.set()
    answered = await following
    assert sorted(reply.id for reply in answered.replies) == [1, 2]
    assert [response async for response in stream] == []  # ended though `hold` never was set


@pytest.mark.asyncio
async def test_an_unknown_method_is_unimplemented() -> None:
    servicer = _servicer(asyncio.Event(), asyncio.Event())

    async def one() -> AsyncIterator[call_stream_pb2.ExchangeRequest]:
        yield call_stream_pb2.ExchangeRequest(
            calls=[call_stream_pb2.Call(id=7, method="/test.Service/Other")]
        )

    (response,) = [r async for r in servicer.Exchange(one(), _Peer())]
    unimplemented = grpc.StatusCode.UNIMPLEMENTED.value[0]
    assert [(r.id, r.code) for r in response.replies] == [(7, unimplemented)]


DETAILS = (("grpc-status-details-bin", b"\x08\x0d"),)


@dataclass(frozen=True)
class _Status(grpc.Status):  # type: ignore[misc]
    """A `grpc.Status` as grpc_status.rpc_status.to_status makes them."""

    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


@pytest.mark.asyncio
async def test_the_context_aborts_as_grpc_aio_does() -> None:
    """`abort` raises AbortError; trailing metadata given to it replaces what was set, none
    keeps it; OK is not a status to abort with; the deadline counts down to zero."""
    context = StreamedCallContext((("x-request-id", "r"),), deadline=None, peer="p")
    assert context.time_remaining() is None
    context.set_trailing_metadata((("x-request-id", "r"),))
    with pytest.raises(grpc.aio.AbortError):
        await context.abort(grpc.StatusCode.NOT_FOUND, "gone")
    assert context.trailing_metadata() == (("x-request-id", "r"),)
    assert (context.code(), context.details()) == (grpc.StatusCode.NOT_FOUND, "gone")
    with pytest.raises(grpc.aio.AbortError):
        await context.abort_with_status(_Status(grpc.StatusCode.INTERNAL, "x", DETAILS))
    assert context.trailing_metadata() == DETAILS
    with pytest.raises(ValueError, match="other than OK"):
        await context.abort(grpc.StatusCode.OK)
    spent = StreamedCallContext((), deadline=0.0, peer="p")
    assert spent.time_remaining() == 0.0


@pytest.mark.asyncio
async def test_a_call_its_caller_cancels_is_cancelled_and_never_answered() -> None:
    """A cancelled id cancels its call's handler, which sees CancelledError as a unary call's
    handler does when its caller goes away; the other calls are answered, unknown ids ignored."""
    hang, released = Hang(), asyncio.Event()
    released.set()

    async def slow(request: bytes, context: Any) -> bytes:
        await hang()
        return request

    handlers = {
        "/test.Service/Slow": grpc.unary_unary_rpc_method_handler(slow, bytes, bytes),
        METHOD: _echo(released),
    }
    servicer = CallStreamServicer(handlers.get, asyncio.Event())
    sent: asyncio.Queue[call_stream_pb2.ExchangeRequest | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[call_stream_pb2.ExchangeRequest]:
        while (request := await sent.get()) is not None:
            yield request

    stream = servicer.Exchange(requests(), _Peer())
    sent.put_nowait(
        call_stream_pb2.ExchangeRequest(
            calls=[call_stream_pb2.Call(id=1, method="/test.Service/Slow", request=b"1")]
        )
    )
    following = asyncio.ensure_future(anext(stream))
    await asyncio.wait_for(hang.started.wait(), 5)
    sent.put_nowait(
        call_stream_pb2.ExchangeRequest(
            calls=[call_stream_pb2.Call(id=2, method=METHOD, request=b"2")],
            cancelled_ids=[1, 99],
        )
    )
    answered = await asyncio.wait_for(following, 5)
    assert [(reply.id, reply.code, reply.response) for reply in answered.replies] == [(2, 0, b"2")]
    await asyncio.wait_for(hang.cancelled.wait(), 5)
    sent.put_nowait(None)
    assert [response async for response in stream] == []  # nothing ever for call 1
