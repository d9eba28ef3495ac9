"""The alert rules of deploy/prometheus: promtool's checks and unit tests, and what every alert
must carry (a runbook, a severity, the service it is about).

promtool comes with Debian's `prometheus` package and amtool with `prometheus-alertmanager`
(`make system-deps`); without them those tests skip, which CI counts as a failure.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.promql import needs_promtool, promtool

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

# What issues 6 and 20 ask for; a new alert needs its unit tests too.
EXPECTED_ALERTS = {
    "ClaimsNotIndexed",
    "IndexerDown",
    "RetrieverDown",
    "GatewayDown",
    "IndexingErrorRateHigh",
    "RetrievalLatencyHigh",
    "GatewayServerErrors",
    "DatabaseConnectionsSaturated",
    "ReplicaLagHigh",
}


def run(*command: str) -> subprocess.CompletedProcess[str]:
    """Runs a tool from the repository's root and returns what it said."""
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> dict[str, dict[str, Any]]:
    """Every alerting rule of the rule files, by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in found, f"{rule['alert']} is defined twice"
                    found[rule["alert"]] = rule
    return found


def unit_test_groups() -> list[dict[str, Any]]:
    """Every test group of the promtool unit test files."""
    return [group for path in TEST_FILES for group in yaml.safe_load(path.read_text())["tests"]]


@needs_promtool
def test_rule_files_pass_promtool_check() -> None:
    """promtool accepts every rule file: valid YAML, PromQL and templates."""
    assert RULE_FILES
    promtool("check", "rules", *map(str, RULE_FILES))


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    """Every promtool unit test passes: each alert fires, stays quiet, and handles missing data
    as its test cases say."""
    assert TEST_FILES
    promtool("test", "rules", *map(str, TEST_FILES))


@needs_promtool
def test_compose_prometheus_configuration_is_valid() -> None:
    """promtool accepts deploy/prometheus/prometheus.yml and the rule files it loads."""
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert "1 rule files found" in result.stdout


@pytest.mark.skipif(
    shutil.which("amtool") is None,
    reason="amtool is not installed (Debian package `prometheus-alertmanager`; `make system-deps`)",
)
def test_alertmanager_configuration_is_valid() -> None:
    """amtool accepts deploy/alertmanager/alertmanager.yml."""
    result = run("amtool", "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_issue_alerts_exist() -> None:
    """The rule files define exactly the alerts operators were promised."""
    assert set(alerts()) == EXPECTED_ALERTS


def test_every_alert_says_what_to_do() -> None:
    """Each alert has a summary, a description and a runbook, a severity that routes it, and
    names the service it is about (as a label, or from its expression)."""
    for name, rule in alerts().items():
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name} has no {key}"
        assert len(annotations["runbook"]) > 200, f"{name}'s runbook says too little"
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert "service" in rule["labels"] or "service" in rule["expr"], name


def test_every_alert_is_unit_tested_firing_quiet_and_without_data() -> None:
    """For each alert, some test case expects it firing, some expects it quiet, and some test
    group covers missing data (named so)."""
    firing: set[str] = set()
    quiet: set[str] = set()
    without_data: set[str] = set()
    for group in unit_test_groups():
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
            if "data" in group.get("name", ""):
                without_data.add(case["alertname"])
    for name in alerts():
        assert name in firing, f"no test expects {name} to fire"
        assert name in quiet, f"no test expects {name} to stay quiet"
        assert name in without_data, f"no test group about missing data evaluates {name}"


def test_claims_not_indexed_window_is_a_recording_rule() -> None:
    """ClaimsNotIndexed compares with the window's recording rule, the one value
    `panoptic up --with-monitoring` replaces from PANOPTIC_ALERT_NOT_INDEXED_MINUTES."""
    from panoptic.suite.monitoring import WINDOW_RULE

    records = {
        rule["record"]: rule["expr"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    assert records[WINDOW_RULE] == "vector(900)"
    assert WINDOW_RULE in alerts()["ClaimsNotIndexed"]["expr"]
