"""Typed settings, read from the environment once per process.

Every variable is listed in the README with its default. Development defaults keep a newcomer's
`make run` working with no configuration; `PANOPTIC_ENV=production` refuses to start with a
missing or well-known secret instead of silently using one.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from panoptic.core.errors import PanopticError

# Secrets that exist only so development works out of the box; production refuses them.
DEVELOPMENT_SECRETS = frozenset({"", "panoptic", "changeme", "development", "admin", "password"})
# The dashboard's password when none is set, outside production (`make run` prints it).
DEVELOPMENT_DASHBOARD_PASSWORD = "panoptic"  # noqa: S105 - well known on purpose, refused in production

Port = Annotated[int, Field(ge=1, le=65535)]


class Environment(StrEnum):
    """Where the suite runs; production turns unsafe defaults into start-up errors."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SettingsError(PanopticError):
    """The configuration is unusable; the message says which variable and what to do."""


class Settings(BaseSettings):
    """The whole suite's configuration. Each service reads the parts it needs."""

    model_config = SettingsConfigDict(
        env_prefix="PANOPTIC_", frozen=True, extra="ignore", case_sensitive=False
    )

    env: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path(".data")

    # --- Database ----------------------------------------------------------------------------
    # The owner's URL, used by migrations. Unset: an embedded PostgreSQL in `data_dir`.
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PANOPTIC_DATABASE_URL")
    )
    # Each service's own role. Unset: the owner's URL with the user swapped for the role the
    # migrations create (`panoptic_indexer`, `panoptic_retriever`) and its password, if any.
    indexer_database_url: SecretStr | None = None
    retriever_database_url: SecretStr | None = None
    dashboard_database_url: SecretStr | None = None
    indexer_db_password: SecretStr | None = None
    retriever_db_password: SecretStr | None = None
    dashboard_db_password: SecretStr | None = None
    db_pool_min_size: Annotated[int, Field(ge=0)] = 1
    db_pool_max_size: Annotated[int, Field(ge=1)] = 10
    db_connect_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0

    # --- Network -----------------------------------------------------------------------------
    bind_host: str = "127.0.0.1"
    indexer_port: Port = 50051
    retriever_port: Port = 50052
    gateway_port: Port = 8080
    dashboard_port: Port = 8081
    indexer_metrics_port: Port = 9101
    retriever_metrics_port: Port = 9102
    gateway_metrics_port: Port = 9103
    dashboard_metrics_port: Port = 9104
    # Where clients find the gRPC services (the gateway, `panoptic index`).
    indexer_address: str = "127.0.0.1:50051"
    retriever_address: str = "127.0.0.1:50052"

    # --- Security ----------------------------------------------------------------------------
    # Bearer token the indexer requires. Unset in development: `panoptic up` makes one.
    indexer_token: SecretStr | None = None
    # Mutual TLS for the indexer: all three set turns it on.
    indexer_tls_cert: Path | None = None
    indexer_tls_key: Path | None = None
    indexer_tls_client_ca: Path | None = None

    # --- Indexing ----------------------------------------------------------------------------
    indexer_max_batch_claims: Annotated[int, Field(ge=1)] = 1000
    indexer_max_text_chars: Annotated[int, Field(ge=1)] = 20_000
    # How long a request id is remembered for replays (AIP-155); pipelines retry within it.
    idempotency_retention_hours: Annotated[float, Field(gt=0)] = 7 * 24

    # --- Gateway -----------------------------------------------------------------------------
    # The gRPC services whose GET bindings the gateway exposes; each must be free of side effects.
    gateway_services: list[str] = ["panoptic.v1.RetrieverService"]
    # Where the gateway learns the API: "reflection" (asks the retriever, and follows it when it
    # is redeployed) or the path of a FileDescriptorSet (`protoc --descriptor_set_out`).
    gateway_descriptor_source: str = "reflection"
    # How often to ask reflection again for a changed API; 0 never does.
    gateway_reflection_refresh_seconds: Annotated[float, Field(ge=0)] = 30.0
    # How long to wait at start for the retriever's reflection before giving up.
    gateway_startup_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    # gRPC deadline of a transcoded call, and per-method overrides (`{"SearchClaims": 10}`).
    gateway_deadline_seconds: Annotated[float, Field(gt=0)] = 5.0
    # Connections to the retriever, taken in turn. Each lands on one of its workers, at random
    # (SO_REUSEPORT): with 8, all on one of 2 workers has a chance of 1 in 128.
    gateway_retriever_connections: Annotated[int, Field(ge=1, le=64)] = 8
    gateway_method_deadlines: dict[str, Annotated[float, Field(gt=0)]] = {
        "SearchClaims": 10.0,
        "GetActorTimeline": 10.0,
    }
    # Cache-Control of successful responses by method name; "*" for the others.
    gateway_cache_control: dict[str, str] = {
        "GetClaim": "public, max-age=30",
        "GetActor": "public, max-age=30",
        "GetTopic": "public, max-age=300",
        "*": "public, max-age=10",
    }
    # The gateway's shared cache of successful responses, kept at most each route's max-age
    # (MiB of JSON; 0 turns it off).
    gateway_response_cache_mib: Annotated[float, Field(ge=0)] = 64.0
    # Origins allowed to call the gateway from a browser ("*" for any); none by default.
    gateway_cors_origins: list[str] = []
    # Requests per second per client IP, and the burst above it; a rate of 0 turns it off.
    gateway_rate_limit_per_second: Annotated[float, Field(ge=0)] = 50.0
    gateway_rate_limit_burst: Annotated[int, Field(ge=1)] = 100
    # Proxies whose X-Forwarded-For names the client (comma-separated IPs, "*" for any).
    gateway_trusted_proxies: str = ""
    # Longest request target (path and query) and largest request head, in bytes.
    gateway_max_url_bytes: Annotated[int, Field(ge=256)] = 8192
    gateway_max_header_bytes: Annotated[int, Field(ge=1024)] = 16384
    # Responses at least this large are compressed (brotli or gzip) when the client accepts it.
    gateway_compress_min_bytes: Annotated[int, Field(ge=0)] = 1024

    # --- Dashboard ---------------------------------------------------------------------------
    # The operators' login. Unset password in development: DEVELOPMENT_DASHBOARD_PASSWORD
    # below; production refuses that, any well-known one and any shorter than 12 characters.
    dashboard_user: str = Field(default="admin", min_length=1)
    dashboard_password: SecretStr | None = None
    # Signs session cookies (32+ characters). Unset in development: a random key per process,
    # so a restart logs everyone out; production requires one.
    dashboard_session_secret: SecretStr | None = None
    # A session ends this long after its login, whatever the activity.
    dashboard_session_minutes: Annotated[float, Field(gt=0)] = 60.0
    # Failed logins of one user from one client in a minute before that client must wait (1 s,
    # doubling with each further failure, at most 5 s) before its next attempt for that user.
    dashboard_login_failures_per_minute: Annotated[int, Field(ge=1)] = 5
    # Send the session cookie only over HTTPS. Unset: on in production, off in development.
    dashboard_secure_cookie: bool | None = None
    # The longest any of the dashboard's reads may run.
    dashboard_statement_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0

    # --- Monitoring --------------------------------------------------------------------------
    # Pipelines that should be sending claims: above 0, ClaimsNotIndexed fires when nothing has
    # been committed for the alert's window, even if no pipeline is connected (the indexer
    # exports it as `panoptic_indexer_pipelines_expected`). 0: only while pipelines call.
    pipelines_expected: Annotated[int, Field(ge=0)] = 1
    # ClaimsNotIndexed's window. The rules look back one day, so at most 1440 minutes.
    alert_not_indexed_minutes: Annotated[float, Field(gt=0, le=1440)] = 15.0
    # How often each service re-reads its database size and row-estimate gauges.
    db_stats_interval_seconds: Annotated[float, Field(gt=0)] = 30.0
    # Where `panoptic up --with-monitoring` runs Prometheus.
    prometheus_port: Port = 9090

    # --- Retrieval ---------------------------------------------------------------------------
    # Signs page tokens (AIP-158); every retriever replica needs the same one. Unset in
    # development: a fixed, well-known key, which production refuses.
    page_token_key: SecretStr | None = None
    # The longest any read may run, whatever deadline the caller sent.
    retriever_statement_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    # Processes serving the retriever's port (core.workers), each with its own pool of up to
    # db_pool_max_size connections: a Python process serves gRPC on one core at a time.
    retriever_workers: Annotated[int, Field(ge=1, le=64)] = 2

    # --- Behaviour ---------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 10.0
    max_message_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024

    def require_production_ready(
        self, *, database: str | None, token: bool = False, dashboard: bool = False
    ) -> None:
        """In production, refuses missing or well-known secrets that this process needs.

        `database` names the role whose URL the process connects with (`owner`, `indexer`,
        `retriever`, `dashboard`), or None; `token` says whether it needs the indexer's bearer
        token, `dashboard` whether it needs the dashboard's password and session secret.
        Each process checks only its own needs, so no service is handed secrets it does not use.
        """
        if self.env is not Environment.PRODUCTION:
            return
        problems = []
        own_url = None if database in (None, "owner") else getattr(self, f"{database}_database_url")
        if database is not None and self.database_url is None and own_url is None:
            variable = (
                "DATABASE_URL"
                if database == "owner"
                else f"PANOPTIC_{database.upper()}_DATABASE_URL"
            )
            problems.append(f"{variable} must point at the production PostgreSQL")
        if token:
            value = self.indexer_token.get_secret_value() if self.indexer_token else ""
            if value in DEVELOPMENT_SECRETS or len(value) < 24:
                problems.append("PANOPTIC_INDEXER_TOKEN must be set to a random secret (24+ chars)")
        if dashboard:
            password = self.dashboard_password.get_secret_value() if self.dashboard_password else ""
            if password in DEVELOPMENT_SECRETS or password == DEVELOPMENT_DASHBOARD_PASSWORD:
                problems.append(
                    "PANOPTIC_DASHBOARD_PASSWORD must be set, not to a well-known value"
                )
            elif len(password) < 12:
                problems.append("PANOPTIC_DASHBOARD_PASSWORD must have at least 12 characters")
            session_secret = (
                self.dashboard_session_secret.get_secret_value()
                if self.dashboard_session_secret
                else ""
            )
            if session_secret in DEVELOPMENT_SECRETS or len(session_secret) < 32:
                problems.append(
                    "PANOPTIC_DASHBOARD_SESSION_SECRET must be set to a random secret (32+ chars)"
                )
        for name in ("indexer_db_password", "retriever_db_password", "dashboard_db_password"):
            secret: SecretStr | None = getattr(self, name)
            if secret is not None and secret.get_secret_value() in DEVELOPMENT_SECRETS:
                problems.append(f"PANOPTIC_{name.upper()} is a well-known default")
        if problems:
            raise SettingsError("refusing to start in production: " + "; ".join(problems))

    @property
    def embedded_database(self) -> bool:
        """Whether the suite runs its own PostgreSQL (no DATABASE_URL given)."""
        return self.database_url is None

    @property
    def pgdata_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its data."""
        return self.data_dir / "postgres"


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()
