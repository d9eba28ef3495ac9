"""Calls on a call stream (`panoptic.core.call_stream`): a real retriever answers each as the
unary method it names, and the gateway's client falls back to unary calls where no stream can
carry one. Everything runs on loopback: a `panoptic retriever` process, and, for the client's
fallbacks, small grpc.aio servers of the test's own.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2, status_pb2

from panoptic.core.call_stream import EXCHANGE_PATH, CallStreams, CallStreamServicer
from panoptic.v1 import (
    call_stream_pb2,
    resources_pb2,
    retriever_service_pb2,
)
from tests.support.gateway import GatewayCorpus, running_stack
from tests.support.hang import Hang
from tests.support.indexer import scrape, value
from tests.support.processes import free_port, start_grpc_service, wait_for

pytestmark = pytest.mark.slow
api = retriever_service_pb2
GET_CLAIM = "/panoptic.v1.RetrieverService/GetClaim"
LIST_CLAIMS = "/panoptic.v1.RetrieverService/ListClaims"
STATUS_DETAILS = "grpc-status-details-bin"


def call(
    call_id: int, method: str, request: bytes, timeout: float | None = 5.0
) -> call_stream_pb2.Call:
    message = call_stream_pb2.Call(
        id=call_id,
        method=method,
        request=request,
        metadata=[call_stream_pb2.MetadataEntry(key="x-request-id", value=b"req-%d" % call_id)],
    )
    if timeout is not None:
        message.timeout.FromNanoseconds(round(timeout * 1e9))
    return message


async def exchange(
    channel: grpc.aio.Channel, calls: Sequence[call_stream_pb2.Call]
) -> dict[int, call_stream_pb2.Reply]:
    """Sends the calls in one message and returns every reply, by call id."""
    stream = channel.stream_stream(
        EXCHANGE_PATH,
        request_serializer=call_stream_pb2.ExchangeRequest.SerializeToString,
        response_deserializer=call_stream_pb2.ExchangeResponse.FromString,
    )()
    await stream.write(call_stream_pb2.ExchangeRequest(calls=calls))
    replies: dict[int, call_stream_pb2.Reply] = {}
    while len(replies) < len(calls):
        response = await stream.read()
        assert response is not grpc.aio.EOF
        replies.update((reply.id, reply) for reply in response.replies)
    await stream.done_writing()
    assert await stream.read() is grpc.aio.EOF
    assert await stream.code() == grpc.StatusCode.OK
    return replies


def trailer(reply: call_stream_pb2.Reply, key: str) -> bytes | None:
    return next((entry.value for entry in reply.trailing_metadata if entry.key == key), None)


def rich_status(reply: call_stream_pb2.Reply) -> tuple[str, list[str]]:
    """The reply's ErrorInfo reason and the fields its BadRequest names."""
    raw = trailer(reply, STATUS_DETAILS)
    assert raw is not None
    status = status_pb2.Status.FromString(raw)
    assert (status.code, status.message) == (reply.code, reply.message)
    reason, fields = "", []
    for container in status.details:
        if container.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            container.Unpack(info)
            reason = info.reason
        elif container.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            container.Unpack(bad)
            fields = [violation.field for violation in bad.field_violations]
    return reason, fields


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def channel(corpus: GatewayCorpus, retriever: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(retriever) as opened:
        yield opened


# --- the server's side: a real retriever -------------------------------------------------------


@pytest.mark.asyncio
async def test_calls_on_a_stream_answer_exactly_as_unary_calls(
    channel: grpc.aio.Channel, corpus: GatewayCorpus
) -> None:
    """A found claim, a missing one (NOT_FOUND with its ErrorInfo), a malformed id
    (INVALID_ARGUMENT naming `claimId`) and a page of ListClaims, sent together on one stream:
    each reply carries the bytes, code, message and rich status the unary call answers."""
    requests = [
        (GET_CLAIM, api.GetClaimRequest(claim_id=corpus.claim(1))),
        (GET_CLAIM, api.GetClaimRequest(claim_id=f"{corpus.prefix}-missing")),
        (GET_CLAIM, api.GetClaimRequest(claim_id="not an id!")),
        (LIST_CLAIMS, api.ListClaimsRequest(actor_id=corpus.ann, page_size=2)),
    ]
    replies = await exchange(
        channel,
        [
            call(n, method, request.SerializeToString())
            for n, (method, request) in enumerate(requests)
        ],
    )
    codes = []
    for n, (method, request) in enumerate(requests):
        reply = replies[n]
        unary = channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString())
        failure: grpc.aio.AioRpcError | None = None
        try:
            answer = await unary(request, timeout=5)
        except grpc.aio.AioRpcError as error:
            failure = error
        if failure is None:
            assert (reply.code, reply.response) == (0, answer)
            codes.append(grpc.StatusCode.OK)
            continue
        assert (reply.code, reply.message) == (failure.code().value[0], failure.details())
        rich = dict(failure.trailing_metadata() or ())[STATUS_DETAILS]
        assert trailer(reply, STATUS_DETAILS) == rich
        assert reply.response == b""
        codes.append(failure.code())
    assert codes == [
        grpc.StatusCode.OK,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.OK,
    ]
    claim = resources_pb2.Claim.FromString(replies[0].response)
    assert claim.id == corpus.claim(1)
    page = api.ListClaimsResponse.FromString(replies[3].response)
    assert len(page.claims) == 2
    assert page.next_page_token
    assert rich_status(replies[1]) == ("CLAIM_NOT_FOUND", [])
    assert rich_status(replies[2])[1] == ["claimId"]


@pytest.mark.asyncio
async def test_unknown_methods_malformed_bytes_and_spent_deadlines_get_their_status(
    channel: grpc.aio.Channel, corpus: GatewayCorpus
) -> None:
    """A method the server lacks, the stream's own method and the health check's stream are
    UNIMPLEMENTED; bytes that are no GetClaimRequest are INVALID_ARGUMENT (MALFORMED_REQUEST);
    a call whose deadline has passed is DEADLINE_EXCEEDED; the stream serves on after them."""
    found = api.GetClaimRequest(claim_id=corpus.claim(2)).SerializeToString()
    replies = await exchange(
        channel,
        [
            call(1, "/panoptic.v1.RetrieverService/DeleteClaim", b""),
            call(2, EXCHANGE_PATH, b""),
            call(3, "/grpc.health.v1.Health/Watch", b""),
            call(4, GET_CLAIM, b"\xff\xff\xff"),
            call(5, GET_CLAIM, found, timeout=0.0),
            call(6, GET_CLAIM, found, timeout=None),
        ],
    )
    unimplemented = grpc.StatusCode.UNIMPLEMENTED.value[0]
    assert [replies[n].code for n in (1, 2, 3)] == [unimplemented] * 3
    assert "DeleteClaim" in replies[1].message
    assert replies[4].code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert rich_status(replies[4])[0] == "MALFORMED_REQUEST"
    assert replies[5].code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert replies[6].code == 0
    assert resources_pb2.Claim.FromString(replies[6].response).id == corpus.claim(2)


@pytest.mark.asyncio
async def test_stream_calls_count_in_the_methods_own_metrics_and_carry_their_request_id(
    channel: grpc.aio.Channel, corpus: GatewayCorpus, services_env: dict[str, str]
) -> None:
    """Each call is counted as the unary method it names (go-grpc-prometheus metrics, by code),
    and its trailing metadata carries the request id it came with."""
    port = services_env["PANOPTIC_RETRIEVER_METRICS_PORT"]
    labels = {"grpc_method": "GetClaim", "grpc_type": "unary"}
    before = scrape(port)
    calls = [
        call(n, GET_CLAIM, api.GetClaimRequest(claim_id=corpus.claim(n)).SerializeToString())
        for n in range(1, 6)
    ]
    calls.append(call(9, GET_CLAIM, api.GetClaimRequest(claim_id="nope-nope").SerializeToString()))
    replies = await exchange(channel, calls)
    assert all(trailer(replies[n], "x-request-id") == b"req-%d" % n for n in (1, 2, 3, 4, 5))
    after = scrape(port)

    def handled(samples: Any, code: str) -> float:
        return value(samples, "grpc_server_handled_total", **labels, grpc_code=code)

    assert handled(after, "OK") - handled(before, "OK") == 5
    assert handled(after, "NOT_FOUND") - handled(before, "NOT_FOUND") == 1
    stream = {"grpc_method": "Exchange", "grpc_type": "bidi_stream"}
    assert value(after, "grpc_server_started_total", **stream) >= 1


def test_a_stopping_retriever_answers_the_calls_it_took_and_ends_its_streams(
    corpus: GatewayCorpus, services_env: dict[str, str], tmp_path: Any
) -> None:
    """SIGTERM while a stream is open: every call taken is answered, the stream ends with OK
    (not cut off when the grace period runs out), and the process exits."""
    env = {**services_env, "PANOPTIC_SHUTDOWN_GRACE_SECONDS": "30"}
    env["PANOPTIC_RETRIEVER_PORT"] = str(free_port())
    env["PANOPTIC_RETRIEVER_METRICS_PORT"] = str(free_port())
    env["PANOPTIC_RETRIEVER_WORKERS"] = "1"
    process = start_grpc_service("retriever", env, tmp_path / "retriever.log")
    try:
        status = asyncio.run(_stream_across_a_stop(env, process, corpus))
    finally:
        process.stop()
    assert status == grpc.StatusCode.OK


async def _stream_across_a_stop(env: dict[str, str], process: Any, corpus: GatewayCorpus) -> Any:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{env['PANOPTIC_RETRIEVER_PORT']}") as opened:
        stream = opened.stream_stream(
            EXCHANGE_PATH,
            request_serializer=call_stream_pb2.ExchangeRequest.SerializeToString,
            response_deserializer=call_stream_pb2.ExchangeResponse.FromString,
        )()
        request = api.GetClaimRequest(claim_id=corpus.claim(3)).SerializeToString()
        await stream.write(call_stream_pb2.ExchangeRequest(calls=[call(1, GET_CLAIM, request)]))
        first = await stream.read()
        assert [reply.code for reply in first.replies] == [0]
        process.process.send_signal(signal.SIGTERM)
        # The stream ends on its own, well within the grace period, with every reply sent.
        while (response := await asyncio.wait_for(stream.read(), 20)) is not grpc.aio.EOF:
            assert all(reply.code == 0 for reply in response.replies)
        code = await stream.code()
    wait_for(lambda: process.process.poll() is not None, timeout=25)
    return code


# --- the client's side: fallbacks to unary calls ----------------------------------------------


class _ScriptedServer:
    """A grpc.aio server on loopback whose Exchange does what `exchange` does, beside a unary
    GetClaim that answers every claim."""

    def __init__(self, exchange: Callable[..., Any] | None) -> None:
        self.exchange = exchange
        self.unary_calls = 0
        self.server = grpc.aio.server()
        handlers = {
            "GetClaim": grpc.unary_unary_rpc_method_handler(
                self._get_claim,
                api.GetClaimRequest.FromString,
                resources_pb2.Claim.SerializeToString,
            )
        }
        generic = [grpc.method_handlers_generic_handler("panoptic.v1.RetrieverService", handlers)]
        if exchange is not None:
            generic.append(
                grpc.method_handlers_generic_handler(
                    "panoptic.v1.CallStreamService",
                    {
                        "Exchange": grpc.stream_stream_rpc_method_handler(
                            exchange,
                            call_stream_pb2.ExchangeRequest.FromString,
                            call_stream_pb2.ExchangeResponse.SerializeToString,
                        )
                    },
                )
            )
        self.server.add_generic_rpc_handlers(generic)
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"

    async def _get_claim(self, request: Any, context: Any) -> resources_pb2.Claim:
        self.unary_calls += 1
        return resources_pb2.Claim(id=request.claim_id, text="unary")


async def _through_streams(server: _ScriptedServer, claim_id: str) -> tuple[Any, str]:
    await server.server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as opened:
            streams = CallStreams([opened])
            unary = opened.unary_unary(
                GET_CLAIM,
                request_serializer=api.GetClaimRequest.SerializeToString,
                response_deserializer=resources_pb2.Claim.FromString,
            )
            request = api.GetClaimRequest(claim_id=claim_id)
            answer, carrier = await streams.call(
                GET_CLAIM,
                request.SerializeToString(),
                5.0,
                (("x-request-id", "r1"),),
                resources_pb2.Claim.FromString,
                lambda timeout: unary(request, timeout=timeout),
            )
            await streams.close()
            return answer, carrier
    finally:
        await server.server.stop(None)


@pytest.mark.asyncio
async def test_a_server_without_call_streams_gets_unary_calls() -> None:
    """An older retriever (no CallStreamService) answers UNIMPLEMENTED to the stream: the call is
    made unary and answered."""
    server = _ScriptedServer(exchange=None)
    answer, carrier = await _through_streams(server, "c1")
    assert carrier == "unary"
    assert answer == resources_pb2.Claim(id="c1", text="unary")
    assert server.unary_calls == 1


@pytest.mark.asyncio
async def test_a_call_whose_stream_ends_unanswered_is_made_again_unary() -> None:
    """A stream that takes the call and ends (OK) without answering it, or breaks (UNAVAILABLE)
    after taking it: the call is made again as a unary call."""
    for ending in (None, grpc.StatusCode.UNAVAILABLE):

        async def takes_then_ends(requests: Any, context: Any, ending: Any = ending) -> None:
            """A stream handler that reads the call, then ends without a reply."""
            async for request in requests:
                assert [c.method for c in request.calls] == [GET_CLAIM]
                break
            if ending is not None:
                await context.abort(ending, "gone")

        server = _ScriptedServer(exchange=takes_then_ends)
        answer, carrier = await _through_streams(server, "c2")
        assert (carrier, answer.text, server.unary_calls) == ("unary", "unary", 1)
    # Nothing of the ended streams is left running: gRPC's task that sends a stream's messages
    # stops once the stream is over.
    await asyncio.sleep(0)
    assert not [task for task in asyncio.all_tasks() if "request_iterator" in repr(task)]


@pytest.mark.asyncio
async def test_a_call_answered_on_the_stream_is_not_made_unary() -> None:
    """The stream's reply is the answer, and the unary method is not called."""

    async def answers(requests: Any, context: Any) -> AsyncIterator[Any]:
        async for request in requests:
            yield call_stream_pb2.ExchangeResponse(
                replies=[
                    call_stream_pb2.Reply(
                        id=c.id,
                        response=resources_pb2.Claim(
                            id=api.GetClaimRequest.FromString(c.request).claim_id, text="stream"
                        ).SerializeToString(),
                    )
                    for c in request.calls
                ]
            )

    server = _ScriptedServer(exchange=answers)
    answer, carrier = await _through_streams(server, "c3")
    assert carrier == "stream"
    assert answer == resources_pb2.Claim(id="c3", text="stream")
    assert server.unary_calls == 0


@pytest.mark.asyncio
async def test_a_cancelled_caller_cancels_its_call_on_the_server_and_the_stream_goes_on() -> None:
    """A caller cancelled while it waits (as a unary call's is, when its client goes away) has
    its handler on the server cancelled too; the stream carries the next call as before."""
    hang = Hang()

    async def get_claim(request: Any, context: Any) -> resources_pb2.Claim:
        if request.claim_id == "slow":
            await hang()
        return resources_pb2.Claim(id=request.claim_id, text="stream")

    handler = grpc.unary_unary_rpc_method_handler(
        get_claim, api.GetClaimRequest.FromString, resources_pb2.Claim.SerializeToString
    )
    servicer = CallStreamServicer(
        lambda method: handler if method == GET_CLAIM else None, asyncio.Event()
    )
    server = _ScriptedServer(exchange=servicer.Exchange)
    await server.server.start()

    async def unary(timeout: float) -> Any:
        raise AssertionError("the call must go on the stream")

    try:
        async with grpc.aio.insecure_channel(server.address) as opened:
            streams = CallStreams([opened])

            def get(claim_id: str) -> Any:
                return streams.call(
                    GET_CLAIM,
                    api.GetClaimRequest(claim_id=claim_id).SerializeToString(),
                    30.0,
                    (),
                    resources_pb2.Claim.FromString,
                    unary,
                )

            waiting = asyncio.ensure_future(get("slow"))
            await asyncio.wait_for(hang.started.wait(), 10)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await asyncio.wait_for(hang.cancelled.wait(), 10)
            answer, carrier = await get("next")
            assert (answer.id, carrier) == ("next", "stream")
            await streams.close()
    finally:
        await server.server.stop(None)


# --- the gateway ------------------------------------------------------------------------------


def _uncached_stack_env(gateway_env: dict[str, str], **settings: str) -> dict[str, str]:
    """`gateway_env` with `settings`, for a retriever and a gateway of the test's own: ports
    of their own, and no response cache, so that every read reaches the retriever."""
    env = {**gateway_env, **settings, "PANOPTIC_GATEWAY_RESPONSE_CACHE_MIB": "0"}
    for name in ("GATEWAY", "RETRIEVER"):
        for suffix in ("PORT", "METRICS_PORT"):
            env[f"PANOPTIC_{name}_{suffix}"] = str(free_port())
    env["PANOPTIC_RETRIEVER_ADDRESS"] = f"127.0.0.1:{env['PANOPTIC_RETRIEVER_PORT']}"
    return env


@pytest.mark.parametrize("streams", ["true", "false"])
def test_the_gateway_sends_reads_on_call_streams_unless_told_not_to(
    streams: str,
    corpus: GatewayCorpus,
    gateway_env: dict[str, str],
    tmp_path: Any,
) -> None:
    """With call streams on (the default) the gateway's reads are answered on them; off, each
    is a unary call; the answers are the same."""
    env = _uncached_stack_env(gateway_env, PANOPTIC_GATEWAY_CALL_STREAM=streams)
    with running_stack(env, tmp_path) as url:
        bodies = [
            httpx.get(f"{url}/v1/claims/{corpus.claim(n)}", timeout=10).json() for n in (1, 2, 3)
        ]
        missing = httpx.get(f"{url}/v1/claims/{corpus.prefix}-missing", timeout=10)
        samples = scrape(env["PANOPTIC_GATEWAY_METRICS_PORT"])
    assert [body["id"] for body in bodies] == [corpus.claim(n) for n in (1, 2, 3)]
    assert missing.status_code == 404
    assert missing.json()["error"]["details"][0]["reason"] == "CLAIM_NOT_FOUND"
    calls = "panoptic_gateway_upstream_calls_total"
    carried = {c: value(samples, calls, carrier=c) for c in ("stream", "unary")}
    if streams == "true":
        assert carried["stream"] >= 3
    else:
        assert carried == {"stream": 0, "unary": 3}


def test_connections_past_their_age_are_replaced_and_no_read_fails(
    corpus: GatewayCorpus, gateway_env: dict[str, str], tmp_path: Any
) -> None:
    """The retriever asks for new connections once they are a second old (as it does every
    five minutes by default, so that a gateway's connections spread over retriever replicas
    started after them): the gateway's reads go on through each change, on call streams."""
    import psutil

    env = _uncached_stack_env(
        gateway_env,
        PANOPTIC_RETRIEVER_MAX_CONNECTION_AGE_SECONDS="1",
        PANOPTIC_GATEWAY_RETRIEVER_CONNECTIONS="2",
    )
    retriever_port = int(env["PANOPTIC_RETRIEVER_PORT"])

    def gateway_connections() -> set[int]:
        """The gateway's ends of the connections established to the retriever now."""
        return {
            connection.laddr.port
            for connection in psutil.net_connections("tcp")
            if connection.status == psutil.CONN_ESTABLISHED
            and connection.raddr
            and connection.raddr.port == retriever_port
        }

    seen: set[int] = set()
    codes: list[int] = []
    with running_stack(env, tmp_path) as url, httpx.Client(base_url=url, timeout=10) as client:
        # About five seconds of reads: each connection has been replaced several times by then.
        for n in range(500):
            codes.append(client.get(f"/v1/claims/{corpus.claim(n % 3 + 1)}").status_code)
            if n % 10 == 0:
                seen |= gateway_connections()
                time.sleep(0.1)
        samples = scrape(env["PANOPTIC_GATEWAY_METRICS_PORT"])
    assert codes == [200] * 500
    assert len(seen) > 4, f"the gateway's 2 connections were never replaced: {seen}"
    calls = "panoptic_gateway_upstream_calls_total"
    carried = {c: value(samples, calls, carrier=c) for c in ("stream", "unary")}
    # Streams that ended with their connections' age were opened again at once.
    assert carried["stream"] > 4 * carried["unary"], carried
