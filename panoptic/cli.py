"""The `panoptic` command: run the suite, one service, migrations, or make demo data.

Known failures (bad configuration, an unreachable database, a port in use, a second `up`) end
with one line on stderr saying what is wrong and what to do, and a non-zero exit code.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

import click
import pydantic

from panoptic.core.errors import PanopticError
from panoptic.core.lifecycle import Interrupted, run_async
from panoptic.core.logging import configure_logging
from panoptic.core.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:  # the benchmarks are imported by their commands only, when they run
    from panoptic.bench.report.run import Measurements, ReportOptions
    from panoptic.core.db import DatabaseUrl
    from panoptic.core.grpc_server import GrpcServerSpec

P = ParamSpec("P")
T = TypeVar("T")

EXIT_CONFIGURATION = 2


def _fail(message: str) -> None:
    click.echo(f"panoptic: error: {message}", err=True)
    sys.exit(EXIT_CONFIGURATION)


def friendly_errors(command: Callable[P, T]) -> Callable[P, T]:
    """Turns expected failures into one clear line and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "settings"
            _fail(f"invalid setting PANOPTIC_{field.upper()}: {first['msg']}")
        except (PanopticError, TimeoutError) as error:
            _fail(str(error))
        except Interrupted as stopped:
            click.echo(f"panoptic: {stopped}; what it started is stopped", err=True)
            sys.exit(128 + stopped.signum)  # as a shell reports a command a signal ended
        raise AssertionError("unreachable")

    return wrapper


def settings_for_command() -> Settings:
    """Reads the settings once and sets up logging from them."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def settings_for_service() -> Settings:
    """A service's settings; without DATABASE_URL, pointed at the running embedded PostgreSQL
    through the environment, as `panoptic up` points the services it starts (a retriever's
    worker processes read their settings from the environment too)."""
    from panoptic.suite.embedded_pg import EmbeddedPostgres, owner_database_url

    settings = settings_for_command()
    if settings.database_url is None and EmbeddedPostgres(settings.pgdata_dir).is_running():
        os.environ["DATABASE_URL"] = owner_database_url(settings).value
        get_settings.cache_clear()  # read once more, now with the URL
        settings = get_settings()
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="panoptic")
def main() -> None:
    """Panoptic: store and serve claims, with every revision kept."""


@main.command()
@click.option("--no-demo", is_flag=True, help="Do not load the demo corpus on first start.")
@click.option(
    "--with-monitoring",
    is_flag=True,
    help="Also run Prometheus (installed by `make system-deps`) with the alert rules.",
)
@click.option(
    "--replicas",
    type=click.IntRange(0, 8),
    default=0,
    show_default=True,
    help="Streaming replicas of the embedded PostgreSQL for the retriever and the dashboard"
    " to read from (kept in the data directory, like the primary).",
)
@friendly_errors
def up(no_demo: bool, with_monitoring: bool, replicas: int) -> None:
    """Run the whole suite (what `make run` does) until Ctrl-C."""
    from panoptic.suite.supervisor import run_suite, single_instance

    settings = settings_for_command()
    settings.require_production_ready(database="owner", token=True)
    with single_instance(settings.data_dir):
        sys.exit(
            run_async(
                run_suite(
                    settings,
                    load_demo=not no_demo,
                    with_monitoring=with_monitoring,
                    replicas=replicas,
                )
            )
        )


@main.command()
@friendly_errors
def migrate() -> None:
    """Bring the database schema, roles and grants up to date (idempotent)."""
    from panoptic.suite import migrate as migrations
    from panoptic.suite.supervisor import prepare_database

    settings = settings_for_command()
    settings.require_production_ready(database="owner")

    async def run() -> str | None:
        url, started = await prepare_database(settings)
        try:
            return await asyncio.to_thread(migrations.current_revision, url)
        finally:
            if started is not None:
                started.stop()

    click.echo(f"database schema at revision {run_async(run())}")


@main.command("expire-requests")
@friendly_errors
def expire_requests_command() -> None:
    """Delete expired idempotency records (as the owner; `up` does this hourly by itself)."""
    from panoptic.suite.embedded_pg import owner_database_url
    from services.indexer.repository import expire_requests_as_owner

    settings = settings_for_command()
    settings.require_production_ready(database="owner")
    removed = run_async(expire_requests_as_owner(owner_database_url(settings)))
    click.echo(f"expired {removed} idempotency records")


@main.command()
@friendly_errors
def indexer() -> None:
    """Run the indexer's gRPC service alone."""
    from panoptic.core.grpc_server import serve
    from services.indexer.server import build_spec

    settings = settings_for_service()
    settings.require_production_ready(database="indexer", token=True, consistency_token=True)
    if settings.indexer_token is None:
        raise SettingsError("PANOPTIC_INDEXER_TOKEN is not set; the indexer refuses to run open")
    token = settings.indexer_token.get_secret_value()
    run_async(serve(build_spec(settings.server, settings.database, settings.indexer, token)))


@main.command()
@friendly_errors
def retriever() -> None:
    """Run the retriever's gRPC service alone."""
    from panoptic.core.grpc_server import serve
    from panoptic.core.workers import serve_in_workers

    settings = settings_for_service()
    settings.require_production_ready(database="retriever", page_token=True, consistency_token=True)
    if settings.retriever_workers > 1:
        run_async(serve_in_workers(retriever_spec, settings, settings.retriever_workers))
    else:
        run_async(serve(retriever_spec(settings)))


def retriever_spec(settings: Settings) -> GrpcServerSpec:
    """The retriever built from its groups; module-level, so that each worker process, a fresh
    interpreter, can call it on the settings it reads from its environment."""
    from services.retriever.server import build_spec

    return build_spec(settings.server, settings.database, settings.retriever)


@main.command()
@friendly_errors
def gateway() -> None:
    """Run the REST gateway alone: the retriever's reads as HTTP/JSON."""
    from services.gateway.server import serve

    settings = settings_for_command()
    run_async(serve(settings.server, settings.gateway))


@main.command()
@friendly_errors
def dashboard() -> None:
    """Run the admin dashboard alone: HTML pages for operators, on a read-only role."""
    from services.dashboard.server import serve

    settings = settings_for_service()
    settings.require_production_ready(database="dashboard", dashboard=True)
    run_async(serve(settings.server, settings.database, settings.dashboard, settings.monitoring))


@main.command()
@click.argument("address")
@click.option("--service", default="", help="Service name to check; the whole server by default.")
@click.option("--timeout", default=2.0, show_default=True, help="Seconds to wait for an answer.")
def health(address: str, service: str, timeout: float) -> None:
    """Exit 0 when the gRPC server at ADDRESS reports SERVING (for container healthchecks)."""
    import grpc

    from panoptic.suite.health import check

    try:
        status = run_async(check(address, service, timeout=timeout))
    except grpc.aio.AioRpcError as error:
        click.echo(f"{address}: {error.code().name}: {error.details()}", err=True)
        sys.exit(1)
    click.echo(f"{address}: {status}")
    sys.exit(0 if status == "SERVING" else 1)


@main.command("index")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--address", default=None, help="The indexer; PANOPTIC_INDEXER_ADDRESS by default.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--no-resume", is_flag=True, help="Start from the first batch, ignoring progress.")
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA that signed the indexer's certificate (turns TLS on).",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Client certificate for mutual TLS.",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Client key for mutual TLS.",
)
@friendly_errors
def index(
    path: Path,
    address: str | None,
    batch_size: int,
    no_resume: bool,
    tls_ca: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Index a JSON Lines file of IndexRecords (what pipelines send) through the indexer.

    Safe to rerun: request ids come from the file's content, and an interrupted run resumes.
    """
    import grpc

    from panoptic.client.indexing import ClientOptions, index_file
    from panoptic.suite.progress import claims_bar
    from panoptic.suite.supervisor import known_indexer_token

    settings = settings_for_command()
    token = known_indexer_token(settings)
    if token is None:
        raise SettingsError(
            "no indexer token: set PANOPTIC_INDEXER_TOKEN (or start the suite with `make run`, "
            "which keeps one in the data directory)"
        )
    credentials = None
    if tls_ca is not None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=tls_ca.read_bytes(),
            private_key=tls_key.read_bytes() if tls_key else None,
            certificate_chain=tls_cert.read_bytes() if tls_cert else None,
        )
    options = ClientOptions(
        address=address or settings.indexer_address,
        token=token,
        batch_size=batch_size,
        credentials=credentials,
    )
    with claims_bar(path) as bar:
        summary = run_async(
            index_file(
                path,
                options,
                progress_dir=settings.data_dir / "index-progress",
                resume=not no_resume,
                on_claims=bar.advance,
            )
        )
    click.echo(summary.describe(), err=True)


@main.group()
def bench() -> None:
    """Benchmarks, each against a baseline measured in the same run."""


# The options and steps every benchmark command shares.
_rounds_option = click.option("--rounds", default=3, show_default=True, type=click.IntRange(1, 20))
_json_output_option = click.option(
    "--json-output", type=click.Path(dir_okay=False, path_type=Path), default=None
)


class _BenchReport(Protocol):
    """What every benchmark's report offers: its figures as JSON-ready values, and as text."""

    def as_dict(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...


def _print_report(report: _BenchReport, json_output: Path | None) -> None:
    """Prints the report, and writes it as JSON to `json_output` when one is given."""
    if json_output is not None:
        json_output.write_text(json.dumps(report.as_dict(), indent=2))
    click.echo(report.describe())


def _parsed(option: str, parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """The option's value as `parse` reads it; a usage error naming the option if it cannot."""
    try:
        return parse(*args, **kwargs)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


@bench.command("ingest")
@click.option("--claims", default=50_000, show_default=True, type=click.IntRange(min=1000))
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 1000))
@_rounds_option
@click.option(
    "--streams",
    default=2,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Concurrent StreamIndexClaims calls, as parallel pipelines.",
)
@click.option(
    "--replicas",
    default=0,
    show_default=True,
    type=click.IntRange(0, 4),
    help="Streaming replicas of the embedded server during the runs; reports their replay lag.",
)
@_json_output_option
@click.option("--port", default=50151, show_default=True, help="The benchmark indexer's port.")
@click.option("--metrics-port", default=9151, show_default=True, help="Its metrics port.")
@friendly_errors
def bench_ingest(
    claims: int,
    batch_size: int,
    rounds: int,
    streams: int,
    replicas: int,
    json_output: Path | None,
    port: int,
    metrics_port: int,
) -> None:
    """Claims/s through StreamIndexClaims against a raw COPY of the same rows.

    Runs on a throwaway embedded PostgreSQL, or on DATABASE_URL's server (its role must be
    able to create databases). With --replicas, the embedded server streams to replicas
    throughout, and each one's replay lag (max and p95, seconds and bytes) is sampled while
    the indexer runs.
    """
    from panoptic.bench.common import benchmark_server_with_log, configured_server, run_benchmark
    from panoptic.bench.ingest import IngestReport, run_ingest_benchmark
    from panoptic.bench.replication import LagSampler, bench_replicas

    settings = settings_for_command()
    given = configured_server(settings)
    if replicas and given is not None:
        raise click.BadParameter(
            "replicas are made only of the benchmark's own embedded PostgreSQL: unset DATABASE_URL",
            param_hint="--replicas",
        )

    async def run() -> IngestReport:
        async with (
            benchmark_server_with_log(given) as server,
            bench_replicas(server, replicas) as made,
            LagSampler(server.url.value, made) as lag,
        ):
            return await run_ingest_benchmark(
                server.url,
                claims=claims,
                batch_size=batch_size,
                rounds=rounds,
                streams=streams,
                port=port,
                metrics_port=metrics_port,
                lag=lag if made else None,
            )

    _print_report(run_benchmark(run()), json_output)


@bench.command("gateway")
@click.option("--claims", default=10_000, show_default=True, type=click.IntRange(min=100))
@_rounds_option
@click.option("--seconds", default=10, show_default=True, type=click.IntRange(1, 120))
@click.option("--connections", default=32, show_default=True, type=click.IntRange(1, 512))
@click.option(
    "--workloads",
    default="get-uniform,get-zipf,list-search",
    show_default=True,
    help="GetClaim with uniform or Zipf-distributed ids, and a ListClaims/SearchClaims mix.",
)
@click.option(
    "--zipf-exponent",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.1, max=3.0),
    help="s of Zipf's law: the key of popularity rank k is drawn with weight 1/k^s.",
)
@click.option(
    "--grpc-gateway",
    "grpc_gateway",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="grpc-gateway's binary [default: build/grpc-gateway/gateway, from make grpc-gateway].",
)
@_json_output_option
@friendly_errors
def bench_gateway(
    claims: int,
    rounds: int,
    seconds: int,
    connections: int,
    workloads: str,
    zipf_exponent: float,
    grpc_gateway: Path | None,
    json_output: Path | None,
) -> None:
    """REST reads through gateway and retriever against a Starlette peer and grpc-gateway (Go).

    Needs wrk (Debian's `wrk`); grpc-gateway runs when `make grpc-gateway` has built it. Runs
    on a throwaway embedded PostgreSQL, or on DATABASE_URL's server (its role must be able to
    create databases); everything listens on 127.0.0.1 only.
    """
    from panoptic.bench.common import benchmark_server, configured_server, run_benchmark
    from panoptic.bench.gateway import DEFAULT_GRPC_GATEWAY, GatewayReport, run_gateway_benchmark
    from panoptic.bench.workloads import WORKLOADS

    names = [name.strip() for name in workloads.split(",") if name.strip()]
    if not names or set(names) - set(WORKLOADS):
        raise click.BadParameter(f"choose from {', '.join(WORKLOADS)}", param_hint="--workloads")
    settings = settings_for_command()
    given = configured_server(settings)

    async def run() -> GatewayReport:
        async with benchmark_server(given) as server:
            return await run_gateway_benchmark(
                server,
                claims=claims,
                rounds=rounds,
                seconds=seconds,
                connections=connections,
                workloads=names,
                zipf_exponent=zipf_exponent,
                grpc_gateway=grpc_gateway or DEFAULT_GRPC_GATEWAY,
            )

    _print_report(run_benchmark(run()), json_output)


@bench.command("read")
@click.option("--scales", default="100k,1m", show_default=True, help="Database sizes, ascending.")
@click.option(
    "--calls",
    default=200,
    show_default=True,
    type=click.IntRange(min=10),
    help="Sequential calls per endpoint for the latency figures.",
)
@click.option(
    "--throughput-rounds",
    default=8,
    show_default=True,
    type=click.IntRange(1, 30),
    help="Alternating rounds of GetClaim and the health check; the ratio is their median.",
)
@click.option(
    "--throughput-seconds",
    default=3.0,
    show_default=True,
    type=click.FloatRange(min=0.2),
    help="Length of each h2load run (after a warm-up of up to a second).",
)
@click.option(
    "--in-flight",
    # A moderate load and a deep queue, under which concurrent GetClaims share queries more
    # often (see panoptic.reads.batching).
    default="16,64",
    show_default=True,
    help="Calls in flight during the throughput runs; each level is measured in every round.",
)
@_json_output_option
@friendly_errors
def bench_read(
    scales: str,
    calls: int,
    throughput_rounds: int,
    throughput_seconds: float,
    in_flight: str,
    json_output: Path | None,
) -> None:
    """The retriever's throughput (GetClaim against a bare health check) and latencies by size.

    Needs h2load (Debian's nghttp2-client). Runs on a throwaway embedded PostgreSQL (which
    also yields the slowest plans), or on DATABASE_URL's server.
    """
    from panoptic.bench.common import (
        benchmark_server_with_log,
        configured_server,
        free_ports,
        run_benchmark,
    )
    from panoptic.bench.read import ReadReport, parse_in_flight, parse_scales, run_read_benchmark

    sizes = _parsed("--scales", parse_scales, scales)
    levels = _parsed("--in-flight", parse_in_flight, in_flight)
    settings = settings_for_command()
    given = configured_server(settings)

    async def run() -> ReadReport:
        async with benchmark_server_with_log(given) as server:
            return await run_read_benchmark(
                server.url,
                scales=sizes,
                calls=calls,
                throughput_rounds=throughput_rounds,
                throughput_seconds=throughput_seconds,
                log_file=server.log_file,
                ports=free_ports(),
                retriever_workers=settings.retriever_workers,
                in_flight=levels,
            )

    report = run_benchmark(run())
    _print_report(report, json_output)
    for scale in report.scales:
        for plan in scale.slowest_plans:
            click.echo(f"\n--- slowest at {scale.claims} claims: {plan}")


@bench.command("report")
@click.option(
    "--scales",
    default=None,
    help="Database sizes, ascending.  [default: 10k,100k,1m; with --quick: 1k,3k,10k]",
)
@click.option(
    "--objective-ms",
    default=100.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="The p95 every endpoint must stay under, in milliseconds.",
)
@click.option(
    "--objective",
    "objectives",
    multiple=True,
    metavar="ENDPOINT=MS",
    help="One endpoint's p95 objective (GetClaim=50; SearchClaims=200 sets both searches).",
)
@click.option(
    "-o",
    "--output",
    default=Path("bench-report.pdf"),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The PDF; its JSON goes beside it, with the same name ending in .json.",
)
@click.option(
    "--quick", is_flag=True, help="Small sizes, few calls, short runs (about two minutes)."
)
@click.option("--seed", default=42, show_default=True, help="Same seed, same data set.")
@click.option(
    "--calls",
    default=None,
    type=click.IntRange(min=10),
    help="Sequential calls per endpoint and protocol.  [default: 100; with --quick: 20]",
)
@click.option(
    "--from-json",
    "from_json",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Measure nothing: analyse a report's JSON again (with this run's objectives).",
)
@click.option(
    "--throughput-seconds",
    default=None,
    type=click.FloatRange(0.2, 120),
    help="Length of each throughput run.  [default: 5; with --quick: 0.4]",
)
@friendly_errors
def bench_report(
    scales: str | None,
    objective_ms: float,
    objectives: tuple[str, ...],
    output: Path,
    quick: bool,
    seed: int,
    calls: int | None,
    from_json: Path | None,
    throughput_seconds: float | None,
) -> None:
    """When will the database begin to degrade? A PDF with the curves, thresholds, projection.

    Loads the demo corpus through a real indexer at each size, measures every read over gRPC
    and through the gateway (latency and throughput), sizes and cache hits, fits the curves and
    projects where each endpoint crosses its objective and where the data outgrows
    shared_buffers and RAM. Writes the PDF and, beside it, the same results as JSON. Needs
    h2load (Debian's nghttp2-client). Runs on a throwaway embedded PostgreSQL, or
    on DATABASE_URL's server (its role must be able to create databases).
    """
    from panoptic.bench.common import configured_server
    from panoptic.bench.read import parse_scales
    from panoptic.bench.report.run import (
        DEFAULT_SCALES,
        QUICK_SCALES,
        ReportOptions,
        measurements_from_json,
        resolve_objectives,
    )

    default_scales = QUICK_SCALES if quick else DEFAULT_SCALES
    sizes = _parsed("--scales", parse_scales, scales) if scales else list(default_scales)
    targets = _parsed("--objective", resolve_objectives, objective_ms, objectives)
    _check_report_tools(measuring=from_json is None)
    options = ReportOptions(
        scales=sizes,
        objectives_ms=targets,
        seed=seed,
        calls=calls or (20 if quick else 100),
        throughput_seconds=throughput_seconds or (0.4 if quick else 5.0),
        quick=quick,
        replica_rounds=2 if quick else 3,
        replica_seconds=0.4 if quick else 2.0,
    )
    given = configured_server(settings_for_command())
    if from_json is None:
        measurements = _measure_for_report(given, options)
    else:
        measurements = measurements_from_json(json.loads(from_json.read_text()), targets)
    _write_report(measurements, output)


def _check_report_tools(*, measuring: bool) -> None:
    """Refuses before any work when h2load (needed only to measure) or matplotlib is missing."""
    import importlib.util

    from panoptic.bench.report.measure import load_generator_missing

    if measuring and load_generator_missing():
        raise PanopticError("h2load is missing: install Debian's nghttp2-client (make system-deps)")
    if importlib.util.find_spec("matplotlib") is None:
        raise PanopticError("matplotlib is missing: pip install -e '.[dev]' (make setup)")


def _measure_for_report(given: DatabaseUrl | None, options: ReportOptions) -> Measurements:
    """Measures every size on the configured server, or on a throwaway embedded one."""
    from panoptic.bench.common import benchmark_server_with_log, free_ports, run_benchmark
    from panoptic.bench.replication import bench_replicas
    from panoptic.bench.report.run import measure

    async def run() -> Measurements:
        async with (
            benchmark_server_with_log(given) as server,
            # A replica of the embedded server only: DATABASE_URL's server is not ours to copy.
            bench_replicas(server, 0 if given else 1) as replicas,
        ):
            return await measure(
                server.url,
                options,
                log_file=server.log_file,
                ports=free_ports(),
                external=given is not None,
                replica=replicas[0] if replicas else None,
            )

    return run_benchmark(run())


def _write_report(measurements: Measurements, output: Path) -> None:
    """Analyses the measurements, writes the PDF and its JSON, and prints the short answer."""
    from panoptic.bench.report.pdf import write_pdf
    from panoptic.bench.report.run import analyse, report_json, short_answer

    analysis = analyse(measurements, seed=measurements.options.seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    pages = write_pdf(measurements, analysis, output)
    json_path = output.with_suffix(".json")
    json_path.write_text(json.dumps(report_json(measurements, analysis, pages), indent=2) + "\n")
    click.echo(short_answer(measurements, analysis))
    for line in analysis.headline():
        click.echo(f"- {line}")
    click.echo(
        f"wrote {output} ({len(pages)} pages) and {json_path}; "
        f"measuring took {measurements.seconds / 60:.1f} minutes"
    )


@main.command("demo-data")
@click.option("--seed", default=42, show_default=True, help="Same seed, same corpus.")
@click.option("--claims", default=20_000, show_default=True, type=click.IntRange(min=0))
@click.option("--actors", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--topics", default=40, show_default=True, type=click.IntRange(min=1))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here instead of standard output.",
)
def demo_data(seed: int, claims: int, actors: int, topics: int, output: Path | None) -> None:
    """Write a deterministic synthetic corpus as JSON Lines of IndexRecord."""
    from panoptic.suite.demo import generate_corpus, write_jsonl

    records = generate_corpus(seed=seed, claims=claims, actors=actors, topics=topics)
    if output is None:
        write_jsonl(records, sys.stdout)
        return
    with output.open("w", encoding="utf-8") as handle:
        count = write_jsonl(records, handle)
    click.echo(f"wrote {count} records to {output}", err=True)


if __name__ == "__main__":
    main()
