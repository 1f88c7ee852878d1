"""The placement ledger as reports read it: placements with their work item and signals."""

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.placement import Placement, PlacementState, Signal
from core.work import WorkItem
from store.documents import from_doc
from store.tables import PlacementRow, SignalRow, WorkItemRow

_BATCH = 500
NO_TEAM = "(no team)"
"""The group of work items whose team is unknown."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One placement, the work item it sits in (when known) and its signals in time order."""

    placement: Placement
    work_item: WorkItem | None
    signals: tuple[Signal, ...]

    @property
    def team(self) -> str:
        """The work item's team, or `(no team)`."""
        return (self.work_item.team if self.work_item else None) or NO_TEAM

    @property
    def project(self) -> str:
        """The repository or Jira project, or `(unknown)` for a work item never recorded."""
        return self.work_item.project if self.work_item else "(unknown)"


def signals_for(session: Session, placement_ids: Sequence[str]) -> dict[str, list[Signal]]:
    """Signals of many placements, each list in time order."""
    found: dict[str, list[Signal]] = defaultdict(list)
    for start in range(0, len(placement_ids), _BATCH):
        chunk = placement_ids[start : start + _BATCH]
        rows = session.execute(
            select(SignalRow.placement_id, SignalRow.doc)
            .where(SignalRow.placement_id.in_(chunk))
            .order_by(SignalRow.at, SignalRow.id)
        )
        for placement_id, doc in rows:
            found[placement_id].append(from_doc(Signal, doc))
    return found


def entries(
    session: Session,
    *,
    lessons: Sequence[str] = (),
    teams: Sequence[str] = (),
    projects: Sequence[str] = (),
    states: Sequence[PlacementState] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    placement_ids: Sequence[str] = (),
) -> Iterator[Entry]:
    """Placements made in [since, until), filtered, oldest first, with work item and signals."""
    # Plain columns, not ORM entities: reports read many rows and change none.
    stmt = (
        select(PlacementRow.id, PlacementRow.doc, WorkItemRow.doc)
        .join(WorkItemRow, WorkItemRow.ref == PlacementRow.work_item_ref, isouter=True)
        .order_by(PlacementRow.created_at, PlacementRow.id)
    )
    if lessons:
        stmt = stmt.where(PlacementRow.lesson_id.in_(lessons))
    if states:
        stmt = stmt.where(PlacementRow.state.in_([s.value for s in states]))
    if projects:
        stmt = stmt.where(WorkItemRow.project.in_(projects))
    if since is not None:
        stmt = stmt.where(PlacementRow.created_at >= since)
    if until is not None:
        stmt = stmt.where(PlacementRow.created_at < until)
    if placement_ids:
        stmt = stmt.where(PlacementRow.id.in_(placement_ids))
    rows = session.execute(stmt).all()
    by_id = signals_for(session, [placement_id for placement_id, _, _ in rows])
    wanted_teams = set(teams)
    items: dict[str, WorkItem] = {}  # many placements share a work item: parse it once
    for placement_id, placement_doc, item_doc in rows:
        placement = from_doc(Placement, placement_doc)
        item = None
        if item_doc is not None:
            item = items.get(placement.work_item_ref)
            if item is None:
                item = items[placement.work_item_ref] = from_doc(WorkItem, item_doc)
        entry = Entry(placement, item, tuple(by_id.get(placement_id, ())))
        if wanted_teams and entry.team not in wanted_teams:
            continue
        yield entry
