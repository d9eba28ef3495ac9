"""Consistency tokens: a write's position in PostgreSQL's write-ahead log, signed.

The indexer answers every write with a token for the position its commit reached; a reader who
passes it back is served only by a server that has replayed at least that far (`core.replicas`).
The token is opaque to clients and signed, so that a made-up position cannot send reads to the
primary or make them wait: a token that fails its signature is refused as a bad argument.

A position is a PostgreSQL `pg_lsn`, a 64-bit byte offset into the log, which asyncpg reads and
writes as an integer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

from panoptic.core.errors import PanopticError

# The trailing metadata in which every indexer method sends its consistency token.
CONSISTENCY_TOKEN_METADATA: Final = "panoptic-consistency-token"  # noqa: S105 - a name
# The first byte of every token, so that a later format can be told apart.
_VERSION: Final = b"\x01"
_POSITION_BYTES: Final = 8
# 96 bits of HMAC-SHA256: forging one takes 2**96 tries against a server that answers each.
_SIGNATURE_BYTES: Final = 12
_TOKEN_BYTES: Final = len(_VERSION) + _POSITION_BYTES + _SIGNATURE_BYTES
# The base64url length of a token, without padding.
TOKEN_CHARS: Final = (_TOKEN_BYTES * 4 + 2) // 3


class InvalidConsistencyToken(PanopticError, ValueError):
    """A consistency token this suite did not issue."""


class ConsistencyTokens:
    """Issues and opens consistency tokens under one key, shared by the indexer and the
    retriever (`PANOPTIC_CONSISTENCY_TOKEN_KEY`)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, position: int) -> str:
        """The token for a log position."""
        body = _VERSION + position.to_bytes(_POSITION_BYTES, "big")
        token = body + self._sign(body)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def open(self, token: str) -> int:
        """The log position a token stands for; `InvalidConsistencyToken` when it is not one
        issued under this key."""
        if len(token) != TOKEN_CHARS:
            raise InvalidConsistencyToken("not a consistency token")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raise InvalidConsistencyToken("not a consistency token") from None
        body, signature = raw[:-_SIGNATURE_BYTES], raw[-_SIGNATURE_BYTES:]
        if len(raw) != _TOKEN_BYTES or body[:1] != _VERSION:
            raise InvalidConsistencyToken("not a consistency token")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidConsistencyToken("not a token this suite issued")
        return int.from_bytes(body[len(_VERSION) :], "big")

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
