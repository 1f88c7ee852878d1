"""Repository of recurrences: later incidents where a published lesson applied."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.placement import Placement
from core.recurrence import Recurrence
from core.work import WorkItem
from store.documents import from_doc, to_doc
from store.tables import PlacementRow, RecurrenceRow, WorkItemRow


def add(session: Session, recurrence: Recurrence) -> bool:
    """Record a recurrence once per (incident, lesson); False when it was already recorded."""
    key = (recurrence.incident_ref, recurrence.lesson_id)
    if session.get(RecurrenceRow, key) is not None:
        return False
    session.add(
        RecurrenceRow(
            incident_ref=recurrence.incident_ref,
            lesson_id=recurrence.lesson_id,
            lesson_version=recurrence.lesson_version,
            detected_at=recurrence.detected_at,
            doc=to_doc(recurrence),
        )
    )
    session.flush()
    return True


def get(session: Session, incident_ref: str, lesson_id: str) -> Recurrence | None:
    """The recurrence of one lesson in one incident."""
    row = session.get(RecurrenceRow, (incident_ref, lesson_id))
    return None if row is None else from_doc(Recurrence, row.doc)


def for_lesson(session: Session, lesson_id: str) -> list[Recurrence]:
    """Every recurrence of one lesson, oldest first."""
    rows = session.scalars(
        select(RecurrenceRow)
        .where(RecurrenceRow.lesson_id == lesson_id)
        .order_by(RecurrenceRow.detected_at, RecurrenceRow.incident_ref)
    )
    return [from_doc(Recurrence, row.doc) for row in rows]


def for_lessons(session: Session, lesson_ids: Sequence[str]) -> list[Recurrence]:
    """Every recurrence of these lessons, by lesson (in the order given), oldest first."""
    order = {lesson_id: n for n, lesson_id in enumerate(lesson_ids)}
    found: list[tuple[int, Recurrence]] = []
    unique = list(order)
    for start in range(0, len(unique), 500):
        rows = session.scalars(
            select(RecurrenceRow)
            .where(RecurrenceRow.lesson_id.in_(unique[start : start + 500]))
            .order_by(RecurrenceRow.detected_at, RecurrenceRow.incident_ref)
        )
        found += [(order[row.lesson_id], from_doc(Recurrence, row.doc)) for row in rows]
    found.sort(key=lambda pair: pair[0])  # stable: each lesson's stay oldest first
    return [recurrence for _, recurrence in found]


def for_incident(session: Session, incident_ref: str) -> list[Recurrence]:
    """Every lesson one incident recurred, by lesson id."""
    rows = session.scalars(
        select(RecurrenceRow)
        .where(RecurrenceRow.incident_ref == incident_ref)
        .order_by(RecurrenceRow.lesson_id)
    )
    return [from_doc(Recurrence, row.doc) for row in rows]


def placements_with_work_items(
    session: Session, lesson_id: str
) -> list[tuple[Placement, WorkItem | None]]:
    """Every placement of a lesson with its work item's latest state (None if never seen)."""
    rows = session.execute(
        select(PlacementRow.doc, WorkItemRow.doc)
        .outerjoin(WorkItemRow, WorkItemRow.ref == PlacementRow.work_item_ref)
        .where(PlacementRow.lesson_id == lesson_id)
        .order_by(PlacementRow.created_at, PlacementRow.id)
    ).all()
    return [
        (from_doc(Placement, placed), None if item is None else from_doc(WorkItem, item))
        for placed, item in rows
    ]
