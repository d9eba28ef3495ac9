"""The retriever's entry point: its servicer on the shared bootstrap, on a read-only role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import grpc

from panoptic.core.grpc_server import GrpcServerSpec
from panoptic.core.service import PoolHolder
from panoptic.core.settings import DEVELOPMENT_SECRETS, Environment, Settings, SettingsError
from panoptic.reads.handler import RetrieverHandler
from panoptic.reads.paging import PageTokenCodec
from panoptic.v1 import retriever_service_pb2, retriever_service_pb2_grpc
from services.retriever.servicer import RetrieverServicer

SERVICE_NAME = retriever_service_pb2.DESCRIPTOR.services_by_name["RetrieverService"].full_name
# Signs page tokens when no key is configured; well known, so production refuses it.
DEVELOPMENT_PAGE_TOKEN_KEY: Final = "panoptic-development-page-token-key"  # noqa: S105
MIN_PAGE_TOKEN_KEY_CHARS: Final = 32


def build_spec(settings: Settings) -> GrpcServerSpec:
    """The retriever as the bootstrap runs it."""
    database = PoolHolder(settings, "retriever", read_only=True)
    on_start, on_stop = database.hooks()

    handler = RetrieverHandler(
        lambda: database.pool,
        PageTokenCodec(page_token_key(settings)),
        statement_timeout=settings.retriever_statement_timeout_seconds,
    )

    def register(server: grpc.aio.Server) -> Sequence[str]:
        retriever_service_pb2_grpc.add_RetrieverServiceServicer_to_server(
            RetrieverServicer(handler), server
        )
        return [SERVICE_NAME]

    return GrpcServerSpec(
        name="retriever",
        host=settings.bind_host,
        port=settings.retriever_port,
        metrics_port=settings.retriever_metrics_port,
        register=register,
        on_start=on_start,
        on_stop=on_stop,
        grace_seconds=settings.shutdown_grace_seconds,
        max_message_bytes=settings.max_message_bytes,
    )


def page_token_key(settings: Settings) -> bytes:
    """The key that signs page tokens: `PANOPTIC_PAGE_TOKEN_KEY`, or in development a fixed one.

    Every replica behind one gateway must share it, or a token from one is refused by another.
    Production refuses to start without a random key of its own.
    """
    configured = settings.page_token_key
    value = configured.get_secret_value() if configured is not None else ""
    if settings.env is Environment.PRODUCTION and (
        value in DEVELOPMENT_SECRETS
        or value == DEVELOPMENT_PAGE_TOKEN_KEY
        or len(value) < MIN_PAGE_TOKEN_KEY_CHARS
    ):
        raise SettingsError(
            "refusing to start in production: PANOPTIC_PAGE_TOKEN_KEY must be set to a random "
            f"secret of at least {MIN_PAGE_TOKEN_KEY_CHARS} characters, the same on every replica"
        )
    return (value or DEVELOPMENT_PAGE_TOKEN_KEY).encode()
