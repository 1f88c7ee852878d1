"""The deployment examples stay in step with the settings Cairn actually reads."""

import re
from pathlib import Path

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
