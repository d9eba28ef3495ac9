"""What `panoptic up --with-monitoring` renders for Prometheus, checked without running it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from panoptic.suite import monitoring
from panoptic.suite.monitoring import (
    RULES_FILE,
    WINDOW_RULE,
    MonitoringUnavailable,
    ScrapeTarget,
    render_rules,
    suite_targets,
    write_files,
)
from tests.support.promql import needs_promtool, promtool


def rules_by_name(document: dict[str, object]) -> dict[str, dict[str, object]]:
    """Every rule of a rendered document, by alert or record name."""
    groups = document["groups"]
    assert isinstance(groups, list)
    return {
        rule.get("alert") or rule["record"]: rule for group in groups for rule in group["rules"]
    }


def test_window_comes_from_the_setting() -> None:
    """The window's recording rule holds the configured seconds; nothing else changes."""
    source = RULES_FILE.read_text()
    original = rules_by_name(yaml.safe_load(source))
    rendered = rules_by_name(
        render_rules(source, window_seconds=30, jobs={"indexer", "retriever", "gateway"})
    )
    assert rendered[WINDOW_RULE]["expr"] == "vector(30)"
    assert rendered.keys() == original.keys()
    for name, rule in rendered.items():
        if name != WINDOW_RULE:
            assert rule == original[name], name


def test_alerts_about_services_not_scraped_are_left_out() -> None:
    """Without a gateway, GatewayDown and GatewayServerErrors are left out (they would fire or
    mean nothing); alerts about no particular service stay."""
    rendered = rules_by_name(
        render_rules(RULES_FILE.read_text(), window_seconds=900, jobs={"indexer", "retriever"})
    )
    assert "GatewayDown" not in rendered
    assert "GatewayServerErrors" not in rendered
    assert {"ClaimsNotIndexed", "IndexerDown", "RetrieverDown", "DatabaseConnectionsSaturated"} <= (
        rendered.keys()
    )


def test_rules_without_the_window_rule_are_refused() -> None:
    """A rule file that lost the window's recording rule is an error, not a silent default."""
    source = "groups:\n  - name: g\n    rules:\n      - record: other\n        expr: vector(1)\n"
    with pytest.raises(MonitoringUnavailable, match=WINDOW_RULE):
        render_rules(source, window_seconds=60, jobs=set())


def test_targets_are_named_after_the_services() -> None:
    """Each service is scraped under its own name, the job the rules select."""
    assert suite_targets({"indexer": 9101, "retriever": 9102}, "127.0.0.1") == [
        ScrapeTarget("indexer", "127.0.0.1:9101"),
        ScrapeTarget("retriever", "127.0.0.1:9102"),
    ]


def test_missing_prometheus_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the binary, the error says how to install it."""
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(MonitoringUnavailable, match=r"make system-deps.*`prometheus`"):
        monitoring.find_prometheus()


@needs_promtool
def test_rendered_files_pass_promtool(tmp_path: Path) -> None:
    """promtool accepts the rendered configuration and the rules it loads."""
    config = write_files(
        tmp_path,
        suite_targets({"indexer": 9101, "retriever": 9102}, "127.0.0.1"),
        window_seconds=45,
        scrape_interval="1s",
        evaluation_interval="1s",
    )
    promtool("check", "config", str(config))
    rendered = yaml.safe_load(config.read_text())
    assert [job["job_name"] for job in rendered["scrape_configs"]] == ["indexer", "retriever"]
    assert rendered["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}
