"""PagerDuty: v3 signatures, fixture parsing, the HTTP route, capture end to end, the client."""

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.pagerduty import enrich
from connectors.pagerduty import webhook as pd
from connectors.pagerduty.client import PagerDutyClient
from connectors.pagerduty.fake import FakePagerDuty
from connectors.retrying import RetryPolicy
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PayloadError,
    TransientError,
)
from core.incident import IncidentStatus
from tests.connectors.incident_support import draft_ids, fixture_names, incidents_of
from tests.router.support import drain, serving

FIXTURES = Path(pd.__file__).parent / "fixtures"
SECRET = "pd-subscription-secret-0123456789abcdef"
TOKEN = "u+pd-api-token-for-tests"

BASE = {
    "source": "pagerduty",
    "external_id": "Q2ZN4HG3PVVD5X",
    "title": "Payments API returned 502 after connection-pool exhaustion",
    "url": "https://acme.pagerduty.com/incidents/Q2ZN4HG3PVVD5X",
}
FULL = {
    **BASE,
    "services": ["payments-api"],
    "teams": ["payments"],
    "started_at": "2026-11-20T09:12:00Z",
}
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "incident_triggered.json": [{**FULL, "status": "triggered", "severity": "high"}],
    "incident_acknowledged.json": [{**FULL, "status": "acknowledged", "severity": "high"}],
    "incident_priority_updated.json": [{**FULL, "status": "acknowledged", "severity": "critical"}],
    "incident_resolved.json": [
        {
            **FULL,
            "status": "resolved",
            "severity": "critical",
            "resolved_at": "2026-11-20T10:03:00Z",
        }
    ],
    "incident_annotated_postmortem.json": [
        {
            **BASE,
            "status": "postmortem_done",
            "postmortem_url": "https://wiki.example.com/postmortems/INC-2041",
            "summary": "A deploy doubled worker count without raising the database pool limit.",
            "contributing_factors": [
                "pool size not derived from worker count",
                "no saturation alert",
            ],
            "action_items": ["alert at 80% pool saturation"],
        }
    ],
    "incident_annotated_chat.json": [],
    "incident_responder_added.json": [],
    "service_updated.json": [],
}


def _signature(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_every_fixture_has_an_expectation() -> None:
    assert fixture_names(FIXTURES) == sorted(EXPECTED)


@pytest.mark.parametrize("name", fixture_names(FIXTURES))
def test_parse_fixture(name: str) -> None:
    assert incidents_of(pd.parse({}, (FIXTURES / name).read_bytes())) == EXPECTED[name]


def test_incident_id_names_the_incident_of_every_incident_event() -> None:
    for name in fixture_names(FIXTURES):
        body = (FIXTURES / name).read_bytes()
        expected = None if name == "service_updated.json" else "Q2ZN4HG3PVVD5X"
        assert pd.incident_id(body) == expected, name


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event": {"event_type": "incident.resolved"}}, "event.data"),
        ({"nothing": 1}, "event"),
    ],
)
def test_malformed_body_is_a_payload_error(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError, match=field):
        pd.parse({}, json.dumps(change).encode())


def test_long_titles_and_control_characters_are_cleaned_not_rejected() -> None:
    data = json.loads((FIXTURES / "incident_resolved.json").read_bytes())
    data["event"]["data"]["title"] = "line one\nline two " + "x" * 500
    [incident] = incidents_of(pd.parse({}, json.dumps(data).encode()))
    assert incident["title"].startswith("line one line two x")
    assert len(incident["title"]) == 200


@pytest.mark.parametrize("part", ["priority", "service", "teams"])
def test_references_without_an_id_are_tolerated(part: str) -> None:
    # PagerDuty has sent priority objects without `id`; Cairn reads only their summaries.
    data = json.loads((FIXTURES / "incident_resolved.json").read_bytes())
    without_id = {"summary": "P1", "type": f"{part}_reference"}
    data["event"]["data"][part] = [without_id] if part == "teams" else without_id
    [incident] = incidents_of(pd.parse({}, json.dumps(data).encode()))
    assert incident["external_id"] == data["event"]["data"]["id"]
    if part == "priority":
        assert incident["severity"] == "critical"


# --- signatures ---------------------------------------------------------------------------------

BODY = (FIXTURES / "incident_resolved.json").read_bytes()


def test_sign_matches_an_independent_hmac() -> None:
    assert pd.sign(SECRET, BODY)["x-pagerduty-signature"] == _signature(SECRET, BODY)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda good, other: f"{other},{good}", id="second-matches"),
        pytest.param(lambda good, other: f"{good},{other}", id="first-matches"),
        pytest.param(lambda good, other: f"v0=abc, {good}", id="other-version-and-spaces"),
    ],
)
def test_one_matching_signature_of_several_is_enough(header: Any) -> None:
    value = header(_signature(SECRET, BODY), _signature("an-old-rotated-secret-value", BODY))
    delivery = pd.PagerDutyVerifier(SECRET).verify({"X-PagerDuty-Signature": value}, BODY)
    assert delivery.delivery_key == "01DEN3KZ2MRVYHAQ4B0H5WJ9XF"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"x-pagerduty-signature": ""}, id="empty"),
        pytest.param({"x-pagerduty-signature": "v1=00"}, id="short"),
        pytest.param(
            {"x-pagerduty-signature": f"{_signature('other-secret-aaaaaaa', BODY)},v1=zz"},
            id="none-matches",
        ),
        pytest.param({"x-pagerduty-signature": "v1=ü"}, id="not-ascii"),
    ],
)
def test_no_matching_signature_is_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(AuthenticationError) as info:
        pd.PagerDutyVerifier(SECRET).verify(headers, BODY)
    assert SECRET not in str(info.value)


def test_body_altered_after_signing_is_rejected() -> None:
    headers = pd.sign(SECRET, BODY)
    with pytest.raises(AuthenticationError):
        pd.PagerDutyVerifier(SECRET).verify(headers, BODY + b" ")


def test_delivery_key_falls_back_to_a_body_hash() -> None:
    body = b'{"event": {}}'
    key = pd.PagerDutyVerifier(SECRET).verify(pd.sign(SECRET, body), body).delivery_key
    assert key == "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("secret", ["", "short", "   padded-short   "])
def test_weak_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="CAIRN_PAGERDUTY_WEBHOOK_SECRET"):
        pd.PagerDutyVerifier(secret)


def test_repr_never_contains_secrets() -> None:
    assert SECRET not in repr(pd.PagerDutyVerifier(SECRET))
    client = PagerDutyClient(TOKEN, base_url="http://127.0.0.1:9")
    assert TOKEN not in repr(client) and "***" in repr(client)
    client.close()


# --- through the HTTP app -----------------------------------------------------------------------


def _post(client: Any, body: bytes, headers: dict[str, str]) -> Any:
    return client.post("/hooks/pagerduty", content=body, headers=headers)


def test_http_answers(sqlite_url: str, webhook_secret: str) -> None:
    settings: dict[str, Any] = {"pagerduty_webhook_secret": SecretStr(SECRET)}
    with serving(sqlite_url, webhook_secret, **settings) as (client, db):
        bad = _post(client, BODY, {"x-pagerduty-signature": _signature("wrong-secret-xxxx", BODY)})
        assert bad.status_code == 401
        assert _post(client, BODY, {}).status_code == 401
        ignored = (FIXTURES / "service_updated.json").read_bytes()
        assert _post(client, ignored, pd.sign(SECRET, ignored)).status_code == 202
        drain(db)
        assert draft_ids(db) == []
        assert _post(client, b"[]", pd.sign(SECRET, b"[]")).status_code == 400


def test_resolved_incident_becomes_one_draft(database_url: str, webhook_secret: str) -> None:
    settings: dict[str, Any] = {"pagerduty_webhook_secret": SecretStr(SECRET)}
    with serving(database_url, webhook_secret, **settings) as (client, db):
        assert _post(client, BODY, pd.sign(SECRET, BODY)).status_code == 202
        assert _post(client, BODY, pd.sign(SECRET, BODY)).status_code == 200  # PagerDuty retry
        drain(db)
        assert draft_ids(db) == ["from-pagerduty-q2zn4hg3pvvd5x"]


# --- enrichment ---------------------------------------------------------------------------------


def test_note_convention() -> None:
    findings = enrich.read_notes(
        [
            "Rolling back now.",
            "postmortem: Workers doubled, the pool did not.\n  Action item:  derive the pool ",
            "Contributing factor: no alert\nPostmortem link: not a url\nAction item: ",
        ]
    )
    assert findings == enrich.Findings(
        summary="Workers doubled, the pool did not.",
        contributing_factors=("no alert",),
        action_items=("derive the pool",),
    )


def _resolved() -> Any:
    [incident] = pd.parse({}, BODY)
    return incident.incident  # type: ignore[union-attr]


def _fast(**kwargs: Any) -> RetryPolicy:
    waits: list[float] = kwargs.pop("waits")
    return RetryPolicy(sleep=waits.append, **kwargs)


@pytest.fixture
def fake() -> Any:
    server = FakePagerDuty(TOKEN)
    server.add_incident(json.loads(BODY)["event"]["data"])
    server.add_note("Q2ZN4HG3PVVD5X", "Postmortem: Workers doubled, the pool did not.")
    server.add_note("Q2ZN4HG3PVVD5X", "Contributing factor: pool size hard-coded")
    server.set_custom_field("Q2ZN4HG3PVVD5X", "postmortem_url", "https://wiki.example.com/pm/1")
    server.set_custom_field("Q2ZN4HG3PVVD5X", "action_items", "alert at 80%\nload test")
    with server.running():
        yield server


def test_client_enriches_from_notes_and_custom_fields(fake: FakePagerDuty) -> None:
    with PagerDutyClient(TOKEN, base_url=fake.url) as client:
        fetched = client.incident("Q2ZN4HG3PVVD5X")
        assert fetched is not None and fetched.status is IncidentStatus.RESOLVED
        enriched = client.enrich(fetched)
    assert enriched.status is IncidentStatus.POSTMORTEM_DONE
    assert enriched.summary == "Workers doubled, the pool did not."
    assert enriched.contributing_factors == ("pool size hard-coded",)
    assert enriched.action_items == ("alert at 80%", "load test")
    assert str(enriched.postmortem_url) == "https://wiki.example.com/pm/1"


def test_client_honours_retry_after_then_succeeds(fake: FakePagerDuty) -> None:
    fake.server.fail(429, times=1, retry_after="2")
    waits: list[float] = []
    with PagerDutyClient(TOKEN, base_url=fake.url, policy=_fast(waits=waits)) as client:
        assert client.notes("Q2ZN4HG3PVVD5X")[0].startswith("Postmortem:")
    assert waits == [2.0]
    assert fake.server.requests[-2:] == ["GET /incidents/Q2ZN4HG3PVVD5X/notes"] * 2


def test_client_gives_up_on_5xx_with_a_transient_error(fake: FakePagerDuty) -> None:
    fake.server.fail(503, times=10)
    waits: list[float] = []
    policy = _fast(waits=waits, attempts=3, base_wait=0.25)
    client = PagerDutyClient(TOKEN, base_url=fake.url, policy=policy)
    with client, pytest.raises(TransientError, match="503"):
        client.incident("Q2ZN4HG3PVVD5X")
    assert waits == [0.25, 0.5]


def test_client_does_not_sleep_through_a_long_retry_after(fake: FakePagerDuty) -> None:
    fake.server.fail(429, times=1, retry_after="120")
    waits: list[float] = []
    client = PagerDutyClient(TOKEN, base_url=fake.url, policy=_fast(waits=waits))
    with client, pytest.raises(TransientError) as info:
        client.notes("Q2ZN4HG3PVVD5X")
    assert (waits, info.value.retry_after) == ([], 120.0)


@pytest.mark.parametrize(
    ("token", "incident", "error"),
    [("wrong", "Q2ZN4HG3PVVD5X", AuthenticationError), (TOKEN, "PUNKNOWN", NotFoundError)],
)
def test_client_errors_are_translated(
    fake: FakePagerDuty, token: str, incident: str, error: type[Exception]
) -> None:
    with PagerDutyClient(token, base_url=fake.url) as client, pytest.raises(error):
        client.incident(incident)
