"""Repository of work items: the latest state plus every observed state for backtests."""

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.work import System, WorkItem
from store import ledger
from store.documents import from_doc, to_doc
from store.tables import WorkItemEventRow, WorkItemRow, core_table, flushed

# Every work-item delivery runs these: built once, run without the ORM (see
# `store.tables.core_table`). Nothing here goes through the identity map, so a work item read
# here is always the stored one.
_T = core_table(WorkItemRow)
_READ = select(_T.c.project, _T.c.doc).where(_T.c.ref == bindparam("item_ref"))
_LOCK = _READ.with_for_update()
_CHANGE = (
    update(_T)
    .where(_T.c.ref == bindparam("item_ref"))
    .values(project=bindparam("new_project"), doc=bindparam("new_doc"), updated_at=bindparam("now"))
)
_OBSERVED = insert(core_table(WorkItemEventRow))


def record(session: Session, item: WorkItem, now: datetime) -> bool:
    """Store an observed state; True when the work item was not known before."""
    doc = to_doc(item)
    connection = flushed(session)
    connection.execute(_OBSERVED, {"ref": item.ref, "observed_at": now, "doc": doc})
    row = connection.execute(_LOCK, {"item_ref": item.ref}).first()
    if row is None:
        # Two workers may see a new work item at once (two webhooks of one PR): the insert
        # waits for the other's and does nothing, and this one updates the row it made.
        if _insert_if_absent(session, item, doc, now):
            ledger.follow_work_item(session, item)
            return True
        row = connection.execute(_LOCK, {"item_ref": item.ref}).first()
        if row is None:  # pragma: no cover (the conflicting row was committed)
            raise RuntimeError(f"work item {item.ref!r} vanished while being recorded")
    if (row.project, row.doc.get("team")) != (item.project, item.team):
        ledger.follow_work_item(session, item)
    connection.execute(
        _CHANGE, {"item_ref": item.ref, "new_project": item.project, "new_doc": doc, "now": now}
    )
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
    found = flushed(session).execute(_LOCK if for_update else _READ, {"item_ref": ref})
    row = found.first()
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


def _insert_ignoring(dialect_insert: Any) -> Any:
    return (
        dialect_insert(_T)
        .values(
            ref=bindparam("item_ref"),
            system=bindparam("item_system"),
            project=bindparam("new_project"),
            doc=bindparam("new_doc"),
            updated_at=bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=["ref"])
        .returning(_T.c.ref)
    )


_INSERT_IF_ABSENT = {
    "postgresql": _insert_ignoring(postgresql.insert),
    "sqlite": _insert_ignoring(sqlite.insert),
}


def _insert_if_absent(session: Session, item: WorkItem, doc: dict[str, Any], now: datetime) -> bool:
    """Insert the work item's row unless one exists (or is being inserted); True if inserted."""
    connection = flushed(session)
    values = {
        "item_ref": item.ref,
        "item_system": item.system.value,
        "new_project": item.project,
        "new_doc": doc,
        "now": now,
    }
    inserted = connection.execute(_INSERT_IF_ABSENT[connection.dialect.name], values)
    return inserted.first() is not None
