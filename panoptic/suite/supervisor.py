"""`panoptic up`: the whole suite from one command, each service in its own process.

It takes a lock so a second `up` in the same data directory refuses to start, brings up the
database (embedded unless `DATABASE_URL` is set), migrates, starts every service as compose
would (`panoptic indexer`, `panoptic retriever`, ...), waits until each reports SERVING, loads
the demo corpus on first start, and on Ctrl-C or SIGTERM, even while still starting, stops
everything in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from panoptic.core.db import SERVICE_ROLES, DatabaseUrl, check_connection
from panoptic.core.errors import PanopticError
from panoptic.core.lifecycle import SUPERVISOR_PID_VARIABLE
from panoptic.core.logging import get_logger
from panoptic.core.ports import check_port_free
from panoptic.core.settings import DEVELOPMENT_DASHBOARD_PASSWORD, Settings
from panoptic.suite import migrate, monitoring
from panoptic.suite.embedded_pg import DATABASE, EmbeddedPostgres, ensure_replicas
from panoptic.suite.health import wait_until_http_ready, wait_until_serving

T = TypeVar("T")

log = get_logger("panoptic.up")


TOKEN_FILE = "indexer-token"  # noqa: S105 - a file name, not a secret
DEMO_FILE = "demo-corpus.jsonl"
# Present from the start of a demo load until it is complete.
DEMO_LOADING_FILE = "demo-corpus.loading"


class AlreadyRunning(PanopticError):
    """Another `panoptic up` holds the data directory."""


@dataclass(frozen=True)
class ChildService:
    """One service process the supervisor runs and watches."""

    name: str
    port: int
    metrics_port: int
    ready_path: str | None = None
    """For HTTP services, the path that answers 200 once ready; gRPC ones report health."""

    @property
    def port_variable(self) -> str:
        """The setting that moves its port."""
        return f"PANOPTIC_{self.name.upper()}_PORT"


def suite_services(settings: Settings) -> list[ChildService]:
    """The services `up` starts, in start order."""
    return [
        ChildService("indexer", settings.indexer_port, settings.indexer_metrics_port),
        ChildService("retriever", settings.retriever_port, settings.retriever_metrics_port),
        # After the retriever: the gateway learns the API from its reflection.
        ChildService("gateway", settings.gateway_port, settings.gateway_metrics_port, "/readyz"),
        ChildService(
            "dashboard", settings.dashboard_port, settings.dashboard_metrics_port, "/readyz"
        ),
    ]


@contextlib.contextmanager
def single_instance(data_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on the data directory for as long as the suite runs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / "up.lock"
    handle: IO[str] = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise AlreadyRunning(
            f"Panoptic is already running from {data_dir} (pid {holder}); use that one, "
            "or stop it with Ctrl-C in its terminal first"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def known_indexer_token(settings: Settings) -> str | None:
    """The indexer's token: the setting, else the one `up` keeps in the data directory."""
    if settings.indexer_token is not None:
        return settings.indexer_token.get_secret_value()
    path = settings.data_dir / TOKEN_FILE
    return path.read_text().strip() if path.exists() else None


def indexer_token(settings: Settings) -> tuple[str, bool]:
    """The indexer's token and whether it was generated now (kept for the next start)."""
    known = known_indexer_token(settings)
    if known is not None:
        return known, False
    path = settings.data_dir / TOKEN_FILE
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token, True


async def prepare_database(settings: Settings) -> tuple[DatabaseUrl, EmbeddedPostgres | None]:
    """The owner's URL after migrating; and the embedded server if this call started it."""
    if settings.database_url is not None:
        url = DatabaseUrl(settings.database_url.get_secret_value())
        return await _migrated(url, settings), None
    server = EmbeddedPostgres(settings.pgdata_dir)
    started = server if server.ensure_started() else None
    try:
        url = DatabaseUrl(await server.ensure_owner_database())
        return await _migrated(url, settings), started
    except BaseException:  # failed, or cancelled by a signal: stop what this call started
        if started is not None:
            started.stop()
        raise


async def _migrated(url: DatabaseUrl, settings: Settings) -> DatabaseUrl:
    """`url`, once the database answers, is migrated and its roles have their passwords."""
    await check_connection(url, timeout=settings.db_connect_timeout_seconds)
    await migrate.upgrade_async(url)
    for service in SERVICE_ROLES:
        password = getattr(settings, f"{service}_db_password")
        if password is not None:
            await migrate.set_role_password(
                url, SERVICE_ROLES[service], password.get_secret_value()
            )
    return url


class Suite:
    """The running child processes."""

    def __init__(self, settings: Settings, owner_url: DatabaseUrl, token: str) -> None:
        self._settings = settings
        self._env = {
            **os.environ,
            "DATABASE_URL": owner_url.value,
            "PANOPTIC_INDEXER_TOKEN": token,
            "PANOPTIC_DATA_DIR": str(settings.data_dir.resolve()),
            SUPERVISOR_PID_VARIABLE: str(os.getpid()),
        }
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    def read_from(self, replicas: Sequence[EmbeddedPostgres]) -> None:
        """Points the services that read at these replicas of the embedded PostgreSQL."""
        if replicas:
            urls = [replica.url(database=DATABASE) for replica in replicas]
            self._env["PANOPTIC_REPLICA_URLS"] = json.dumps(urls)

    async def start(self, service: ChildService) -> None:
        """Starts one service and waits until it reports SERVING."""
        # A session of its own: Ctrl-C reaches the supervisor alone, which stops the services
        # in order; each service stops by itself if the supervisor dies (core.lifecycle).
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "panoptic", service.name, env=self._env, start_new_session=True
        )
        self.processes[service.name] = process
        host = _client_host(self._settings.bind_host)
        if service.ready_path is None:
            probe = wait_until_serving(f"{host}:{service.port}", timeout=60)
        else:
            probe = wait_until_http_ready(host, service.port, service.ready_path, timeout=60)
        ready = asyncio.ensure_future(probe)
        exited = asyncio.ensure_future(process.wait())
        try:
            await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                raise ChildFailed(f"the {service.name} exited with code {exited.result()} on start")
            await ready
        finally:
            # Also when the start itself is cancelled (Ctrl-C): no probe outlives it.
            ready.cancel()
            exited.cancel()

    async def wait_for_exit(self) -> str:
        """Waits until any service exits; returns its name."""
        waits = {asyncio.ensure_future(p.wait()): name for name, p in self.processes.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[next(iter(done))]

    async def stop(self) -> None:
        """SIGTERM to every service in reverse start order; SIGKILL after the grace period."""
        grace = self._settings.shutdown_grace_seconds + 5
        for name, process in reversed(self.processes.items()):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), grace)
                except TimeoutError:
                    log.warning("killing service that did not stop in time", service=name)
                    process.kill()
                    await process.wait()


def _replicas(settings: Settings, count: int) -> list[EmbeddedPostgres]:
    """The embedded PostgreSQL's `count` streaming replicas, started (none: any left from an
    earlier `--replicas` stop holding the primary's log)."""
    primary = EmbeddedPostgres(settings.pgdata_dir)
    if count:
        print(f"starting {count} streaming replica(s)...", file=sys.stderr, flush=True)
    return ensure_replicas(primary, count)


class ChildFailed(PanopticError):
    """A service process exited when it should be serving."""


def _client_host(bind_host: str) -> str:
    return "127.0.0.1" if bind_host in ("0.0.0.0", "") else bind_host  # noqa: S104 - a client address


async def run_suite(
    settings: Settings,
    *,
    load_demo: bool = True,
    with_monitoring: bool = False,
    replicas: int = 0,
) -> int:
    """Everything `panoptic up` does; returns the process exit code."""
    started_at = time.monotonic()
    services = suite_services(settings)
    _check_can_start(settings, services, with_monitoring=with_monitoring, replicas=replicas)
    stopper = _stop_on_signals()
    prepared = await _unless_stopped(prepare_database(settings), stopper)
    if prepared is None:
        return 0
    owner_url, embedded = prepared
    replica_servers: list[EmbeddedPostgres] = []
    token, generated = indexer_token(settings)
    suite = Suite(settings, owner_url, token)
    try:
        if settings.embedded_database:
            replica_servers = (
                await _unless_stopped(asyncio.to_thread(_replicas, settings, replicas), stopper)
                or []
            )
            suite.read_from(replica_servers)
        demo_note = await _unless_stopped(
            _start_suite(suite, services, settings, owner_url, token, load_demo, with_monitoring),
            stopper,
        )
        if demo_note is None:
            return 0
        _print_ready(
            settings,
            owner_url,
            embedded is not None or settings.database_url is None,
            token,
            generated,
            time.monotonic() - started_at,
            demo_note,
            replica_servers,
        )
        if with_monitoring:
            host = _client_host(settings.bind_host)
            print(monitoring.describe(settings, host) + "\n", file=sys.stderr, flush=True)
        return await _serve_until_stopped(suite, owner_url, stopper)
    finally:
        stopper.cancel()
        print("\nstopping Panoptic...", file=sys.stderr)
        await suite.stop()
        for replica in replica_servers:
            replica.stop()
        if embedded is not None:
            embedded.stop()


def _check_can_start(
    settings: Settings, services: Sequence[ChildService], *, with_monitoring: bool, replicas: int
) -> None:
    """Refuses, before anything starts, what cannot work: a port taken, Prometheus missing
    (--with-monitoring), replicas of a server the suite does not run (--replicas)."""
    _check_ports_free(settings, services)
    if with_monitoring:
        monitoring.check_can_start(settings)
    if replicas and not settings.embedded_database:
        raise PanopticError(
            "--replicas makes replicas of the embedded PostgreSQL; with DATABASE_URL set, "
            "give the replicas of that server in PANOPTIC_REPLICA_URLS instead"
        )


def _check_ports_free(settings: Settings, services: Sequence[ChildService]) -> None:
    """Refuses, before anything starts, when any service's gRPC or metrics port is taken."""
    for service in services:
        check_port_free(
            settings.bind_host, service.port, f"{service.name} gRPC", service.port_variable
        )
        check_port_free(
            settings.bind_host,
            service.metrics_port,
            f"{service.name} metrics",
            f"PANOPTIC_{service.name.upper()}_METRICS_PORT",
        )


def _stop_on_signals() -> asyncio.Future[Any]:
    """A future done at the first SIGINT or SIGTERM.

    SIGINT (Ctrl-C) and SIGTERM (a container or CI stop) alike are heeded from here on: while
    the database starts and migrates, while the suite starts and loads the demo corpus (an
    interrupted load goes on at the next start), and once it is ready.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return asyncio.ensure_future(stop.wait())


async def _serve_until_stopped(
    suite: Suite, owner_url: DatabaseUrl, stopper: asyncio.Future[Any]
) -> int:
    """Expires old requests until a signal (exit code 0) or a service's exit (exit code 1)."""
    expiry = asyncio.ensure_future(expire_requests_periodically(owner_url))
    watcher = asyncio.ensure_future(suite.wait_for_exit())
    await asyncio.wait({watcher, stopper}, return_when=asyncio.FIRST_COMPLETED)
    exit_code = 0
    if watcher.done():
        log.error("a service exited unexpectedly; stopping the suite", service=watcher.result())
        exit_code = 1
    watcher.cancel()
    expiry.cancel()
    return exit_code


async def _unless_stopped(work: Coroutine[Any, Any, T], stopper: asyncio.Future[Any]) -> T | None:
    """The work's result; or None, once it is cancelled and has unwound, if `stopper` is done
    first."""
    task = asyncio.ensure_future(work)
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _start_suite(
    suite: Suite,
    services: list[ChildService],
    settings: Settings,
    owner_url: DatabaseUrl,
    token: str,
    load_demo: bool,
    with_monitoring: bool,
) -> str:
    """Starts every service, then Prometheus if asked, then loads the demo corpus if asked;
    returns the ready banner's line about the demo data."""
    for service in services:
        await suite.start(service)
    if with_monitoring:  # last to start, first to stop, watched like the services
        suite.processes["prometheus"] = await monitoring.start_prometheus(
            settings,
            {service.name: service.metrics_port for service in services},
            _client_host(settings.bind_host),
        )
    if not load_demo:
        return "demo data: not loaded (--no-demo)"
    return await load_demo_corpus(settings, owner_url, token)


async def expire_requests_periodically(owner_url: DatabaseUrl, every_seconds: float = 3600) -> None:
    """Deletes expired idempotency records now and then, as the owner (the indexer may not)."""
    import asyncpg

    from services.indexer.repository import expire_requests_as_owner

    while True:
        try:
            removed = await expire_requests_as_owner(owner_url)
            if removed:
                log.info("expired idempotency records", removed=removed)
        except (OSError, asyncpg.PostgresError) as error:
            log.warning("could not expire idempotency records", error=str(error))
        await asyncio.sleep(every_seconds)


async def load_demo_corpus(settings: Settings, owner_url: DatabaseUrl, token: str) -> str:
    """On first start, loads the demo corpus through the indexer as a pipeline would.

    Returns a line for the ready banner. An empty claims table is what "first start" means,
    so a database that already holds data (demo or real) is left alone, unless it holds part
    of the demo corpus: a load that was interrupted (Ctrl-C) goes on where it stopped. Its
    batches keep their request ids, so those already indexed are not written twice.
    """
    import asyncpg

    from panoptic.client.indexing import ClientOptions, index_file
    from panoptic.suite.demo import generate_corpus, write_jsonl
    from panoptic.suite.progress import claims_bar

    connection = await asyncpg.connect(owner_url.value)
    try:
        has_claims = await connection.fetchval("SELECT EXISTS (SELECT 1 FROM claims)")
    finally:
        await connection.close()
    unfinished = settings.data_dir / DEMO_LOADING_FILE
    if has_claims and not unfinished.exists():
        return "demo data: not loaded (the database already holds claims)"
    corpus = settings.data_dir / DEMO_FILE
    if not corpus.exists():
        partial = corpus.with_suffix(".partial")
        with partial.open("w", encoding="utf-8") as handle:
            write_jsonl(generate_corpus(), handle)
        partial.replace(corpus)
    address = f"{_client_host(settings.bind_host)}:{settings.indexer_port}"
    unfinished.touch()
    with claims_bar(corpus) as bar:
        summary = await index_file(
            corpus,
            ClientOptions(address=address, token=token),
            progress_dir=settings.data_dir / "index-progress",
            on_claims=bar.advance,
        )
    unfinished.unlink()
    return f"demo data: {summary.describe()}"


def _print_ready(
    settings: Settings,
    owner_url: DatabaseUrl,
    embedded: bool,
    token: str,
    generated: bool,
    seconds: float,
    demo_note: str,
    replicas: Sequence[EmbeddedPostgres] = (),
) -> None:
    host = _client_host(settings.bind_host)
    indexer = f"{host}:{settings.indexer_port}"
    retriever = f"{host}:{settings.retriever_port}"
    gateway = f"http://{host}:{settings.gateway_port}"
    dashboard = f"http://{host}:{settings.dashboard_port}"
    database = f"embedded PostgreSQL in {settings.pgdata_dir}" if embedded else owner_url.redacted()
    login = (
        f"user {settings.dashboard_user!r}, password "
        + ("from PANOPTIC_DASHBOARD_PASSWORD" if settings.dashboard_password
           else f"{DEVELOPMENT_DASHBOARD_PASSWORD!r} (development default)")
    )  # fmt: skip
    lines = [
        "",
        f"Panoptic is ready in {seconds:.1f} s. Press Ctrl-C to stop.",
        f"  REST API        {gateway}/v1/claims   (docs {gateway}/docs)",
        f"  dashboard       {dashboard}   ({login})",
        f"  indexer   gRPC  {indexer}   (metrics :{settings.indexer_metrics_port}/metrics)",
        f"  retriever gRPC  {retriever}   (metrics :{settings.retriever_metrics_port}/metrics)",
        f"  database        {database}",
        *(
            f"  replica {n}       streaming, in {replica.pgdata}"
            for n, replica in enumerate(replicas, 1)
        ),
        f"  indexer token   {token}"
        + ("  (generated, kept in the data directory)" if generated else ""),
        f"  {demo_note}",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
