"""PagerDuty's payloads as far as Cairn reads them (tolerant: unknown fields are ignored)."""

from typing import Any

from pydantic import Field

from connectors.base import VendorModel


class Vendor(VendorModel):
    """Base of PagerDuty payload models: tolerant (see `VendorModel`), nothing frozen."""


class Reference(Vendor):
    """A `*_reference` object: service, team, priority, user. Cairn reads the summary; the id
    may be missing without harm (PagerDuty has sent priorities without one)."""

    id: str | None = None
    summary: str | None = None
    html_url: str | None = None


class IncidentReference(Reference):
    """The incident a note belongs to: its id is what Cairn keys on, so it is required."""

    id: str


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
    teams: list[Reference] = Field(default_factory=list)
    priority: Reference | None = None
    urgency: str | None = None


class PdNote(Vendor):
    """An `incident_note` (webhook data of `incident.annotated`)."""

    incident: IncidentReference
    content: str = ""


class Event(Vendor):
    """The v3 event: what happened (`event_type`) to what (`data`). The id only keys the
    delivery, which falls back to a hash of the body without one."""

    id: str | None = None
    event_type: str
    occurred_at: str | None = None
    data: dict[str, Any] | None = None


class Envelope(Vendor):
    """A v3 webhook body: exactly one event."""

    event: Event
