"""incident.io's payloads as far as Cairn reads them (tolerant: unknown fields are ignored)."""

from pydantic import Field

from connectors.base import VendorModel


class Vendor(VendorModel):
    """Base of incident.io payload models: tolerant (see `VendorModel`), nothing frozen."""


class Named(Vendor):
    """Anything with a name: severity, incident type, catalog entry, timestamp."""

    name: str | None = None


class Status(Vendor):
    """An incident status; `category` is fixed by incident.io, `name` is the account's."""

    category: str
    name: str | None = None


class Option(Vendor):
    """A select option's value."""

    value: str | None = None


class FieldValue(Vendor):
    """One value of a custom field entry."""

    value_option: Option | None = None
    value_catalog_entry: Named | None = None
    value_text: str | None = None


class FieldEntry(Vendor):
    """A custom field and its values on one incident."""

    custom_field: Named
    values: list[FieldValue] = Field(default_factory=list)


class TimestampValue(Vendor):
    """The value of one incident timestamp."""

    value: str | None = None


class IncidentTimestamp(Vendor):
    """An incident timestamp ("Impact started", "Resolved at", ...) and its value."""

    incident_timestamp: Named
    value: TimestampValue | None = None


class IoIncident(Vendor):
    """An IncidentV2, as in webhooks and in `GET /v2/incidents/{id}`."""

    id: str
    name: str | None = None
    reference: str | None = None
    summary: str | None = None
    permalink: str | None = None
    postmortem_document_url: str | None = None
    incident_status: Status
    severity: Named | None = None
    incident_type: Named | None = None
    custom_field_entries: list[FieldEntry] = Field(default_factory=list)
    incident_timestamp_values: list[IncidentTimestamp] = Field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None


class StatusChange(Vendor):
    """`public_incident.incident_status_updated_v2`."""

    incident: IoIncident


class PostmortemDocument(Vendor):
    """The postmortem document of an incident."""

    incident_id: str
    title: str | None = None
    document_url: str | None = None
    exported_urls: list[str] = Field(default_factory=list)


class PostmortemChange(Vendor):
    """`public_incident.postmortem_document_status_updated_v1`."""

    new_status: str
    postmortem_document: PostmortemDocument


class FollowUp(Vendor):
    """A follow-up (webhook v1 carries `description`, the v2 API `title`)."""

    incident_id: str | None = None
    title: str | None = None
    description: str | None = None
