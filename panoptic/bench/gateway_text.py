"""`panoptic bench gateway`'s report as text: one table per workload, every round shown."""

from __future__ import annotations

from statistics import median
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from panoptic.bench.gateway import GatewayReport, WorkloadReport


def describe(report: GatewayReport) -> str:
    """The report's tables and notes."""
    lines = [
        f"gateway benchmark: {report.claims:,} claims; wrk -t1 -c{report.connections} "
        f"-d{report.seconds}s per target and round, {report.rounds} rounds, the targets' order "
        "reversed every other round; median and spread (min-max) of the rounds",
        "CPU ms/req: CPU time (/proc/<pid>/stat) of the target's processes, and of the "
        "retriever's behind it, over each run divided by the requests served; median of the "
        "rounds",
        f"grpc-gateway (Go): {report.grpc_gateway}",
    ]
    for workload in report.workloads:
        lines += ["", *_workload_lines(workload)]
    lines += [
        "",
        f"unloaded, sequential GetClaim (Server-Timing medians): gateway "
        f"{report.probe_gateway_ms:.2f} ms, upstream gRPC call {report.probe_upstream_ms:.2f} ms",
        "memory (RSS at end / peak, MiB): "
        + ", ".join(
            f"{name} {rss:.0f}/{peak:.0f}" for name, (rss, peak) in report.memory_mib.items()
        ),
    ]
    return "\n".join(lines)


def _workload_lines(workload: WorkloadReport) -> list[str]:
    """A workload's title, its table and what the gateway's metrics said of it."""
    header = ["target", *(f"round {n + 1}" for n in range(len(workload.orders)))]
    header += ["median", "min-max", "spread", "÷peer", "÷grpc-gw", "p50 ms", "p99 ms", "errors"]
    header += ["CPU ms/req", "retriever"]
    rows = [header]
    for target, results in workload.rounds.items():
        spread = workload.spread(target)
        rows.append(
            [
                target,
                *(f"{r.wrk.requests_per_second:,.0f}" for r in results),
                f"{spread.median:,.0f}",
                f"{spread.low:,.0f}-{spread.high:,.0f}",
                f"{(spread.high - spread.low) / spread.median:.0%}",
                _ratio(workload.ratio(target, "peer")),
                _ratio(workload.ratio(target, "grpc-gateway")),
                f"{median(r.wrk.p50_ms for r in results):.2f}",
                f"{median(r.wrk.p99_ms for r in results):.2f}",
                f"{sum(r.wrk.errors for r in results)}",
                f"{spread.cpu_ms_per_request:.3f}",
                _ms(spread.retriever_cpu_ms_per_request),
            ]
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    table = [
        "  "
        + "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    notes = []
    for target, results in workload.rounds.items():
        if errors := sum(r.wrk.errors for r in results):
            timeouts = sum(r.wrk.timeouts for r in results)
            notes.append(
                f"{target}: {errors} errors: {timeouts} requests unanswered within wrk's 2 s, "
                f"{errors - timeouts} answers other than 2xx or 3xx"
            )
    if workload.cache_hit_ratio is not None:
        notes.append(f"gateway+cache hit ratio {workload.cache_hit_ratio:.0%}")
    if workload.gateway_own_ms is not None:
        mean, p50, p99 = workload.gateway_own_ms
        notes.append(
            f"gateway's own time per request (total minus the gRPC call, histogram): "
            f"mean {mean:.2f} ms, ~p50 {p50:.2f} ms, ~p99 {p99:.2f} ms"
        )
    return [f"{workload.name}: {workload.title}", *table, *(f"  {note}" for note in notes)]


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
