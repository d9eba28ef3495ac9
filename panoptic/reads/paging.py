"""AIP-158 pagination: page sizes, and opaque page tokens that are tamper-evident and bound.

A token is `urlsafe_base64(payload || mac)` without padding, where `payload` is compact JSON
`{"v": 1, "m": method, "f": filter digest, "p": position}` and `mac` the first 16 bytes of
HMAC-SHA256(key, payload). `position` is the sort key of the last row returned (keyset paging,
so rows inserted between pages cause neither duplicates nor gaps); the filter digest binds the
token to the method and the normalised filters it was issued for. The payload is signed, not
encrypted: it holds nothing the caller has not already been shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
TOKEN_VERSION: Final = 1
MAC_BYTES: Final = 16
MIN_KEY_BYTES: Final = 16
# Far above any token this module issues; refuses garbage before any decoding work.
MAX_TOKEN_CHARS: Final = 4096

Scalar: TypeAlias = str | int | float | bool | None
"""What filters and positions are made of: JSON scalars."""


class InvalidPageToken(ValueError):
    """The token was not issued by this service, was altered, or belongs to other filters."""


class NegativePageSize(ValueError):
    """A page size below zero."""


def page_size(requested: int) -> int:
    """The effective page size: 0 means the default, above the maximum means the maximum."""
    if requested < 0:
        raise NegativePageSize(requested)
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


@dataclass(frozen=True)
class PageTokenCodec:
    """Issues and opens page tokens signed with one secret key."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"a page token key needs at least {MIN_KEY_BYTES} bytes")

    def issue(self, method: str, filters: Mapping[str, Scalar], position: Sequence[Scalar]) -> str:
        """A token that resumes `method` with `filters` after the row at `position`."""
        payload = _canonical(
            {
                "v": TOKEN_VERSION,
                "m": method,
                "f": _filter_digest(method, filters),
                "p": list(position),
            }
        )
        token = base64.urlsafe_b64encode(payload + self._mac(payload))
        return token.rstrip(b"=").decode("ascii")

    def open(self, token: str, method: str, filters: Mapping[str, Scalar]) -> list[Scalar]:
        """The position a token resumes after; raises `InvalidPageToken` when it cannot be used."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidPageToken("too long")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidPageToken("not base64") from None
        # The last character may carry unused bits that decoding ignores: only the canonical
        # spelling is the token issued, so that any edit at all is refused.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
            raise InvalidPageToken("not the issued spelling")
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if len(raw) <= MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidPageToken("bad signature")
        try:
            body = json.loads(payload)
        except ValueError:
            raise InvalidPageToken("not JSON") from None
        if not isinstance(body, dict) or body.get("v") != TOKEN_VERSION:
            raise InvalidPageToken("unknown version")
        if body.get("m") != method or body.get("f") != _filter_digest(method, filters):
            raise InvalidPageToken("issued for other filters")
        position = body.get("p")
        if not isinstance(position, list):
            raise InvalidPageToken("no position")
        return position

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:MAC_BYTES]


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _filter_digest(method: str, filters: Mapping[str, Scalar]) -> str:
    """A short digest of the method and its normalised filters (unset filters are left out)."""
    present = {
        name: value
        for name, value in filters.items()
        if not (value is None or value is False or value == "")
    }
    digest = hashlib.sha256(_canonical({"method": method, "filters": present})).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode("ascii")
