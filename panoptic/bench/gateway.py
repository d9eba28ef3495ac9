"""`panoptic bench gateway`: GET /v1/claims/{id} through the gateway against a hand-written peer.

One run sets up a throwaway database with `--claims` demo claims, then serves the same route
three ways, side by side on loopback:

- **peer**: Starlette + asyncpg + orjson in one uvicorn worker, the retriever's SQL, no gRPC
  (`panoptic.bench.peer`, what a team would otherwise write);
- **gateway**: `panoptic gateway` (one worker, its response cache off) in front of
  `panoptic retriever`: HTTP → transcoding → gRPC → SQL → gRPC → JSON;
- **gateway+cache**: the same with the gateway's shared response cache on (each response kept
  for the route's `max-age`, 30 s for GetClaim).

wrk (Debian's `wrk`) loads each in turn with the same connections, threads and duration, every
request for a claim id drawn uniformly at random from the corpus; rounds alternate the targets
and the report takes medians. The gateway's own time per request comes from its
`panoptic_gateway_own_seconds` histogram (under load) and from Server-Timing on a short
sequential probe (unloaded); its memory from /proc. Logs are at warning level for all, so no
process pays for a log line per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from panoptic.bench.common import (
    corpus_requests,
    drop_database,
    free_ports,
    fresh_database,
    memory_mib,
)
from panoptic.core.db import SERVICE_ROLES, DatabaseUrl
from panoptic.core.errors import PanopticError
from panoptic.suite.health import wait_until_serving
from services.indexer.convert import batch_from_request, response_from_result
from services.indexer.handler import IndexingHandler
from services.indexer.servicer import fingerprint

TARGETS = ("peer", "gateway", "gateway+cache")
_LUA = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
math.randomseed(%d)
request = function()
  return wrk.format("GET", "/v1/claims/" .. ids[math.random(#ids)])
end
"""


class WrkMissing(PanopticError):
    """wrk is not installed."""


@dataclass(frozen=True)
class WrkResult:
    """What wrk measured for one target in one round."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class GatewayReport:
    """The benchmark's result."""

    claims: int
    connections: int
    seconds: int
    rounds: dict[str, list[WrkResult]] = field(default_factory=dict)
    gateway_own_mean_ms: float = 0.0
    gateway_own_p50_ms: float = 0.0
    gateway_own_p99_ms: float = 0.0
    probe_gateway_ms: float = 0.0
    probe_upstream_ms: float = 0.0
    cache_hit_ratio: float = 0.0
    memory_mib: dict[str, tuple[float, float]] = field(default_factory=dict)
    """(RSS at the end, peak RSS) per process."""

    def median(self, target: str) -> float:
        """Median requests/s of a target over the rounds."""
        return statistics.median(r.requests_per_second for r in self.rounds[target])

    def ratio(self, target: str) -> float:
        """A target's median requests/s over the peer's."""
        return self.median(target) / self.median("peer")

    def describe(self) -> str:
        """A table for people."""
        lines = [
            f"gateway benchmark: GET /v1/claims/{{id}}, {self.claims} claims, ids uniformly at "
            f"random; wrk -t1 -c{self.connections} -d{self.seconds}s per target and round",
            f"{'target':<14} {'round req/s':<28} {'median':>8} {'vs peer':>7} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6}",
        ]
        for target in TARGETS:
            results = self.rounds.get(target, [])
            if not results:
                continue
            rates = " ".join(f"{r.requests_per_second:>8,.0f}" for r in results)
            lines.append(
                f"{target:<14} {rates:<28} {self.median(target):>8,.0f} "
                f"{self.ratio(target):>7.2f} "
                f"{statistics.median(r.p50_ms for r in results):>7.2f} "
                f"{statistics.median(r.p99_ms for r in results):>7.2f} "
                f"{sum(r.errors for r in results):>6}"
            )
        lines += [
            f"gateway's own time per request under load (total minus the gRPC call): mean "
            f"{self.gateway_own_mean_ms:.2f} ms, p50 ~{self.gateway_own_p50_ms:.2f} ms, "
            f"p99 ~{self.gateway_own_p99_ms:.2f} ms (histogram buckets)",
            f"unloaded, sequential (Server-Timing medians): gateway {self.probe_gateway_ms:.2f} ms,"
            f" upstream gRPC call {self.probe_upstream_ms:.2f} ms",
            f"gateway+cache hit ratio: {self.cache_hit_ratio:.0%}",
            "memory (RSS at end / peak, MiB): "
            + ", ".join(
                f"{name} {rss:.0f}/{peak:.0f}" for name, (rss, peak) in self.memory_mib.items()
            ),
        ]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        """The figures as JSON-ready values."""
        data = asdict(self)
        data["medians"] = {target: self.median(target) for target in self.rounds}
        data["ratios"] = {target: self.ratio(target) for target in self.rounds}
        return data


async def load_claims(url: DatabaseUrl, claims: int) -> list[str]:
    """Indexes `claims` demo claims through the indexer's handler; their ids."""
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
    return [claim.id for request in requests for claim in request.claims]


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


_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*?timeout (\d+)")


def run_wrk(base_url: str, script: Path, connections: int, seconds: int) -> WrkResult:
    """One wrk run against `base_url`."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissing("wrk is not installed: `apt-get install wrk` (make system-deps)")
    completed = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base_url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    out = completed.stdout
    rate = _WRK_RATE.search(out)
    if rate is None:
        raise PanopticError(f"unexpected wrk output:\n{out}")
    percentiles = {}
    for name, number, unit in _WRK_PERCENTILE.findall(out):
        percentiles[name] = float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = sum(int(a or b or 0) for a, b in _WRK_ERRORS.findall(out))
    return WrkResult(
        float(rate.group(1)), percentiles.get("50", 0.0), percentiles.get("99", 0.0), errors
    )


def _own_time(metrics_url: str) -> tuple[float, float, float, float]:
    """Mean, ~p50 and ~p99 (ms) of the gateway's own time, and its cache hit ratio."""
    body = httpx.get(metrics_url, timeout=5).text
    buckets: list[tuple[float, float]] = []
    total = count = hits = lookups = 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "panoptic_gateway_own_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == "panoptic_gateway_own_seconds_sum":
                total = sample.value
            elif sample.name == "panoptic_gateway_own_seconds_count":
                count = sample.value
            elif sample.name == "panoptic_gateway_cache_lookups_total":
                lookups += sample.value
                hits += sample.value if sample.labels["result"] == "hit" else 0
    buckets.sort()

    def quantile(q: float) -> float:
        wanted = q * count
        lower, below = 0.0, 0.0
        for bound, cumulative in buckets:
            if cumulative >= wanted:
                if bound == float("inf") or cumulative == below:
                    return lower * 1000
                return (lower + (bound - lower) * (wanted - below) / (cumulative - below)) * 1000
            lower, below = bound, cumulative
        return lower * 1000

    mean = total / count * 1000 if count else 0.0
    return mean, quantile(0.5), quantile(0.99), hits / lookups if lookups else 0.0


def _probe(base_url: str, ids: list[str], requests: int = 200) -> tuple[float, float]:
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


async def run_gateway_benchmark(
    server: DatabaseUrl, *, claims: int, rounds: int, seconds: int, connections: int
) -> GatewayReport:
    """Sets everything up, runs the rounds and tears everything down."""
    if shutil.which("wrk") is None:
        raise WrkMissing("wrk is not installed: `apt-get install wrk` (make system-deps)")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per probe request
    url = await fresh_database(server, "panoptic_bench_gateway")
    work = Path(tempfile.mkdtemp(prefix="panoptic-bench-gateway-"))
    try:
        print(f"loading {claims} claims...", file=sys.stderr, flush=True)
        ids = await load_claims(url, claims)
        (work / "ids.txt").write_text("\n".join(ids) + "\n")
        script = work / "ids.lua"
        script.write_text(_LUA % (work / "ids.txt", 42))
        return await asyncio.to_thread(
            _run_targets, url, ids, work, script, claims, rounds, seconds, connections
        )
    finally:
        await drop_database(server, url)
        shutil.rmtree(work, ignore_errors=True)


def _run_targets(
    url: DatabaseUrl,
    ids: list[str],
    work: Path,
    script: Path,
    claims: int,
    rounds: int,
    seconds: int,
    connections: int,
) -> GatewayReport:
    free = free_ports()
    ports = {
        name: next(free) for name in ("retriever", "rmetrics", "gw", "gwm", "gwc", "gwcm", "peer")
    }
    urls = {
        "peer": f"http://127.0.0.1:{ports['peer']}",
        "gateway": f"http://127.0.0.1:{ports['gw']}",
        "gateway+cache": f"http://127.0.0.1:{ports['gwc']}",
    }
    report = GatewayReport(claims, connections, seconds, {target: [] for target in TARGETS})
    with contextlib.ExitStack() as stack:
        processes = _start_targets(stack, url, ids, work, ports, urls)
        for target in TARGETS:  # warm-up: connections, prepared statements, caches of code
            run_wrk(urls[target], script, connections, 2)
        _run_rounds(report, urls, script, rounds)
        own = _own_time(f"http://127.0.0.1:{ports['gwm']}/metrics")
        report.gateway_own_mean_ms, report.gateway_own_p50_ms, report.gateway_own_p99_ms, _ = own
        report.cache_hit_ratio = _own_time(f"http://127.0.0.1:{ports['gwcm']}/metrics")[3]
        report.probe_gateway_ms, report.probe_upstream_ms = _probe(urls["gateway"], ids)
        report.memory_mib = {name: memory_mib(process.pid) for name, process in processes.items()}
    return report


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

    def gateway_env(port: int, metrics: int, cache_mib: str) -> dict[str, str]:
        return base | {
            "PANOPTIC_GATEWAY_PORT": str(port),
            "PANOPTIC_GATEWAY_METRICS_PORT": str(metrics),
            "PANOPTIC_GATEWAY_RESPONSE_CACHE_MIB": cache_mib,
        }

    return {
        "retriever": base,
        "peer": base
        | {
            "DATABASE_URL": url.with_user(SERVICE_ROLES["retriever"]).value,
            "PEER_PORT": str(ports["peer"]),
        },
        "gateway": gateway_env(ports["gw"], ports["gwm"], "0"),
        "gateway+cache": gateway_env(ports["gwc"], ports["gwcm"], "64"),
    }


def _start_targets(
    stack: contextlib.ExitStack,
    url: DatabaseUrl,
    ids: list[str],
    work: Path,
    ports: dict[str, int],
    urls: dict[str, str],
) -> dict[str, subprocess.Popen[bytes]]:
    """Starts the retriever, then the peer and both gateways, each once it answers a claim."""
    python = sys.executable
    environments = _target_environments(url, work, ports)
    retriever = stack.enter_context(
        _process(
            [python, "-m", "panoptic", "retriever"],
            environments["retriever"],
            work / "retriever.log",
        )
    )
    _wait_serving(f"127.0.0.1:{ports['retriever']}", retriever, work / "retriever.log")
    processes = {"retriever": retriever}
    commands = {
        "peer": [python, "-m", "panoptic.bench.peer"],
        "gateway": [python, "-m", "panoptic", "gateway"],
        "gateway+cache": [python, "-m", "panoptic", "gateway"],
    }
    for name, args in commands.items():
        log = work / f"{name}.log"
        processes[name] = stack.enter_context(_process(args, environments[name], log))
        _wait_http(f"{urls[name]}/v1/claims/{ids[0]}", processes[name], log)
    return processes


def _run_rounds(report: GatewayReport, urls: dict[str, str], script: Path, rounds: int) -> None:
    """Loads each target in turn, alternating their order from one round to the next."""
    for number in range(1, rounds + 1):
        order = TARGETS if number % 2 else tuple(reversed(TARGETS))
        for target in order:
            result = run_wrk(urls[target], script, report.connections, report.seconds)
            report.rounds[target].append(result)
            print(
                f"round {number}/{rounds} {target}: {result.requests_per_second:,.0f} req/s",
                file=sys.stderr,
                flush=True,
            )
