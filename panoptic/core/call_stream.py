"""Unary calls carried over one long-lived gRPC stream (`panoptic.v1.CallStreamService`).

A unary call costs grpc.aio about twice the CPU, on each side, of a message and its answer on a
stream that is already open, and every REST read the gateway serves is one unary call to the
retriever. So the gateway keeps one `Exchange` stream on each of its connections and sends each
read there as a `Call`; calls waiting while a message is being written go together in the next
one, and so do replies. Measured in
docs/performance.md#where-an-uncached-getclaims-time-goes-and-the-call-stream.

- **The server** (`CallStreamServicer`, installed by the bootstrap for a spec with
  `call_stream=True`) runs each call through the same handler, interceptors and metrics as the
  unary method it names, with a context that gives the call's deadline and metadata
  (`StreamedCallContext`), and answers with the status and trailing metadata the unary call
  would have had. A call its caller cancels (`cancelled_ids`) is cancelled on the server, as a
  unary call is when its caller goes away. When the server stops, and when a stream has lived
  its time (its connection is not to outlive its age: `grpc_server`), the stream takes no more
  calls, answers those it took and ends; the client opens the next at once.
- **The client** (`CallStreams`) keeps a stream per channel, and the streams take turns by
  message, not by call: calls go to one stream while it has calls waiting to be written, and
  the next call after that to the next stream. Taking turns by call spread a busy gateway's
  calls so thin that a message carried 1.2 calls; by message, 4 to 16.
- The client is a fast path only. A call that a stream cannot carry (none is open, the stream
  broke, the server is older and has no such service) is made as the unary call it stands for,
  with the channel's wait-for-ready and retry policy; a call whose stream ended before its reply
  came is made again that way. Every method the gateway sends is free of side effects, so
  making a call twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc

from panoptic.core.logging import get_logger
from panoptic.core.rpc_status import status_code
from panoptic.v1 import call_stream_pb2, call_stream_pb2_grpc

log = get_logger("panoptic.call_stream")

SERVICE_NAME = call_stream_pb2.DESCRIPTOR.services_by_name["CallStreamService"].full_name
EXCHANGE_PATH = f"/{SERVICE_NAME}/Exchange"
# After a stream failed to open or broke, calls go unary for this long before one is tried
# again: a retriever that is down is not asked for a stream on every request.
REOPEN_PAUSE_SECONDS = 0.5
# Calls a stream may have running at once; more are refused with RESOURCE_EXHAUSTED, as a
# server refuses streams beyond its limit, so that no caller can make a worker hold any number.
MAX_CALLS_IN_FLIGHT = 1_000
# After a server said it has no call stream (an older retriever), how long before asking again.
UNSUPPORTED_PAUSE_SECONDS = 30.0

Metadata = Sequence[tuple[str, str | bytes]]


def _entries(metadata: Iterable[tuple[str, str | bytes]]) -> list[call_stream_pb2.MetadataEntry]:
    return [
        call_stream_pb2.MetadataEntry(
            key=key, value=value if isinstance(value, bytes) else value.encode()
        )
        for key, value in metadata
    ]


def _metadata(entries: Iterable[call_stream_pb2.MetadataEntry]) -> tuple[tuple[str, Any], ...]:
    return tuple(
        (entry.key, entry.value if entry.key.endswith("-bin") else entry.value.decode())
        for entry in entries
    )


# The server's side.


class StreamedCallContext:
    """What a method's handler sees of a call that came on a stream: the part of
    `grpc.aio.ServicerContext` that handlers and interceptors use, with the call's own
    deadline, metadata and status."""

    __slots__ = ("_code", "_deadline", "_details", "_metadata", "_peer", "_trailing")

    def __init__(self, metadata: Metadata, deadline: float | None, peer: str) -> None:
        self._metadata = metadata
        self._deadline = deadline
        self._peer = peer
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._trailing: tuple[tuple[str, Any], ...] = ()

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def peer(self) -> str:
        return self._peer

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def details(self) -> str:
        return self._details

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def trailing_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self._trailing

    def set_trailing_metadata(self, metadata: Metadata) -> None:
        self._trailing = tuple(metadata)

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()
    ) -> None:
        """Ends the call with `code`, as grpc.aio does: trailing metadata given here replaces
        what was set before."""
        if code == grpc.StatusCode.OK:
            raise ValueError("abort() needs a status code other than OK")
        self._code = code
        self._details = details
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        raise grpc.aio.AbortError()

    async def abort_with_status(self, status: grpc.Status) -> None:
        await self.abort(status.code, status.details, status.trailing_metadata)


HandlerLookup = Callable[[str], "grpc.RpcMethodHandler | None"]


class CallStreamServicer(call_stream_pb2_grpc.CallStreamServiceServicer):
    """Runs the calls of each stream as the unary methods they name (`handler_of`)."""

    def __init__(
        self,
        handler_of: HandlerLookup,
        stopping: asyncio.Event,
        *,
        max_seconds: float | None = None,
    ) -> None:
        self._handler_of = handler_of
        self._stopping = stopping
        # How long a stream takes calls; then it answers those it took and ends, as it does
        # when the server stops, and its caller opens another (None: as long as it likes).
        self._max_seconds = max_seconds

    async def Exchange(  # noqa: N802 - named by the proto
        self,
        requests: AsyncIterator[call_stream_pb2.ExchangeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[call_stream_pb2.ExchangeResponse]:
        """Takes calls until the caller closes the stream, the server stops or the stream has
        lived its time; answers each."""
        calls = _StreamCalls(functools.partial(self._run, peer=context.peer()))
        reading = True

        async def take() -> None:
            nonlocal reading
            try:
                async for request in requests:
                    for call in request.calls:
                        calls.start(call)
                    for call_id in request.cancelled_ids:
                        calls.cancel(call_id)
            except asyncio.CancelledError:
                pass  # the server is stopping, or the stream's time is up: answer, then end
            finally:
                reading = False
                await calls.finish()

        def stop_reading(_: object) -> None:
            if reading:
                taking.cancel()

        taking = asyncio.ensure_future(take())
        stop_taking = asyncio.ensure_future(self._stopping.wait())
        stop_taking.add_done_callback(stop_reading)
        aged = None
        if self._max_seconds is not None:
            aged = asyncio.get_running_loop().call_later(self._max_seconds, stop_reading, None)
        try:
            async for response in calls.responses():
                yield response
            await taking  # a malformed message ends the stream with its status from here
        finally:
            stop_taking.cancel()
            if aged is not None:
                aged.cancel()
            taking.cancel()
            calls.cancel_all()

    async def _run(self, call: call_stream_pb2.Call, peer: str) -> call_stream_pb2.Reply:
        """One call's reply: the unary handler's response or status."""
        handler = self._handler_of(call.method)
        if handler is None or not handler.unary_unary:
            return call_stream_pb2.Reply(
                id=call.id,
                code=grpc.StatusCode.UNIMPLEMENTED.value[0],
                message=f"no unary method {call.method[:200]} on this server",
            )
        timeout = call.timeout.ToNanoseconds() / 1e9 if call.HasField("timeout") else None
        deadline = None if timeout is None else time.monotonic() + timeout
        context = StreamedCallContext(_metadata(call.metadata), deadline, peer)
        request = handler.request_deserializer(call.request)
        try:
            async with asyncio.timeout(timeout):
                response = await handler.unary_unary(request, context)
        except grpc.aio.AbortError:
            pass
        except TimeoutError:
            context.set_code(grpc.StatusCode.DEADLINE_EXCEEDED)
            context.set_details("Deadline Exceeded")
        else:
            return call_stream_pb2.Reply(
                id=call.id,
                response=handler.response_serializer(response),
                trailing_metadata=_entries(context.trailing_metadata()),
            )
        code = context.code() or grpc.StatusCode.UNKNOWN
        return call_stream_pb2.Reply(
            id=call.id,
            code=code.value[0],
            message=context.details(),
            trailing_metadata=_entries(context.trailing_metadata()),
        )


class _StreamCalls:
    """The calls one stream has running, by id, and the replies they leave for it to send."""

    def __init__(
        self, run: Callable[[call_stream_pb2.Call], Awaitable[call_stream_pb2.Reply]]
    ) -> None:
        self._run = run
        self._running: dict[int, asyncio.Task[None]] = {}
        # Replies in the order they were done; None after the last.
        self._replies: asyncio.Queue[call_stream_pb2.Reply | None] = asyncio.Queue()

    def start(self, call: call_stream_pb2.Call) -> None:
        """Runs the call, or refuses it when the stream has as many running as it may."""
        if len(self._running) >= MAX_CALLS_IN_FLIGHT:
            self._replies.put_nowait(_too_many(call))
            return
        task = self._running[call.id] = asyncio.ensure_future(self._answer(call))
        task.add_done_callback(functools.partial(self._finished, call.id))

    def cancel(self, call_id: int) -> None:
        """Cancels a running call: its handler sees CancelledError, as a unary call's does when
        its caller goes away, and the interceptors count it CANCELLED. It is not answered."""
        task = self._running.get(call_id)
        if task is not None:
            task.cancel()

    async def finish(self) -> None:
        """Waits for the calls running to be answered, then ends the replies."""
        if self._running:
            await asyncio.wait(set(self._running.values()))
        self._replies.put_nowait(None)

    def cancel_all(self) -> None:
        for task in self._running.values():
            task.cancel()

    async def responses(self) -> AsyncIterator[call_stream_pb2.ExchangeResponse]:
        """Each reply as soon as it is done, those done meanwhile in the same message, until
        `finish` has ended them."""
        while True:
            batch = [await self._replies.get()]
            while not self._replies.empty():
                batch.append(self._replies.get_nowait())
            done = [reply for reply in batch if reply is not None]
            if done:
                yield call_stream_pb2.ExchangeResponse(replies=done)
            if batch[-1] is None:
                return

    async def _answer(self, call: call_stream_pb2.Call) -> None:
        self._replies.put_nowait(await self._run(call))

    def _finished(self, call_id: int, task: asyncio.Task[None]) -> None:
        if self._running.get(call_id) is task:  # not a later call that reused the id
            del self._running[call_id]


def _too_many(call: call_stream_pb2.Call) -> call_stream_pb2.Reply:
    return call_stream_pb2.Reply(
        id=call.id,
        code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        message=f"over {MAX_CALLS_IN_FLIGHT} calls in flight on one stream; wait for replies",
    )


def handler_lookup(
    generic_handlers: Sequence[grpc.GenericRpcHandler],
    wrappers: Sequence[Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]],
) -> HandlerLookup:
    """Finds a method's handler among the server's, wrapped as the server's interceptors wrap
    it (`wrappers`, outermost first); each method's wrapped handler is made once."""
    known: dict[str, grpc.RpcMethodHandler | None] = {}

    def handler_of(method: str) -> grpc.RpcMethodHandler | None:
        if method in known:
            return known[method]
        handler = None
        if method != EXCHANGE_PATH:
            details = _CallDetails(method)
            for generic in generic_handlers:
                handler = generic.service(details)
                if handler is not None:
                    break
        if handler is not None:
            for wrap in reversed(wrappers):
                handler = wrap(method, handler)
        if len(known) < 1_000:  # names are the caller's: remember only so many
            known[method] = handler
        return handler

    return handler_of


class _CallDetails(grpc.HandlerCallDetails):  # type: ignore[misc]
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


# The client's side.


class _Open:
    """One open `Exchange` call: its calls waiting to be sent and those waiting for a reply."""

    def __init__(self, exchange: Any) -> None:
        self.pending: dict[int, asyncio.Future[call_stream_pb2.Reply]] = {}
        self._outbox: list[call_stream_pb2.Call] = []
        self._cancelled: list[int] = []
        self._wake = asyncio.Event()
        self._ended = False
        self._call = exchange(self._requests())

    def gathering(self) -> bool:
        """Whether calls are waiting for the next message (one more would go with them)."""
        return bool(self._outbox)

    def send(self, call: call_stream_pb2.Call) -> asyncio.Future[call_stream_pb2.Reply]:
        reply: asyncio.Future[call_stream_pb2.Reply] = asyncio.get_running_loop().create_future()
        self.pending[call.id] = reply
        self._outbox.append(call)
        self._wake.set()
        return reply

    def cancel(self, call_id: int) -> None:
        """Tells the server that the call's caller no longer waits: a call not sent yet is not
        sent; one sent is cancelled there."""
        unsent = len(self._outbox)
        self._outbox = [call for call in self._outbox if call.id != call_id]
        if len(self._outbox) == unsent and not self._ended:
            self._cancelled.append(call_id)
            self._wake.set()

    async def _requests(self) -> AsyncIterator[call_stream_pb2.ExchangeRequest]:
        """The messages to send: every call, and every cancellation, that came while the
        previous one was written."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._ended:  # gRPC does not stop reading this once the call is over
                return
            calls, self._outbox = self._outbox, []
            cancelled, self._cancelled = self._cancelled, []
            if calls or cancelled:
                yield call_stream_pb2.ExchangeRequest(calls=calls, cancelled_ids=cancelled)

    async def read(self) -> None:
        """Hands each reply to its caller until the stream ends, then fails the calls left."""
        try:
            async for response in self._call:
                for reply in response.replies:
                    waiting = self.pending.pop(reply.id, None)
                    if waiting is not None and not waiting.done():
                        waiting.set_result(reply)
        finally:
            self._call.cancel()
            self._ended = True
            self._wake.set()
            pending, self.pending = self.pending, {}
            for waiting in pending.values():
                if not waiting.done():
                    waiting.set_exception(StreamEnded())


class _Stream:
    """The `Exchange` stream of one channel, opened on demand and again after it ends."""

    def __init__(self, channel: Any) -> None:
        self._exchange = channel.stream_stream(
            EXCHANGE_PATH,
            request_serializer=call_stream_pb2.ExchangeRequest.SerializeToString,
            response_deserializer=call_stream_pb2.ExchangeResponse.FromString,
        )
        self._open: _Open | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed_until = 0.0

    def send(self, call: call_stream_pb2.Call) -> asyncio.Future[call_stream_pb2.Reply] | None:
        """A future of the call's reply, or None when the stream cannot take it now. The future
        fails with `StreamEnded` when the stream ends before the reply comes."""
        if self._open is None:
            if time.monotonic() < self._closed_until:
                return None
            self._open = _Open(self._exchange)
            self._reader = asyncio.ensure_future(self._read(self._open))
        return self._open.send(call)

    def gathering(self) -> bool:
        """Whether calls are waiting to be sent together in the next message."""
        return self._open is not None and self._open.gathering()

    def forget(self, call_id: int) -> None:
        """Stops waiting for a call's reply (its caller has it, or gave up)."""
        if self._open is not None:
            self._open.pending.pop(call_id, None)

    def cancel(self, call_id: int) -> None:
        """Cancels a call whose caller was cancelled, on the server too."""
        if self._open is not None and call_id in self._open.pending:
            self._open.cancel(call_id)

    async def _read(self, opened: _Open) -> None:
        pause = REOPEN_PAUSE_SECONDS
        try:
            await opened.read()
            # Ended by the server (it is stopping, or the stream has lived its time): the next
            # call opens another, which a stopping server refuses.
            pause = 0.0
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                pause = UNSUPPORTED_PAUSE_SECONDS
                log.info("the retriever has no call stream; unary calls", pause_s=pause)
            else:
                log.info("call stream ended", code=error.code().name)
        except Exception:  # whatever broke the stream, its calls are made unary
            log.exception("call stream failed")
        finally:
            if self._open is opened:
                self._open = None
                self._closed_until = time.monotonic() + pause

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


class StreamEnded(Exception):
    """A call's stream ended before its reply came."""


class CallStreams:
    """Calls over one stream per channel, taking turns; `call` makes the unary call instead
    when no stream can carry it."""

    def __init__(self, channels: Sequence[Any]) -> None:
        self._streams = [_Stream(channel) for channel in channels]
        self._turns = itertools.cycle(self._streams)
        self._stream = next(self._turns)
        self._ids = itertools.count(1)

    async def call(
        self,
        method: str,
        request: bytes,
        timeout: float,
        metadata: Metadata,
        parse: Callable[[bytes], Any],
        unary: Callable[[float], Awaitable[Any]],
    ) -> tuple[Any, str]:
        """The response of `method` and its carrier: `stream`, the reply's bytes read by
        `parse`; or `unary`, what `unary(time_left)` answered when no stream carried the call.
        Raises `grpc.aio.AioRpcError` with the call's status when it failed."""
        deadline = time.monotonic() + timeout
        # Calls made while one is waiting to be sent go with it, in one message; the next call
        # takes the next stream: the streams take turns by message, not by call.
        if not self._stream.gathering():
            self._stream = next(self._turns)
        stream = self._stream
        call_id = next(self._ids)
        call = call_stream_pb2.Call(
            id=call_id, method=method, request=request, metadata=_entries(metadata)
        )
        call.timeout.FromNanoseconds(round(timeout * 1e9))
        waiting = stream.send(call)
        if waiting is None:
            return await unary(timeout), "unary"
        try:
            async with asyncio.timeout(timeout):
                reply = await waiting
        except StreamEnded:
            return await unary(max(deadline - time.monotonic(), 0.001)), "unary"
        except TimeoutError:
            # The server times the call by the same timeout: it ends there by itself.
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="Deadline Exceeded",
            ) from None
        except asyncio.CancelledError:
            # As a cancelled unary call is: its handler on the server is cancelled too.
            stream.cancel(call_id)
            raise
        finally:
            stream.forget(call_id)
        if reply.code != 0:
            raise grpc.aio.AioRpcError(
                status_code(reply.code),
                grpc.aio.Metadata(),
                grpc.aio.Metadata(*_metadata(reply.trailing_metadata)),
                details=reply.message,
            )
        return parse(reply.response), "stream"

    async def close(self) -> None:
        """Ends every stream; calls still waiting are made unary."""
        await asyncio.gather(*(stream.close() for stream in self._streams))


__all__ = [
    "EXCHANGE_PATH",
    "SERVICE_NAME",
    "CallStreamServicer",
    "CallStreams",
    "StreamEnded",
    "StreamedCallContext",
    "handler_lookup",
]
