"""Verify and parse `POST /hooks/pagerduty` deliveries (PagerDuty webhooks v3)."""

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from connectors import fields
from connectors.base import InboundEvent, VerifiedDelivery, load_json
from connectors.pagerduty import enrich
from connectors.pagerduty.models import Envelope, PdIncident, PdNote
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    describe_validation_error,
)
from core.events import IncidentEvent
from core.incident import Incident, IncidentStatus, Severity

M = TypeVar("M", bound=BaseModel)
SOURCE = "pagerduty"
SIGNATURE_HEADER = "x-pagerduty-signature"
MIN_SECRET_CHARS = 16
MAX_SIGNATURES = 16

INCIDENT_EVENTS = frozenset(
    {
        "incident.triggered",
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.resolved",
        "incident.reopened",
        "incident.priority_updated",
        "incident.escalated",
        "incident.reassigned",
        "incident.delegated",
    }
)
"""Event types whose `data` is the whole incident; `incident.annotated` carries a note."""

STATUSES = {
    "triggered": IncidentStatus.TRIGGERED,
    "acknowledged": IncidentStatus.ACKNOWLEDGED,
    "resolved": IncidentStatus.RESOLVED,
}
PRIORITIES = {
    "p1": Severity.CRITICAL,
    "p2": Severity.HIGH,
    "p3": Severity.MEDIUM,
    "p4": Severity.LOW,
    "p5": Severity.INFO,
}
URGENCIES = {"high": Severity.HIGH, "low": Severity.LOW}


class PagerDutyVerifier:
    """`X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`: HMAC-SHA256 of the raw body; any may match."""

    def __init__(self, secret: str) -> None:
        if len(secret.strip()) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                "CAIRN_PAGERDUTY_WEBHOOK_SECRET must be the subscription's signing secret "
                f"(at least {MIN_SECRET_CHARS} characters)"
            )
        self._key = secret.strip().encode()

    def __repr__(self) -> str:
        return "PagerDutyVerifier(secret=***)"

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        """Accept when one `v1=` signature matches; the key is the event id from the body."""
        header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), "")
        candidates = [c.strip() for c in header.split(",") if c.strip()][:MAX_SIGNATURES]
        if not candidates:
            raise AuthenticationError("missing X-PagerDuty-Signature header")
        expected = b"v1=" + hmac.new(self._key, body, hashlib.sha256).hexdigest().encode()
        matched = False
        for candidate in candidates:
            # Compare every candidate (no early exit) so timing says nothing about which matched.
            matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
        if not matched:
            raise AuthenticationError("no X-PagerDuty-Signature matches the body")
        return VerifiedDelivery(delivery_key=delivery_key(body))


def delivery_key(body: bytes) -> str:
    """`event.id` (signed, and the same on every retry); a body hash if the body has none."""
    try:
        event_id = load_json(body)["event"]["id"]
    except (PayloadError, KeyError, TypeError):
        event_id = None
    if isinstance(event_id, str) and 0 < len(event_id) <= fields.ID_MAX and event_id.isprintable():
        return event_id
    return "sha256:" + hashlib.sha256(body).hexdigest()


def sign(secret: str, body: bytes) -> dict[str, str]:
    """Headers PagerDuty attaches to a delivery (for tests and the demo)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-pagerduty-signature": f"v1={digest}", "content-type": "application/json"}


def parse(headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
    """Incident events become incidents; a `Postmortem:` note completes one; the rest is []."""
    try:
        event = Envelope.model_validate_json(body).event
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc)) from exc
    if event.event_type in INCIDENT_EVENTS:
        data = _read(PdIncident, event.data, event.event_type)
        resolved = event.occurred_at if event.event_type == "incident.resolved" else None
        incident = to_incident(data, resolved_at=data.resolved_at or resolved)
    elif event.event_type == "incident.annotated":
        incident = _from_note(_read(PdNote, event.data, event.event_type))
    else:
        return []  # a known kind Cairn does not act on: acknowledged, ignored
    return [] if incident is None else [IncidentEvent(type="incident", incident=incident)]


def _read(model: type[M], data: dict[str, Any] | None, event_type: str) -> M:
    """`event.data` as `model`: every event Cairn acts on needs it, and what `model` requires."""
    if data is None:
        raise PayloadError(f"event.data: missing or not an object in {event_type}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = describe_validation_error(exc).replace("; ", "; event.data.")
        raise PayloadError(f"event.data.{where}") from exc


def incident_id(body: bytes) -> str | None:
    """The incident a delivery is about, for the enrichment client (None when it names none)."""
    try:
        data = Envelope.model_validate_json(body).event.data or {}
    except ValidationError:
        return None
    if data.get("type") == "incident":
        found = data.get("id")
    else:
        found = (data.get("incident") or {}).get("id")
    return found if isinstance(found, str) and found else None


def to_incident(data: PdIncident, *, resolved_at: str | None = None) -> Incident | None:
    """The canonical incident; None for a status Cairn does not know."""
    status = STATUSES.get(data.status)
    if status is None:
        return None
    return _incident(
        data.id,
        fields.name(data.title or data.summary),
        status,
        severity=_severity(data),
        services=fields.names([data.service.summary] if data.service else []),
        teams=fields.names(team.summary for team in data.teams),
        started_at=fields.timestamp(data.created_at),
        resolved_at=fields.timestamp(resolved_at) if status is IncidentStatus.RESOLVED else None,
        url=fields.url(data.html_url),
    )


def _from_note(note: PdNote) -> Incident | None:
    """A note with a `Postmortem:` line says the postmortem is done; other notes say nothing."""
    findings = enrich.read_notes([note.content])
    if not findings.postmortem_done:
        return None
    incident = _incident(
        note.incident.id,
        fields.name(note.incident.summary),
        IncidentStatus.POSTMORTEM_DONE,
        url=fields.url(note.incident.html_url),
    )
    return enrich.merge(incident, findings)


def _severity(data: PdIncident) -> Severity:
    if data.priority is not None and data.priority.summary:
        found = PRIORITIES.get(data.priority.summary.strip().lower())
        if found is not None:
            return found
    return URGENCIES.get(data.urgency or "", Severity.MEDIUM)


def _incident(
    external_id: str, title: str | None, status: IncidentStatus, **values: object
) -> Incident:
    if fields.name(external_id, fields.ID_MAX) != external_id:
        raise PayloadError("event.data.id: not a usable PagerDuty incident id")
    return Incident.model_validate(
        {
            "source": SOURCE,
            "external_id": external_id,
            "title": title or f"PagerDuty incident {external_id}",
            "status": status,
            **values,
        },
        strict=False,
    )
