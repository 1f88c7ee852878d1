"""Repository of work items: the latest state plus every observed state for backtests."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.work import System, WorkItem
from store import ledger
from store.documents import from_doc, to_doc
from store.tables import WorkItemEventRow, WorkItemRow


def record(session: Session, item: WorkItem, now: datetime) -> bool:
    """Store an observed state; True when the work item was not known before."""
    doc = to_doc(item)
    session.add(WorkItemEventRow(ref=item.ref, observed_at=now, doc=doc))
    row = session.get(WorkItemRow, item.ref, with_for_update=True)
    if row is None:
        # Two workers may see a new work item at once (two webhooks of one PR): the insert
        # waits for the other's and does nothing, and this one updates the row it made.
        if _insert_if_absent(session, item, doc, now):
            ledger.follow_work_item(session, item)
            return True
        row = session.get(WorkItemRow, item.ref, with_for_update=True, populate_existing=True)
        if row is None:  # pragma: no cover (the conflicting row was committed)
            raise RuntimeError(f"work item {item.ref!r} vanished while being recorded")
    if (row.project, row.doc.get("team")) != (item.project, item.team):
        ledger.follow_work_item(session, item)
    row.project = item.project
    row.doc = doc
    row.updated_at = now
    return False


def first_of_project(session: Session, system: System, project: str, ref: str) -> bool:
    """Whether `ref` is the only work item of `system` in `project` Cairn has recorded."""
    other = session.execute(
        select(WorkItemRow.ref)
        .where(
            WorkItemRow.system == system.value,
            WorkItemRow.project == project,
            WorkItemRow.ref != ref,
        )
        .limit(1)
    ).first()
    return other is None


def record_if_changed(session: Session, item: WorkItem, now: datetime) -> bool:
    """Store the item's state only when it differs from the stored one (no event otherwise);
    True when something was recorded."""
    if get(session, item.ref) == item:
        return False
    record(session, item, now)
    return True


def get(session: Session, ref: str, *, for_update: bool = False) -> WorkItem | None:
    """The latest state of one work item; `for_update` locks it for the rest of the transaction
    (so two routings of one work item never interleave)."""
    row = session.get(WorkItemRow, ref, with_for_update=for_update)
    return None if row is None else from_doc(WorkItem, row.doc)


def events_since(session: Session, since: datetime) -> list[tuple[datetime, WorkItem]]:
    """Every observed state since `since`, oldest first (the input of a rules backtest)."""
    rows = session.scalars(
        select(WorkItemEventRow)
        .where(WorkItemEventRow.observed_at >= since)
        .order_by(WorkItemEventRow.observed_at, WorkItemEventRow.id)
    )
    return [(row.observed_at, from_doc(WorkItem, row.doc)) for row in rows]


def refs_by_team(
    session: Session, since: datetime | None, until: datetime | None
) -> dict[str | None, set[str]]:
    """The work items observed in [since, until), by the team they had then."""
    stmt = select(WorkItemEventRow.ref, WorkItemEventRow.doc)
    if since is not None:
        stmt = stmt.where(WorkItemEventRow.observed_at >= since)
    if until is not None:
        stmt = stmt.where(WorkItemEventRow.observed_at < until)
    found: dict[str | None, set[str]] = {}
    for ref, doc in session.execute(stmt):
        team = doc.get("team") if isinstance(doc, dict) else None
        found.setdefault(team if isinstance(team, str) else None, set()).add(ref)
    return found


def _insert_if_absent(session: Session, item: WorkItem, doc: dict[str, Any], now: datetime) -> bool:
    """Insert the work item's row unless one exists (or is being inserted); True if inserted."""
    values = {
        "ref": item.ref,
        "system": item.system.value,
        "project": item.project,
        "doc": doc,
        "updated_at": now,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(WorkItemRow).values(**values).on_conflict_do_nothing(index_elements=["ref"])
    return session.execute(stmt.returning(WorkItemRow.ref)).first() is not None
