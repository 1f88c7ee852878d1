"""Repository of capture records: findings and decisions, and the restricted provenance apart."""

from datetime import datetime

from sqlalchemy.orm import Session

from core.blameless import CaptureRecord, Restricted
from store.documents import from_doc, to_doc
from store.tables import LessonCaptureRow


def get(session: Session, lesson_id: str) -> CaptureRecord | None:
    """The capture record of a lesson captured from work, if it was."""
    row = session.get(LessonCaptureRow, lesson_id)
    return None if row is None else from_doc(CaptureRecord, row.doc)


def restricted(session: Session, lesson_id: str) -> Restricted | None:
    """The restricted provenance: only for owners and admins, never for targets."""
    row = session.get(LessonCaptureRow, lesson_id)
    return None if row is None else from_doc(Restricted, row.restricted)


def put(session: Session, record: CaptureRecord, secret: Restricted, now: datetime) -> None:
    """Store (or replace) a lesson's capture record and restricted provenance."""
    row = session.get(LessonCaptureRow, record.lesson_id, with_for_update=True)
    if row is None:
        session.add(
            LessonCaptureRow(
                lesson_id=record.lesson_id,
                source_ref=record.source_ref,
                doc=to_doc(record),
                restricted=to_doc(secret),
                updated_at=now,
            )
        )
        session.flush()
        return
    row.doc = to_doc(record)
    row.restricted = to_doc(secret)
    row.updated_at = now
