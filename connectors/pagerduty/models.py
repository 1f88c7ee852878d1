"""PagerDuty's payloads as far as Cairn reads them (tolerant: unknown fields are ignored)."""

from typing import Any

from pydantic import BaseModel, ConfigDict


class Vendor(BaseModel):
    """Base of PagerDuty payload models: extra fields ignored, nothing frozen."""

    model_config = ConfigDict(extra="ignore")


class Reference(Vendor):
    """A `*_reference` object: service, team, priority, user, incident."""

    id: str
    summary: str | None = None
    html_url: str | None = None


class PdIncident(Vendor):
    """An incident, as in webhook `event.data` and in `GET /incidents/{id}`."""

    id: str
    title: str | None = None
    summary: str | None = None
    status: str
    html_url: str | None = None
    created_at: str | None = None
    resolved_at: str | None = None
    service: Reference | None = None
    teams: list[Reference] = []
    priority: Reference | None = None
    urgency: str | None = None


class PdNote(Vendor):
    """An `incident_note` (webhook data of `incident.annotated`)."""

    incident: Reference
    content: str = ""


class Event(Vendor):
    """The v3 event: what happened (`event_type`) to what (`data`)."""

    id: str
    event_type: str
    occurred_at: str | None = None
    data: dict[str, Any] | None = None


class Envelope(Vendor):
    """A v3 webhook body: exactly one event."""

    event: Event
