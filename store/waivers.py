"""Repository of waivers."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.waiver import Waiver
from store.tables import WaiverRow


def add(session: Session, waiver: Waiver) -> None:
    """Store a new waiver."""
    session.add(
        WaiverRow(
            id=waiver.id,
            lesson_id=waiver.lesson_id,
            team=waiver.team,
            work_item_ref=waiver.work_item_ref,
            reason=waiver.reason,
            approved_by=waiver.approved_by,
            created_at=waiver.created_at,
            expires_at=waiver.expires_at,
        )
    )
    session.flush()


def listed(session: Session, lesson_id: str | None = None) -> list[Waiver]:
    """Waivers, oldest first, optionally of one lesson."""
    stmt = select(WaiverRow).order_by(WaiverRow.created_at, WaiverRow.id)
    if lesson_id is not None:
        stmt = stmt.where(WaiverRow.lesson_id == lesson_id)
    return [
        Waiver(
            id=row.id,
            lesson_id=row.lesson_id,
            team=row.team,
            work_item_ref=row.work_item_ref,
            reason=row.reason,
            approved_by=row.approved_by,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )
        for row in session.scalars(stmt)
    ]
