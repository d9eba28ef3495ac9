"""Checks docker-compose.yml and the Dockerfile against the code they run.

No container engine is needed: the file is read as YAML and compared with `Settings`, the CLI's
commands and the start order the suite relies on. When Debian's `docker-compose` is installed,
it validates the file too.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from panoptic.core.db import SERVICE_ROLES
from panoptic.core.settings import Settings
from tests.support.settings import settings_variables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
POSTGRES_DEPLOY_DIR = ROOT / "deploy" / "postgres"

# The subcommands `panoptic` has (or will have: `dashboard` is issue 7's).
CLI_COMMANDS = frozenset(
    {"migrate", "indexer", "retriever", "gateway", "dashboard", "health", "up"}
)
# The services that run the Panoptic image, each with the subcommand of the same name.
PANOPTIC_SERVICES = ("migrate", "indexer", "retriever", "gateway", "dashboard")
# Those of them that serve, each scraped by Prometheus under a job of its own name.
SCRAPED_SERVICES = ("indexer", "retriever", "gateway", "dashboard")
MONITORING = frozenset({"prometheus", "alertmanager", "grafana"})
DATABASES = ("postgres", "postgres-replica")
LONG_RUNNING = frozenset({*DATABASES, *SCRAPED_SERVICES, *MONITORING})
# The services that read from the replica; every other one reads and writes the primary only.
REPLICA_READERS = {"retriever", "dashboard"}

# Each secret reaches only the processes that use it.
SECRET_HOLDERS = {
    "DATABASE_URL": {"migrate"},
    "PANOPTIC_INDEXER_DB_PASSWORD": {"migrate"},
    "PANOPTIC_RETRIEVER_DB_PASSWORD": {"migrate"},
    "PANOPTIC_INDEXER_DATABASE_URL": {"indexer"},
    "PANOPTIC_INDEXER_TOKEN": {"indexer"},
    "PANOPTIC_CONSISTENCY_TOKEN_KEY": {"indexer", "retriever"},
    "PANOPTIC_PAGE_TOKEN_KEY": {"retriever"},
    "POSTGRES_REPLICATION_PASSWORD": {"postgres", "postgres-replica"},
    "PANOPTIC_RETRIEVER_DATABASE_URL": {"retriever"},
    "PANOPTIC_DASHBOARD_DB_PASSWORD": {"migrate"},
    "PANOPTIC_DASHBOARD_DATABASE_URL": {"dashboard"},
    "PANOPTIC_DASHBOARD_PASSWORD": {"dashboard"},
    "PANOPTIC_DASHBOARD_SESSION_SECRET": {"dashboard"},
    "GF_SECURITY_ADMIN_PASSWORD": {"grafana"},
}

SettingsOf = Callable[[str], Settings]

# `${NAME}`, `${NAME:-default}`, `${NAME:?message}` and their forms without the colon.
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def fake_value(name: str) -> str:
    """A URL-safe stand-in for an operator-supplied variable, long enough for any secret check."""
    return f"fake-{name.lower().replace('_', '-')}-0123456789abcdef"


def interpolate(value: Any) -> Any:
    """Replaces every `${...}` in the loaded file with a fake value, as compose would."""
    if isinstance(value, str):
        return INTERPOLATION.sub(lambda match: fake_value(match["name"]), value)
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as compose sees it once the operator's variables are set."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    interpolated: dict[str, Any] = interpolate(loaded)
    return interpolated


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The file's services by name."""
    by_name: dict[str, dict[str, Any]] = compose["services"]
    return by_name


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of compose's two forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


@pytest.fixture
def settings_of(monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]]) -> SettingsOf:
    """Builds the `Settings` a Panoptic service would read from its compose environment."""

    def build(name: str) -> Settings:
        with monkeypatch.context() as patch:
            for variable in list(os.environ):
                if variable.upper() in settings_variables():
                    patch.delenv(variable)
            for variable, value in environment(services[name]).items():
                patch.setenv(variable, value)
            # Names, types and ranges are checked here; which secrets production insists on
            # depends on the process, and each service is given only its own.
            patch.setenv("PANOPTIC_ENV", "development")
            return Settings()

    return build


def port_of(address: str) -> int:
    """The port of a `host:port` address."""
    return int(address.rsplit(":", 1)[1])


def published_targets(service: Mapping[str, Any]) -> set[int]:
    """The container ports a service publishes, from short (`"8080:8080"`) or long syntax."""
    targets = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            targets.add(int(entry["target"]))
        else:
            targets.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return targets


def networks_of(service: Mapping[str, Any]) -> set[str]:
    """The networks a service joins, whichever of compose's two forms it uses."""
    networks = service.get("networks") or ["default"]
    return set(networks)


def test_every_panoptic_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    """Every variable given to a Panoptic service is one that `Settings` reads."""
    known = settings_variables()
    for name in PANOPTIC_SERVICES:
        unknown = {variable for variable in environment(services[name]) if variable not in known}
        assert not unknown, f"{name} sets variables Settings does not read: {sorted(unknown)}"


def test_environments_are_valid_settings(settings_of: SettingsOf) -> None:
    """Each Panoptic service's environment passes `Settings` validation (types and ranges)."""
    for name in PANOPTIC_SERVICES:
        settings = settings_of(name)
        listens_everywhere = ipaddress.ip_address(settings.bind_host).is_unspecified
        assert listens_everywhere, f"{name} must listen beyond its container's loopback"


def test_every_panoptic_service_runs_in_production(services: dict[str, dict[str, Any]]) -> None:
    """Every Panoptic service runs with PANOPTIC_ENV=production, refusing unsafe defaults."""
    for name in PANOPTIC_SERVICES:
        assert environment(services[name]).get("PANOPTIC_ENV") == "production", name


def test_secrets_reach_only_the_services_that_use_them(
    services: dict[str, dict[str, Any]],
) -> None:
    """The owner's URL reaches only the migration, and each service gets only its own secrets."""
    for secret, expected in SECRET_HOLDERS.items():
        holders = {name for name, service in services.items() if secret in environment(service)}
        assert holders == expected, f"{secret} is given to {sorted(holders)}"


def test_database_urls_use_the_right_roles(
    services: dict[str, dict[str, Any]], settings_of: SettingsOf
) -> None:
    """The migration connects as the database's owner, each service as its own role."""
    postgres = environment(services["postgres"])
    expected_users = {
        ("migrate", "DATABASE_URL"): postgres["POSTGRES_USER"],
        ("indexer", "PANOPTIC_INDEXER_DATABASE_URL"): SERVICE_ROLES["indexer"],
        ("retriever", "PANOPTIC_RETRIEVER_DATABASE_URL"): SERVICE_ROLES["retriever"],
        ("dashboard", "PANOPTIC_DASHBOARD_DATABASE_URL"): SERVICE_ROLES["dashboard"],
    }
    for (name, variable), user in expected_users.items():
        url = urlsplit(environment(services[name])[variable])
        assert url.username == user, f"{name}'s {variable}"
        assert url.hostname == "postgres", f"{name}'s {variable} must name the postgres service"
        assert url.path == "/" + postgres["POSTGRES_DB"], f"{name}'s {variable}"


def test_every_interpolated_variable_is_required() -> None:
    """Every `${VAR}` in the file is `${VAR:?message}`: no secret silently gets a default."""
    references = list(INTERPOLATION.finditer(COMPOSE_FILE.read_text()))
    assert references, "the file should take its secrets from the operator's environment"
    optional = sorted({match["name"] for match in references if match["op"] != ":?"})
    assert not optional, f"variables with a default or none required: {optional}"


def test_ports_match_the_settings(
    services: dict[str, dict[str, Any]], settings_of: SettingsOf
) -> None:
    """Exposed ports, healthcheck addresses and the retriever's address agree with Settings."""
    indexer, retriever, gateway, dashboard = (
        settings_of(name) for name in ("indexer", "retriever", "gateway", "dashboard")
    )
    expected_expose = {
        "indexer": {indexer.indexer_port, indexer.indexer_metrics_port},
        "retriever": {retriever.retriever_port, retriever.retriever_metrics_port},
        "gateway": {gateway.gateway_metrics_port},
        "dashboard": {dashboard.dashboard_port, dashboard.dashboard_metrics_port},
    }
    for name, ports in expected_expose.items():
        assert {int(port) for port in services[name].get("expose", [])} == ports, name
    assert port_of(services["indexer"]["healthcheck"]["test"][-1]) == indexer.indexer_port
    assert port_of(services["retriever"]["healthcheck"]["test"][-1]) == retriever.retriever_port
    assert f":{gateway.gateway_port}/" in services["gateway"]["healthcheck"]["test"][-1]
    assert f":{dashboard.dashboard_port}/" in services["dashboard"]["healthcheck"]["test"][-1]
    assert gateway.retriever_address == f"retriever:{retriever.retriever_port}"


def test_commands_are_cli_subcommands(services: dict[str, dict[str, Any]]) -> None:
    """Each Panoptic service runs the image with its own `panoptic` subcommand."""
    for name in PANOPTIC_SERVICES:
        service = services[name]
        assert service.get("build") == ".", f"{name} must run the suite's image"
        command = service["command"]
        command = command.split() if isinstance(command, str) else command
        assert command == [name], name
        assert command[0] in CLI_COMMANDS
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test", [])
        if "panoptic" in test:
            subcommand = test[test.index("panoptic") + 1]
            assert subcommand in CLI_COMMANDS, f"{name}'s healthcheck runs `panoptic {subcommand}`"


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    """PostgreSQL is healthy, then its replica copies it and the migration completes, then the
    services start in order, those that read replicas once the replica is healthy; Prometheus
    and Alertmanager wait for nothing, Grafana for a healthy Prometheus."""
    expected = {
        "postgres": {},
        "postgres-replica": {"postgres": "service_healthy"},
        "migrate": {"postgres": "service_healthy"},
        "indexer": {"migrate": "service_completed_successfully"},
        "retriever": {
            "migrate": "service_completed_successfully",
            "postgres-replica": "service_healthy",
        },
        "gateway": {"retriever": "service_healthy"},
        "dashboard": {
            "migrate": "service_completed_successfully",
            "postgres-replica": "service_healthy",
        },
        "prometheus": {},
        "alertmanager": {},
        "grafana": {"prometheus": "service_healthy"},
    }
    actual = {
        name: {
            dependency: condition["condition"]
            for dependency, condition in service.get("depends_on", {}).items()
        }
        for name, service in services.items()
    }
    assert actual == expected
    for dependencies in actual.values():
        for dependency, condition in dependencies.items():
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"nothing tells {dependency} healthy"


def test_only_the_gateway_and_grafana_publish_ports(
    services: dict[str, dict[str, Any]], settings_of: SettingsOf
) -> None:
    """The gateway's HTTP port and Grafana's are the only ones published on the host."""
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == {"gateway", "grafana"}
    assert published_targets(services["gateway"]) == {settings_of("gateway").gateway_port}
    assert published_targets(services["grafana"]) == {3000}
    for service in services.values():
        assert service.get("network_mode") != "host"


def test_indexer_and_database_are_on_internal_networks_only(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """The indexer, PostgreSQL and its replica sit on internal networks, none of which the
    gateway joins."""
    networks = compose["networks"]
    for name in ("indexer", *DATABASES):
        for network in networks_of(services[name]):
            assert (networks.get(network) or {}).get("internal") is True, f"{name} on {network}"
    shared = networks_of(services["gateway"]) & {
        network for name in ("indexer", *DATABASES) for network in networks_of(services[name])
    }
    assert not shared, f"the gateway can reach the indexer or PostgreSQL through {shared}"


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    """Every long-running service has a healthcheck; the one-shot migration has none."""
    assert set(services) == LONG_RUNNING | {"migrate"}
    for name in LONG_RUNNING:
        healthcheck = services[name].get("healthcheck", {})
        assert healthcheck.get("test"), name
        assert not healthcheck.get("disable"), name
    assert "healthcheck" not in services["migrate"]
    assert services["migrate"]["restart"] == "no"


def test_postgres_keeps_its_data_in_a_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """The primary and its replica, on the same PostgreSQL 18 image, each keep their data in a
    named volume of their own, mounted where that image expects it."""
    volumes = {}
    for name in DATABASES:
        database = services[name]
        assert database["image"] == "postgres:18", name
        named = {
            source: target
            for source, target in (str(volume).split(":")[:2] for volume in database["volumes"])
            if not source.startswith("./")
        }
        # From 18 the image refuses to start with a volume at /var/lib/postgresql/data.
        assert list(named.values()) == ["/var/lib/postgresql"], name
        assert set(named) <= set(compose["volumes"]), name
        volumes[name] = next(iter(named))
    assert volumes["postgres"] != volumes["postgres-replica"]


def test_the_replica_copies_the_primary_as_its_replication_role(
    services: dict[str, dict[str, Any]],
) -> None:
    """The primary's first start makes the replication role and its pg_hba line (the init
    script mounted where the image runs it); the replica runs deploy/postgres/replica.sh as
    that role against the primary, on a network they share, then PostgreSQL."""
    postgres, replica = services["postgres"], services["postgres-replica"]
    assert mounts(postgres)["/docker-entrypoint-initdb.d"] == POSTGRES_DEPLOY_DIR / "initdb"
    init = (POSTGRES_DEPLOY_DIR / "initdb" / "replication.sh").read_text()
    role = re.search(r"CREATE ROLE (\w+) WITH LOGIN REPLICATION PASSWORD :'password'", init)
    assert role, "the init script must make a replication role with the given password"
    hba = re.search(r"^host\s+replication\s+(\w+)\s+\S+\s+scram-sha-256$", init, re.M)
    assert hba, "pg_hba.conf must let a role replicate, with its password"
    assert hba[1] == role[1], "pg_hba.conf must let the replication role replicate"
    entrypoint = replica["entrypoint"]
    assert entrypoint[0] == "bash"
    assert mounts(replica)[entrypoint[1]] == POSTGRES_DEPLOY_DIR / "replica.sh"
    assert replica["command"][0] == "postgres"
    env = environment(replica)
    assert env["PGHOST"] == "postgres"
    assert env["PGPORT"] == "5432"
    assert env["PGUSER"] == role[1]
    assert re.fullmatch(r"[a-z0-9_]{1,63}", env["REPLICATION_SLOT"])
    assert networks_of(replica) & networks_of(postgres)


def test_the_replica_is_healthy_only_while_in_recovery(
    services: dict[str, dict[str, Any]],
) -> None:
    """The replica's healthcheck asks the server itself whether it is in recovery, and passes
    only on a `t` answer (tests/integration/test_compose_replication.py runs it)."""
    test = services["postgres-replica"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert "psql --host=127.0.0.1" in test[1]
    assert "SELECT pg_is_in_recovery()" in test[1]
    assert test[1].endswith("| grep --quiet --line-regexp t")


def test_readers_read_the_replica_by_its_server_alone(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], settings_of: SettingsOf
) -> None:
    """The retriever and the dashboard are given the replica's server (no role, no password:
    each logs in with its own), share a network with it and start once it is healthy; no
    other service reads a replica."""
    database = environment(services["postgres"])["POSTGRES_DB"]
    for name, service in services.items():
        if name not in REPLICA_READERS:
            assert "PANOPTIC_REPLICA_URLS" not in environment(service), name
            continue
        urls = settings_of(name).replica_urls
        assert urls, f"{name} reads no replica"
        for url in map(urlsplit, urls):
            assert url.username is None, f"{name}: {url.geturl()}"
            assert url.password is None, f"{name}: {url.geturl()}"
            assert url.hostname == "postgres-replica", name
            assert url.port == 5432, name
            assert url.path == f"/{database}", name
        assert service["depends_on"]["postgres-replica"]["condition"] == "service_healthy"
        assert networks_of(service) & networks_of(services["postgres-replica"]), name
    assert "postgres-replica-data" in compose["volumes"]


def test_dockerfile_exposes_the_services_ports(services: dict[str, dict[str, Any]]) -> None:
    """The image runs `panoptic` as a non-root user and exposes every port the services use."""
    text = DOCKERFILE.read_text()
    exposed = {
        int(port) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for port in line.split()
    }
    used = {
        int(port)
        for service in services.values()
        if service.get("build") == "."
        for port in service.get("expose", [])
    }
    used |= published_targets(services["gateway"])
    assert used <= exposed, f"not exposed by the Dockerfile: {sorted(used - exposed)}"
    assert 'ENTRYPOINT ["panoptic"]' in text
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_image_builds_the_api_explorer_into_the_package() -> None:
    """The image takes Swagger UI from the lockfile's pin (no dev tools, no install scripts) and
    copies its files into the gateway's package before building it, then checks they load."""
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM \S+ AS explorer-files$", text, re.M)
    assert "COPY package.json package-lock.json ./" in text
    assert "npm ci --omit=dev --ignore-scripts" in text
    vendoring = text.index("RUN python -m services.gateway.explorer_files /tmp/swagger-ui-dist")
    assert text.index("COPY services ./services") < vendoring < text.index("pip install .")
    assert "assert Explorer.load().available" in text


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (Debian package `docker-compose`)",
)
@pytest.mark.parametrize("missing", [None, "PANOPTIC_INDEXER_TOKEN"])
def test_docker_compose_validates_the_file(missing: str | None) -> None:
    """docker-compose accepts the file with every secret set, and refuses it without one."""
    variables = {match["name"] for match in INTERPOLATION.finditer(COMPOSE_FILE.read_text())} - {
        missing
    }
    env = {"PATH": os.environ["PATH"], **{name: fake_value(name) for name in variables}}
    result = subprocess.run(
        ["docker-compose", "--file", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if missing is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0
        assert f"set {missing}" in result.stderr


@pytest.mark.parametrize(
    ("name", "needs"),
    [
        ("migrate", {"database": "owner"}),
        ("indexer", {"database": "indexer", "token": True, "consistency_token": True}),
        ("retriever", {"database": "retriever", "page_token": True, "consistency_token": True}),
        ("dashboard", {"database": "dashboard", "dashboard": True}),
    ],
)
def test_each_service_gets_the_secrets_production_requires(
    monkeypatch: pytest.MonkeyPatch,
    services: dict[str, dict[str, Any]],
    name: str,
    needs: dict[str, Any],
) -> None:
    """With every required secret supplied, each service passes its own production checks."""
    for variable in list(os.environ):
        if variable.upper() in settings_variables():
            monkeypatch.delenv(variable)
    for variable, value in environment(services[name]).items():
        supplied = re.sub(
            r"\$\{(\w+):\?[^}]*\}", lambda m: f"{m.group(1).lower()}-x9Qz7Lk2Vb8Np4Rt6", value
        )
        monkeypatch.setenv(variable, supplied)
    settings = Settings()
    assert settings.env.value == "production"
    settings.require_production_ready(**needs)


# --- Monitoring ----------------------------------------------------------------------------------


def mounts(service: Mapping[str, Any]) -> dict[str, Path]:
    """A service's bind mounts of this repository, container path -> host path."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, which the compose Prometheus runs with."""
    loaded: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return loaded


def scrape_jobs(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each scrape job's static targets, by job name."""
    return {
        job["job_name"]: [
            target for static in job.get("static_configs", []) for target in static["targets"]
        ]
        for job in config["scrape_configs"]
    }


def test_prometheus_scrapes_every_service_at_its_metrics_port(
    services: dict[str, dict[str, Any]],
    settings_of: SettingsOf,
    prometheus_config: dict[str, Any],
) -> None:
    """Each serving Panoptic process is a job of its own name, at the metrics port that
    Settings gives it and compose exposes, on a network Prometheus shares with it."""
    jobs = scrape_jobs(prometheus_config)
    prometheus_networks = networks_of(services["prometheus"])
    for name in SCRAPED_SERVICES:
        port = getattr(settings_of(name), f"{name}_metrics_port")
        assert jobs.get(name) == [f"{name}:{port}"], name
        assert str(port) in services[name]["expose"], name
        assert networks_of(services[name]) & prometheus_networks, f"Prometheus cannot reach {name}"


def test_every_job_the_rules_select_is_scraped(prometheus_config: dict[str, Any]) -> None:
    """The rules' `job="..."` selectors name jobs the configuration scrapes."""
    selected = {
        job
        for rules in RULES_DIR.glob("*.yml")
        for job in re.findall(r'job="(\w+)"', rules.read_text())
    }
    assert selected, "the rules should select jobs"
    assert selected <= set(scrape_jobs(prometheus_config))


def test_prometheus_loads_the_rules_and_sends_alerts_to_alertmanager(
    services: dict[str, dict[str, Any]], prometheus_config: dict[str, Any]
) -> None:
    """The configuration and the rules are mounted where the configuration expects them, and
    alerts go to the Alertmanager service on a network both are on."""
    prometheus = services["prometheus"]
    mounted = mounts(prometheus)
    config_path = next(
        arg.split("=", 1)[1] for arg in prometheus["command"] if "config.file" in arg
    )
    assert mounted[config_path] == PROMETHEUS_CONFIG
    config_dir = Path(config_path).parent
    for pattern in prometheus_config["rule_files"]:
        container_dir = (config_dir / pattern).parent
        assert mounted.get(str(container_dir)) == RULES_DIR, pattern
    targets = [
        target
        for manager in prometheus_config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert targets == ["alertmanager:9093"]
    assert "9093" in services["alertmanager"]["expose"]
    assert networks_of(prometheus) & networks_of(services["alertmanager"])
    alertmanager = services["alertmanager"]
    config = next(arg.split("=", 1)[1] for arg in alertmanager["command"] if "config.file" in arg)
    assert mounts(alertmanager)[config] == ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def test_grafana_is_provisioned_with_the_datasource_and_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    """Grafana mounts the provisioning files, the dashboards where the provider looks, and its
    data source is the Prometheus service, on a network they share."""
    grafana = services["grafana"]
    mounted = mounts(grafana)
    assert mounted["/etc/grafana/provisioning"] == GRAFANA_DIR / "provisioning"
    provider_files = (GRAFANA_DIR / "provisioning" / "dashboards").glob("*.yml")
    paths = {
        provider["options"]["path"]
        for path in provider_files
        for provider in yaml.safe_load(path.read_text())["providers"]
    }
    assert paths, "no dashboard provider"
    for path in paths:
        assert mounted.get(path) == GRAFANA_DIR / "dashboards", path
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    home_dir, _, home_file = home.rpartition("/")
    assert (mounted[home_dir] / home_file).is_file()
    sources = [
        source
        for path in (GRAFANA_DIR / "provisioning" / "datasources").glob("*.yml")
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    assert [urlsplit(source["url"]).netloc for source in sources] == ["prometheus:9090"]
    assert "9090" in services["prometheus"]["expose"]
    assert networks_of(grafana) & networks_of(services["prometheus"])


def test_monitoring_cannot_reach_the_database(services: dict[str, dict[str, Any]]) -> None:
    """Prometheus, Alertmanager and Grafana share no network with PostgreSQL or its replica."""
    database_networks = {network for name in DATABASES for network in networks_of(services[name])}
    for name in MONITORING:
        shared = networks_of(services[name]) & database_networks
        assert not shared, f"{name} can reach PostgreSQL through {shared}"


def test_monitoring_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    """Third-party images name an exact version, so a restart never upgrades them."""
    for name in MONITORING | set(DATABASES):
        image = services[name]["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} names no version"
        assert tag != "latest", f"{name}: {image}"
