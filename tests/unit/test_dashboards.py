"""The Grafana dashboards and provisioning of deploy/grafana, read as Grafana would.

Each panel's PromQL is parsed by promtool (offline, as recording rules), and every metric a panel
or an alert reads must be one the code defines; tests/integration/test_prometheus_live.py runs
the same expressions against a real Prometheus scraping the running suite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.support.promql import (
    RATE_INTERVAL,
    ROOT,
    dashboards,
    metric_name,
    needs_promtool,
    panel_expressions,
    panels,
    promtool,
    rule_expressions,
    rules,
    selectors,
)

PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PANEL_TYPES = frozenset({"timeseries", "stat", "gauge", "table", "bargauge"})
# Series Prometheus makes itself or every prometheus-client process exports.
BUILTIN_METRICS = frozenset({"up", "ALERTS", "process_start_time_seconds"})


def datasources() -> list[dict[str, Any]]:
    """The provisioned data sources."""
    return [
        source
        for path in sorted((PROVISIONING / "datasources").glob("*.yml"))
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]


def test_one_prometheus_datasource_is_provisioned() -> None:
    """Grafana gets exactly one data source, the default, a Prometheus with a fixed uid."""
    (source,) = datasources()
    assert source["type"] == "prometheus"
    assert source["uid"] == "prometheus"
    assert source["isDefault"] is True


def test_dashboard_provider_loads_files_read_only() -> None:
    """The dashboards are provisioned from files, in a Panoptic folder, and not editable."""
    providers = [
        provider
        for path in sorted((PROVISIONING / "dashboards").glob("*.yml"))
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    assert len(providers) == 1
    (provider,) = providers
    assert provider["type"] == "file"
    assert provider["folder"] == "Panoptic"
    assert provider["allowUiUpdates"] is False


def test_dashboards_are_valid_provisioning_json() -> None:
    """Each dashboard has a unique uid and title, unique panel ids and query refIds, and
    queries the provisioned data source by its uid (no import-time `${DS_...}` inputs)."""
    (source,) = datasources()
    boards = dashboards()
    assert {"panoptic-services.json", "panoptic-indexing.json", "panoptic-database.json"} <= set(
        boards
    )
    assert len({board["uid"] for board in boards.values()}) == len(boards)
    assert len({board["title"] for board in boards.values()}) == len(boards)
    for name, board in boards.items():
        assert isinstance(board["schemaVersion"], int), name
        assert "__inputs" not in board, name
        assert "${DS_" not in str(board), name
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in panels(board):
            where = f"{name}: {panel.get('title')}"
            assert panel["type"] in PANEL_TYPES, where
            assert panel["title"], where
            assert panel.get("description"), f"{where} has no description"
            assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, where
            refs = [target["refId"] for target in panel["targets"]]
            assert refs, f"{where} has no query"
            assert len(refs) == len(set(refs)), where
            for target in panel["targets"]:
                assert target["expr"].strip(), where
                assert target.get("datasource", panel["datasource"]) == panel["datasource"]


def test_panels_fit_the_grid_without_overlapping() -> None:
    """Every panel lies within Grafana's 24 columns and covers no other panel."""
    for name, board in dashboards().items():
        cells: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0, name
            assert grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']}"
            for row in range(grid["y"], grid["y"] + grid["h"]):
                for column in range(grid["x"], grid["x"] + grid["w"]):
                    other = cells.setdefault((row, column), panel["title"])
                    assert other == panel["title"], f"{name}: {panel['title']} covers {other}"


def test_panels_cover_throughput_latency_errors_freshness_and_size() -> None:
    """The dashboards show what issue 6 asks: per-service throughput, latency percentiles and
    errors, indexing rate and freshness, database size and growth."""
    expressions = " ".join(expression.expr for expression in panel_expressions())
    for needed in (
        "rate(grpc_server_handled_total",  # gRPC throughput per service
        'grpc_code!="OK"',  # gRPC errors
        "histogram_quantile(0.99, sum by (job, le) (rate(grpc_server_handling_seconds_bucket",
        "rate(http_requests_total",  # gateway throughput
        "http_request_duration_seconds_bucket",  # gateway latency
        "rate(panoptic_indexer_claims_total",  # indexing rate
        "time() - max(panoptic_indexer_last_commit_timestamp_seconds",  # freshness
        "panoptic_db_size_bytes",  # size
        "delta(panoptic_db_size_bytes",  # growth
        "panoptic_db_table_rows_estimate",
        "panoptic_db_pool_size - panoptic_db_pool_idle",
    ):
        assert needed in expressions, needed


def test_database_dashboard_shows_the_replicas() -> None:
    """The database dashboard shows what issue 20 asks: each replica's lag in seconds with the
    configured bound in the same panel, its lag in bytes, reads per second by server,
    ejections, whether it takes reads, and the outcomes of reads with a consistency token."""
    board = dashboards()["panoptic-database.json"]
    queries = [[target["expr"] for target in panel["targets"]] for panel in panels(board)]
    assert any(
        any("panoptic_db_replica_lag_seconds" in expr for expr in panel)
        and any("panoptic_db_replica_max_lag_seconds" in expr for expr in panel)
        for panel in queries
    ), "no panel draws the replicas' lag against the bound"
    expressions = " ".join(expr for panel in queries for expr in panel)
    for needed in (
        "panoptic_db_replica_lag_bytes",
        "sum by (job, server) (rate(panoptic_db_reads_total",
        "increase(panoptic_db_replica_ejections_total",
        "panoptic_db_replica_serving",
        "sum by (outcome) (rate(panoptic_db_consistent_reads_total",
    ):
        assert needed in expressions, needed


@needs_promtool
def test_every_panel_expression_parses(tmp_path: Path) -> None:
    """promtool parses every panel's query (each written as a recording rule, with Grafana's
    $__rate_interval as a fixed range)."""
    expressions = panel_expressions()
    document = {
        "groups": [
            {
                "name": "panels",
                "rules": [
                    {"record": f"panel:{index}", "expr": item.expr.replace(RATE_INTERVAL, "5m")}
                    for index, item in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump(document))
    result = promtool("check", "rules", str(path))
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout


def defined_metrics() -> str:
    """The source of every module that defines metrics, as one text to search."""
    return "\n".join(
        path.read_text()
        for folder in ("panoptic", "services")
        for path in (ROOT / folder).rglob("*.py")
    )


def test_every_metric_read_is_defined_by_the_code() -> None:
    """Each metric a panel or an alert reads is defined by a Panoptic module, a recording
    rule, or Prometheus and prometheus-client themselves: renaming one breaks this test."""
    source = defined_metrics()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for expression in [*panel_expressions(), *rule_expressions()]:
        for selector in selectors(expression.expr):
            name = metric_name(selector)
            if name in BUILTIN_METRICS or name in recorded:
                continue
            assert ":" not in name, f"{expression.where}: {name} is no recording rule"
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            candidates = {base, base.removesuffix("_total")}
            assert any(f'"{candidate}"' in source for candidate in candidates), (
                f"{expression.where}: no module defines {name}"
            )
