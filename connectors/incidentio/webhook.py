"""Verify and parse `POST /hooks/incidentio` deliveries (Svix-sent Standard Webhooks).

Handled: `public_incident.incident_created_v2`, `public_incident.incident_status_updated_v2`,
`public_incident.postmortem_document_status_updated_v1` (status `complete` → POSTMORTEM_DONE).
`public_incident.follow_up_created_v1` names no incident title or state, so it records nothing
by itself: `refetch_id` gives the incident to re-fetch with the client, whose answer carries
the follow-ups as action items. Everything else, private incidents included, is acknowledged
and ignored.
"""

from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from connectors.base import InboundEvent, load_json
from connectors.incidentio.mapping import postmortem_done, to_incident
from connectors.incidentio.models import FollowUp, IoIncident, PostmortemChange, StatusChange
from connectors.standard_webhooks import StandardWebhooksVerifier, sign
from core.errors import PayloadError, describe_validation_error
from core.events import IncidentEvent
from core.incident import Incident

__all__ = ["IncidentIoVerifier", "parse", "refetch_id", "sign"]

CREATED = "public_incident.incident_created_v2"
STATUS_UPDATED = "public_incident.incident_status_updated_v2"
FOLLOW_UP_CREATED = "public_incident.follow_up_created_v1"
M = TypeVar("M", bound=BaseModel)
POSTMORTEM_UPDATED = "public_incident.postmortem_document_status_updated_v1"


class IncidentIoVerifier(StandardWebhooksVerifier):
    """incident.io signs through Svix: `svix-*` or `webhook-*` id, timestamp and signature."""

    setting = "CAIRN_INCIDENTIO_WEBHOOK_SECRET"
    svix_headers = True


def _envelope(body: bytes) -> tuple[str, object]:
    data = load_json(body)
    event_type = data.get("event_type") if isinstance(data, dict) else None
    if not isinstance(event_type, str):
        raise PayloadError("event_type: missing")
    return event_type, data.get(event_type)


def _model(model: type[M], payload: object, event_type: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise PayloadError(f"{event_type}: {describe_validation_error(exc)}") from exc


def parse(headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
    """Incident events become incidents; a completed postmortem completes one; the rest is []."""
    event_type, payload = _envelope(body)
    incident: Incident | None
    try:
        if event_type == CREATED:
            incident = to_incident(_model(IoIncident, payload, event_type))
        elif event_type == STATUS_UPDATED:
            incident = to_incident(_model(StatusChange, payload, event_type).incident)
        elif event_type == POSTMORTEM_UPDATED:
            change = _model(PostmortemChange, payload, event_type)
            done = change.new_status == "complete"
            incident = postmortem_done(change.postmortem_document) if done else None
        else:
            return []
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc)) from exc
    return [] if incident is None else [IncidentEvent(type="incident", incident=incident)]


def refetch_id(body: bytes) -> str | None:
    """The incident a thin delivery (follow-up, postmortem) refers to, to re-fetch; else None."""
    try:
        event_type, payload = _envelope(body)
        if event_type == FOLLOW_UP_CREATED:
            return _model(FollowUp, payload, event_type).incident_id
        if event_type == POSTMORTEM_UPDATED:
            return _model(PostmortemChange, payload, event_type).postmortem_document.incident_id
    except PayloadError:
        return None
    return None
