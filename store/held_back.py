"""Mandated lessons the route selected for a work item and did not place, and why."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.tables import HeldBackRow


def record(
    session: Session,
    work_item_ref: str,
    team: str | None,
    held: dict[str, tuple[str, str]],
    now: datetime,
) -> dict[str, tuple[str, str]]:
    """Record, per lesson id, (reason, detail) for one work item routed at `now`; returns those
    that are new or whose reason changed (each routing moves `at` on)."""
    if not held:
        return {}
    known = {
        row.lesson_id: row
        for row in session.scalars(
            select(HeldBackRow).where(HeldBackRow.work_item_ref == work_item_ref).with_for_update()
        )
    }
    changed: dict[str, tuple[str, str]] = {}
    for lesson_id, (reason, detail) in sorted(held.items()):
        row = known.get(lesson_id)
        if row is None:
            session.add(
                HeldBackRow(
                    work_item_ref=work_item_ref,
                    lesson_id=lesson_id,
                    team=team,
                    reason=reason,
                    detail=detail,
                    at=now,
                )
            )
            changed[lesson_id] = (reason, detail)
            continue
        if (row.reason, row.detail) != (reason, detail):
            changed[lesson_id] = (reason, detail)
        row.team, row.reason, row.detail, row.at = team, reason, detail, now
    return changed
