"""The Kubernetes manifests in deploy/k8s are valid for a fixed Kubernetes version, offline."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from rules.loader import parse_pack

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33"


def _resources() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


RESOURCES = _resources()


@pytest.mark.parametrize(("name", "resource"), RESOURCES, ids=[n for n, _ in RESOURCES])
def test_every_manifest_validates_against_the_kubernetes_schema(
    name: str, resource: dict[str, Any]
) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_layout_has_api_worker_migration_config_and_rules() -> None:
    kinds = {(r["kind"], r["metadata"]["name"]) for _, r in RESOURCES}
    assert kinds == {
        ("Deployment", "cairn-api"),
        ("Service", "cairn-api"),
        ("Deployment", "cairn-worker"),
        ("Job", "cairn-migrate"),
        ("ConfigMap", "cairn-settings"),
        ("ConfigMap", "cairn-rules"),
    }


def test_a_schema_violation_is_caught() -> None:
    job = next(r for _, r in RESOURCES if r["kind"] == "Job")
    broken = {**job, "spec": {**job["spec"], "backoffLimit": "three"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_rules_in_the_config_map_load() -> None:
    rules = next(r for _, r in RESOURCES if r["metadata"]["name"] == "cairn-rules")
    for file, text in rules["data"].items():
        assert parse_pack(text, file).rules
