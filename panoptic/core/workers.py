"""One gRPC service served by several processes, for the cores one Python process cannot use.

A Python process runs Python on one core at a time, and a gRPC server spends most of a cheap
call in Python; so `PANOPTIC_RETRIEVER_WORKERS=N` runs the retriever as N worker processes,
each a whole server (`grpc_server.serve`, its own pool), all listening on the service's port
with SO_REUSEPORT so that the kernel spreads connections among them. The service's main
process starts them and, while they serve:

- answers `/metrics` on the service's metrics port: the workers' gRPC metrics and pool gauges
  added up (prometheus_client's multiprocess mode, files in a private temporary directory),
  and the database statistics, which it reads itself on a pool of one connection;
- passes SIGTERM and SIGINT on to the workers and waits for them to stop gracefully;
- stops them all and fails when one exits by itself, so that whatever supervises the service
  restarts it whole, and stops them gracefully when its own supervisor is gone.

Each worker watches the main process in turn (`lifecycle.stop_when_orphaned`), so a main
process killed outright leaves no worker behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from multiprocessing.process import BaseProcess

import structlog
from prometheus_client import CollectorRegistry, multiprocess

from panoptic.core import metrics
from panoptic.core.db import create_pool, service_database_url
from panoptic.core.db_metrics import DATABASE_STATS, DatabaseStatsRefresher
from panoptic.core.errors import PanopticError
from panoptic.core.grpc_server import GrpcServerSpec, serve
from panoptic.core.lifecycle import (
    SUPERVISOR_PID_VARIABLE,
    WORKER_INDEX_VARIABLE,
    run_async,
    stop_when_orphaned,
)
from panoptic.core.logging import configure_logging, get_logger
from panoptic.core.settings import DatabaseSettings, Settings, get_settings

# prometheus_client's own variable: where each process of a multiprocess service writes.
MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Time a worker gets to stop beyond the service's grace period, before it is killed.
STOP_MARGIN_SECONDS = 5.0

SpecBuilder = Callable[[Settings], GrpcServerSpec]

log = get_logger("panoptic.workers")


class WorkerFailed(PanopticError):
    """A worker process exited while the service was serving."""


async def serve_in_workers(build: SpecBuilder, settings: Settings, count: int) -> None:
    """Runs the service `build` makes as `count` worker processes until SIGTERM or SIGINT.

    `build` must be a module-level function: each worker, a fresh interpreter, calls it on
    settings it reads from the environment it inherits.
    """
    spec = build(settings)  # for the name and addresses only; a spec opens nothing until served
    spec.check_port_free()
    with tempfile.TemporaryDirectory(prefix=f"panoptic-{spec.name}-metrics-") as directory:
        # Before the first worker starts: it imports prometheus_client, which reads it then.
        os.environ[MULTIPROCESS_DIRECTORY_VARIABLE] = directory
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
        registry.register(DATABASE_STATS)
        metrics_server = metrics.start_metrics_server(
            spec.host, spec.metrics_port, spec.name, registry
        )
        try:
            async with _database_stats(settings.database, spec.name):
                await _run_workers(build, spec, count, directory)
        finally:
            metrics_server.shutdown()


@contextlib.asynccontextmanager
async def _database_stats(settings: DatabaseSettings, service: str) -> AsyncIterator[None]:
    """The database gauges, read on a pool of its own that is mostly idle."""
    pool = await create_pool(
        service_database_url(settings, service),
        service=service,
        min_size=0,
        max_size=1,
        connect_timeout=settings.db_connect_timeout_seconds,
        read_only=True,
    )
    refresher = DatabaseStatsRefresher(lambda: pool, settings.db_stats_interval_seconds)
    refresher.start()
    try:
        yield
    finally:
        await refresher.stop()
        await pool.close()


async def _run_workers(
    build: SpecBuilder, spec: GrpcServerSpec, count: int, directory: str
) -> None:
    context = multiprocessing.get_context("spawn")  # not fork: gRPC's threads do not survive it
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    exited = asyncio.Event()
    workers: list[BaseProcess] = []
    ended: list[BaseProcess] = []  # in the order they exited

    def watch(worker: BaseProcess) -> None:
        def on_exit() -> None:
            loop.remove_reader(worker.sentinel)
            multiprocess.mark_process_dead(worker.pid, directory)  # type: ignore[no-untyped-call]
            ended.append(worker)
            exited.set()

        loop.add_reader(worker.sentinel, on_exit)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    orphan_watch = asyncio.ensure_future(stop_when_orphaned(stopping.set))
    try:
        for index in range(count):
            worker = context.Process(
                target=_worker_main,
                args=(build, index, os.getpid()),
                name=f"{spec.name}-worker-{index}",
            )
            worker.start()
            watch(worker)
            workers.append(worker)
        log.info("workers started", service=spec.name, pids=[w.pid for w in workers])
        stop_wait = asyncio.ensure_future(stopping.wait())
        exit_wait = asyncio.ensure_future(exited.wait())
        await asyncio.wait({stop_wait, exit_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        exit_wait.cancel()
        log.info("stopping", service=spec.name, grace_seconds=spec.grace_seconds)
    finally:
        orphan_watch.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        # A worker that ended before anyone asked the service to stop failed.
        failed = None if stopping.is_set() or not ended else ended[0]
        await _stop(workers, spec.grace_seconds + STOP_MARGIN_SECONDS)
    if failed is not None:
        raise WorkerFailed(f"{_how_it_ended(failed)}; stopped the other workers")
    log.info("stopped", service=spec.name)


def _how_it_ended(worker: BaseProcess) -> str:
    code = worker.exitcode or 0
    if code < 0:
        return f"{worker.name} was killed by {signal.Signals(-code).name}"
    return f"{worker.name} exited with code {code} (its log above says why)"


async def _stop(workers: list[BaseProcess], timeout: float) -> None:
    """SIGTERM to each live worker; SIGKILL to those still running after `timeout`."""
    for worker in workers:
        if worker.exitcode is None:
            worker.terminate()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for worker in workers:
        await asyncio.to_thread(worker.join, max(0.0, deadline - loop.time()))
        if worker.exitcode is None:
            log.warning("killing a worker that did not stop in time", worker=worker.name)
            worker.kill()
            await asyncio.to_thread(worker.join)


def _worker_main(build: SpecBuilder, index: int, main_pid: int) -> None:
    """A worker process: the service, sharing the port, watching the main process."""
    os.environ[WORKER_INDEX_VARIABLE] = str(index)
    os.environ[SUPERVISOR_PID_VARIABLE] = str(main_pid)
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    structlog.contextvars.bind_contextvars(worker=index)
    try:
        run_async(serve(build(settings)))
    except PanopticError as error:
        log.error("worker failed", error=str(error))
        raise SystemExit(2) from None
