"""From incident.io's incident objects to the canonical Incident (pure).

Status categories: `triage` → triggered; `live` and `paused` → acknowledged (someone is on it);
`learning` (post-incident) and `closed` → resolved; `declined`, `canceled`, `merged` → ignored.
Severities by name: Critical/SEV0/SEV1/P1 → critical, Major/High/SEV2/P2 → high,
Moderate/Medium/SEV3/P3 → medium, Minor/Low/SEV4/P4 → low, Info/SEV5/P5 → info, else medium.
Custom fields whose name mentions "service" give the services, "team" the teams.
"""

from collections.abc import Iterable

from connectors import fields
from connectors.incidentio.models import FollowUp, IoIncident, PostmortemDocument
from core.errors import PayloadError
from core.incident import Incident, IncidentStatus, Severity

SOURCE = "incidentio"
CATEGORIES = {
    "triage": IncidentStatus.TRIGGERED,
    "live": IncidentStatus.ACKNOWLEDGED,
    "paused": IncidentStatus.ACKNOWLEDGED,
    "learning": IncidentStatus.RESOLVED,
    "closed": IncidentStatus.RESOLVED,
}
SEVERITIES = {
    **dict.fromkeys(("critical", "sev0", "sev1", "p1"), Severity.CRITICAL),
    **dict.fromkeys(("major", "high", "sev2", "p2"), Severity.HIGH),
    **dict.fromkeys(("moderate", "medium", "sev3", "p3"), Severity.MEDIUM),
    **dict.fromkeys(("minor", "low", "sev4", "p4"), Severity.LOW),
    **dict.fromkeys(("info", "informational", "sev5", "p5"), Severity.INFO),
}


def to_incident(data: IoIncident, follow_ups: Iterable[FollowUp] = ()) -> Incident | None:
    """The canonical incident; None for a declined, canceled or merged one."""
    status = CATEGORIES.get(data.incident_status.category)
    if status is None:
        return None
    severity_name = (data.severity.name or "") if data.severity else ""
    resolved = _timestamp(data, "resolved") or _timestamp(data, "closed") or data.updated_at
    return _incident(
        data.id,
        fields.name(data.name),
        status,
        severity=SEVERITIES.get(severity_name.strip().lower().replace(" ", ""), Severity.MEDIUM),
        services=_field_values(data, "service"),
        teams=_field_values(data, "team"),
        tags=fields.names([data.incident_type.name] if data.incident_type else []),
        started_at=fields.timestamp(_timestamp(data, "impact started") or data.created_at),
        resolved_at=fields.timestamp(resolved) if status is IncidentStatus.RESOLVED else None,
        url=fields.url(data.permalink),
        postmortem_url=fields.url(data.postmortem_document_url),
        summary=fields.text(data.summary),
        action_items=_follow_ups(follow_ups),
    )


def postmortem_done(document: PostmortemDocument) -> Incident:
    """A completed postmortem document: the incident it belongs to, with the link."""
    links = [document.document_url, *document.exported_urls]
    return _incident(
        document.incident_id,
        fields.name(document.title),
        IncidentStatus.POSTMORTEM_DONE,
        postmortem_url=next((u for u in map(fields.url, links) if u is not None), None),
    )


def combine(fetched: Incident, delivered: Incident | None) -> Incident:
    """A re-fetched incident, keeping what the thin delivery said (a completed postmortem)."""
    if delivered is None or delivered.status is not IncidentStatus.POSTMORTEM_DONE:
        return fetched
    return fetched.model_copy(
        update={
            "status": IncidentStatus.POSTMORTEM_DONE,
            "postmortem_url": delivered.postmortem_url or fetched.postmortem_url,
        }
    )


def _timestamp(data: IoIncident, word: str) -> str | None:
    for entry in data.incident_timestamp_values:
        if word in (entry.incident_timestamp.name or "").lower() and entry.value is not None:
            return entry.value.value
    return None


def _field_values(data: IoIncident, word: str) -> tuple[str, ...]:
    values: list[object] = []
    for entry in data.custom_field_entries:
        if word in (entry.custom_field.name or "").lower():
            for value in entry.values:
                option = value.value_option.value if value.value_option else None
                catalog = value.value_catalog_entry.name if value.value_catalog_entry else None
                values.append(option or catalog or value.value_text)
    return fields.names(values)


def _follow_ups(follow_ups: Iterable[FollowUp]) -> tuple[str, ...]:
    texts = (fields.text(f.title or f.description) for f in follow_ups)
    return tuple(dict.fromkeys(t for t in texts if t))


def _incident(
    external_id: str, title: str | None, status: IncidentStatus, **values: object
) -> Incident:
    if fields.name(external_id, fields.ID_MAX) != external_id:
        raise PayloadError("incident id: not a usable incident.io id")
    return Incident.model_validate(
        {
            "source": SOURCE,
            "external_id": external_id,
            "title": title or f"incident.io incident {external_id}",
            "status": status,
            **values,
        },
        strict=False,
    )
