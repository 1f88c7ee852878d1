"""The deployment examples stay in step with the settings Cairn actually reads."""

import re
from pathlib import Path
from typing import Any

import yaml

from router.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_variable_in_the_env_example_is_a_setting_and_every_setting_is_listed() -> None:
    text = (ROOT / "deploy" / "cairn.env.example").read_text()
    listed = set(re.findall(r"^(CAIRN_[A-Z_]+)=", text, flags=re.MULTILINE))
    known = {f"CAIRN_{name.upper()}" for name in Settings.model_fields}
    assert listed == known


def test_compose_runs_migrations_api_and_workers_from_one_env_file() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert services["migrate"]["command"] == ["cairn", "db", "upgrade"]
    assert services["api"]["command"] == ["cairn", "serve", "--no-workers"]
    assert services["worker"]["command"] == ["cairn", "worker"]
    assert {services[s]["env_file"] for s in ("migrate", "api", "worker")} == {"cairn.env"}


def _k8s() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _containers() -> list[dict[str, Any]]:
    return [
        container
        for doc in _k8s()
        if doc["kind"] in ("Deployment", "Job")
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


SECRETS = {
    f"CAIRN_{name.upper()}"
    for name, field in Settings.model_fields.items()
    if "SecretStr" in str(field.annotation)
}


def test_every_variable_the_manifests_set_is_a_setting_and_no_secret_is_in_a_config_map() -> None:
    known = {f"CAIRN_{name.upper()}" for name in Settings.model_fields}
    config = next(d for d in _k8s() if d["metadata"]["name"] == "cairn-settings")
    set_by_env = {e["name"] for c in _containers() for e in c["env"]}
    assert set(config["data"]) <= known
    assert set_by_env <= known
    assert not set(config["data"]) & SECRETS
    # The config map's values are valid settings.
    Settings(**{k.removeprefix("CAIRN_").lower(): v for k, v in config["data"].items() if v})


def test_every_secret_setting_comes_from_the_secret_in_every_container() -> None:
    for container in _containers():
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert set(refs) == SECRETS, container["name"]
        assert all(ref["name"] == "cairn-secrets" and ref["key"] == n for n, ref in refs.items())
        # The database and broker URLs are required: a pod without them must not start.
        required = {n for n, ref in refs.items() if not ref.get("optional", False)}
        assert required == {"CAIRN_DATABASE_URL", "CAIRN_BROKER_URL"}


def test_the_manifests_run_the_same_commands_as_compose_non_root_and_read_only() -> None:
    commands = {c["name"]: c["command"] for c in _containers()}
    assert commands == {
        "api": ["cairn", "serve", "--no-workers"],
        "worker": ["cairn", "worker"],
        "migrate": ["cairn", "db", "upgrade"],
    }
    for container in _containers():
        security = container["securityContext"]
        assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
        assert not security["allowPrivilegeEscalation"]
        assert container["resources"]["requests"]
    api = next(c for c in _containers() if c["name"] == "api")
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
