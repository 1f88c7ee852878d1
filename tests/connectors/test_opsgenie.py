"""Opsgenie: the shared-token check, fixture parsing, the HTTP route and capture end to end."""

import hashlib
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.opsgenie import webhook as og
from core.errors import AuthenticationError, ConfigurationError
from tests.connectors.incident_support import draft_ids, fixture_names, incidents_of
from tests.router.support import drain, serving

FIXTURES = Path(og.__file__).parent / "fixtures"
TOKEN = "og-shared-token-0123456789abcdef"
ALERT_ID = "8418d193-2dab-4490-b331-8c02cdd196b7"

BASE = {
    "source": "opsgenie",
    "external_id": ALERT_ID,
    "title": "Payments API returned 502 after connection-pool exhaustion",
    "severity": "high",
    "services": ["payments-api"],
    "teams": ["payments"],
    "tags": ["database", "connection-pool"],
    "started_at": "2026-11-26T09:12:00Z",
}
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "alert_created.json": [
        {
            **BASE,
            "status": "triggered",
            "summary": "Connection pool saturated on payments-db; API answers 502.",
        }
    ],
    "alert_acknowledged.json": [{**BASE, "status": "acknowledged"}],
    "alert_closed.json": [
        {
            **BASE,
            "status": "resolved",
            "severity": "critical",
            "resolved_at": "2026-11-26T10:03:00.789000Z",
        }
    ],
    "alert_note_added.json": [],
}
CLOSED = (FIXTURES / "alert_closed.json").read_bytes()


def test_every_fixture_has_an_expectation() -> None:
    assert fixture_names(FIXTURES) == sorted(EXPECTED)


@pytest.mark.parametrize("name", fixture_names(FIXTURES))
def test_parse_fixture(name: str) -> None:
    assert incidents_of(og.parse({}, (FIXTURES / name).read_bytes())) == EXPECTED[name]


def test_delivery_key_is_alert_action_and_update_time() -> None:
    delivery = og.OpsgenieVerifier(TOKEN).verify(og.headers_for(TOKEN), CLOSED)
    assert delivery.delivery_key == f"{ALERT_ID}:Close:1795687380789000000"


def test_delivery_key_falls_back_to_a_body_hash() -> None:
    body = b'{"action": "Close"}'
    key = og.OpsgenieVerifier(TOKEN).verify(og.headers_for(TOKEN), body).delivery_key
    assert key == "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"X-Cairn-Token": TOKEN[:-1]}, id="prefix"),
        pytest.param({"X-Cairn-Token": TOKEN + "x"}, id="longer"),
        pytest.param({"Authorization": f"GenieKey {TOKEN}"}, id="other-header"),
        pytest.param({"X-Cairn-Token": "ü" + TOKEN}, id="not-ascii"),
    ],
)
def test_wrong_or_missing_token_is_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(AuthenticationError) as info:
        og.OpsgenieVerifier(TOKEN).verify(headers, CLOSED)
    assert TOKEN not in str(info.value)


def test_token_header_name_is_case_insensitive() -> None:
    verifier = og.OpsgenieVerifier(TOKEN)
    assert verifier.verify({"X-CAIRN-TOKEN": TOKEN}, CLOSED).delivery_key.startswith(ALERT_ID)


@pytest.mark.parametrize("token", ["", "short-token", " " * 30])
def test_weak_token_is_a_configuration_error(token: str) -> None:
    with pytest.raises(ConfigurationError, match="CAIRN_OPSGENIE_WEBHOOK_TOKEN"):
        og.OpsgenieVerifier(token)


def test_repr_never_contains_the_token() -> None:
    assert repr(og.OpsgenieVerifier(TOKEN)) == "OpsgenieVerifier(token=***)"


def test_http_answers(sqlite_url: str, webhook_secret: str) -> None:
    note = (FIXTURES / "alert_note_added.json").read_bytes()
    with serving(sqlite_url, webhook_secret, opsgenie_webhook_token=SecretStr(TOKEN)) as (
        client,
        db,
    ):
        wrong = og.headers_for("x" * 32)
        assert client.post("/hooks/opsgenie", content=CLOSED, headers=wrong).status_code == 401
        assert client.post("/hooks/opsgenie", content=CLOSED).status_code == 401
        ok = og.headers_for(TOKEN)
        assert client.post("/hooks/opsgenie", content=note, headers=ok).status_code == 202
        drain(db)
        assert draft_ids(db) == []


def test_closed_alert_becomes_one_draft(database_url: str, webhook_secret: str) -> None:
    with serving(database_url, webhook_secret, opsgenie_webhook_token=SecretStr(TOKEN)) as (
        client,
        db,
    ):
        ok = og.headers_for(TOKEN)
        assert client.post("/hooks/opsgenie", content=CLOSED, headers=ok).status_code == 202
        assert client.post("/hooks/opsgenie", content=CLOSED, headers=ok).status_code == 200
        drain(db)
        assert draft_ids(db) == [f"from-opsgenie-{ALERT_ID}"]
