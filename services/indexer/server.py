"""The indexer's entry point: its servicer on the shared gRPC bootstrap, behind a bearer token."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import grpc

from panoptic.core.auth import BearerTokenInterceptor
from panoptic.core.consistency import ConsistencyTokens
from panoptic.core.grpc_server import HEALTH_SERVICE, GrpcServerSpec
from panoptic.core.service import PoolHolder
from panoptic.core.settings import DatabaseSettings, IndexerSettings, ServerSettings
from panoptic.v1 import indexer_service_pb2, indexer_service_pb2_grpc
from services.indexer import metrics
from services.indexer.handler import IndexingHandler
from services.indexer.servicer import IndexerServicer
from services.indexer.validation import Limits

SERVICE_NAME = indexer_service_pb2.DESCRIPTOR.services_by_name["IndexerService"].full_name


def build_spec(
    server: ServerSettings,
    database_settings: DatabaseSettings,
    settings: IndexerSettings,
    token: str,
) -> GrpcServerSpec:
    """The indexer as the bootstrap runs it."""
    database = PoolHolder(database_settings, "indexer")
    on_start, on_stop = database.hooks()
    handler = IndexingHandler(
        lambda: database.pool, timedelta(hours=settings.idempotency_retention_hours)
    )
    limits = Limits(settings.indexer_max_batch_claims, settings.indexer_max_text_chars)
    metrics.PIPELINES_EXPECTED.set(settings.pipelines_expected)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        indexer_service_pb2_grpc.add_IndexerServiceServicer_to_server(
            IndexerServicer(
                handler, limits, ConsistencyTokens(database_settings.consistency_token_secret)
            ),
            server,
        )
        return [SERVICE_NAME]

    return GrpcServerSpec(
        name="indexer",
        host=server.bind_host,
        port=settings.indexer_port,
        metrics_port=settings.indexer_metrics_port,
        register=register,
        interceptors=[BearerTokenInterceptor(token, exempt={HEALTH_SERVICE})],
        credentials=_tls_credentials(settings),
        on_start=on_start,
        on_stop=on_stop,
        grace_seconds=server.shutdown_grace_seconds,
        max_message_bytes=server.max_message_bytes,
    )


def _tls_credentials(settings: IndexerSettings) -> grpc.ServerCredentials | None:
    """Mutual TLS when a certificate, its key and the clients' CA are all configured."""
    files = (settings.indexer_tls_cert, settings.indexer_tls_key, settings.indexer_tls_client_ca)
    if not any(files):
        return None
    if not all(files):
        raise ValueError(
            "mutual TLS needs PANOPTIC_INDEXER_TLS_CERT, PANOPTIC_INDEXER_TLS_KEY and "
            "PANOPTIC_INDEXER_TLS_CLIENT_CA together"
        )
    cert, key, client_ca = (path.read_bytes() for path in files if path is not None)
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=True
    )
