"""The retriever's entry point: its servicer on the shared bootstrap, on a read-only role."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from panoptic.core.consistency import ConsistencyTokens
from panoptic.core.grpc_server import GrpcServerSpec
from panoptic.core.service import PoolHolder
from panoptic.core.settings import (
    DEVELOPMENT_PAGE_TOKEN_KEY,
    DatabaseSettings,
    RetrieverSettings,
    ServerSettings,
)
from panoptic.reads.handler import RetrieverHandler
from panoptic.reads.paging import PageTokenCodec
from panoptic.v1 import retriever_service_pb2, retriever_service_pb2_grpc
from services.retriever.servicer import RetrieverServicer

SERVICE_NAME = retriever_service_pb2.DESCRIPTOR.services_by_name["RetrieverService"].full_name
__all__ = ["DEVELOPMENT_PAGE_TOKEN_KEY", "build_spec", "page_token_key"]


def build_spec(
    server: ServerSettings, database_settings: DatabaseSettings, settings: RetrieverSettings
) -> GrpcServerSpec:
    """The retriever as the bootstrap runs it."""
    database = PoolHolder(database_settings, "retriever", read_only=True)
    on_start, on_stop = database.hooks()

    handler = RetrieverHandler(
        lambda: database.reads,
        PageTokenCodec(page_token_key(settings)),
        statement_timeout=settings.retriever_statement_timeout_seconds,
    )

    def register(server: grpc.aio.Server) -> Sequence[str]:
        retriever_service_pb2_grpc.add_RetrieverServiceServicer_to_server(
            RetrieverServicer(
                handler, ConsistencyTokens(database_settings.consistency_token_secret)
            ),
            server,
        )
        return [SERVICE_NAME]

    return GrpcServerSpec(
        name="retriever",
        host=server.bind_host,
        port=settings.retriever_port,
        metrics_port=settings.retriever_metrics_port,
        register=register,
        on_start=on_start,
        on_stop=on_stop,
        grace_seconds=server.shutdown_grace_seconds,
        max_message_bytes=server.max_message_bytes,
        # The gateway sends its reads over streams (`panoptic.core.call_stream`).
        call_stream=True,
        max_connection_age_seconds=settings.retriever_max_connection_age_seconds,
    )


def page_token_key(settings: RetrieverSettings) -> bytes:
    """The key that signs page tokens: `PANOPTIC_PAGE_TOKEN_KEY`, or in development a fixed one.

    Every replica behind one gateway must share it, or a token from one is refused by another.
    Production refuses to start without a random key of its own.
    """
    settings.refuse(settings.page_token_problems())
    return settings.page_token_secret
