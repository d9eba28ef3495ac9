"""The retriever's entry point: its servicer on the shared bootstrap, on a read-only role."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from panoptic.core.grpc_server import GrpcServerSpec
from panoptic.core.service import PoolHolder
from panoptic.core.settings import Settings
from panoptic.v1 import retriever_service_pb2, retriever_service_pb2_grpc
from services.retriever.servicer import RetrieverServicer

SERVICE_NAME = retriever_service_pb2.DESCRIPTOR.services_by_name["RetrieverService"].full_name


def build_spec(settings: Settings) -> GrpcServerSpec:
    """The retriever as the bootstrap runs it."""
    database = PoolHolder(settings, "retriever", read_only=True)
    on_start, on_stop = database.hooks()

    def register(server: grpc.aio.Server) -> Sequence[str]:
        retriever_service_pb2_grpc.add_RetrieverServiceServicer_to_server(
            RetrieverServicer(database), server
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
