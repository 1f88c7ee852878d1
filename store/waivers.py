"""Repository of waivers."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.waiver import Waiver
from store.tables import WaiverRow


def add(session: Session, waiver: Waiver) -> None:
    """Store a new waiver."""
    # The table's columns are the model's fields, one for one.
    session.add(WaiverRow(**waiver.model_dump()))
    session.flush()


def listed(session: Session, lesson_id: str | None = None) -> list[Waiver]:
    """Waivers, oldest first, optionally of one lesson."""
    stmt = select(WaiverRow).order_by(WaiverRow.created_at, WaiverRow.id)
    if lesson_id is not None:
        stmt = stmt.where(WaiverRow.lesson_id == lesson_id)
    return [Waiver.model_validate(row, from_attributes=True) for row in session.scalars(stmt)]
