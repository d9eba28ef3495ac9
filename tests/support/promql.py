"""What the tests read out of PromQL: the series selectors of an expression, and the
expressions of the dashboards and rules in deploy/.

The selector scanner knows enough PromQL for the expressions this repository writes (functions,
aggregations with `by`/`without`, vector matching, ranges, strings); it is not a parser, and
promtool (offline) and a live Prometheus (in the integration test) check the syntax itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARDS_DIR = ROOT / "deploy" / "grafana" / "dashboards"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian package `prometheus`; `make system-deps`)",
)

# Grafana's range variable; any fixed range stands in for it outside Grafana.
RATE_INTERVAL = "$__rate_interval"

_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2"})
# Aggregations may put `by (...)` or `without (...)` between their name and their argument.
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile"}
)
# Keywords followed by a parenthesised list of label names, not of expressions.
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"'  # a string
    r"|'(?:[^'\\]|\\.)*'"
    r"|\[[^\]]*\]"  # a range or subquery
    r"|[A-Za-z_:][A-Za-z0-9_:]*"  # an identifier
    r"|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"  # a number
    r"|\S"  # anything else, one character at a time
)


@dataclass(frozen=True)
class Expression:
    """One PromQL expression in deploy/ and where it comes from."""

    where: str
    expr: str


def selectors(expr: str) -> list[str]:
    """The instant-vector selectors of `expr`, as written (`up{job="indexer"}`)."""
    tokens = [match.group() for match in _TOKEN.finditer(expr.replace(RATE_INTERVAL, "5m"))]
    found: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token in _LABEL_LISTS and following == "(":
            index = tokens.index(")", index) + 1
            continue
        is_name = re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", token) is not None
        aggregation = token in _AGGREGATIONS and following in _LABEL_LISTS
        if not is_name or token in _KEYWORDS or following == "(" or aggregation:
            index += 1
            continue
        if following == "{":
            end = tokens.index("}", index)
            found.append(token + "".join(tokens[index + 1 : end + 1]))
            index = end + 1
        else:
            found.append(token)
            index += 1
    return found


def metric_name(selector: str) -> str:
    """The metric a selector names."""
    return selector.split("{", 1)[0]


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard of deploy/grafana/dashboards, by file name."""
    return {
        path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """A dashboard's panels, those inside rows included, rows left out."""
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def panel_expressions() -> list[Expression]:
    """Every query of every panel, with `$__rate_interval` as Grafana writes it."""
    return [
        Expression(f"{name}: {panel['title']} ({target['refId']})", target["expr"])
        for name, dashboard in dashboards().items()
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def rules() -> list[dict[str, Any]]:
    """Every rule (recording and alerting) of deploy/prometheus/rules."""
    return [
        rule
        for path in sorted(RULES_DIR.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def rule_expressions() -> list[Expression]:
    """Every rule's expression, named by the rule."""
    return [Expression(rule.get("alert") or rule["record"], str(rule["expr"])) for rule in rules()]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs `promtool` with `args` from the repository's root; fails the test with what it said
    unless it succeeds, and returns its output."""
    result = subprocess.run(
        ["promtool", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result
