"""A client for `grpc.health.v1`: what `panoptic health`, `panoptic up` and the tests probe."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def check(address: str, service: str = "", *, timeout: float = 2.0) -> str:
    """The serving status of `service` at `address` (`SERVING`, `NOT_SERVING`, ...).

    Raises `grpc.aio.AioRpcError` when the server does not answer.
    """
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return name


async def wait_until_serving(address: str, *, timeout: float = 30.0, service: str = "") -> None:
    """Polls `address` until it reports SERVING; raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check(address, service, timeout=1.0) == "SERVING":
                return
        except grpc.aio.AioRpcError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{address} did not report SERVING within {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def http_status(host: str, port: int, path: str, *, timeout: float = 2.0) -> int:
    """The status code of `GET path` on an HTTP/1.1 server (0 when it does not answer)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return 0
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError):
        return 0
    finally:
        writer.close()
    parts = status_line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0


async def wait_until_http_ready(host: str, port: int, path: str, *, timeout: float = 30.0) -> None:
    """Polls `GET path` until it answers 200; raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while await http_status(host, port, path) != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"http://{host}:{port}{path} did not answer 200 within {timeout:.0f} s"
            )
        await asyncio.sleep(0.1)
