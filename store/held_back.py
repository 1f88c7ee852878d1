"""Mandated lessons the route selected for a work item and did not place, and why."""

from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from store.tables import HeldBackRow, core_table, flushed

# Every routed work item that holds lessons back runs these: built once, run without the ORM
# (see `store.tables.core_table`).
_T = core_table(HeldBackRow)
_KNOWN = (
    select(_T.c.lesson_id, _T.c.reason, _T.c.detail)
    .where(_T.c.work_item_ref == bindparam("item_ref"))
    .with_for_update()
)
_ADD = insert(_T)
_CHANGE = (
    update(_T)
    .where(_T.c.work_item_ref == bindparam("item_ref"), _T.c.lesson_id == bindparam("lesson"))
    .values(
        team=bindparam("new_team"),
        reason=bindparam("new_reason"),
        detail=bindparam("new_detail"),
        at=bindparam("now"),
    )
)


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
    connection = flushed(session)
    known = {
        row.lesson_id: (row.reason, row.detail)
        for row in connection.execute(_KNOWN, {"item_ref": work_item_ref})
    }
    changed: dict[str, tuple[str, str]] = {}
    added, moved = [], []
    for lesson_id, (reason, detail) in sorted(held.items()):
        before = known.get(lesson_id)
        if before is None:
            added.append(
                {
                    "work_item_ref": work_item_ref,
                    "lesson_id": lesson_id,
                    "team": team,
                    "reason": reason,
                    "detail": detail,
                    "at": now,
                }
            )
            changed[lesson_id] = (reason, detail)
            continue
        if before != (reason, detail):
            changed[lesson_id] = (reason, detail)
        moved.append(
            {
                "item_ref": work_item_ref,
                "lesson": lesson_id,
                "new_team": team,
                "new_reason": reason,
                "new_detail": detail,
                "now": now,
            }
        )
    if added:
        connection.execute(_ADD, added)
    if moved:
        connection.execute(_CHANGE, moved)
    return changed
