"""Repository of waivers."""

from datetime import datetime

from sqlalchemy import or_, select
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


def waived_lessons(
    session: Session, team: str | None, work_item_ref: str, at: datetime
) -> frozenset[str]:
    """The lessons an active waiver exempts this work item from: its team's waivers for all of
    the team's work, and any for this work item alone."""
    if team is None:
        return frozenset()
    stmt = select(WaiverRow.lesson_id).where(
        WaiverRow.team == team,
        WaiverRow.created_at <= at,
        WaiverRow.expires_at > at,
        or_(WaiverRow.work_item_ref.is_(None), WaiverRow.work_item_ref == work_item_ref),
    )
    return frozenset(session.scalars(stmt))
