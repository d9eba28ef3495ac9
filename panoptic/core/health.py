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
