"""What every benchmark needs: a server, fresh databases, service processes, corpora, load.

Benchmarks run the suite's real processes (`panoptic indexer`, `panoptic retriever`, ...) on
loopback, against databases they create and drop, so figures describe what users run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from panoptic.core.db import DatabaseUrl
from panoptic.core.lifecycle import Interrupted, run_async
from panoptic.core.settings import Settings
from panoptic.suite import migrate
from panoptic.suite.demo import generate_corpus
from panoptic.suite.health import wait_until_http_ready, wait_until_serving
from panoptic.v1 import indexer_service_pb2, resources_pb2

if TYPE_CHECKING:
    from panoptic.suite.embedded_pg import EmbeddedPostgres

BENCH_TOKEN = "bench-token-not-secret-0123456789"  # noqa: S105 - a throwaway local indexer's
# Seconds the processes a stopped benchmark leaves get between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS = 10.0

T = TypeVar("T")


def run_benchmark(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a benchmark to its end, or until SIGINT or SIGTERM, which stop it alike.

    SIGTERM is what `timeout`, a CI runner or a container stop sends; its default action would
    end the process at once, leaving the benchmark's PostgreSQL and services running and its
    data directory behind. Either signal cancels the benchmark, whose context managers stop
    what they started and remove what they made; then the processes that threads started,
    which a cancellation cannot reach, are stopped too. Raises Interrupted after that.
    """
    return run_async(_until_signalled(coroutine))


async def _until_signalled(coroutine: Coroutine[Any, Any, T]) -> T:
    task = asyncio.ensure_future(coroutine)
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def stop(signum: int) -> None:
        if not received:  # a second signal changes nothing: the cleanup is under way
            task.cancel()
        received.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await task
    except asyncio.CancelledError:
        if not received:
            raise
        await asyncio.to_thread(stop_descendants, os.getpid())
        raise Interrupted(received[0]) from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def stop_descendants(pid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to every process `pid` started, directly or not; SIGKILL to those still running
    after `grace` seconds (Linux /proc)."""
    descendants = process_tree(pid)[1:]
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for member in descendants:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signum)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            descendants = [member for member in descendants if process_running(member)]
            if not descendants:
                return
            time.sleep(0.05)


def process_running(pid: int) -> bool:
    """Whether `pid` runs (a zombie has ended; its parent has yet to collect it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def metric_samples(metrics_url: str) -> Iterator[Sample]:
    """Every sample a `/metrics` endpoint exposes now (on loopback)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        yield from family.samples


def configured_server(settings: Settings) -> DatabaseUrl | None:
    """The server DATABASE_URL names for a benchmark, or None for a throwaway embedded one."""
    if settings.database_url is None:
        return None
    return DatabaseUrl(settings.database_url.get_secret_value())


@dataclass(frozen=True)
class BenchServer:
    """The PostgreSQL a benchmark runs on, and its log when the benchmark started it."""

    url: DatabaseUrl
    log_file: Path | None
    embedded: EmbeddedPostgres | None = None
    """The throwaway embedded server, which replicas can be made of; None for DATABASE_URL's."""


@contextlib.asynccontextmanager
async def benchmark_server(database_url: DatabaseUrl | None) -> AsyncIterator[DatabaseUrl]:
    """A server to benchmark on: the one given, or a throwaway embedded PostgreSQL."""
    async with benchmark_server_with_log(database_url) as server:
        yield server.url


@contextlib.asynccontextmanager
async def benchmark_server_with_log(database_url: DatabaseUrl | None) -> AsyncIterator[BenchServer]:
    """As `benchmark_server`, with the server log of an embedded server (for its plans)."""
    if database_url is not None:
        yield BenchServer(database_url, None)
        return
    from panoptic.suite.embedded_pg import EmbeddedPostgres

    directory = Path(tempfile.mkdtemp(prefix="panoptic-bench-"))
    server = EmbeddedPostgres(directory / "data")
    try:
        server.ensure_started()
        yield BenchServer(DatabaseUrl(server.url()), server.log_file, server)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
        # Outside `directory` when that path is too long for a socket's (under a long TMPDIR).
        shutil.rmtree(server.socket_dir, ignore_errors=True)


def free_ports() -> Iterator[int]:
    """Ports nothing listens on right now, one after another, never the same one twice."""
    import socket

    given: set[int] = set()
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in given:
            given.add(port)
            yield port


async def fresh_database(server: DatabaseUrl, name: str) -> DatabaseUrl:
    """A new, migrated database (an old one of that name is dropped first)."""
    connection = await asyncpg.connect(server.value)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = server.with_database(name)
    await migrate.upgrade_async(url)
    return url


async def drop_database(server: DatabaseUrl, url: DatabaseUrl) -> None:
    """Drops a database made by `fresh_database`."""
    connection = await asyncpg.connect(server.value)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await connection.close()


@dataclass
class ServiceProcess:
    """A `panoptic <service>` process run for a benchmark.

    Ready when its gRPC health check says SERVING and every one of its processes that serves
    (the retriever's workers) listens, or, for an HTTP service, when `GET ready_path` answers
    200. A worker that started late would otherwise get none of the first run's connections.
    """

    service: str
    url: DatabaseUrl
    port: int
    metrics_port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None
    ready_path: str | None = None

    @property
    def address(self) -> str:
        """Where it listens."""
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> ServiceProcess:
        prefix = f"PANOPTIC_{self.service.upper()}"
        env = {
            **os.environ,
            "DATABASE_URL": self.url.value,
            "PANOPTIC_INDEXER_TOKEN": BENCH_TOKEN,
            f"{prefix}_PORT": str(self.port),
            f"{prefix}_METRICS_PORT": str(self.metrics_port),
            "PANOPTIC_BIND_HOST": "127.0.0.1",
            "PANOPTIC_LOG_LEVEL": "warning",
            "PANOPTIC_ENV": "development",
            **self.extra_env,
        }
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "panoptic", self.service, env=env
        )
        try:
            if self.ready_path is None:
                await wait_until_serving(self.address, timeout=60)
                await self._until_every_server_listens(_serving_processes(self.service, env))
            else:
                await wait_until_http_ready("127.0.0.1", self.port, self.ready_path, timeout=60)
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()

    async def _until_every_server_listens(self, count: int, timeout: float = 60) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while listening_processes(process_tree(self.process.pid), self.port) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} {self.service} processes did not all listen")
            await asyncio.sleep(0.05)

    def peak_rss_mib(self) -> float:
        """The peak resident set size (VmHWM) so far, in MiB, of the process and of the worker
        processes it started (the retriever's), added up."""
        assert self.process is not None
        return memory_mib(self.process.pid)[1]


def _serving_processes(service: str, env: dict[str, str]) -> int:
    """How many processes of `service` serve its gRPC port: the retriever's workers, else one."""
    if service != "retriever":
        return 1
    default: int = Settings.model_fields["retriever_workers"].default
    return int(env.get("PANOPTIC_RETRIEVER_WORKERS") or default)


def listening_processes(pids: Iterable[int], port: int) -> int:
    """How many of the processes hold a socket listening on TCP `port` (Linux /proc)."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rpartition(":")[2], 16) == port:  # 0A: LISTEN
                    sockets.add(f"socket:[{inode}]")
    count = 0
    for pid in pids:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone meanwhile
            continue
        for descriptor in descriptors:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{descriptor}") in sockets:
                    count += 1
                    break
    return count


def memory_mib(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) in MiB of `pid` and the processes it started, added up."""
    resident = peak = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:  # gone meanwhile
            continue
        for line in status.splitlines():
            key, _, rest = line.partition(":")
            if key == "VmRSS":
                resident += int(rest.split()[0])
            elif key == "VmHWM":
                peak += int(rest.split()[0])
    return resident / 1024, peak / 1024


def cpu_seconds(pids: Iterable[int], *, command: str | None = None) -> dict[int, float]:
    """CPU time (user and system) each process has used so far, by pid (Linux /proc).

    Processes gone meanwhile, or whose command is not `command` when one is given, are left
    out.
    """
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            if command is not None and Path(f"/proc/{pid}/comm").read_text().strip() != command:
                continue
            # Fields after the command's closing parenthesis, from the 3rd: utime is the 14th.
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    return used


def database_backends(database: str) -> list[int]:
    """The pids of PostgreSQL backends on this machine serving clients of `database`.

    Read from the titles PostgreSQL gives them (`postgres: [cluster: ]user database host
    activity`), not from `pg_stat_activity`: under load that view took up to 37 s to answer
    (measured here), while a benchmark reads it at the edges of a timed window.
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if backend_database(title) == database:
            pids.append(int(entry.name))
    return pids


def backend_database(title: str) -> str | None:
    """The database a PostgreSQL client backend serves, from its process title; None for any
    other process (a server's own processes have no database in their titles)."""
    if not title.startswith("postgres: "):
        return None
    words = title.removeprefix("postgres: ").split()
    if words and words[0].endswith(":"):  # the cluster's name
        words = words[1:]
    # A client backend: user, database, client address, activity.
    if len(words) >= 4 and ("[local]" in words[2] or "(" in words[2]):
        return words[1]
    return None


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *(descendant for child in children for descendant in process_tree(int(child)))]


def corpus_requests(
    claims: int, batch_size: int, seed: int
) -> Iterator[indexer_service_pb2.IndexClaimsRequest]:
    """The demo corpus as IndexClaims requests, lazily (actors and topics ride in batch 0)."""
    current = indexer_service_pb2.IndexClaimsRequest(request_id=f"bench-{seed}-0")
    index = 0
    for record in generate_corpus(seed=seed, claims=claims):
        message = json_format.ParseDict(record, resources_pb2.IndexRecord())
        kind = message.WhichOneof("record")
        if kind == "claim":
            current.claims.append(message.claim)
            if len(current.claims) == batch_size:
                yield current
                index += 1
                current = indexer_service_pb2.IndexClaimsRequest(request_id=f"bench-{seed}-{index}")
        elif kind == "actor":
            current.actors.append(message.actor)
        else:
            current.topics.append(message.topic)
    if current.claims or current.actors or current.topics:
        yield current


@dataclass(frozen=True)
class LoadResult:
    """What one h2load run measured."""

    requests_per_second: float
    errors: int
    """Requests that failed, errored, timed out or were answered 4xx or 5xx."""
    output: str


_H2LOAD_RATE = re.compile(r"finished in [\d.]+\w*, ([\d.]+) req/s")
_H2LOAD_FAILED = re.compile(r"(\d+) failed")
_H2LOAD_STATUSES = re.compile(r"status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx")


def run_h2load(
    url: str, options: list[str], *, requests: int | None = None, seconds: float | None = None
) -> LoadResult:
    """One h2load run (Debian's nghttp2-client, one thread) of `requests` or for `seconds`.

    A timed run starts with a warm-up of a second, or of half the run when shorter; h2load
    counts only what follows it.
    """
    if seconds is None:
        amount = ["-n", str(requests or 1)]
    else:
        amount = [
            "-D",
            f"{round(seconds * 1000)}ms",
            "--warm-up-time",
            f"{round(warm_up_seconds(seconds) * 1000)}ms",
        ]
    result = subprocess.run(
        ["h2load", *amount, "-t", "1", *options, url],
        capture_output=True,
        text=True,
        timeout=600 if seconds is None else seconds + 120,
        check=True,
    )
    rate = _H2LOAD_RATE.search(result.stdout)
    if rate is None:
        raise RuntimeError(f"unexpected h2load output:\n{result.stdout[-2000:]}")
    failed = _H2LOAD_FAILED.search(result.stdout)
    statuses = _H2LOAD_STATUSES.search(result.stdout)
    errors = int(failed.group(1)) if failed else 0
    if statuses:
        errors += int(statuses.group(1)) + int(statuses.group(2))
    return LoadResult(float(rate.group(1)), errors, result.stdout)


def warm_up_seconds(seconds: float) -> float:
    """The warm-up before a timed load run of `seconds`: a second, or half the run if shorter."""
    return min(1.0, seconds / 2)


def h2load_grpc(
    address: str,
    path: str,
    body: bytes,
    *,
    requests: int | None = None,
    seconds: float | None = None,
    connections: int = 4,
    streams: int = 4,
) -> LoadResult:
    """h2load on one gRPC method over h2c, `streams` calls in flight on each connection.

    The body is one serialized request, sent every time; failures carried in gRPC trailers are
    not counted (the HTTP status is 200).
    """
    with tempfile.TemporaryDirectory() as directory:
        options = _grpc_options(_grpc_body_file(Path(directory), body), connections, streams)
        return run_h2load(f"http://{address}{path}", options, requests=requests, seconds=seconds)


def _grpc_body_file(directory: Path, body: bytes, name: str = "body") -> Path:
    """A file holding `body` framed as one gRPC message (uncompressed, length-prefixed)."""
    path = directory / f"{name}.bin"
    path.write_bytes(struct.pack(">?I", False, len(body)) + body)
    return path


def _grpc_options(body_file: Path, connections: int, streams: int) -> list[str]:
    return ["-c", str(connections), "-m", str(streams), "-d", str(body_file),
            "-H", "content-type: application/grpc", "-H", "te: trailers"]  # fmt: skip


class LoadGenerators:
    """Load generator processes started together, running until the block ends.

    Each h2load run reports its rate over its own span, and processes started one after the
    other do not span the same time: the first ones run before the last have started, with
    fewer competitors. With 64 of them, the sum of their rates overstated a health check's
    throughput by 60 % (measured here). So the caller counts what the server handled over a
    window in which every generator runs, and `check_running` confirms that they all still do.
    """

    def __init__(self, commands: Sequence[Sequence[str]]) -> None:
        self._commands = commands
        self._processes: list[tuple[subprocess.Popen[bytes], Any]] = []

    def __enter__(self) -> LoadGenerators:
        try:
            for command in self._commands:
                output = tempfile.TemporaryFile()
                process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
                self._processes.append((process, output))
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def pids(self) -> list[int]:
        """The generators' process ids."""
        return [process.pid for process, _ in self._processes]

    def check_running(self) -> None:
        """Raises RuntimeError, with its output, if a generator has stopped (it failed)."""
        for process, output in self._processes:
            if process.poll() is not None:
                output.seek(0)
                text = output.read().decode(errors="replace")[-2000:]
                raise RuntimeError(
                    f"a load generator stopped early (exit status {process.returncode}):\n{text}"
                )

    def __exit__(self, *_: object) -> None:
        for process, _ in self._processes:
            if process.poll() is None:
                process.terminate()
        for process, output in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            output.close()
        self._processes.clear()


@contextlib.contextmanager
def h2load_grpc_running(
    address: str, path: str, bodies: Sequence[bytes], *, at_most_seconds: float
) -> Iterator[LoadGenerators]:
    """One h2load process per body, each with one call of `path` in flight, until the block
    ends (or `at_most_seconds` have passed)."""
    url = f"http://{address}{path}"
    with tempfile.TemporaryDirectory() as directory:
        commands = [
            ["h2load", "-D", f"{round(at_most_seconds * 1000)}ms", "-t", "1",
             *_grpc_options(_grpc_body_file(Path(directory), body, str(number)), 1, 1), url]
            for number, body in enumerate(bodies)
        ]  # fmt: skip
        with LoadGenerators(commands) as generators:
            yield generators


@dataclass(frozen=True)
class CombinedLoad:
    """Load generators run side by side, their figures added up."""

    requests_per_second: float
    errors: int
    load_generator_cpu: float
    """CPU the load generators used together, in cores (1.0: one core busy all the time)."""


def side_by_side(runs: Sequence[Callable[[], LoadResult]]) -> CombinedLoad:
    """Runs load generators at once, one thread waiting on each, and adds up their rates.

    h2load repeats one request body, so varied arguments take one h2load process each; timed
    runs (`seconds=`) overlap for their whole measured span, so their rates add up.
    """
    cpu, started = _children_cpu(), time.monotonic()
    with ThreadPoolExecutor(len(runs)) as pool:
        results = list(pool.map(lambda run: run(), runs))
    return CombinedLoad(
        sum(result.requests_per_second for result in results),
        sum(result.errors for result in results),
        (_children_cpu() - cpu) / (time.monotonic() - started),
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of latencies in seconds, as milliseconds."""
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []

    def at(percent: int) -> float:
        return 1000 * (cuts[percent - 1] if cuts else ordered[0])

    return {"p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99)}


def as_json(value: Any) -> Any:
    """Dataclasses and nested values as JSON-ready data."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return as_json(asdict(value))
    if isinstance(value, dict):
        return {str(key): as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value
