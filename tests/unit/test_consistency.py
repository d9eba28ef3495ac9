"""Consistency tokens, and how the replica router dates and names replicas (no database)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from panoptic.core.consistency import TOKEN_CHARS, ConsistencyTokens, InvalidConsistencyToken
from panoptic.core.db import DatabaseUrl
from panoptic.core.replicas import PRIMARY, ReadRouter, Server, replica_name, replica_url

KEY = b"k" * 32


@pytest.mark.parametrize("position", [0, 1, 0x16B374D848, 2**64 - 1])
def test_a_token_opens_to_the_position_it_was_issued_for(position: int) -> None:
    tokens = ConsistencyTokens(KEY)
    token = tokens.issue(position)
    assert len(token) == TOKEN_CHARS
    assert token.isascii()
    assert tokens.open(token) == position


def test_a_token_under_another_key_or_altered_is_refused() -> None:
    token = ConsistencyTokens(KEY).issue(12345)
    with pytest.raises(InvalidConsistencyToken):
        ConsistencyTokens(b"another key of thirty-two bytes!").open(token)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[5] ^= 1  # a later position, same signature
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidConsistencyToken):
        ConsistencyTokens(KEY).open(forged)


@pytest.mark.parametrize(
    "token", ["", "x", "A" * TOKEN_CHARS, "A" * (TOKEN_CHARS + 1), "é" * TOKEN_CHARS, "*" * 28]
)
def test_what_is_not_a_token_is_refused(token: str) -> None:
    with pytest.raises(InvalidConsistencyToken):
        ConsistencyTokens(KEY).open(token)


def test_a_replica_is_read_with_the_services_own_role_on_the_replicas_server() -> None:
    own = DatabaseUrl("postgresql://panoptic_retriever:secret@db-primary:5432/panoptic")
    url = replica_url(own, "postgresql://db-replica-1:6432/ignored")
    assert url.value == "postgresql://panoptic_retriever:secret@db-replica-1:6432/panoptic"
    local = replica_url(own, "postgresql://postgres@/panoptic?host=%2Fsrv%2Fr1&port=5433")
    assert (
        local.value == "postgresql://panoptic_retriever:secret@/panoptic?host=%2Fsrv%2Fr1&port=5433"
    )
    assert replica_name("postgresql://db-replica-1/panoptic") == "db-replica-1:5432"
    assert replica_name("postgresql://u@/p?host=%2Fsrv%2Fr1&port=5433") == "/srv/r1:5433"


def _router() -> ReadRouter:
    def no_pool() -> object:
        raise AssertionError("no database here")

    primary = Server(PRIMARY, True, no_pool, serving=True)  # type: ignore[arg-type]
    return ReadRouter(primary, [Server("r1", False, no_pool)])  # type: ignore[arg-type]


def test_lag_is_nothing_once_caught_up_and_dated_by_the_primarys_positions_otherwise() -> None:
    """A replica as far as the reference lags by nothing; behind it, by the tighter of the time
    since its last replayed commit and the age of the newest check that found the primary no
    further than it is."""

    async def scenario() -> None:
        router = _router()
        now = asyncio.get_running_loop().time()
        router._positions.extend([(now - 9, 100), (now - 6, 200), (now - 3, 300)])
        assert router._lag(300, 300, 50.0) == 0.0
        assert router._lag(250, 300, 50.0) == pytest.approx(6, abs=0.5)
        assert router._lag(250, 300, 1.0) == 1.0
        assert router._lag(250, 300, None) == pytest.approx(6, abs=0.5)
        assert router._lag(50, 300, None) == pytest.approx(9, abs=0.5)

    asyncio.run(scenario())


def test_reads_without_a_token_take_the_serving_replicas_in_turn() -> None:
    router = _router()
    assert router.choose() is router.primary
    router.replicas[0].serving = True
    second = Server("r2", False, router.primary.pool, serving=True)
    router.replicas = [router.replicas[0], second]
    chosen = [router.choose().name for _ in range(4)]
    assert sorted(chosen) == ["r1", "r1", "r2", "r2"]
