"""Prometheus beside the suite: what `panoptic up --with-monitoring` adds.

It renders, into `<data dir>/monitoring`, a `prometheus.yml` scraping the suite's metrics ports
and the alert rules of `deploy/prometheus/rules` with ClaimsNotIndexed's window taken from
`PANOPTIC_ALERT_NOT_INDEXED_MINUTES`, then runs the `prometheus` binary (Debian package
`prometheus`; `make system-deps` installs it) as one more child process. Compose runs the same
rules with deploy/prometheus/prometheus.yml instead.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from panoptic.core.errors import PanopticError
from panoptic.core.ports import check_port_free
from panoptic.core.settings import Settings

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
RULES_FILE = DEPLOY_DIR / "prometheus" / "rules" / "panoptic.rules.yml"
# The recording rule that holds ClaimsNotIndexed's window, in seconds (`vector(900)`).
WINDOW_RULE = "panoptic:claims_not_indexed_window_seconds"
READY_TIMEOUT_SECONDS = 30.0


class MonitoringUnavailable(PanopticError):
    """Prometheus cannot be run here; the message says what to install or change."""


@dataclass(frozen=True)
class ScrapeTarget:
    """One service's `/metrics`, under the job name the rules select (`up{job="indexer"}`)."""

    job: str
    address: str


def find_prometheus() -> str:
    """The `prometheus` binary on PATH; refuses with how to install it."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise MonitoringUnavailable(
            "prometheus is not installed: run `make system-deps` as root (Debian package "
            "`prometheus`), or start without --with-monitoring"
        )
    return binary


def render_rules(source: str, *, window_seconds: float, jobs: set[str]) -> dict[str, Any]:
    """The rule file with ClaimsNotIndexed's window set, and without alerts about services
    that are not scraped (their `...Down` alert would fire for a service nobody runs)."""
    document: dict[str, Any] = yaml.safe_load(source)
    found = False
    for group in document["groups"]:
        kept = []
        for rule in group["rules"]:
            if rule.get("record") == WINDOW_RULE:
                rule["expr"] = f"vector({window_seconds:g})"
                found = True
            service = rule.get("labels", {}).get("service")
            if "alert" in rule and service is not None and service not in jobs:
                continue
            kept.append(rule)
        group["rules"] = kept
    if not found:
        raise MonitoringUnavailable(f"{RULES_FILE} has no `{WINDOW_RULE}` recording rule")
    return document


def render_config(
    targets: list[ScrapeTarget],
    rule_file: Path,
    *,
    scrape_interval: str = "15s",
    evaluation_interval: str = "15s",
) -> dict[str, Any]:
    """A prometheus.yml scraping `targets` and evaluating `rule_file` (no Alertmanager)."""
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(rule_file)],
        "scrape_configs": [
            {"job_name": target.job, "static_configs": [{"targets": [target.address]}]}
            for target in targets
        ],
    }


def write_files(
    directory: Path,
    targets: list[ScrapeTarget],
    *,
    window_seconds: float,
    scrape_interval: str = "15s",
    evaluation_interval: str = "15s",
) -> Path:
    """Writes the rendered rules and configuration into `directory`; returns the config's path."""
    source = _rules_source()
    directory.mkdir(parents=True, exist_ok=True)
    rules = render_rules(
        source,
        window_seconds=window_seconds,
        jobs={target.job for target in targets},
    )
    rule_file = directory / "panoptic.rules.yml"
    rule_file.write_text(
        f"# Rendered from {RULES_FILE} by panoptic/suite/monitoring.py; edits are overwritten.\n"
        + yaml.safe_dump(rules, sort_keys=False, width=100)
    )
    config = render_config(
        targets,
        rule_file.resolve(),
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
    )
    config_file = directory / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_file


def prometheus_command(
    binary: str, config_file: Path, storage: Path, listen_address: str
) -> list[str]:
    """The command line of a Prometheus that keeps its data in `storage`."""
    return [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={storage}",
        "--storage.tsdb.retention.time=15d",
        f"--web.listen-address={listen_address}",
    ]


def suite_targets(metrics_ports: Mapping[str, int], host: str) -> list[ScrapeTarget]:
    """One target per service, by the job name that is the service's name."""
    return [ScrapeTarget(job, f"{host}:{port}") for job, port in metrics_ports.items()]


def check_can_start(settings: Settings) -> None:
    """Fails early, before the database starts, when Prometheus could not be run."""
    find_prometheus()
    _rules_source()
    check_port_free(
        settings.bind_host, settings.prometheus_port, "Prometheus", "PANOPTIC_PROMETHEUS_PORT"
    )


async def start_prometheus(
    settings: Settings, metrics_ports: Mapping[str, int], client_host: str
) -> asyncio.subprocess.Process:
    """Starts Prometheus on the suite and waits until it is ready; returns its process."""
    directory = settings.data_dir / "monitoring"
    config_file = write_files(
        directory,
        suite_targets(metrics_ports, client_host),
        window_seconds=settings.alert_not_indexed_minutes * 60,
    )
    listen = f"{settings.bind_host}:{settings.prometheus_port}"
    log_path = directory / "prometheus.log"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *prometheus_command(find_prometheus(), config_file, directory / "data", listen),
            stdout=log,
            stderr=log,
        )
    url = f"http://{client_host}:{settings.prometheus_port}/-/ready"
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    try:
        while not await asyncio.to_thread(_answers, url):
            if process.returncode is not None:
                raise MonitoringUnavailable(
                    f"Prometheus exited with code {process.returncode} on start; "
                    f"its log is {log_path}"
                )
            if time.monotonic() > deadline:
                raise MonitoringUnavailable(
                    f"Prometheus was not ready after {READY_TIMEOUT_SECONDS:.0f} s; "
                    f"its log is {log_path}"
                )
            await asyncio.sleep(0.2)
    except BaseException:
        # Given up on, or the start cancelled (Ctrl-C): the caller never gets the process.
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    return process


def _rules_source() -> str:
    """The rule file's text; it lives in the checkout, beside the package, not inside it."""
    if not RULES_FILE.exists():
        raise MonitoringUnavailable(
            f"the alert rules are not at {RULES_FILE}: run from a Panoptic checkout"
        )
    return RULES_FILE.read_text()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def describe(settings: Settings, client_host: str) -> str:
    """The line the ready banner shows for Prometheus."""
    return (
        f"  prometheus      http://{client_host}:{settings.prometheus_port}"
        f"   (alerts: /alerts; ClaimsNotIndexed after {settings.alert_not_indexed_minutes:g} min"
        " without a commit)"
    )
