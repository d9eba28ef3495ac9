"""Page sizes and page tokens (AIP-158): opaque, tamper-evident, bound, signed with a real key."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from panoptic.core.settings import Settings, SettingsError
from panoptic.reads.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    InvalidPageToken,
    NegativePageSize,
    PageTokenCodec,
    page_size,
)
from services.retriever.server import DEVELOPMENT_PAGE_TOKEN_KEY, page_token_key

KEY = b"k" * 32
FILTERS = {"actorId": "jane-doe", "topicId": None, "showRetracted": False, "descending": True}


def _payload(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


@pytest.mark.parametrize(
    ("requested", "effective"),
    [(0, DEFAULT_PAGE_SIZE), (1, 1), (1000, 1000), (1001, MAX_PAGE_SIZE), (2**31 - 1, 1000)],
)
def test_page_size_defaults_and_clamps(requested: int, effective: int) -> None:
    """0 means 50, values up to 1000 are kept, larger ones are clamped to 1000."""
    assert page_size(requested) == effective


def test_negative_page_size_is_refused() -> None:
    """A negative page size is an error, not a default."""
    with pytest.raises(NegativePageSize):
        page_size(-1)


def test_a_token_resumes_at_its_position() -> None:
    """A token opened with the method and filters it was issued for yields its position."""
    codec = PageTokenCodec(KEY)
    token = codec.issue("ListClaims", FILTERS, [1_700_000_000_000_000, "c-1"])
    assert codec.open(token, "ListClaims", FILTERS) == [1_700_000_000_000_000, "c-1"]


def test_a_token_is_url_safe_and_unpadded() -> None:
    """Tokens travel in query strings unescaped: URL-safe base64 without `=` padding."""
    token = PageTokenCodec(KEY).issue("ListClaims", FILTERS, ["x" * 37, 0.1])
    assert token.isascii()
    assert not set(token) - set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_unset_filters_bind_like_missing_ones() -> None:
    """None, empty and false filters are the defaults, so leaving them out binds the same."""
    codec = PageTokenCodec(KEY)
    token = codec.issue("ListClaims", FILTERS, [1, "c"])
    assert codec.open(token, "ListClaims", {"actorId": "jane-doe", "descending": True}) == [1, "c"]


@pytest.mark.parametrize(
    "other",
    [
        {**FILTERS, "actorId": "john-doe"},
        {**FILTERS, "topicId": "energy"},
        {**FILTERS, "showRetracted": True},
        {**FILTERS, "descending": False},
    ],
    ids=["actor", "topic", "retracted", "order"],
)
def test_a_token_is_refused_with_other_filters(other: dict[str, object]) -> None:
    """A token used with a different filter or order is refused."""
    codec = PageTokenCodec(KEY)
    token = codec.issue("ListClaims", FILTERS, [1, "c"])
    with pytest.raises(InvalidPageToken):
        codec.open(token, "ListClaims", other)  # type: ignore[arg-type]


def test_a_token_is_refused_by_another_method() -> None:
    """A ListClaims token cannot page SearchClaims, even with the same filters."""
    codec = PageTokenCodec(KEY)
    token = codec.issue("ListClaims", FILTERS, [1, "c"])
    with pytest.raises(InvalidPageToken):
        codec.open(token, "SearchClaims", FILTERS)


def test_an_edited_token_is_refused() -> None:
    """Changing the position inside a token breaks its signature."""
    codec = PageTokenCodec(KEY)
    token = codec.issue("ListClaims", FILTERS, [1, "c-1"])
    raw = _payload(token)
    payload, mac = raw[:-16], raw[-16:]
    body = json.loads(payload)
    body["p"] = [1, "c-0"]
    forged = json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + mac
    edited = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    with pytest.raises(InvalidPageToken):
        codec.open(edited, "ListClaims", FILTERS)


def test_a_token_signed_with_another_key_is_refused() -> None:
    """A token from a service with another key (or a forger) is refused."""
    token = PageTokenCodec(b"o" * 32).issue("ListClaims", FILTERS, [1, "c"])
    with pytest.raises(InvalidPageToken):
        PageTokenCodec(KEY).open(token, "ListClaims", FILTERS)


@pytest.mark.parametrize(
    "token",
    ["not a token!", "AAAA", "", "=" * 8, "x" * 5000],
    ids=["not-base64", "short", "empty", "padding", "huge"],
)
def test_garbage_is_refused(token: str) -> None:
    """Malformed, truncated, empty or huge tokens are refused without crashing."""
    with pytest.raises(InvalidPageToken):
        PageTokenCodec(KEY).open(token, "ListClaims", FILTERS)


def test_a_short_key_is_refused() -> None:
    """A key shorter than 16 bytes would make tokens guessable."""
    with pytest.raises(ValueError, match="16 bytes"):
        PageTokenCodec(b"short")


def test_development_signs_with_a_fixed_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PANOPTIC_PAGE_TOKEN_KEY, development replicas share one well-known key."""
    monkeypatch.delenv("PANOPTIC_ENV", raising=False)
    assert page_token_key(Settings().retriever) == DEVELOPMENT_PAGE_TOKEN_KEY.encode()


@pytest.mark.parametrize("key", [None, DEVELOPMENT_PAGE_TOKEN_KEY, "changeme", "short-but-random"])
def test_production_refuses_a_missing_or_weak_key(
    monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """In production the retriever will not sign tokens with a default or short key."""
    monkeypatch.setenv("PANOPTIC_ENV", "production")
    settings = Settings().retriever
    if key is not None:
        settings = settings.model_copy(update={"page_token_key": SecretStr(key)})
    with pytest.raises(SettingsError, match="PANOPTIC_PAGE_TOKEN_KEY"):
        page_token_key(settings)


def test_production_uses_its_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A random key of 32 characters or more is what production signs with."""
    monkeypatch.setenv("PANOPTIC_ENV", "production")
    secret = "q7X2-" * 8
    settings = Settings().retriever.model_copy(update={"page_token_key": SecretStr(secret)})
    assert page_token_key(settings) == secret.encode()


def test_an_edit_of_the_last_characters_unused_bits_is_refused() -> None:
    """A token whose last character differs only in bits base64 decoding ignores is refused."""
    codec = PageTokenCodec(b"k" * 32)
    for size in range(1, 12):
        token = codec.issue("ListClaims", {"actor": "a" * size}, ["x" * size, size])
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        for replacement in alphabet:
            edited = token[:-1] + replacement
            if edited == token:
                continue
            with pytest.raises(InvalidPageToken):
                codec.open(edited, "ListClaims", {"actor": "a" * size})
