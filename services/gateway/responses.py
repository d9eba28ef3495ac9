"""Sending responses the way a mobile client wants them: strong ETags and 304s, compression
negotiated by Accept-Encoding (brotli, then gzip) for bodies worth it, Cache-Control per route.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import brotli

from services.gateway.errors import ApiError

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
JSON_TYPE = b"application/json"
NO_STORE = "no-store"
_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    # Quality 4 / level 5: most of the size win for a fraction of the CPU of the maximum.
    "br": lambda body: brotli.compress(body, quality=4),
    "gzip": lambda body: gzip.compress(body, compresslevel=5, mtime=0),
}
_PREFERENCE = ("br", "gzip")
_NEGOTIATED: dict[str, str | None] = {}


@dataclass(slots=True)
class RequestContext:
    """What the edge middleware learned about a request, shared with the endpoint."""

    request_id: str
    started: float
    method: str
    accept_encoding: str = ""
    if_none_match: str = ""
    origin: str = ""
    upstream_seconds: float | None = None
    route: str = "unmatched"
    bypass_cache: bool = False
    """The client sent `Cache-Control: no-cache` (or `Pragma: no-cache`)."""
    cache_hit: bool = False


def negotiate_encoding(accept_encoding: str) -> str | None:
    """The best content coding the client accepts among ours, or None for identity."""
    cached = _NEGOTIATED.get(accept_encoding, "?")
    if cached != "?":
        return cached
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[name.strip().lower()] = weight
    choice = None
    for candidate in _PREFERENCE:
        weight = weights.get(candidate, weights.get("*", 0.0))
        if weight > 0:
            choice = candidate
            break
    if len(_NEGOTIATED) < 1024:
        _NEGOTIATED[accept_encoding] = choice
    return choice


def entity_tag(body: bytes) -> str:
    """A strong validator of the identity representation, e.g. `"9f2c...e1"` (24 hex digits)."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _tag_core(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]  # If-None-Match uses the weak comparison (RFC 9110, 13.1.2)
    tag = tag.strip('"')
    for encoding in _PREFERENCE:
        if tag.endswith("-" + encoding):
            return tag[: -len(encoding) - 1]
    return tag


def not_modified(if_none_match: str, etag: str) -> bool:
    """Whether If-None-Match names the response's current ETag (in any of its encodings)."""
    if not if_none_match:
        return False
    core = etag.strip('"')
    return any(
        candidate.strip() == "*" or _tag_core(candidate) == core
        for candidate in if_none_match.split(",")
    )


class Representation:
    """A body with its strong validator and its compressed forms, each computed at most once.

    Responses from the cache keep theirs, so a hit costs neither hashing nor compression.
    """

    __slots__ = ("_encoded", "body", "etag")

    def __init__(self, body: bytes, validate: bool) -> None:
        self.body = body
        self.etag = entity_tag(body) if validate else None
        self._encoded: dict[str, bytes] = {}

    def encoded(self, encoding: str) -> bytes:
        """The body in a content coding."""
        data = self._encoded.get(encoding)
        if data is None:
            data = self._encoded[encoding] = _ENCODERS[encoding](self.body)
        return data

    @property
    def size(self) -> int:
        """Bytes held, compressed forms included."""
        return len(self.body) + sum(len(data) for data in self._encoded.values())


async def send_response(
    send: Send,
    context: RequestContext,
    status: int,
    body: bytes | Representation,
    *,
    content_type: bytes = JSON_TYPE,
    cache_control: str | None = None,
    validate: bool = False,
    compress_min: int | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Sends a whole response; `validate` adds an ETag and answers a matching If-None-Match
    with 304; `compress_min` compresses bodies at least that long when the client accepts it.
    """
    representation = body if isinstance(body, Representation) else Representation(body, validate)
    head: list[tuple[bytes, bytes]] = [(b"content-type", content_type), *headers]
    if cache_control:
        head.append((b"cache-control", cache_control.encode()))
    encoding = None
    if compress_min is not None:
        head.append((b"vary", b"Accept-Encoding"))
        if len(representation.body) >= compress_min and context.accept_encoding:
            encoding = negotiate_encoding(context.accept_encoding)
    etag = representation.etag
    if etag is not None:
        shown = etag if encoding is None else f'{etag[:-1]}-{encoding}"'
        if not_modified(context.if_none_match, etag):
            kept = [h for h in head if h[0] in (b"cache-control", b"vary", b"age")]
            await send(
                {
                    "type": "http.response.start",
                    "status": 304,
                    "headers": [(b"etag", shown.encode()), *kept],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        head.append((b"etag", shown.encode()))
    payload = representation.body
    if encoding is not None:
        payload = representation.encoded(encoding)
        head.append((b"content-encoding", encoding.encode()))
    head.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": b"" if context.method == "HEAD" else payload})


async def send_error(send: Send, context: RequestContext, error: ApiError) -> None:
    """Sends an AIP-193 error; errors are never cached."""
    headers = [(name.encode(), value.encode()) for name, value in error.headers.items()]
    await send_response(
        send, context, error.status, error.body(), cache_control=NO_STORE, headers=headers
    )
