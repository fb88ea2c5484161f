"""Every Kubernetes object in deploy/k8s validated offline against the Kubernetes OpenAPI schemas.

kubernetes-validate ships the schemas of every Kubernetes release inside its wheel, so this
needs no cluster and no network. Strict mode rejects unknown fields (a misspelt `readinessProbe`
key is otherwise silently ignored by kubectl's client side). The Kustomization is kustomize's own
format, not a Kubernetes object, and is checked by test_manifests.py instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# The oldest Kubernetes minor still in (EKS extended) support, and the newest the package knows:
# the manifests must be valid on both.
VERSIONS = ("1.30", kubernetes_validate.latest_version())


def _objects() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted([*K8S.glob("*.y*ml"), *K8S.glob("examples/*.y*ml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                name = f"{path.relative_to(K8S)}:{doc['kind']}/{doc['metadata']['name']}"
                out.append((name, doc))
    return out


OBJECTS = _objects()


def test_every_manifest_is_found() -> None:
    kinds = {doc["kind"] for _, doc in OBJECTS}
    assert {"Deployment", "Service", "ConfigMap", "Secret"} <= kinds


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "doc"), OBJECTS, ids=[name for name, _ in OBJECTS])
def test_manifest_matches_kubernetes_schema(name: str, doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_broken_deployment() -> None:
    """The check can fail: an unknown field and a wrongly typed one in the real Deployment."""
    deployment = next(doc for _, doc in OBJECTS if doc["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
