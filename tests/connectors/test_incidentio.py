"""incident.io: Svix/Standard Webhooks signatures, fixtures, the HTTP route, capture, the client."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks.webhooks
from pydantic import SecretStr

from connectors.incidentio import webhook as io
from connectors.incidentio.client import IncidentIoClient
from connectors.incidentio.fake import FakeIncidentIo
from connectors.incidentio.mapping import combine
from connectors.retrying import RetryPolicy
from core.errors import AuthenticationError, ConfigurationError, TransientError
from core.incident import IncidentStatus
from tests.connectors.incident_support import draft_ids, fixture_names, incidents_of
from tests.router.support import drain, serving

FIXTURES = Path(io.__file__).parent / "fixtures"
API_KEY = "inc-io-api-key-for-tests"
INCIDENT_ID = "01GW2G3V0S59R238FAHPDS1R66"

# The Standard Webhooks reference vector (standard-webhooks spec and its libraries' tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

FULL = {
    "source": "incidentio",
    "external_id": INCIDENT_ID,
    "title": "Payments API returned 502 after connection-pool exhaustion",
    "severity": "high",
    "services": ["payments-api"],
    "teams": ["payments"],
    "tags": ["Production Outage"],
    "started_at": "2026-11-20T09:05:00Z",
    "url": "https://app.incident.io/acme/incidents/2041",
    "summary": "A deploy doubled worker count without raising the database pool limit.",
}
EXPECTED: dict[str, list[dict[str, Any]]] = {
    "incident_created.json": [{**FULL, "status": "acknowledged"}],
    "incident_status_updated_monitoring.json": [{**FULL, "status": "acknowledged"}],
    "incident_status_updated_closed.json": [
        {**FULL, "status": "resolved", "resolved_at": "2026-11-20T10:03:00Z"}
    ],
    "postmortem_document_completed.json": [
        {
            "source": "incidentio",
            "external_id": INCIDENT_ID,
            "title": "INC-2041: Payments API returned 502 after connection-pool exhaustion",
            "status": "postmortem_done",
            "postmortem_url": "https://app.incident.io/acme/incidents/2041/post-mortems/"
            "01GDZEW57FDA1K4S63MGMQ5DS9",
        }
    ],
    "postmortem_document_in_review.json": [],
    "follow_up_created.json": [],
    "private_incident_created.json": [],
}
REFETCH = {"follow_up_created.json", "postmortem_document_completed.json"}
REFETCH |= {"postmortem_document_in_review.json"}


def test_every_fixture_has_an_expectation() -> None:
    assert fixture_names(FIXTURES) == sorted(EXPECTED)


@pytest.mark.parametrize("name", fixture_names(FIXTURES))
def test_parse_fixture(name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    assert incidents_of(io.parse({}, body)) == EXPECTED[name]
    assert io.refetch_id(body) == (INCIDENT_ID if name in REFETCH else None)


def test_declined_incident_is_ignored() -> None:
    data = json.loads((FIXTURES / "incident_created.json").read_bytes())
    data[io.CREATED]["incident_status"]["category"] = "declined"
    assert io.parse({}, json.dumps(data).encode()) == []


# --- signatures ---------------------------------------------------------------------------------


@pytest.fixture
def frozen_at_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The literal vector only verifies at its own time: freeze the reference library's clock."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "Frozen":
            return cls.fromtimestamp(VECTOR_TIMESTAMP, tz)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", Frozen)


@pytest.mark.parametrize("prefix", ["svix", "webhook"])
def test_reference_vector_verifies_with_svix_or_unbranded_headers(
    frozen_at_vector: None, prefix: str
) -> None:
    headers = {
        f"{prefix}-id": VECTOR_ID,
        f"{prefix}-timestamp": str(VECTOR_TIMESTAMP),
        f"{prefix}-signature": VECTOR_SIGNATURE,
    }
    verifier = io.IncidentIoVerifier(VECTOR_SECRET)
    assert verifier.verify(headers, VECTOR_BODY).delivery_key == VECTOR_ID
    with pytest.raises(AuthenticationError):
        verifier.verify(headers, VECTOR_BODY.replace(b"2", b"3"))


def test_sign_reproduces_the_reference_vector() -> None:
    when = datetime.fromtimestamp(VECTOR_TIMESTAMP, UTC)
    assert io.sign(VECTOR_SECRET, VECTOR_ID, VECTOR_BODY, when)["webhook-signature"] == (
        VECTOR_SIGNATURE
    )


@pytest.mark.parametrize("secret", ["", "changeme", "whsec_AAAA"])
def test_weak_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="CAIRN_INCIDENTIO_WEBHOOK_SECRET"):
        io.IncidentIoVerifier(secret)


def test_repr_never_contains_secrets(webhook_secret: str) -> None:
    text = repr(io.IncidentIoVerifier(webhook_secret))
    assert text == "IncidentIoVerifier(secret=***)"
    client = IncidentIoClient(API_KEY, base_url="http://127.0.0.1:9")
    assert API_KEY not in repr(client)
    client.close()


# --- through the HTTP app -----------------------------------------------------------------------


def _svix(secret: str, msg_id: str, body: bytes) -> dict[str, str]:
    headers = io.sign(secret, msg_id, body)
    return {k.replace("webhook-", "svix-"): v for k, v in headers.items()}


def test_http_answers(sqlite_url: str, webhook_secret: str) -> None:
    settings: dict[str, Any] = {"incidentio_webhook_secret": SecretStr(webhook_secret)}
    closed = (FIXTURES / "incident_status_updated_closed.json").read_bytes()
    follow_up = (FIXTURES / "follow_up_created.json").read_bytes()
    with serving(sqlite_url, webhook_secret, **settings) as (client, db):
        unsigned = {"svix-id": "msg_1", "svix-timestamp": "1", "svix-signature": "v1,AAAA"}
        assert client.post("/hooks/incidentio", content=closed, headers=unsigned).status_code == 401
        assert client.post("/hooks/incidentio", content=closed).status_code == 401
        headers = _svix(webhook_secret, "msg_follow_up", follow_up)
        assert (
            client.post("/hooks/incidentio", content=follow_up, headers=headers).status_code == 202
        )
        drain(db)
        assert draft_ids(db) == []


def test_resolved_incident_becomes_one_draft(database_url: str, webhook_secret: str) -> None:
    settings: dict[str, Any] = {"incidentio_webhook_secret": SecretStr(webhook_secret)}
    closed = (FIXTURES / "incident_status_updated_closed.json").read_bytes()
    with serving(database_url, webhook_secret, **settings) as (client, db):
        headers = _svix(webhook_secret, "msg_closed", closed)
        assert client.post("/hooks/incidentio", content=closed, headers=headers).status_code == 202
        drain(db)
        assert draft_ids(db) == [f"from-incidentio-{INCIDENT_ID.lower()}"]


# --- the client ---------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Any:
    server = FakeIncidentIo(API_KEY)
    closed = json.loads((FIXTURES / "incident_status_updated_closed.json").read_bytes())
    server.add_incident(closed[io.STATUS_UPDATED]["incident"])
    server.add_follow_up(INCIDENT_ID, "Alert at 80% pool saturation")
    server.add_follow_up("01OTHER", "Unrelated")
    with server.running():
        yield server


def test_client_refetches_a_thin_delivery(fake: FakeIncidentIo) -> None:
    body = (FIXTURES / "postmortem_document_completed.json").read_bytes()
    incident_id = io.refetch_id(body)
    assert incident_id is not None
    with IncidentIoClient(API_KEY, base_url=fake.url) as client:
        fetched = client.incident(incident_id)
    assert fetched is not None
    assert fetched.action_items == ("Alert at 80% pool saturation",)
    [delivered] = io.parse({}, body)
    done = combine(fetched, delivered.incident)  # type: ignore[union-attr]
    assert done.status is IncidentStatus.POSTMORTEM_DONE
    assert done.services == ("payments-api",)
    assert str(done.postmortem_url).endswith("/post-mortems/01GDZEW57FDA1K4S63MGMQ5DS9")


def test_client_honours_retry_after_then_succeeds(fake: FakeIncidentIo) -> None:
    fake.server.fail(429, times=1, retry_after="3")
    waits: list[float] = []
    client = IncidentIoClient(API_KEY, base_url=fake.url, policy=RetryPolicy(sleep=waits.append))
    with client:
        assert client.incident(INCIDENT_ID) is not None
    assert waits == [3.0]


def test_client_gives_up_on_5xx_with_a_transient_error(fake: FakeIncidentIo) -> None:
    fake.server.fail(500, times=10)
    waits: list[float] = []
    policy = RetryPolicy(attempts=2, base_wait=0.1, sleep=waits.append)
    client = IncidentIoClient(API_KEY, base_url=fake.url, policy=policy)
    with client, pytest.raises(TransientError):
        client.incident(INCIDENT_ID)
    assert waits == [0.1]
