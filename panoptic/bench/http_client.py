"""A bare HTTP/1.1 keep-alive client for sequential latency measurements.

One connection, one request at a time, no pooling, redirects or decoding: the client's own time
stays in the tens of microseconds, so a measured latency is the server's.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from panoptic.core.errors import PanopticError


class HttpError(PanopticError):
    """The server broke the connection or answered something that is not HTTP/1.1."""


class KeepAliveConnection:
    """`GET` requests over one persistent connection; use as an async context manager."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self._host = host
        self._port = port
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._head_suffix = f" HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> KeepAliveConnection:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def get(self, target: str) -> tuple[int, bytes]:
        """The status and body of `GET target` (target: an encoded path and query)."""
        assert self._reader is not None, "use `async with`"
        assert self._writer is not None
        self._writer.write(b"GET " + target.encode("ascii") + self._head_suffix)
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise HttpError(f"the server closed the connection during GET {target}") from error
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"not an HTTP/1.1 answer: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            body = await self._reader.readexactly(int(headers.get("content-length", "0")))
        return int(parts[1]), body

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        body = bytearray()
        while True:
            size = int((await self._reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await self._reader.readline()).strip():  # trailers, then the blank line
                    pass
                return bytes(body)
            body += await self._reader.readexactly(size)
            await self._reader.readexactly(2)
