"""`panoptic bench report --quick` runs end to end: a PDF with its pages and a complete JSON.

Figures are never judged: the machine is shared and the quick sizes are tiny.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest
from pypdf import PdfReader

from panoptic.bench.read import ENDPOINTS
from panoptic.bench.report.capacity import EXAMPLE_READ_RATE
from panoptic.bench.report.measure import corpus_fingerprint
from panoptic.bench.report.replicas import REPLICA_ENDPOINTS
from panoptic.bench.report.run import QUICK_SCALES
from panoptic.suite.demo import generate_corpus
from tests.support.processes import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("h2load") is None,
        reason="h2load is missing: install Debian's nghttp2-client (make system-deps)",
    ),
]

PROTOCOLS = ("grpc", "http")
MEASURES = ("p50_ms", "p95_ms", "p99_ms", "requests_per_second", "load_generator_cpu_cores")
FIXED_PAGES = (
    "Summary",
    "Replicas: reads scale out, writes do not",
    *(f"Endpoint: {endpoint}" for endpoint in ENDPOINTS),
    "Database size and working set",
    "Ingest rate and buffer cache",
    "Fitted models",
    "Machine and method",
)


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[PdfReader, dict[str, Any]]:
    """Runs the quick report once, on a throwaway embedded PostgreSQL of its own."""
    directory = tmp_path_factory.mktemp("bench-report")
    output = directory / "out" / "report.pdf"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PANOPTIC_")}
    env.pop("DATABASE_URL", None)
    env["PANOPTIC_DATA_DIR"] = str(directory / "data")
    result = subprocess.run(
        [sys.executable, "-m", "panoptic", "bench", "report", "--quick", "--output", str(output)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"wrote {output}" in result.stdout
    json_path = output.with_suffix(".json")
    assert output.exists()
    assert json_path.exists()
    return PdfReader(output), json.loads(json_path.read_text())


def test_the_pdf_has_every_page_the_json_lists(
    quick_report: tuple[PdfReader, dict[str, Any]],
) -> None:
    """One PDF page per listed title: summary, six endpoints, sizes, tables, plans, method."""
    pdf, report = quick_report
    pages: list[str] = report["pages"]
    assert len(pdf.pages) == len(pages)
    assert pages[0] == "Summary"
    assert pages[-1] == "Machine and method"
    assert set(FIXED_PAGES) <= set(pages)
    for prefix in ("Raw figures: latency and throughput", "Raw figures: sizes", "Slowest plans"):
        assert any(title.startswith(prefix) for title in pages), prefix
    assert pdf.metadata is not None
    assert pdf.metadata.title == "Panoptic: when will the database begin to degrade?"


def test_each_page_shows_its_title(quick_report: tuple[PdfReader, dict[str, Any]]) -> None:
    """The text of each page starts with what its title promises (the summary asks the question)."""
    pdf, report = quick_report
    for page, title in zip(pdf.pages, report["pages"], strict=True):
        text = page.extract_text()
        expected = {
            "Summary": "When will the database begin to degrade?",
        }.get(title, re.sub(r" \(\d+\)$", "", title.removeprefix("Endpoint: ")))
        assert expected in text, title


def test_the_json_has_every_measure_of_every_endpoint_at_every_scale(
    quick_report: tuple[PdfReader, dict[str, Any]],
) -> None:
    """Latency percentiles and throughput for each endpoint, over gRPC and HTTP, at each size."""
    _, report = quick_report
    assert [scale["claims"] for scale in report["scales"]] == list(QUICK_SCALES)
    for scale in report["scales"]:
        for protocol in PROTOCOLS:
            assert set(scale["endpoints"][protocol]) == set(ENDPOINTS)
            for endpoint in ENDPOINTS:
                figures = scale["endpoints"][protocol][endpoint]
                for measure in MEASURES:
                    assert figures[measure] >= 0, (scale["claims"], protocol, endpoint, measure)
                assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
                assert figures["requests_per_second"] > 0
                assert len(figures["samples_ms"]) == figures["calls"] == 20


def test_the_json_has_the_database_facts_of_every_scale(
    quick_report: tuple[PdfReader, dict[str, Any]],
) -> None:
    """Ingest rate, sizes, cache hit ratio, a fingerprint of the data and plans, at each size."""
    _, report = quick_report
    for scale in report["scales"]:
        assert scale["ingest_claims_per_second"] > 0
        assert 0 <= scale["buffer_cache_hit_ratio"] <= 1
        sizes = scale["sizes"]
        assert 0 < sizes["read_index_bytes"] < sizes["read_set_bytes"] < sizes["database_bytes"]
        assert {table["name"] for table in sizes["tables"]} >= {"claims", "claim_topics"}
        assert re.fullmatch(r"[0-9a-f]{32}", scale["fingerprint"])
        assert scale["slowest_plans"]
    assert report["server"]["shared_buffers_bytes"] > 0
    assert report["machine"]["ram_bytes"] > 0
    assert report["machine"]["cores"] >= 1


def test_the_json_has_a_projection_for_every_curve(
    quick_report: tuple[PdfReader, dict[str, Any]],
) -> None:
    """Each endpoint and protocol has a p95 projection with a verdict; memory has three limits."""
    _, report = quick_report
    projections = report["projections"]
    for protocol in PROTOCOLS:
        for endpoint in ENDPOINTS:
            projection = projections["latency_p95"][protocol][endpoint]
            assert projection["status"] in ("above", "measured", "projected", "beyond")
            assert projection["verdict"]
            assert projection["limit"] == 100.0
            assert {fit["model"] for fit in projection["fits"]} == {
                "power",
                "linear",
                "log",
                "constant",
            }
    assert [limit["measure"] for limit in projections["memory"]] == [
        "read_index_bytes",
        "read_set_bytes",
        "database_bytes",
    ]
    assert report["headline"]
    assert report["method"]


def test_the_same_seed_gives_the_same_data_set(
    quick_report: tuple[PdfReader, dict[str, Any]],
) -> None:
    """At each size the database holds exactly the generated corpus of that size and seed."""
    _, report = quick_report
    seed = report["options"]["seed"]
    for scale in report["scales"]:
        expected = corpus_fingerprint(generate_corpus(seed=seed, claims=scale["claims"]))
        assert scale["fingerprint"] == expected, scale["claims"]


def test_every_scale_measures_the_reads_on_a_replica_next_to_the_primary(
    quick_report: tuple[PdfReader, dict[str, Any]],
) -> None:
    """GetClaim and search on each server in every round, all served by the replica where the
    replica was asked, with the replica's lag while that size loaded."""
    _, report = quick_report
    for scale in report["scales"]:
        replica = scale["replica"]
        assert replica["replica_share"] == 1.0, scale["claims"]
        for server in ("primary", "replica"):
            for endpoint in REPLICA_ENDPOINTS:
                reads = replica["reads"][server][endpoint]
                assert len(reads["rounds_rps"]) == 2  # --quick's rounds
                assert min(reads["rounds_rps"]) > 0
                assert reads["errors"] == 0
                assert 0 < reads["p50_ms"] <= reads["p95_ms"]
                capacity = reads["capacity"]
                assert capacity["low"] <= capacity["median"] <= capacity["high"]
        lag = replica["load_lag"]
        assert lag["samples"] >= 1
        assert 0 <= lag["p95_seconds"] <= lag["max_seconds"]
        assert 0 <= lag["p95_bytes"] <= lag["max_bytes"]


def test_the_summary_says_how_many_replicas_a_read_rate_needs_from_the_measured_capacity(
    quick_report: tuple[PdfReader, dict[str, Any]],
) -> None:
    """On the first page and in the JSON: per read, ceil(R / a replica's median at the largest
    size), and the primary's ingest rate at the largest size as the limit of writes."""
    pdf, report = quick_report
    largest = report["scales"][-1]
    sentences = report["scale_out"]
    assert len(sentences) == len(REPLICA_ENDPOINTS) + 1
    for endpoint, sentence in zip(REPLICA_ENDPOINTS, sentences, strict=False):
        median = largest["replica"]["reads"]["replica"][endpoint]["capacity"]["median"]
        needed = math.ceil(EXAMPLE_READ_RATE / median)
        assert sentence.startswith(f"{endpoint}: a replica serves ~{median:,.0f}/s at 10k")
        assert f"ceil(R / {median:,.0f}) replicas, e.g. {needed:,} for 10,000/s." in sentence
    ingest = largest["ingest_claims_per_second"]
    assert f"It sustained ~{ingest:,.0f} claims/s through one indexer" in sentences[-1]
    assert len(report["replica_sizes"]) == len(REPLICA_ENDPOINTS)
    first_page = " ".join(pdf.pages[0].extract_text().split())
    assert "And then what? Replicas" in first_page
    assert f"ceil(R / {median:,.0f}) replicas" in first_page
