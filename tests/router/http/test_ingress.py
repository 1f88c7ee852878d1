"""`POST /hooks/<source>`, `/healthz` and `/readyz` over the real app, lifespan and workers."""

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.generic import webhook as generic
from core.errors import ConfigurationError
from router.compose import Runtime, build_runtime
from router.http.app import create_app
from router.settings import Settings
from store import audit, inbox, incidents, migrate, outbox, work_items
from store.engine import Database

FIXTURES = Path(generic.__file__).parent / "fixtures"
INCIDENT = (FIXTURES / "incident_resolved.json").read_bytes()
PULL_REQUEST = (FIXTURES / "work_item_pull_request.json").read_bytes()
MAX_BODY = 2048
WAIT_SECONDS = 10.0

T = TypeVar("T")


@dataclass
class Service:
    """A running app, its runtime, a separate handle on its database, and its secret."""

    client: TestClient
    runtime: Runtime
    db: Database
    secret: str

    def post(
        self,
        body: bytes | Iterator[bytes],
        msg_id: str,
        *,
        signed_body: bytes | None = None,
        when: datetime | None = None,
        path: str = "/hooks/generic",
        extra: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Sign `signed_body` (default: `body`) and post `body`."""
        to_sign = signed_body if signed_body is not None else body
        assert isinstance(to_sign, bytes)
        headers = generic.sign(self.secret, msg_id, to_sign, when)
        return self.client.post(path, content=body, headers={**headers, **(extra or {})})


@contextmanager
def running(url: str, secret: str | None, **overrides: Any) -> Iterator[Service]:
    """Migrate, build the runtime like `cairn serve` does, and run the app with its lifespan."""
    db = Database(url)
    migrate.upgrade(db)
    settings = Settings(
        database_url=SecretStr(url),
        broker_url=None,
        generic_webhook_secret=None if secret is None else SecretStr(secret),
        poll_interval=0.05,
        max_body_bytes=MAX_BODY,
        **overrides,
    )
    runtime = build_runtime(settings)
    try:
        with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
            yield Service(client, runtime, db, secret or "")
    finally:
        db.dispose()


@pytest.fixture
def service(sqlite_url: str, webhook_secret: str) -> Iterator[Service]:
    """The app on a fresh SQLite database with the generic source enabled."""
    with running(sqlite_url, webhook_secret) as svc:
        yield svc


def wait_for(check: Callable[[], T], what: str, seconds: float = WAIT_SECONDS) -> T:
    """Poll `check` until it returns something truthy, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.02)


def snapshot(db: Database) -> dict[str, Any]:
    """Everything ingress or the pipeline could have added."""
    with db.transaction() as session:
        return {
            "inbox": inbox.counts(session),
            "outbox": outbox.counts(session),
            "audit": [(e.id, e.action, e.subject) for e in audit.entries(session)],
        }


def all_processed(db: Database, accepted: int) -> bool:
    """True when `accepted` deliveries exist, all processed, and no work is left."""
    state = snapshot(db)
    queue = state["outbox"]
    return (
        state["inbox"] == {"accepted": accepted, "processed": accepted}
        and queue["pending"] == 0
        and queue["leased"] == 0
    )


def accept_and_process(svc: Service, body: bytes, msg_id: str) -> int:
    """Post a good delivery and wait until the pipeline has recorded it."""
    response = svc.post(body, msg_id)
    assert response.status_code == 202, response.text
    inbox_id: int = response.json()["inbox_id"]
    with svc.db.transaction() as session:
        accepted = inbox.counts(session)["accepted"]
    wait_for(lambda: all_processed(svc.db, accepted), f"inbox row {inbox_id} to be processed")
    return inbox_id


def _incident_with(**changes: Any) -> bytes:
    data = json.loads(INCIDENT)
    data["incident"].update(changes)
    return json.dumps(data).encode()


def _padded(body: bytes, size: int) -> bytes:
    """Valid JSON of exactly `size` bytes (trailing whitespace is insignificant)."""
    assert len(body) <= size
    return body + b" " * (size - len(body))


# --- the happy path -----------------------------------------------------------------------------


def test_accepted_incident_is_stored_with_one_audit_entry(service: Service) -> None:
    response = service.post(INCIDENT, "msg_incident")

    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "accepted"
    assert answer["delivery"] == "msg_incident"
    assert isinstance(answer["inbox_id"], int)

    wait_for(lambda: all_processed(service.db, 1), "the incident to be processed")
    with service.db.transaction() as session:
        incident = incidents.get(session, "generic:INC-2041")
        entries = audit.entries(session)
        delivery = inbox.get(session, answer["inbox_id"])
        queue = outbox.counts(session)
    assert incident is not None
    assert incident.title == "Payments API returned 502 after connection-pool exhaustion"
    assert incident.status.value == "resolved"
    # Recorded once, then (resolved incidents carry a lesson) captured once as a draft.
    assert [(e.action, e.subject) for e in entries] == [
        ("incident.recorded", "generic:INC-2041"),
        ("lesson.captured", "from-generic-inc-2041"),
    ]
    entry = entries[0]
    assert entry.details["inbox_id"] == answer["inbox_id"]
    assert entry.details["created"] is True
    assert delivery is not None
    assert delivery.body == INCIDENT  # the raw bytes, verbatim
    assert delivery.delivery_key == "msg_incident"
    assert delivery.processed_at is not None
    # Three messages: inbound, the recurrence check and the capture of the draft lesson.
    assert queue == {"pending": 0, "leased": 0, "done": 3, "dead": 0}


def test_accepted_work_item_is_stored(service: Service) -> None:
    inbox_id = accept_and_process(service, PULL_REQUEST, "msg_pr")
    with service.db.transaction() as session:
        item = work_items.get(session, "github:acme/payments-api#481")
        entries = audit.entries(session)
    assert item is not None
    assert item.changed_paths == ("deploy/values.yaml", "src/payments/db/pool.py")
    assert [(e.action, e.subject, e.details["inbox_id"]) for e in entries] == [
        ("work_item.recorded", "github:acme/payments-api#481", inbox_id)
    ]


def test_redelivery_answers_200_and_changes_nothing(service: Service) -> None:
    first_at = datetime.now(UTC)
    inbox_id = accept_and_process(service, INCIDENT, "msg_again")
    before = snapshot(service.db)
    assert [a for _, a, _ in before["audit"]] == ["incident.recorded", "lesson.captured"]

    again_at = first_at - timedelta(seconds=2)
    fresh = generic.sign(service.secret, "msg_again", INCIDENT, again_at)
    assert (
        fresh["webhook-signature"]
        != generic.sign(service.secret, "msg_again", INCIDENT, first_at)["webhook-signature"]
    )
    response = service.client.post("/hooks/generic", content=INCIDENT, headers=fresh)

    assert response.status_code == 200
    assert response.json() == {"status": "duplicate", "delivery": "msg_again"}
    assert snapshot(service.db) == before

    # Same id, different (validly signed) body: still the first delivery that counts.
    response = service.post(PULL_REQUEST, "msg_again")
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert snapshot(service.db) == before
    with service.db.transaction() as session:
        delivery = inbox.get(session, inbox_id)
    assert delivery is not None
    assert delivery.body == INCIDENT


def test_body_of_exactly_the_limit_is_accepted(service: Service) -> None:
    body = _padded(INCIDENT, MAX_BODY)
    response = service.post(body, "msg_at_limit")
    assert response.status_code == 202, response.text


# --- rejections ---------------------------------------------------------------------------------

OTHER_SECRET = "whsec_" + base64.b64encode(b"not the configured secret").decode()
BIG = _padded(INCIDENT, MAX_BODY + 1)


def _chunks(body: bytes, size: int = 512) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _non_utf8_headers(secret: str, body: bytes) -> dict[str, str]:
    ts = int(time.time())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"msg_bad.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": "msg_bad",
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def _without(header: str) -> Callable[[Service], httpx.Response]:
    def send(svc: Service) -> httpx.Response:
        headers = generic.sign(svc.secret, "msg_bad", INCIDENT)
        del headers[header]
        return svc.client.post("/hooks/generic", content=INCIDENT, headers=headers)

    return send


def _signed_with_other_secret(svc: Service) -> httpx.Response:
    headers = generic.sign(OTHER_SECRET, "msg_bad", INCIDENT)
    return svc.client.post("/hooks/generic", content=INCIDENT, headers=headers)


def _non_utf8(svc: Service) -> httpx.Response:
    body = b'{"type": "incident", "x": "\xff"}'
    return svc.client.post(
        "/hooks/generic", content=body, headers=_non_utf8_headers(svc.secret, body)
    )


def _big_chunked(svc: Service) -> httpx.Response:
    response = svc.post(_chunks(BIG), "msg_bad", signed_body=BIG)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    return response


def _big_declared(svc: Service) -> httpx.Response:
    response = svc.post(BIG, "msg_bad")
    assert response.request.headers["content-length"] == str(MAX_BODY + 1)
    return response


def _malformed_signature(svc: Service) -> httpx.Response:
    headers = {**generic.sign(svc.secret, "msg_bad", INCIDENT), "webhook-signature": "v1"}
    return svc.client.post("/hooks/generic", content=INCIDENT, headers=headers)


REJECTIONS: dict[str, tuple[Callable[[Service], httpx.Response], int, str]] = {
    "wrong-signature": (_signed_with_other_secret, 401, "signature verification failed"),
    "body-altered": (
        lambda s: s.post(INCIDENT + b" ", "msg_bad", signed_body=INCIDENT),
        401,
        "signature verification failed",
    ),
    "missing-webhook-id": (_without("webhook-id"), 401, "signature"),
    "missing-webhook-timestamp": (_without("webhook-timestamp"), 401, "signature"),
    "missing-webhook-signature": (_without("webhook-signature"), 401, "signature"),
    "no-headers-at-all": (
        lambda s: s.client.post("/hooks/generic", content=INCIDENT),
        401,
        "signature",
    ),
    "malformed-signature": (_malformed_signature, 401, "signature"),
    "stale-timestamp": (
        lambda s: s.post(INCIDENT, "msg_bad", when=datetime.now(UTC) - timedelta(minutes=6)),
        401,
        "too old",
    ),
    "future-timestamp": (
        lambda s: s.post(INCIDENT, "msg_bad", when=datetime.now(UTC) + timedelta(minutes=6)),
        401,
        "too new",
    ),
    # Signed as the raw bytes it is, so authentic; not UTF-8 JSON, so not a payload.
    "non-utf8-body": (_non_utf8, 400, "invalid unicode"),
    "malformed-json": (lambda s: s.post(b'{"type": "incident",', "msg_bad"), 400, "JSON"),
    "empty-body": (lambda s: s.post(b"", "msg_bad"), 400, "invalid payload"),
    "schema-invalid": (
        lambda s: s.post(b'{"type": "incident", "incident": {"source": "generic"}}', "msg_bad"),
        400,
        "incident.title",
    ),
    "schema-invalid-severity": (
        lambda s: s.post(_incident_with(severity="apocalyptic"), "msg_bad"),
        400,
        "incident.severity",
    ),
    "too-large-declared": (_big_declared, 413, str(MAX_BODY)),
    "too-large-chunked": (_big_chunked, 413, str(MAX_BODY)),
    "unknown-source": (
        lambda s: s.post(INCIDENT, "msg_bad", path="/hooks/pagerduty-classic"),
        404,
        "pagerduty-classic",
    ),
}


@pytest.mark.parametrize(
    ("send", "status", "reason"), REJECTIONS.values(), ids=list(REJECTIONS.keys())
)
def test_rejections_store_nothing(
    service: Service, send: Callable[[Service], httpx.Response], status: int, reason: str
) -> None:
    kept = accept_and_process(service, INCIDENT, "msg_kept")
    before = snapshot(service.db)

    response = send(service)

    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["status"] == "rejected"
    assert reason in answer["reason"]
    assert snapshot(service.db) == before
    with service.db.transaction() as session:
        delivery = inbox.get(session, kept)
    assert delivery is not None
    assert delivery.delivery_key == "msg_kept"


def test_rejected_id_can_still_be_delivered_properly(service: Service) -> None:
    """A forged delivery must not burn the id for the genuine sender."""
    forged = service.post(INCIDENT + b" ", "msg_contested", signed_body=INCIDENT)
    assert forged.status_code == 401
    genuine = service.post(INCIDENT, "msg_contested")
    assert genuine.status_code == 202


def test_source_without_a_secret_is_404(sqlite_url: str, webhook_secret: str) -> None:
    with running(sqlite_url, None) as svc:
        assert svc.runtime.verifiers == {}
        headers = generic.sign(webhook_secret, "msg_disabled", INCIDENT)
        response = svc.client.post("/hooks/generic", content=INCIDENT, headers=headers)
        assert response.status_code == 404
        assert response.json()["status"] == "rejected"
        assert snapshot(svc.db)["inbox"] == {"accepted": 0, "processed": 0}


def test_invalid_secret_stops_start_up_without_revealing_it(sqlite_url: str) -> None:
    secret = "whsec_" + "Qq7" * 11  # 33 base64 characters: cannot decode
    settings = Settings(
        database_url=SecretStr(sqlite_url),
        broker_url=None,
        generic_webhook_secret=SecretStr(secret),
    )
    with pytest.raises(ConfigurationError) as info:
        build_runtime(settings)
    assert "CAIRN_GENERIC_WEBHOOK_SECRET" in str(info.value)
    assert secret.removeprefix("whsec_") not in str(info.value)


def test_stored_headers_exclude_credentials(service: Service) -> None:
    credentials = {
        "Authorization": "Bearer cred-authorization-1",
        "Proxy-Authorization": "Basic cred-proxy-2",
        "Cookie": "session=cred-cookie-3",
        "X-Auth-Token": "cred-token-4",
        "X-Gitlab-Token": "cred-gitlab-5",
        "X-Api-Key": "cred-apikey-6",
        "X-Webhook-Secret": "cred-secret-7",
    }
    response = service.post(
        INCIDENT, "msg_headers", extra={**credentials, "X-Request-Id": "req-123"}
    )
    assert response.status_code == 202
    with service.db.transaction() as session:
        delivery = inbox.get(session, response.json()["inbox_id"])
    assert delivery is not None
    stored = dict(delivery.headers)
    assert stored["x-request-id"] == "req-123"
    assert stored["webhook-id"] == "msg_headers"
    assert "webhook-signature" in stored
    for name, value in credentials.items():
        assert name.lower() not in stored
        assert value not in json.dumps(stored)
    assert "cred-" not in json.dumps(stored)


# --- health -------------------------------------------------------------------------------------


def test_healthz(service: Service) -> None:
    response = service.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_embedded_mode(service: Service) -> None:
    response = service.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "mode": "embedded",
        "checks": {"database": "ok", "transport": "ok"},
    }


# --- secret hygiene -----------------------------------------------------------------------------


def test_secret_never_in_responses_or_logs(
    sqlite_url: str, webhook_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_part = webhook_secret.removeprefix("whsec_")
    texts: list[str] = []
    with running(sqlite_url, webhook_secret) as svc:
        responses = [
            svc.post(INCIDENT, "msg_leak"),
            svc.post(INCIDENT, "msg_leak"),
            svc.post(INCIDENT + b" ", "msg_leak_2", signed_body=INCIDENT),
            _malformed_signature(svc),
            svc.post(INCIDENT, "msg_leak_3", when=datetime.now(UTC) - timedelta(hours=1)),
            svc.post(b"{", "msg_leak_4"),
            svc.post(BIG, "msg_leak_5"),
            svc.post(INCIDENT, "msg_leak_6", path="/hooks/nope"),
            svc.client.get("/healthz"),
            svc.client.get("/readyz"),
            svc.client.get("/openapi.json"),
        ]
        wait_for(lambda: all_processed(svc.db, 1), "the delivery to be processed")
        texts += [repr(svc.runtime), repr(svc.runtime.settings), repr(svc.runtime.verifiers)]
    assert [r.status_code for r in responses][:8] == [202, 200, 401, 401, 401, 400, 413, 404]
    for response in responses:
        texts += [response.text, str(response.headers)]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts += [formatter.format(record) for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]

    assert any(r.name == "cairn.ingress" for r in caplog.records), "ingress logged nothing"
    for text in texts:
        assert webhook_secret not in text
        assert key_part not in text


# --- both backends ------------------------------------------------------------------------------


def test_core_flow_on_each_backend(database_url: str, webhook_secret: str) -> None:
    with running(database_url, webhook_secret) as svc:
        accepted = svc.post(INCIDENT, "msg_backend")
        assert accepted.status_code == 202
        wait_for(lambda: all_processed(svc.db, 1), "the delivery to be processed")
        assert len(snapshot(svc.db)["audit"]) == 2  # recorded, then captured as a draft

        duplicate = svc.post(INCIDENT, "msg_backend", when=datetime.now(UTC) - timedelta(seconds=3))
        assert duplicate.status_code == 200
        assert duplicate.json()["status"] == "duplicate"

        forged = svc.post(INCIDENT + b" ", "msg_forged", signed_body=INCIDENT)
        assert forged.status_code == 401

        state = snapshot(svc.db)
        assert state["inbox"] == {"accepted": 1, "processed": 1}
        assert state["outbox"]["done"] == 3  # inbound, recurrence check, capture
        assert sum(state["outbox"].values()) == 3
        assert len(state["audit"]) == 2


@pytest.mark.parametrize(("length", "status"), [(255, 202), (256, 400), (400, 400)])
def test_long_delivery_id_is_a_client_error_on_each_backend(
    database_url: str, webhook_secret: str, length: int, status: int
) -> None:
    with running(database_url, webhook_secret) as svc:
        response = svc.post(INCIDENT, "m" * length)
        assert response.status_code == status, response.text
        if status == 400:
            assert "delivery id" in response.json()["reason"]
