"""Typed settings, read from the environment once per process, grouped per concern.

Every variable is listed in the README with its default. Development defaults keep a newcomer's
`make run` working with no configuration; `PANOPTIC_ENV=production` refuses to start with a
missing or well-known secret instead of silently using one.

Each concern (the shared server bits, the database, the indexer, the retriever, the gateway, the
dashboard, monitoring) is a frozen group model holding its fields, their validation and its own
production rule; a service is handed only the groups it uses. `Settings`, the one class that
reads the environment, is all the groups at once: it inherits their fields, so every variable
keeps its flat name (`PANOPTIC_GATEWAY_PORT`, not the nested `PANOPTIC_GATEWAY__PORT`
pydantic-settings would read for sub-models) with no alias table to keep in step, and
`settings.gateway` and its siblings are views of the values it read. Fields keep their full
names inside a group (`gateway.gateway_port`) for the same reason: one name from the
environment variable to the code.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from panoptic.core.errors import PanopticError

# Secrets that exist only so development works out of the box; production refuses them.
DEVELOPMENT_SECRETS = frozenset({"", "panoptic", "changeme", "development", "admin", "password"})
# The dashboard's password when none is set, outside production (`make run` prints it).
DEVELOPMENT_DASHBOARD_PASSWORD = "panoptic"  # noqa: S105 - well known on purpose, refused in production
# Signs page tokens when no key is configured; well known, so production refuses it.
DEVELOPMENT_PAGE_TOKEN_KEY: Final = "panoptic-development-page-token-key"  # noqa: S105
MIN_PAGE_TOKEN_KEY_CHARS: Final = 32
# Signs consistency tokens when no key is configured; well known, so production refuses it.
DEVELOPMENT_CONSISTENCY_TOKEN_KEY: Final = "panoptic-development-consistency-token-key"  # noqa: S105
MIN_CONSISTENCY_TOKEN_KEY_CHARS: Final = 32

Port = Annotated[int, Field(ge=1, le=65535)]


class Environment(StrEnum):
    """Where the suite runs; production turns unsafe defaults into start-up errors."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class SettingsError(PanopticError):
    """The configuration is unusable; the message says which variable and what to do."""


def _revealed(secret: SecretStr | None) -> str:
    """A secret's value, empty when it is unset."""
    return secret.get_secret_value() if secret is not None else ""


def _signing_key_problems(
    secret: SecretStr | None, variable: str, development_key: str, min_chars: int, shared: str
) -> list[str]:
    """A key that signs tokens must be random and long, not unset or a well-known value;
    `shared` says which processes must hold the same one."""
    value = _revealed(secret)
    if value in DEVELOPMENT_SECRETS or value == development_key or len(value) < min_chars:
        return [
            f"{variable} must be set to a random secret of at least {min_chars} characters, "
            + shared
        ]
    return []


class SettingsGroup(BaseModel):
    """One concern's settings: its fields, their validation, and what production refuses.

    Each group names its production rule after what it checks (`token_problems`,
    `login_problems`...), never a name another group or `Settings` also defines, so the rule
    is the same whether it is asked of the group or of the whole `Settings`.
    """

    model_config = ConfigDict(frozen=True)

    env: Environment = Environment.DEVELOPMENT

    @property
    def in_production(self) -> bool:
        """Whether unsafe defaults are refused rather than used."""
        return self.env is Environment.PRODUCTION

    def refuse(self, problems: list[str]) -> None:
        """In production, refuses to start over `problems`, naming every variable at fault."""
        if self.in_production and problems:
            raise SettingsError("refusing to start in production: " + "; ".join(problems))


class ServerSettings(SettingsGroup):
    """What every service's server shares: where it listens, how it logs, how it stops."""

    bind_host: str = "127.0.0.1"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 10.0
    max_message_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024


class DatabaseSettings(SettingsGroup):
    """Where PostgreSQL is, as the owner and as each service's role, and each process's pool."""

    # The embedded PostgreSQL, the generated token and the run lock live here.
    data_dir: Path = Path(".data")
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
    # How often each service re-reads its database size and row-estimate gauges.
    db_stats_interval_seconds: Annotated[float, Field(gt=0)] = 30.0
    # Streaming replicas the retriever and the dashboard read from (JSON list of URLs naming the
    # server: host, port and options; each service logs in with its own role, as on the primary).
    replica_urls: list[str] = []
    # A replica whose replay lags more than this takes no reads without a consistency token.
    replica_max_lag_seconds: Annotated[float, Field(gt=0)] = 5.0
    # How often each process checks its replicas' health and lag.
    replica_check_interval_seconds: Annotated[float, Field(gt=0)] = 0.5
    # How long a read with a consistency token waits for a replica to replay that far before
    # the primary serves it (never longer than half of what is left of its deadline).
    consistency_wait_seconds: Annotated[float, Field(ge=0)] = 0.2
    # Signs the consistency tokens the indexer issues and the retriever reads; every indexer and
    # retriever needs the same one. Unset in development: a fixed, well-known key.
    consistency_token_key: SecretStr | None = None

    def database_problems(self, database: str | None) -> list[str]:
        """A real server for the role `database` connects as (`owner`, `indexer`, `retriever`,
        `dashboard`; None: no connection), and no well-known role password."""
        problems = []
        own_url = None if database in (None, "owner") else getattr(self, f"{database}_database_url")
        if database is not None and self.database_url is None and own_url is None:
            variable = (
                "DATABASE_URL"
                if database == "owner"
                else f"PANOPTIC_{database.upper()}_DATABASE_URL"
            )
            problems.append(f"{variable} must point at the production PostgreSQL")
        for name in ("indexer_db_password", "retriever_db_password", "dashboard_db_password"):
            secret: SecretStr | None = getattr(self, name)
            if secret is not None and secret.get_secret_value() in DEVELOPMENT_SECRETS:
                problems.append(f"PANOPTIC_{name.upper()} is a well-known default")
        return problems

    def consistency_token_problems(self) -> list[str]:
        """A random consistency-token key, shared by every indexer and retriever."""
        return _signing_key_problems(
            self.consistency_token_key,
            "PANOPTIC_CONSISTENCY_TOKEN_KEY",
            DEVELOPMENT_CONSISTENCY_TOKEN_KEY,
            MIN_CONSISTENCY_TOKEN_KEY_CHARS,
            "the same for the indexer and the retriever",
        )

    @property
    def consistency_token_secret(self) -> bytes:
        """The key that signs consistency tokens: the configured one, or in development a fixed
        one."""
        return (_revealed(self.consistency_token_key) or DEVELOPMENT_CONSISTENCY_TOKEN_KEY).encode()

    @property
    def embedded_database(self) -> bool:
        """Whether the suite runs its own PostgreSQL (no DATABASE_URL given)."""
        return self.database_url is None

    @property
    def pgdata_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its data."""
        return self.data_dir / "postgres"


class IndexerSettings(SettingsGroup):
    """The indexer: its ports, who may call it, and how much one call may carry."""

    indexer_port: Port = 50051
    indexer_metrics_port: Port = 9101
    # Where clients (`panoptic index`, pipelines) find the indexer.
    indexer_address: str = "127.0.0.1:50051"
    # Bearer token the indexer requires. Unset in development: `panoptic up` makes one.
    indexer_token: SecretStr | None = None
    # Mutual TLS for the indexer: all three set turns it on.
    indexer_tls_cert: Path | None = None
    indexer_tls_key: Path | None = None
    indexer_tls_client_ca: Path | None = None
    indexer_max_batch_claims: Annotated[int, Field(ge=1)] = 1000
    indexer_max_text_chars: Annotated[int, Field(ge=1)] = 20_000
    # How long a request id is remembered for replays (AIP-155); pipelines retry within it.
    idempotency_retention_hours: Annotated[float, Field(gt=0)] = 7 * 24
    # Pipelines that should be sending claims: above 0, ClaimsNotIndexed fires when nothing has
    # been committed for the alert's window, even if no pipeline is connected (the indexer
    # exports it as `panoptic_indexer_pipelines_expected`). 0: only while pipelines call.
    pipelines_expected: Annotated[int, Field(ge=0)] = 1

    def token_problems(self) -> list[str]:
        """A random bearer token, long enough not to be guessed."""
        value = _revealed(self.indexer_token)
        if value in DEVELOPMENT_SECRETS or len(value) < 24:
            return ["PANOPTIC_INDEXER_TOKEN must be set to a random secret (24+ chars)"]
        return []


class RetrieverSettings(SettingsGroup):
    """The retriever: its ports, its workers, how long a read may run, what signs page tokens."""

    retriever_port: Port = 50052
    retriever_metrics_port: Port = 9102
    # Signs page tokens (AIP-158); every retriever replica needs the same one. Unset in
    # development: a fixed, well-known key, which production refuses.
    page_token_key: SecretStr | None = None
    # The longest any read may run, whatever deadline the caller sent.
    retriever_statement_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    # Processes serving the retriever's port (core.workers), each with its own pool of up to
    # db_pool_max_size connections: a Python process serves gRPC on one core at a time.
    retriever_workers: Annotated[int, Field(ge=1, le=64)] = 2
    # How long a client's connection may live before the retriever asks it to make a new one
    # (gRPC's GOAWAY), so that long-lived connections (the gateway's) spread over retriever
    # replicas and workers started after them; 0: as long as the client keeps it.
    retriever_max_connection_age_seconds: Annotated[float, Field(ge=0)] = 300.0

    def page_token_problems(self) -> list[str]:
        """A random page-token key of its own, shared by every replica."""
        return _signing_key_problems(
            self.page_token_key,
            "PANOPTIC_PAGE_TOKEN_KEY",
            DEVELOPMENT_PAGE_TOKEN_KEY,
            MIN_PAGE_TOKEN_KEY_CHARS,
            "the same on every replica",
        )

    @property
    def page_token_secret(self) -> bytes:
        """The key that signs page tokens: the configured one, or in development a fixed one."""
        return (_revealed(self.page_token_key) or DEVELOPMENT_PAGE_TOKEN_KEY).encode()


class GatewaySettings(SettingsGroup):
    """The REST gateway: its ports, the API it exposes, and its edge (limits, cache, CORS)."""

    gateway_port: Port = 8080
    gateway_metrics_port: Port = 9103
    # Where the gateway (and other clients) find the retriever.
    retriever_address: str = "127.0.0.1:50052"
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
    # Send reads over one stream per connection (`panoptic.core.call_stream`), where a unary
    # call costs both sides about twice the CPU; off: a unary call each.
    gateway_call_stream: bool = True
    gateway_method_deadlines: dict[str, Annotated[float, Field(gt=0)]] = {
        "SearchClaims": 10.0,
        "GetActorTimeline": 10.0,
    }
    # Cache-Control of successful responses by method name; "*" for the others.
    gateway_cache_control: dict[str, str] = {
        "GetClaim": "public, max-age=30",
        "GetActor": "public, max-age=30",
        "GetTopic": "public, max-age=300",
        "BatchGetActors": "public, max-age=30",
        "BatchGetTopics": "public, max-age=300",
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
    # Proxies whose X-Forwarded-For names the client (comma-separated IPs and CIDR networks,
    # "*" for any), so that the rate limit keys on the client behind them.
    gateway_trusted_proxies: str = ""
    # Longest request target (path and query) and largest request head, in bytes.
    gateway_max_url_bytes: Annotated[int, Field(ge=256)] = 8192
    gateway_max_header_bytes: Annotated[int, Field(ge=1024)] = 16384
    # Responses at least this large are compressed (brotli or gzip) when the client accepts it.
    gateway_compress_min_bytes: Annotated[int, Field(ge=0)] = 1024


class DashboardSettings(SettingsGroup):
    """The admin dashboard: its ports, the operators' login and their sessions."""

    dashboard_port: Port = 8081
    dashboard_metrics_port: Port = 9104
    # The operators' login. Unset password in development: DEVELOPMENT_DASHBOARD_PASSWORD
    # above; production refuses that, any well-known one and any shorter than 12 characters.
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

    def login_problems(self) -> list[str]:
        """A password of 12+ characters that is not well known, and a random session secret."""
        problems = []
        password = _revealed(self.dashboard_password)
        if password in DEVELOPMENT_SECRETS or password == DEVELOPMENT_DASHBOARD_PASSWORD:
            problems.append("PANOPTIC_DASHBOARD_PASSWORD must be set, not to a well-known value")
        elif len(password) < 12:
            problems.append("PANOPTIC_DASHBOARD_PASSWORD must have at least 12 characters")
        session_secret = _revealed(self.dashboard_session_secret)
        if session_secret in DEVELOPMENT_SECRETS or len(session_secret) < 32:
            problems.append(
                "PANOPTIC_DASHBOARD_SESSION_SECRET must be set to a random secret (32+ chars)"
            )
        return problems

    @property
    def secure_cookie(self) -> bool:
        """Whether the session cookie goes over HTTPS only: as set, else only in production."""
        configured = self.dashboard_secure_cookie
        return configured if configured is not None else self.in_production


class MonitoringSettings(SettingsGroup):
    """What `panoptic up --with-monitoring` runs, and when the dashboard shows indexing stalled."""

    # ClaimsNotIndexed's window. The rules look back one day, so at most 1440 minutes.
    alert_not_indexed_minutes: Annotated[float, Field(gt=0, le=1440)] = 15.0
    # Where `panoptic up --with-monitoring` runs Prometheus.
    prometheus_port: Port = 9090


Group = TypeVar("Group", bound=SettingsGroup)


class Settings(
    BaseSettings,
    ServerSettings,
    DatabaseSettings,
    IndexerSettings,
    RetrieverSettings,
    GatewaySettings,
    DashboardSettings,
    MonitoringSettings,
):
    """The whole suite's configuration, read from the environment; each service is handed
    the groups it needs (`settings.gateway`, `settings.server`...)."""

    model_config = SettingsConfigDict(
        env_prefix="PANOPTIC_", frozen=True, extra="ignore", case_sensitive=False
    )

    def _group(self, group: type[Group]) -> Group:
        """The values of one group, already validated when they were read."""
        return group.model_construct(**{name: getattr(self, name) for name in group.model_fields})

    @property
    def server(self) -> ServerSettings:
        """What every service's server shares."""
        return self._group(ServerSettings)

    @property
    def database(self) -> DatabaseSettings:
        """Where PostgreSQL is and how each process pools its connections."""
        return self._group(DatabaseSettings)

    @property
    def indexer(self) -> IndexerSettings:
        """The indexer's settings."""
        return self._group(IndexerSettings)

    @property
    def retriever(self) -> RetrieverSettings:
        """The retriever's settings."""
        return self._group(RetrieverSettings)

    @property
    def gateway(self) -> GatewaySettings:
        """The gateway's settings."""
        return self._group(GatewaySettings)

    @property
    def dashboard(self) -> DashboardSettings:
        """The dashboard's settings."""
        return self._group(DashboardSettings)

    @property
    def monitoring(self) -> MonitoringSettings:
        """The monitoring's settings."""
        return self._group(MonitoringSettings)

    def require_production_ready(
        self,
        *,
        database: str | None,
        token: bool = False,
        dashboard: bool = False,
        page_token: bool = False,
        consistency_token: bool = False,
    ) -> None:
        """In production, refuses missing or well-known secrets that this process needs: the
        rules of the groups it uses, added up.

        `database` names the role whose URL the process connects with (`owner`, `indexer`,
        `retriever`, `dashboard`), or None; `token` says whether it needs the indexer's bearer
        token, `dashboard` the dashboard's password and session secret, `page_token` the
        retriever's page-token key, `consistency_token` the key of consistency tokens. Each
        process checks only its own needs, so no service is handed secrets it does not use.
        """
        self.refuse(
            [
                *self.database_problems(database),
                *(self.token_problems() if token else []),
                *(self.login_problems() if dashboard else []),
                *(self.page_token_problems() if page_token else []),
                *(self.consistency_token_problems() if consistency_token else []),
            ]
        )


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()
