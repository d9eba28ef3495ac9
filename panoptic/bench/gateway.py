"""`panoptic bench gateway`: REST reads through the gateway against hand-written and Go peers.

One run sets up a throwaway database with `--claims` demo claims, then serves the REST API
side by side on loopback:

- **peer**: Starlette + asyncpg + orjson in one uvicorn worker, the retriever's SQL, no gRPC
  (`panoptic.bench.peer`, what a team would otherwise write); GetClaim only;
- **gateway**: `panoptic gateway` (one worker, its response cache off) in front of
  `panoptic retriever`: HTTP → transcoding → gRPC (a call on a call stream) → SQL → gRPC → JSON;
- **gateway-unary**: the same with its call streams off (`PANOPTIC_GATEWAY_CALL_STREAM=false`),
  a unary gRPC call per request as before them, to show what they save;
- **gateway+cache**: the gateway with its shared response cache on (each response kept
  for the route's `max-age`);
- **grpc-gateway**: grpc-gateway 1.6.4 (Go, `make grpc-gateway`) in front of the same
  retriever, what most gRPC shops put there; left out, saying so, when it is not built.

Each workload (`panoptic.bench.workloads`: GetClaim with uniform and with Zipf-distributed ids,
a ListClaims/SearchClaims mix) is loaded by wrk (Debian's `wrk`) on every target in turn, with
the same connections, duration and request sequence, for `--rounds` rounds whose order of
targets alternates; the report shows every round, the median and the spread (min-max). Each
run also takes the CPU time (/proc/<pid>/stat) the target's processes and the retriever's
used, per request served, and the cache's hits and the gateway's own time from its metrics.
Logs are at warning level for all, so no process pays for a log line per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx

from panoptic.bench.common import (
    corpus_requests,
    cpu_seconds,
    drop_database,
    free_ports,
    fresh_database,
    memory_mib,
    metric_samples,
    process_tree,
)
from panoptic.bench.gateway_text import describe
from panoptic.bench.workloads import Corpus, Workload, build_workloads
from panoptic.bench.wrk import WrkResult, paths_script, require_wrk, run_wrk
from panoptic.core.db import SERVICE_ROLES, DatabaseUrl
from panoptic.core.errors import PanopticError
from panoptic.suite.health import wait_until_serving
from services.indexer.convert import batch_from_request, response_from_result
from services.indexer.handler import IndexingHandler
from services.indexer.servicer import fingerprint

TARGETS = ("peer", "gateway", "gateway-unary", "gateway+cache", "grpc-gateway")
# Where `make grpc-gateway` puts the binary, in a checkout of the repository.
DEFAULT_GRPC_GATEWAY = Path(__file__).resolve().parents[2] / "build" / "grpc-gateway" / "gateway"
HOW_TO_BUILD = "`make grpc-gateway` builds it from Debian packages (`make system-deps`)"


@dataclass(frozen=True)
class RoundResult:
    """One wrk run of one target, and the CPU it cost."""

    round: int
    wrk: WrkResult
    cpu_ms_per_request: float
    """CPU time of the target's own processes per request served."""
    retriever_cpu_ms_per_request: float | None
    """CPU time of the retriever's processes per request served (None: not behind it)."""
    cache_hit_ratio: float | None = None
    """Of the response cache's lookups in this run (None: no cache)."""


@dataclass(frozen=True)
class Spread:
    """A target's figures over the rounds of a workload."""

    median: float
    low: float
    high: float
    cpu_ms_per_request: float
    retriever_cpu_ms_per_request: float | None


@dataclass
class WorkloadReport:
    """One workload's rounds, by target."""

    name: str
    title: str
    orders: list[list[str]] = field(default_factory=list)
    """The order of the targets in each round."""
    rounds: dict[str, list[RoundResult]] = field(default_factory=dict)
    cache_hit_ratio: float | None = None
    """Of gateway+cache's lookups over every round of the workload."""
    gateway_own_ms: tuple[float, float, float] | None = None
    """The uncached gateway's own time per request (mean, ~p50, ~p99) over the rounds."""

    def spread(self, target: str) -> Spread:
        """Median and min-max of a target's req/s, and its median CPU per request."""
        results = self.rounds[target]
        rates = [r.wrk.requests_per_second for r in results]
        retriever = [r.retriever_cpu_ms_per_request for r in results]
        return Spread(
            statistics.median(rates),
            min(rates),
            max(rates),
            statistics.median(r.cpu_ms_per_request for r in results),
            None if None in retriever else statistics.median(r for r in retriever if r is not None),
        )

    def ratio(self, target: str, baseline: str) -> float | None:
        """A target's median req/s over a baseline's, when both ran."""
        if baseline not in self.rounds or target not in self.rounds:
            return None
        return self.spread(target).median / self.spread(baseline).median


@dataclass
class GatewayReport:
    """The benchmark's result."""

    claims: int
    connections: int
    seconds: int
    rounds: int
    zipf_exponent: float
    grpc_gateway: str
    """The binary that ran, or why none did and how to build it."""
    workloads: list[WorkloadReport] = field(default_factory=list)
    probe_gateway_ms: float = 0.0
    probe_upstream_ms: float = 0.0
    memory_mib: dict[str, tuple[float, float]] = field(default_factory=dict)
    """(RSS at the end, peak RSS) per process."""

    def describe(self) -> str:
        """Tables for people."""
        return describe(self)

    def as_dict(self) -> dict[str, object]:
        """The figures as JSON-ready values."""
        data = asdict(self)
        for workload, entry in zip(self.workloads, data["workloads"], strict=True):
            entry["spreads"] = {t: asdict(workload.spread(t)) for t in workload.rounds}
        return data


async def load_corpus(url: DatabaseUrl, claims: int) -> Corpus:
    """Indexes `claims` demo claims through the indexer's handler; their ids and texts."""
    requests = list(corpus_requests(claims, 500, seed=7))
    pool = await asyncpg.create_pool(
        url.with_user(SERVICE_ROLES["indexer"]).value, min_size=1, max_size=2
    )
    handler = IndexingHandler(lambda: pool, timedelta(days=1))
    try:
        for request in requests:
            await handler.index(
                batch_from_request(request),
                fingerprint(request),
                lambda result: response_from_result(result).SerializeToString(),
            )
    finally:
        await pool.close()
    claim_list = [claim for request in requests for claim in request.claims]
    return Corpus(
        claim_ids=[claim.id for claim in claim_list],
        actor_ids=[actor.id for request in requests for actor in request.actors],
        topic_ids=[topic.id for request in requests for topic in request.topics],
        claim_texts=[claim.text for claim in claim_list],
    )


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PanopticError(f"{url} did not start:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise PanopticError(f"{url} did not answer within {timeout} s")


def _wait_serving(address: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Waits until the gRPC service at `address` is SERVING, or fails as soon as its process
    ends (a benchmark being stopped ends it) rather than at the timeout."""
    deadline = time.monotonic() + 60
    while process.poll() is None:
        try:
            asyncio.run(wait_until_serving(address, timeout=0.5))
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise PanopticError(f"{address} did not report SERVING within 60 s") from None
    raise PanopticError(f"{address} did not start:\n{log.read_text(errors='replace')[-2000:]}")


@dataclass(frozen=True)
class GatewayMetrics:
    """The counters of a Panoptic gateway's /metrics that the benchmark reads: its own-time
    histogram (cumulative counts by upper bound) and its response cache's lookups."""

    buckets: tuple[tuple[float, float], ...] = ()
    own_seconds: float = 0.0
    own_count: float = 0.0
    hits: float = 0.0
    lookups: float = 0.0

    @classmethod
    def read(cls, metrics_url: str) -> GatewayMetrics:
        """The counters now."""
        buckets, values = [], {"sum": 0.0, "count": 0.0, "hits": 0.0, "lookups": 0.0}
        for sample in metric_samples(metrics_url):
            name = sample.name.removeprefix("panoptic_gateway_")
            if name == "own_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif name in ("own_seconds_sum", "own_seconds_count"):
                values[name.removeprefix("own_seconds_")] = sample.value
            elif name == "cache_lookups_total":
                values["lookups"] += sample.value
                values["hits"] += sample.value if sample.labels["result"] == "hit" else 0
        return cls(
            tuple(sorted(buckets)),
            values["sum"],
            values["count"],
            values["hits"],
            values["lookups"],
        )

    def plus(self, other: GatewayMetrics, sign: int = 1) -> GatewayMetrics:
        """The sum of two readings (`sign` -1: the difference, what happened in between)."""
        mine = dict(self.buckets)
        bounds = sorted(mine.keys() | {bound for bound, _ in other.buckets})
        theirs = dict(other.buckets)
        return GatewayMetrics(
            tuple((b, mine.get(b, 0.0) + sign * theirs.get(b, 0.0)) for b in bounds),
            self.own_seconds + sign * other.own_seconds,
            self.own_count + sign * other.own_count,
            self.hits + sign * other.hits,
            self.lookups + sign * other.lookups,
        )

    def hit_ratio(self) -> float | None:
        """Hits over lookups; None when there were none."""
        return self.hits / self.lookups if self.lookups else None

    def own_ms(self) -> tuple[float, float, float] | None:
        """Mean, ~p50 and ~p99 of the own time in ms (quantiles interpolated in buckets)."""
        if not self.own_count:
            return None
        return (
            self.own_seconds / self.own_count * 1000,
            self._quantile(0.5) * 1000,
            self._quantile(0.99) * 1000,
        )

    def _quantile(self, q: float) -> float:
        wanted = q * self.own_count
        lower, below = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= wanted:
                if bound == float("inf") or cumulative == below:
                    return lower
                return lower + (bound - lower) * (wanted - below) / (cumulative - below)
            lower, below = bound, cumulative
        return lower


def _probe(base_url: str, ids: Sequence[str], requests: int = 200) -> tuple[float, float]:
    """Median gateway and upstream ms from Server-Timing over sequential requests."""
    gateway, upstream = [], []
    with httpx.Client(base_url=base_url, timeout=5) as client:
        for number in range(requests):
            timing = client.get(f"/v1/claims/{ids[number * 7919 % len(ids)]}").headers.get(
                "server-timing", ""
            )
            parts = dict(
                part.strip().split(";dur=") for part in timing.split(",") if ";dur=" in part
            )
            if "upstream" in parts:
                gateway.append(float(parts["gateway"]))
                upstream.append(float(parts["upstream"]))
    return statistics.median(gateway), statistics.median(upstream)


def grpc_gateway_status(binary: Path) -> str:
    """What the report says of grpc-gateway: the binary, or that it is not built and how to."""
    if os.access(binary, os.X_OK):
        return str(binary)
    return f"not built ({binary} is missing): {HOW_TO_BUILD}; the other targets ran without it"


async def run_gateway_benchmark(
    server: DatabaseUrl,
    *,
    claims: int,
    rounds: int,
    seconds: int,
    connections: int,
    workloads: Sequence[str],
    zipf_exponent: float,
    grpc_gateway: Path = DEFAULT_GRPC_GATEWAY,
) -> GatewayReport:
    """Sets everything up, runs the rounds and tears everything down."""
    require_wrk()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per probe request
    status = grpc_gateway_status(grpc_gateway)
    if not os.access(grpc_gateway, os.X_OK):
        print(f"grpc-gateway: {status}", file=sys.stderr, flush=True)
    report = GatewayReport(claims, connections, seconds, rounds, zipf_exponent, status)
    url = await fresh_database(server, "panoptic_bench_gateway")
    work = Path(tempfile.mkdtemp(prefix="panoptic-bench-gateway-"))
    try:
        print(f"loading {claims} claims...", file=sys.stderr, flush=True)
        corpus = await load_corpus(url, claims)
        loads = build_workloads(corpus, workloads, exponent=zipf_exponent)
        binary = grpc_gateway if os.access(grpc_gateway, os.X_OK) else None
        await asyncio.to_thread(_run_targets, report, url, corpus, loads, work, binary)
        return report
    finally:
        await drop_database(server, url)
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class Target:
    """A server under load: where it answers and which processes' CPU it costs."""

    name: str
    url: str
    pids: tuple[int, ...]
    metrics_url: str | None = None
    """A Panoptic gateway's /metrics."""
    behind_retriever: bool = True


def _run_targets(
    report: GatewayReport,
    url: DatabaseUrl,
    corpus: Corpus,
    workloads: Sequence[Workload],
    work: Path,
    grpc_gateway: Path | None,
) -> None:
    """Starts every target, runs each workload's rounds, then probes and takes memory."""
    with contextlib.ExitStack() as stack:
        processes, targets, retriever = _start_targets(stack, url, corpus, work, grpc_gateway)
        for workload in workloads:
            # The peer serves GetClaim alone.
            serving = [t for t in targets if workload.get_claim_only or t.name != "peer"]
            script = paths_script(workload.paths, work, workload.name)
            report.workloads.append(_run_workload(report, workload, serving, script, retriever))
        gateway = next(t for t in targets if t.name == "gateway")
        report.probe_gateway_ms, report.probe_upstream_ms = _probe(gateway.url, corpus.claim_ids)
        report.memory_mib = {name: memory_mib(process.pid) for name, process in processes.items()}


def _run_workload(
    report: GatewayReport,
    workload: Workload,
    targets: Sequence[Target],
    script: Path,
    retriever: tuple[int, ...],
) -> WorkloadReport:
    """Warms every target up, then loads each in turn, alternating their order by round."""
    result = WorkloadReport(workload.name, workload.title, rounds={t.name: [] for t in targets})
    totals = {t.name: GatewayMetrics() for t in targets if t.metrics_url is not None}
    for target in targets:  # connections, prepared statements, caches of code
        run_wrk(target.url, script, report.connections, min(2, report.seconds))
    for number in range(1, report.rounds + 1):
        order = targets if number % 2 else list(reversed(targets))
        result.orders.append([target.name for target in order])
        for target in order:
            outcome, metrics = _measure(report, target, script, retriever, number)
            result.rounds[target.name].append(outcome)
            if metrics is not None:
                totals[target.name] = totals[target.name].plus(metrics)
            print(
                f"{workload.name} round {number}/{report.rounds} {target.name}: "
                f"{outcome.wrk.requests_per_second:,.0f} req/s",
                file=sys.stderr,
                flush=True,
            )
    if "gateway+cache" in totals:
        result.cache_hit_ratio = totals["gateway+cache"].hit_ratio()
    if "gateway" in totals:
        result.gateway_own_ms = totals["gateway"].own_ms()
    return result


def _measure(
    report: GatewayReport,
    target: Target,
    script: Path,
    retriever: tuple[int, ...],
    number: int,
) -> tuple[RoundResult, GatewayMetrics | None]:
    """One wrk run of a target: what wrk saw, the CPU per request, and the gateway's counters
    over the run (None for a target without them)."""
    before = GatewayMetrics.read(target.metrics_url) if target.metrics_url else None
    own_before, retriever_before = _cpu(target.pids), _cpu(retriever)
    outcome = run_wrk(target.url, script, report.connections, report.seconds)
    own, behind = _cpu(target.pids) - own_before, _cpu(retriever) - retriever_before
    served = max(outcome.requests, 1)
    metrics = None
    if target.metrics_url is not None and before is not None:
        metrics = GatewayMetrics.read(target.metrics_url).plus(before, sign=-1)
    return RoundResult(
        round=number,
        wrk=outcome,
        cpu_ms_per_request=own * 1000 / served,
        retriever_cpu_ms_per_request=behind * 1000 / served if target.behind_retriever else None,
        cache_hit_ratio=metrics.hit_ratio() if metrics is not None else None,
    ), metrics


def _cpu(pids: Sequence[int]) -> float:
    """CPU seconds the processes have used so far, added up."""
    return sum(cpu_seconds(pids).values())


def _target_environments(
    url: DatabaseUrl, work: Path, ports: dict[str, int]
) -> dict[str, dict[str, str]]:
    """The environment of each process: the retriever, the peer and the two gateways."""
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PANOPTIC_")},
        "DATABASE_URL": url.value,
        "PANOPTIC_BIND_HOST": "127.0.0.1",
        "PANOPTIC_LOG_LEVEL": "warning",
        "PANOPTIC_LOG_FORMAT": "json",
        "PANOPTIC_DATA_DIR": str(work / "data"),
        "PANOPTIC_RETRIEVER_PORT": str(ports["retriever"]),
        "PANOPTIC_RETRIEVER_METRICS_PORT": str(ports["rmetrics"]),
        "PANOPTIC_RETRIEVER_ADDRESS": f"127.0.0.1:{ports['retriever']}",
        "PANOPTIC_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
    }

    def gateway_env(name: str, cache_mib: str = "0", streams: str = "true") -> dict[str, str]:
        return base | {
            "PANOPTIC_GATEWAY_PORT": str(ports[name]),
            "PANOPTIC_GATEWAY_METRICS_PORT": str(ports[f"{name}-metrics"]),
            "PANOPTIC_GATEWAY_RESPONSE_CACHE_MIB": cache_mib,
            "PANOPTIC_GATEWAY_CALL_STREAM": streams,
        }

    return {
        "retriever": base,
        "peer": base
        | {
            "DATABASE_URL": url.with_user(SERVICE_ROLES["retriever"]).value,
            "PEER_PORT": str(ports["peer"]),
        },
        "gateway": gateway_env("gateway"),
        "gateway-unary": gateway_env("gateway-unary", streams="false"),
        "gateway+cache": gateway_env("gateway+cache", cache_mib="64"),
        "grpc-gateway": base,
    }


def _start_targets(
    stack: contextlib.ExitStack,
    url: DatabaseUrl,
    corpus: Corpus,
    work: Path,
    grpc_gateway: Path | None,
) -> tuple[dict[str, subprocess.Popen[bytes]], list[Target], tuple[int, ...]]:
    """Starts the retriever, then each target once it answers a claim: the processes by name,
    the targets and the retriever's pids."""
    free = free_ports()
    gateways = [name for name in TARGETS if name.startswith("gateway")]
    names = (*TARGETS, "retriever", "rmetrics", *(f"{name}-metrics" for name in gateways))
    ports = {name: next(free) for name in names}
    environments = _target_environments(url, work, ports)
    python = sys.executable
    retriever = stack.enter_context(
        _process([python, "-m", "panoptic", "retriever"], environments["retriever"], work / "r.log")
    )
    _wait_serving(f"127.0.0.1:{ports['retriever']}", retriever, work / "r.log")
    processes = {"retriever": retriever}
    commands = {
        "peer": [python, "-m", "panoptic.bench.peer"],
        **{name: [python, "-m", "panoptic", "gateway"] for name in gateways},
    }
    if grpc_gateway is not None:
        commands["grpc-gateway"] = [str(grpc_gateway), "-port", str(ports["grpc-gateway"])]
        commands["grpc-gateway"] += ["-backend", f"127.0.0.1:{ports['retriever']}"]
    targets = []
    for name, args in commands.items():
        log = work / f"{name}.log"
        processes[name] = stack.enter_context(_process(args, environments[name], log))
        base_url = f"http://127.0.0.1:{ports[name]}"
        _wait_http(f"{base_url}/v1/claims/{corpus.claim_ids[0]}", processes[name], log)
        metrics = ports.get(f"{name}-metrics")
        targets.append(
            Target(
                name,
                base_url,
                tuple(process_tree(processes[name].pid)),
                f"http://127.0.0.1:{metrics}/metrics" if metrics else None,
                behind_retriever=name != "peer",
            )
        )
    return processes, targets, tuple(process_tree(retriever.pid))
