"""Database connections: URLs for each role, and the one asyncpg pool each process opens.

`DATABASE_URL` names the owner, who migrates. The indexer and the retriever connect with their own
roles (made by the migrations), so that PostgreSQL itself enforces what each may do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from panoptic.core.errors import PanopticError
from panoptic.core.refusals import DatabaseUnavailable, DeadlineExceeded
from panoptic.core.settings import DatabaseSettings, SettingsError

# Sent with every connection so operators can tell the services apart in pg_stat_activity.
APPLICATION_NAME = "panoptic-{service}"


# The login roles the migrations create, one per service (migrations/versions/0001, 0003).
SERVICE_ROLES = {
    "indexer": "panoptic_indexer",
    "retriever": "panoptic_retriever",
    "dashboard": "panoptic_dashboard",
}


class DatabaseUrlError(PanopticError, ValueError):
    """A database URL is malformed; the message says which part."""


@dataclass(frozen=True)
class DatabaseUrl:
    """A libpq-style `postgresql://user:password@host:port/database?options` URL."""

    value: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.value)
        if parts.scheme not in ("postgresql", "postgres"):
            raise DatabaseUrlError(
                "DATABASE_URL must start with postgresql:// "
                "(e.g. postgresql://user:password@host:5432/panoptic)"
            )
        if not parts.path.strip("/"):
            raise DatabaseUrlError("DATABASE_URL names no database (the part after the last /)")
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            raise DatabaseUrlError("DATABASE_URL has a port that is not a number") from None

    @property
    def database(self) -> str:
        """The database's name."""
        return unquote(urlsplit(self.value).path.lstrip("/"))

    @property
    def user(self) -> str | None:
        """The role the URL logs in as, if it names one."""
        username = urlsplit(self.value).username
        return unquote(username) if username else None

    def with_database(self, database: str) -> DatabaseUrl:
        """The same server and role, another database."""
        parts = urlsplit(self.value)
        return DatabaseUrl(urlunsplit(parts._replace(path="/" + quote(database))))

    def with_user(self, user: str, password: str | None = None) -> DatabaseUrl:
        """The same server and database, logging in as another role."""
        parts = urlsplit(self.value)
        host = parts.netloc.rpartition("@")[2]
        credentials = quote(user, safe="")
        if password:
            credentials += ":" + quote(password, safe="")
        return DatabaseUrl(urlunsplit(parts._replace(netloc=f"{credentials}@{host}")))

    def redacted(self) -> str:
        """The URL without its password, fit for logs and error messages."""
        parts = urlsplit(self.value)
        if parts.password is None:
            return self.value
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))

    def sqlalchemy(self) -> str:
        """The URL as SQLAlchemy's asyncpg dialect spells it."""
        return "postgresql+asyncpg" + self.value[self.value.index(":") :]


def role_url(owner_url: DatabaseUrl, role: str, password: str | None) -> DatabaseUrl:
    """A service role's URL derived from the owner's: same server and database."""
    return owner_url.with_user(role, password)


def service_database_url(settings: DatabaseSettings, service: str) -> DatabaseUrl:
    """The URL a service connects with: its own setting, or derived from the owner's URL."""
    explicit = getattr(settings, f"{service}_database_url")
    if explicit is not None:
        return DatabaseUrl(explicit.get_secret_value())
    password = getattr(settings, f"{service}_db_password")
    if settings.database_url is None:
        raise SettingsError(
            f"neither DATABASE_URL nor PANOPTIC_{service.upper()}_DATABASE_URL is set, and no "
            f"embedded PostgreSQL runs in {settings.pgdata_dir} (start the suite with `make run`)"
        )
    return role_url(
        DatabaseUrl(settings.database_url.get_secret_value()),
        SERVICE_ROLES[service],
        password.get_secret_value() if password else None,
    )


async def create_pool(
    url: DatabaseUrl,
    *,
    service: str,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 10.0,
    read_only: bool = False,
    **server_settings: str,
) -> asyncpg.Pool:
    """Opens the process's pool; `read_only` makes every transaction read-only by default.

    Raises `DatabaseUnavailable` with a one-line reason when the server cannot be reached.
    """
    settings: dict[str, str] = {"application_name": APPLICATION_NAME.format(service=service)}
    if read_only:
        settings["default_transaction_read_only"] = "on"
    settings.update(server_settings)
    try:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            url.value,
            min_size=min_size,
            max_size=max_size,
            timeout=connect_timeout,
            server_settings=settings,
            reset=_keep_session,
        )
    except (TimeoutError, OSError, asyncpg.PostgresError, ValueError) as error:
        raise cannot_connect(url, error) from None
    return pool


async def check_connection(url: DatabaseUrl, *, timeout: float = 10.0) -> str:
    """Connects once and returns the server's version; raises `DatabaseUnavailable` if it can't."""
    try:
        connection = await asyncpg.connect(url.value, timeout=timeout)
    except (OSError, TimeoutError, asyncpg.PostgresError, ValueError) as error:
        raise cannot_connect(url, error) from None
    try:
        version: str = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    return version


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Releases a connection to the pool without asyncpg's RESET ALL round trip.

    Panoptic changes session state only with SET LOCAL and transaction-level advisory locks,
    which end with their transaction (asyncpg still rolls back one left open), so resetting
    the session after every call would be a wasted round trip on every read.
    """


def cannot_connect(url: DatabaseUrl, error: Any) -> DatabaseUnavailable:
    """The refusal for a server that cannot be reached or refused the login, saying where."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return DatabaseUnavailable(
        f"cannot connect to PostgreSQL at {url.redacted()}: {reason}. "
        "Check DATABASE_URL and that the server is running."
    )


# The one rule for "the database is down", following asyncpg's exception classes: the failures
# of the connection or of the server as a whole, after which nothing of the call was committed
# and the same call may succeed later. A statement the server refused (a constraint, a syntax
# error, a full disk) is not among them: retrying it would fail the same way.
UNAVAILABLE_ERRORS: Final = (
    # SQLSTATE class 08: the connection failed, was rejected or is gone.
    asyncpg.PostgresConnectionError,
    # 57P01-03: shut down by an administrator or after a crash, or starting up / in recovery.
    # (Not the rest of class 57: 57014 is a cancelled statement, a deadline's business.)
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    # 53300: no connection slot left, for the server or the role.
    asyncpg.TooManyConnectionsError,
    # The client's side: the connection is closed, or the pool is closing.
    asyncpg.InterfaceError,
    # A pooled connection whose server has just closed it, used before asyncpg saw the close,
    # fails in the client's protocol state rather than with a connection error.
    asyncpg.InternalClientError,
    # The socket: refused, reset, unreachable.
    OSError,
    # Connecting took longer than the pool's connect timeout. Where the work itself is bounded by
    # the caller's deadline, a timeout is that deadline passing instead (`DatabaseRefusals`).
    TimeoutError,
)


# Any failure of database work: the database is down, or the server refused a statement. What
# best-effort work (a note for operators) catches, so that it never changes a call's answer.
DATABASE_FAILURES: Final = (*UNAVAILABLE_ERRORS, asyncpg.PostgresError)


def is_database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot serve the call now (see `UNAVAILABLE_ERRORS`)."""
    return isinstance(error, UNAVAILABLE_ERRORS)


class DatabaseRefusals:
    """Turns the failures of database work bounded by the caller's deadline into refusals: a
    statement cancelled or timed out is `DeadlineExceeded`, a lost database `DatabaseUnavailable`.

    A class rather than a `contextlib.contextmanager`: every read enters it, and a generator
    based one costs several times as much. Stateless: `database_refusals` serves every block.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        if kind is None:
            return
        # The deadline first: within it, a timeout is the deadline passing, not a lost server.
        if issubclass(kind, (asyncpg.QueryCanceledError, TimeoutError)):
            raise DeadlineExceeded() from None
        if issubclass(kind, UNAVAILABLE_ERRORS):
            raise DatabaseUnavailable() from None


database_refusals: Final = DatabaseRefusals()


class KeptConnection:
    """A pool connection kept across a run of statements, back in the pool once idle.

    Checking a connection out of asyncpg's pool and back in costs about as much CPU as the
    primary-key lookup it serves (docs/performance.md#kept-connections). A hot path that runs
    one statement at a time (GetClaim's shared lookups) keeps one connection while statements
    follow each other and returns it after `idle_seconds` without one, so that closing the pool
    never waits long.

    Each statement is prepared once per connection kept, and run as that prepared statement:
    asyncpg's `Connection.fetch` looks its statement up and times itself in Python on every
    call, nearly twice the Python of running a prepared one.
    """

    def __init__(self, pool: Callable[[], asyncpg.Pool], *, idle_seconds: float = 0.1) -> None:
        self._pool = pool
        self._idle_seconds = idle_seconds
        self._connection: asyncpg.Connection | None = None
        self._owner: asyncpg.Pool | None = None
        self._statements: dict[str, asyncpg.prepared_stmt.PreparedStatement] = {}
        self._busy = False
        # When the last statement ended; one timer at a time checks it, rather than a timer set
        # and cancelled per statement.
        self._last_used = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._releases: set[asyncio.Task[None]] = set()

    async def fetch(
        self, query: str, *args: Any, timeout: float | None = None
    ) -> list[asyncpg.Record]:
        """`query`'s rows, as `asyncpg.Connection.fetch` gives them, on the kept connection.

        `timeout` bounds the checkout, the statement's preparation and its run; asyncpg
        cancels the statement in the server when it runs out.
        """
        if self._busy:
            raise RuntimeError("a KeptConnection runs one statement at a time")
        self._busy = True
        try:
            connection = self._connection
            if connection is None:
                self._owner = self._pool()
                connection = self._connection = await self._owner.acquire(timeout=timeout)
            try:
                statement = await self._statement(connection, query, timeout)
                rows: list[asyncpg.Record] = await statement.fetch(*args, timeout=timeout)
            except asyncpg.InvalidCachedStatementError:
                # The schema changed under the statement (a migration ran): prepare it again.
                del self._statements[query]
                statement = await self._statement(connection, query, timeout)
                rows = await statement.fetch(*args, timeout=timeout)
        except BaseException:
            # The statement may have left the connection broken or being cancelled: the pool
            # decides what to do with it.
            self._give_back()
            raise
        finally:
            self._busy = False
        loop = asyncio.get_running_loop()
        self._last_used = loop.time()
        if self._idle_timer is None:
            self._idle_timer = loop.call_later(self._idle_seconds, self._give_back_if_idle)
        return rows

    async def _statement(
        self, connection: asyncpg.Connection, query: str, timeout: float | None
    ) -> asyncpg.prepared_stmt.PreparedStatement:
        statement = self._statements.get(query)
        if statement is None:
            statement = self._statements[query] = await connection.prepare(query, timeout=timeout)
        return statement

    def _give_back_if_idle(self) -> None:
        self._idle_timer = None
        if self._busy:
            return  # the statement running sets the next check when it ends
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._last_used
        if idle >= self._idle_seconds:
            self._give_back()
        else:
            self._idle_timer = loop.call_later(self._idle_seconds - idle, self._give_back_if_idle)

    def _give_back(self) -> None:
        connection, owner = self._connection, self._owner
        self._connection = self._owner = None
        # Prepared on this connection only; the next one prepares its own.
        self._statements.clear()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if connection is not None and owner is not None:
            release = asyncio.get_running_loop().create_task(owner.release(connection))
            self._releases.add(release)  # the loop keeps only weak references to tasks
            release.add_done_callback(self._releases.discard)
