"""Unit tests of `panoptic bench gateway`'s parts: its workloads, wrk's report, the gateway's
counters and the tables (no I/O)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from click.testing import CliRunner

from panoptic.bench.gateway import GatewayMetrics, GatewayReport, RoundResult, WorkloadReport
from panoptic.bench.workloads import Corpus, build_workloads, list_search_paths, zipf_draws
from panoptic.bench.wrk import WrkResult, parse_wrk
from panoptic.cli import main

CORPUS = Corpus(
    claim_ids=[f"c-{n}" for n in range(200)],
    actor_ids=[f"a-{n}" for n in range(20)],
    topic_ids=[f"t-{n}" for n in range(5)],
    claim_texts=[f"Claim number {n} about unemployment and inflation" for n in range(200)],
)
WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8080
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms  456.00us   5.00ms   80.00%
  Latency Distribution
     50%  850.00us
     75%    1.40ms
     90%    1.80ms
     99%    3.20ms
  3210 requests in 1.00s, 1.23MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:   3205.12
Transfer/sec:      1.23MB
"""


def seeded(seed: int) -> random.Random:
    """A generator whose draws the test can repeat."""
    return random.Random(seed)  # noqa: S311 - repeatable draws, not a secret


def test_zipf_draws_favour_the_first_ranks_as_the_law_says() -> None:
    """With s=1 over 100 keys the most popular key is drawn about 1/H(100) = 19 % of the time,
    the tenth about a tenth of that, and the same seed draws the same keys."""
    keys = [f"k{n}" for n in range(100)]
    draws = zipf_draws(keys, 20_000, 1.0, seeded(1))
    counts = Counter(draws).most_common()
    assert 0.17 < counts[0][1] / 20_000 < 0.22
    assert 0.07 < counts[9][1] / counts[0][1] < 0.14
    assert draws == zipf_draws(keys, 20_000, 1.0, seeded(1))


def test_a_larger_exponent_concentrates_the_draws() -> None:
    """s=1.5 gives the top key a larger share than s=0.5."""
    keys = [f"k{n}" for n in range(100)]

    def top_share(exponent: float) -> float:
        draws = zipf_draws(keys, 10_000, exponent, seeded(3))
        return Counter(draws).most_common(1)[0][1] / 10_000

    assert top_share(1.5) > 2 * top_share(0.5)


def test_get_workloads_name_only_loaded_claims_and_are_fixed_by_the_seed() -> None:
    """Both GetClaim workloads ask for claims of the corpus, the same ones on every build."""
    uniform, zipf = build_workloads(CORPUS, ["get-uniform", "get-zipf"], count=1000)
    for workload in (uniform, zipf):
        assert workload.get_claim_only
        assert {path.removeprefix("/v1/claims/") for path in workload.paths} <= set(
            CORPUS.claim_ids
        )
    assert "s=1" in zipf.title
    again = build_workloads(CORPUS, ["get-zipf"], count=1000)[0]
    assert again.paths == zipf.paths
    assert len(set(uniform.paths)) > len(set(zipf.paths))


def test_the_list_search_mix_has_its_shares_of_lists_and_searches() -> None:
    """4 in 10 requests list an actor's claims, 2 a topic's, 4 search for a word of a claim."""
    paths = list_search_paths(CORPUS, 1000, 1.0, seeded(5))
    kinds = Counter(
        "search" if p.startswith("/v1/claims:search?query=") else p.split("?")[1].split("=")[0]
        for p in paths
    )
    assert kinds == {"actorId": 400, "topicId": 200, "search": 400}
    assert all(p.endswith("&pageSize=20") for p in paths)
    words = {p.split("query=")[1].split("&")[0] for p in paths if "query=" in p}
    assert words <= {"number", "about", "unemployment", "inflation", "claim"}


def test_an_unknown_workload_is_refused() -> None:
    """A name that is no workload is an error naming the known ones."""
    with pytest.raises(ValueError, match="get-uniform, get-zipf, list-search"):
        build_workloads(CORPUS, ["get-everything"])


def test_the_command_refuses_an_unknown_workload_before_doing_anything() -> None:
    """A bad `--workloads` ends with a usage error naming it, before any database is made."""
    result = CliRunner().invoke(main, ["bench", "gateway", "--workloads", "get-uniform,post"])
    assert result.exit_code == 2
    assert "--workloads" in result.output


def test_wrk_report_is_read_with_its_errors_and_latencies() -> None:
    """Requests, rate, p50 (in µs) and p99, and the non-2xx answers plus timeouts."""
    assert parse_wrk(WRK_OUTPUT) == WrkResult(3210, 3205.12, 0.85, 3.2, 7, timeouts=2)


def test_gateway_counters_over_a_run_are_the_difference_of_two_readings() -> None:
    """Hits over lookups and the own-time histogram count only what happened in between."""
    before = GatewayMetrics(((0.001, 10.0), (0.01, 10.0), (float("inf"), 10.0)), 0.005, 10, 5, 10)
    after = GatewayMetrics(
        ((0.001, 60.0), (0.01, 110.0), (float("inf"), 110.0)), 0.305, 110, 95, 110
    )
    run = after.plus(before, sign=-1)
    assert run.hit_ratio() == pytest.approx(0.9)
    own = run.own_ms()
    assert own is not None
    mean, p50, p99 = own
    assert mean == pytest.approx(3.0)
    assert p50 == pytest.approx(1.0)  # the 50th of 100 is the last in the first bucket
    assert p99 == pytest.approx(1 + 9 * 49 / 50)
    assert GatewayMetrics().hit_ratio() is None
    assert GatewayMetrics().own_ms() is None


def _round(number: int, rate: float, retriever: float | None = 0.4) -> RoundResult:
    return RoundResult(number, WrkResult(int(rate) * 10, rate, 1.0, 5.0, 0), 0.3, retriever)


def test_the_table_shows_every_round_the_median_and_the_spread() -> None:
    """Each target's rounds in round order, their median and min-max, the ratios to the peer
    and to grpc-gateway, the CPU per request, and the cache's hit ratio."""
    workload = WorkloadReport(
        "get-uniform",
        "GET /v1/claims/{id}",
        orders=[["peer", "gateway", "grpc-gateway"], ["grpc-gateway", "gateway", "peer"]] * 2,
        rounds={
            "peer": [_round(n, rate, None) for n, rate in enumerate((4000, 4400, 4100, 3900), 1)],
            "gateway": [_round(n, rate) for n, rate in enumerate((1000, 1300, 1100, 1200), 1)],
            "grpc-gateway": [_round(n, rate) for n, rate in enumerate((2000, 2100, 2200, 2300), 1)],
        },
        cache_hit_ratio=0.5,
    )
    report = GatewayReport(1000, 4, 1, 4, 1.0, "not built: `make grpc-gateway`", [workload])
    text = report.describe()
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("  ")}
    gateway_row = rows["gateway"]
    assert gateway_row[1:9] == [
        "1,000", "1,300", "1,100", "1,200", "1,150", "1,000-1,300", "26%", "0.28",
    ]  # fmt: skip
    assert gateway_row[9] == "0.53"  # 1,150 / grpc-gateway's 2,150
    assert "hit ratio 50%" in text
    assert "grpc-gateway (Go): not built: `make grpc-gateway`" in text
    assert rows["peer"][-2:] == ["0.300", "—"]
    assert workload.spread("gateway").median == 1150


def test_errors_are_told_apart_as_timeouts_and_other_answers() -> None:
    """A target's errors over the rounds are summed, and split into wrk's timeouts and the
    answers other than 2xx or 3xx; a target without errors gets no such line."""
    failing = RoundResult(1, WrkResult(100, 10.0, 1.0, 2.0, 7, timeouts=5), 0.3, 0.4)
    workload = WorkloadReport(
        "list-search",
        "mix",
        orders=[["gateway", "grpc-gateway"]],
        rounds={"gateway": [_round(1, 1000)], "grpc-gateway": [failing]},
    )
    text = GatewayReport(1000, 4, 1, 1, 1.0, "built", [workload]).describe()
    assert "grpc-gateway: 7 errors: 5 requests unanswered within wrk's 2 s, 2 answers" in text
    assert "  gateway: " not in text
