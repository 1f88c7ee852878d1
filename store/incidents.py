"""Repository of incidents (latest state per incident ref)."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.incident import Incident
from store.documents import from_doc, to_doc
from store.tables import IncidentRow


def upsert(session: Session, incident: Incident, now: datetime) -> bool:
    """Record the incident's latest state; True when it was not known before."""
    row = session.get(IncidentRow, incident.ref, with_for_update=True)
    if row is None:
        session.add(
            IncidentRow(
                ref=incident.ref,
                source=incident.source,
                status=incident.status.value,
                severity_rank=incident.severity.rank,
                doc=to_doc(incident),
                first_seen_at=now,
                updated_at=now,
            )
        )
        session.flush()
        return True
    row.status = incident.status.value
    row.severity_rank = incident.severity.rank
    row.doc = to_doc(incident)
    row.updated_at = now
    return False


def get(session: Session, ref: str) -> Incident | None:
    """One incident by ref (`source:external_id`)."""
    row = session.get(IncidentRow, ref)
    return None if row is None else from_doc(Incident, row.doc)


def list_all(session: Session, *, limit: int = 1000) -> list[Incident]:
    """Incidents, most recently updated first."""
    rows = session.scalars(select(IncidentRow).order_by(IncidentRow.updated_at.desc()).limit(limit))
    return [from_doc(Incident, row.doc) for row in rows]
