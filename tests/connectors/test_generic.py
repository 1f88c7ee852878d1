"""The generic source: Standard Webhooks verification, canonical-event parsing, secret hygiene."""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks.webhooks

from connectors.generic import webhook as generic
from connectors.generic.webhook import GenericVerifier, parse, sign
from core.errors import AuthenticationError, ConfigurationError, PayloadError
from core.events import IncidentEvent, WorkItemEvent

FIXTURES = Path(generic.__file__).parent / "fixtures"
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.json"))

# The reference test vector of the Standard Webhooks specification and its libraries.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

BODY = (FIXTURES / "incident_resolved.json").read_bytes()


def _hmac_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The spec's signing scheme written out independently of the code under test."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


def _headers(secret: str, msg_id: str = "msg_1", body: bytes = BODY, ts: int | None = None):
    ts = _now() if ts is None else ts
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": _hmac_signature(secret, msg_id, ts, body),
    }


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return data


# --- parsing -----------------------------------------------------------------------------------


def test_fixture_directory_is_not_empty() -> None:
    assert FIXTURE_NAMES, f"no fixtures in {FIXTURES}"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_parse_fixture(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    data = _load(name)

    events = parse({"content-type": "application/json"}, raw)

    assert len(events) == 1
    event = events[0]
    assert event.type == data["type"]
    expected_class = {"incident": IncidentEvent, "work_item": WorkItemEvent}[data["type"]]
    assert isinstance(event, expected_class)
    # Every field the fixture sets comes through unchanged (dates, URLs, lists included).
    assert event.model_dump(mode="json", exclude_unset=True) == data


def test_parse_incident_fields() -> None:
    (event,) = parse({}, (FIXTURES / "incident_resolved.json").read_bytes())
    assert isinstance(event, IncidentEvent)
    incident = event.incident
    assert incident.ref == "generic:INC-2041"
    assert incident.status.value == "resolved"
    assert incident.severity.value == "high"
    assert incident.severity.rank == 2
    assert incident.services == ("payments-api",)
    assert incident.started_at == datetime(2026, 11, 20, 9, 12, tzinfo=UTC)
    assert incident.resolved_at == datetime(2026, 11, 20, 10, 3, tzinfo=UTC)
    assert str(incident.postmortem_url) == "https://wiki.example.com/postmortems/INC-2041"
    assert len(incident.action_items) == 2


@pytest.mark.parametrize(
    ("name", "system", "ref", "project", "item_type"),
    [
        ("work_item_jira_issue.json", "jira", "jira:PAY-42", "PAY", "Story"),
        (
            "work_item_pull_request.json",
            "github",
            "github:acme/payments-api#481",
            "acme/payments-api",
            "pull_request",
        ),
    ],
)
def test_parse_work_item_fields(
    name: str, system: str, ref: str, project: str, item_type: str
) -> None:
    (event,) = parse({}, (FIXTURES / name).read_bytes())
    assert isinstance(event, WorkItemEvent)
    item = event.work_item
    assert (item.system.value, item.ref, item.project, item.type) == (
        system,
        ref,
        project,
        item_type,
    )
    assert item.team == "payments"


def test_parse_pull_request_keeps_changed_paths_and_branch() -> None:
    (event,) = parse({}, (FIXTURES / "work_item_pull_request.json").read_bytes())
    assert isinstance(event, WorkItemEvent)
    assert event.work_item.changed_paths == ("deploy/values.yaml", "src/payments/db/pool.py")
    assert event.work_item.base_branch == "main"
    assert event.work_item.assignee == "dana"


def _incident(**changes: Any) -> bytes:
    data = _load("incident_resolved.json")
    for key, value in changes.items():
        if value is ...:
            del data["incident"][key]
        else:
            data["incident"][key] = value
    return json.dumps(data).encode()


def _work_item(**changes: Any) -> bytes:
    data = _load("work_item_pull_request.json")
    data["work_item"].update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(_incident(title=...), "incident.title", id="missing-title"),
        pytest.param(_incident(external_id=...), "incident.external_id", id="missing-id"),
        pytest.param(_incident(status="exploded"), "incident.status", id="bad-status"),
        pytest.param(_incident(severity="catastrophic"), "incident.severity", id="bad-severity"),
        pytest.param(
            _incident(started_at="2026-11-20T09:12:00"), "incident.started_at", id="naive"
        ),
        pytest.param(_incident(url="not a url"), "incident.url", id="bad-url"),
        pytest.param(_incident(services="payments-api"), "incident.services", id="not-a-list"),
        pytest.param(_incident(colour="red"), "incident.colour", id="unknown-field"),
        pytest.param(_incident(title=""), "incident.title", id="empty-title"),
        pytest.param(_work_item(ref="github:has space"), "work_item.ref", id="bad-ref"),
        pytest.param(_work_item(system="gitlab"), "work_item.system", id="bad-system"),
        pytest.param(_work_item(ref="jira:PAY-1"), "work_item", id="ref-of-other-system"),
        pytest.param(b'{"type": "postmortem"}', "type", id="unknown-type"),
        pytest.param(b'{"incident": {}}', "type", id="missing-type"),
        pytest.param(b'{"type": "incident"}', "incident", id="missing-envelope"),
    ],
)
def test_invalid_payload_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse({}, body)
    assert field in str(info.value)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"type": "incident",', b"[]", b"null", b'"incident"', b"\xff\xfe{}"],
    ids=["empty", "text", "truncated", "array", "null", "string", "not-utf8"],
)
def test_undecodable_payload_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError) as info:
        parse({}, body)
    assert str(info.value)


def test_payload_error_does_not_echo_input_values() -> None:
    marker = "MARKER-7f3a-do-not-echo"
    body = _incident(severity=marker, status=marker, started_at=marker, services=[marker, 1])
    with pytest.raises(PayloadError) as info:
        parse({}, body)
    assert "incident.severity" in str(info.value)
    assert marker not in str(info.value)


def test_payload_error_summarises_many_problems() -> None:
    body = _incident(
        title=1, status=2, severity=3, services=4, started_at=5, url=6, summary=7, colour=8
    )
    with pytest.raises(PayloadError) as info:
        parse({}, body)
    message = str(info.value)
    assert message.endswith("(and 3 more)")
    assert len(message.split("; ")) == 5
    assert "incident.title" in message


# --- the reference test vector ------------------------------------------------------------------


def test_sign_matches_reference_vector() -> None:
    when = datetime.fromtimestamp(VECTOR_TIMESTAMP, UTC)
    headers = sign(VECTOR_SECRET, VECTOR_ID, VECTOR_BODY, when)
    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
        "content-type": "application/json",
    }


def test_independent_hmac_matches_reference_vector() -> None:
    """Guards the oracle the other tests use to build signatures."""
    assert (
        _hmac_signature(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    )


def test_reference_vector_is_stale_today() -> None:
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    with pytest.raises(AuthenticationError, match="too old"):
        GenericVerifier(VECTOR_SECRET).verify(headers, VECTOR_BODY)


def test_verify_reference_vector_at_its_own_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The literal vector only verifies at its timestamp: freeze the reference library's clock."""

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "FrozenDatetime":
            return cls.fromtimestamp(VECTOR_TIMESTAMP, tz)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", FrozenDatetime)
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    delivery = GenericVerifier(VECTOR_SECRET).verify(headers, VECTOR_BODY)
    assert delivery.delivery_key == VECTOR_ID
    with pytest.raises(AuthenticationError):
        GenericVerifier(VECTOR_SECRET).verify(headers, VECTOR_BODY.replace(b"2", b"3"))


# --- verification -------------------------------------------------------------------------------


def test_verify_accepts_independently_signed_delivery(webhook_secret: str) -> None:
    delivery = GenericVerifier(webhook_secret).verify(_headers(webhook_secret, "msg_ok"), BODY)
    assert delivery.delivery_key == "msg_ok"


def test_verify_accepts_what_sign_produces(webhook_secret: str) -> None:
    headers = sign(webhook_secret, "msg_signed", BODY)
    assert GenericVerifier(webhook_secret).verify(headers, BODY).delivery_key == "msg_signed"


def test_verify_ignores_header_case(webhook_secret: str) -> None:
    headers = {k.title(): v for k, v in _headers(webhook_secret, "msg_case").items()}
    assert "Webhook-Signature" in headers
    assert GenericVerifier(webhook_secret).verify(headers, BODY).delivery_key == "msg_case"


@pytest.mark.parametrize("offset", [-240, -1, 0, 1, 240])
def test_verify_accepts_timestamps_within_tolerance(webhook_secret: str, offset: int) -> None:
    headers = _headers(webhook_secret, ts=_now() + offset)
    assert GenericVerifier(webhook_secret).verify(headers, BODY).delivery_key == "msg_1"


def _zero_signature() -> str:
    return "v1," + base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "arrange",
    [
        pytest.param(lambda good: f"{_zero_signature()} {good}", id="wrong-then-right"),
        pytest.param(lambda good: f"{good} {_zero_signature()}", id="right-then-wrong"),
        pytest.param(lambda good: f"v2,AAAA {good}", id="other-version-then-right"),
    ],
)
def test_verify_accepts_when_one_of_several_signatures_matches(
    webhook_secret: str, arrange: Callable[[str], str]
) -> None:
    headers = _headers(webhook_secret, "msg_multi")
    headers["webhook-signature"] = arrange(headers["webhook-signature"])
    assert GenericVerifier(webhook_secret).verify(headers, BODY).delivery_key == "msg_multi"


OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of 24 byte").decode()

Case = Callable[[str], tuple[dict[str, str], bytes]]


def _without(header: str) -> Case:
    def case(secret: str) -> tuple[dict[str, str], bytes]:
        headers = _headers(secret)
        del headers[header]
        return headers, BODY

    return case


def _with(header: str, value: str) -> Case:
    def case(secret: str) -> tuple[dict[str, str], bytes]:
        return {**_headers(secret), header: value}, BODY

    return case


def _signed_at(offset: int) -> Case:
    return lambda secret: (_headers(secret, ts=_now() + offset), BODY)


def _non_utf8(secret: str) -> tuple[dict[str, str], bytes]:
    body = b'{"type": "incident", "title": "\xff\xfe"}'
    return _headers(secret, body=body), body


def _other_id(secret: str) -> tuple[dict[str, str], bytes]:
    headers = _headers(secret, "msg_original")
    headers["webhook-id"] = "msg_replayed"
    return headers, BODY


def _other_timestamp(secret: str) -> tuple[dict[str, str], bytes]:
    ts = _now()
    headers = _headers(secret, ts=ts)
    headers["webhook-timestamp"] = str(ts - 1)
    return headers, BODY


BAD_INPUTS: dict[str, Case] = {
    "wrong-secret": lambda secret: (_headers(OTHER_SECRET), BODY),
    "body-altered": lambda secret: (_headers(secret), BODY + b" "),
    "body-truncated": lambda secret: (_headers(secret), BODY[:-1]),
    "id-changed-after-signing": _other_id,
    "timestamp-changed-after-signing": _other_timestamp,
    "missing-webhook-id": _without("webhook-id"),
    "missing-webhook-timestamp": _without("webhook-timestamp"),
    "missing-webhook-signature": _without("webhook-signature"),
    "empty-webhook-id": _with("webhook-id", ""),
    "empty-webhook-signature": _with("webhook-signature", ""),
    "stale-timestamp": _signed_at(-301 - 30),
    "future-timestamp": _signed_at(301 + 30),
    "timestamp-not-a-number": _with("webhook-timestamp", "yesterday"),
    "timestamp-nan": _with("webhook-timestamp", "nan"),
    "signature-v1-only": _with("webhook-signature", "v1"),
    "signature-garbage": _with("webhook-signature", "garbage"),
    "signature-not-base64": _with("webhook-signature", "v1,not base64!"),
    "signature-bad-padding": _with("webhook-signature", "v1,abc"),
    "signature-too-many-commas": _with("webhook-signature", "v1,AAAA,BBBB"),
    "signature-other-version-only": _with("webhook-signature", "v2,AAAA"),
    "signature-wrong-bytes": _with("webhook-signature", _zero_signature()),
}


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_verify_rejects_bad_input(webhook_secret: str, case: Case) -> None:
    headers, body = case(webhook_secret)
    with pytest.raises(AuthenticationError) as info:
        GenericVerifier(webhook_secret).verify(headers, body)
    assert webhook_secret not in str(info.value)


def test_a_signed_body_that_is_not_utf8_is_authentic_but_not_a_payload(
    webhook_secret: str,
) -> None:
    headers, body = _non_utf8(webhook_secret)
    delivery = GenericVerifier(webhook_secret).verify(headers, body)  # signed over the bytes
    assert delivery.delivery_key == "msg_1"
    with pytest.raises(PayloadError) as info:
        parse(headers, body)
    assert "invalid unicode" in str(info.value)


def test_verify_rejects_delivery_signed_for_the_body_of_another(webhook_secret: str) -> None:
    other = (FIXTURES / "work_item_jira_issue.json").read_bytes()
    headers = _headers(webhook_secret, "msg_swap", body=other)
    with pytest.raises(AuthenticationError):
        GenericVerifier(webhook_secret).verify(headers, BODY)


def test_sign_with_non_utc_timestamp_verifies(webhook_secret: str) -> None:
    when = datetime.now(timezone(timedelta(hours=2)))
    headers = sign(webhook_secret, "msg_tz", BODY, when)
    assert headers["webhook-timestamp"] == str(int(when.timestamp()))
    assert GenericVerifier(webhook_secret).verify(headers, BODY).delivery_key == "msg_tz"


# --- secrets ------------------------------------------------------------------------------------

DISTINCTIVE_BAD_SECRETS = [
    "whsec_" + "Zz9" * 11,  # 33 base64 characters cannot decode
    "whsec_!!!!$$$$%%%%",
    "whsec_Q",
    "Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9",
]


@pytest.mark.parametrize("secret", ["", "whsec_", *DISTINCTIVE_BAD_SECRETS])
def test_invalid_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        GenericVerifier(secret)
    message = str(info.value)
    assert "CAIRN_GENERIC_WEBHOOK_SECRET" in message
    if secret.removeprefix("whsec_"):
        assert secret not in message
        assert secret.removeprefix("whsec_") not in message


@pytest.mark.parametrize("secret", ["changeme", "password", "whsec_AAAA"])
def test_weak_or_unprefixed_secret_is_rejected(secret: str) -> None:
    with pytest.raises(ConfigurationError):
        GenericVerifier(secret)


def test_repr_never_contains_the_secret(webhook_secret: str) -> None:
    verifier = GenericVerifier(webhook_secret)
    key_part = webhook_secret.removeprefix("whsec_")
    for text in (repr(verifier), str(verifier), f"{verifier!r}", repr([verifier])):
        assert "GenericVerifier" in text
        assert key_part not in text
        assert webhook_secret not in text
