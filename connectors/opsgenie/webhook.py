"""Verify and parse `POST /hooks/opsgenie` deliveries (Opsgenie outgoing webhook integration).

Opsgenie does not sign its webhooks; its webhook integration sends custom headers instead. Add
the header `X-Cairn-Token: <CAIRN_OPSGENIE_WEBHOOK_TOKEN>` there. Actions `Create`,
`Acknowledge` and `Close` change the incident; every other action is acknowledged and ignored.
"""

import hashlib
import hmac
from collections.abc import Mapping

from pydantic import Field, ValidationError

from connectors import fields
from connectors.base import InboundEvent, VendorModel, VerifiedDelivery, load_json
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    describe_validation_error,
)
from core.events import IncidentEvent
from core.incident import Incident, IncidentStatus, Severity

SOURCE = "opsgenie"
TOKEN_HEADER = "x-cairn-token"  # noqa: S105 (a header name)
MIN_TOKEN_CHARS = 24
ACTIONS = {
    "Create": IncidentStatus.TRIGGERED,
    "Acknowledge": IncidentStatus.ACKNOWLEDGED,
    "Close": IncidentStatus.RESOLVED,
}
PRIORITIES = {
    "P1": Severity.CRITICAL,
    "P2": Severity.HIGH,
    "P3": Severity.MEDIUM,
    "P4": Severity.LOW,
    "P5": Severity.INFO,
}


class Alert(VendorModel):
    """The alert subset Opsgenie's webhook sends (createdAt in ms, updatedAt in ns).

    Field names are Opsgenie's own camelCase.
    """

    alertId: str
    message: str | None = None
    description: str | None = None
    entity: str | None = None
    priority: str | None = None
    tags: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)
    createdAt: int | None = None
    updatedAt: int | None = None


class Delivery(VendorModel):
    """An outgoing webhook body: the action taken and the alert it was taken on."""

    action: str
    alert: Alert


class OpsgenieVerifier:
    """A shared token in `X-Cairn-Token`, compared in constant time."""

    def __init__(self, token: str) -> None:
        if len(token.strip()) < MIN_TOKEN_CHARS:
            raise ConfigurationError(
                f"CAIRN_OPSGENIE_WEBHOOK_TOKEN must be a random token of at least "
                f"{MIN_TOKEN_CHARS} characters"
            )
        self._token = token.strip().encode()

    def __repr__(self) -> str:
        return "OpsgenieVerifier(token=***)"

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        """Accept a delivery carrying the token; the key identifies the alert action."""
        sent = next((v for k, v in headers.items() if k.lower() == TOKEN_HEADER), "")
        if not hmac.compare_digest(self._token, sent.strip().encode("utf-8", "replace")):
            raise AuthenticationError("missing or wrong X-Cairn-Token header")
        return VerifiedDelivery(delivery_key=delivery_key(body))


def delivery_key(body: bytes) -> str:
    """`alertId:action:updatedAt` (the same on a resend); a body hash when those are missing."""
    try:
        data = load_json(body)
        alert = data["alert"]
        parts = [alert["alertId"], data["action"], alert["updatedAt"]]
    except (PayloadError, KeyError, TypeError):
        parts = []
    key = ":".join(str(p) for p in parts)
    usable = parts and all(isinstance(p, str | int) for p in parts)
    if usable and len(key) <= fields.ID_MAX and key.isprintable():
        return key
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse(headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
    """`Create`, `Acknowledge` and `Close` become incidents; other actions are []."""
    try:
        delivery = Delivery.model_validate_json(body)
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc)) from exc
    status = ACTIONS.get(delivery.action)
    if status is None:
        return []
    alert = delivery.alert
    if fields.name(alert.alertId, fields.ID_MAX) != alert.alertId:
        raise PayloadError("alert.alertId: not a usable alert id")
    resolved = fields.timestamp(alert.updatedAt) if status is IncidentStatus.RESOLVED else None
    incident = Incident.model_validate(
        {
            "source": SOURCE,
            "external_id": alert.alertId,
            "title": fields.name(alert.message) or f"Opsgenie alert {alert.alertId}",
            "status": status,
            "severity": PRIORITIES.get(alert.priority or "", Severity.MEDIUM),
            "services": fields.names([alert.entity]),
            "teams": fields.names(alert.teams),
            "tags": fields.names(alert.tags),
            "started_at": fields.timestamp(alert.createdAt),
            "resolved_at": resolved,
            "summary": fields.text(alert.description),
        },
        strict=False,
    )
    return [IncidentEvent(type="incident", incident=incident)]


def headers_for(token: str) -> dict[str, str]:
    """Headers an Opsgenie webhook integration configured for Cairn sends (tests, demo)."""
    return {"x-cairn-token": token, "content-type": "application/json"}
