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


@dataclass(frozen=True, slots=True)
class Entry:
    """One placement, the work item it sits in (when known) and its signals in time order."""

    placement: Placement
    work_item: WorkItem | None
    signals: tuple[Signal, ...]

    @property
    def team(self) -> str:
        """The work item's team, or `(no team)`."""
        return (self.work_item.team if self.work_item else None) or "(no team)"

    @property
    def project(self) -> str:
        """The repository or Jira project, or `(unknown)` for a work item never recorded."""
        return self.work_item.project if self.work_item else "(unknown)"


def signals_for(session: Session, placement_ids: Sequence[str]) -> dict[str, list[Signal]]:
    """Signals of many placements, each list in time order."""
    found: dict[str, list[Signal]] = defaultdict(list)
    for start in range(0, len(placement_ids), _BATCH):
        chunk = placement_ids[start : start + _BATCH]
        rows = session.scalars(
            select(SignalRow)
            .where(SignalRow.placement_id.in_(chunk))
            .order_by(SignalRow.at, SignalRow.id)
        )
        for row in rows:
            found[row.placement_id].append(from_doc(Signal, row.doc))
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
    stmt = (
        select(PlacementRow, WorkItemRow)
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
    by_id = signals_for(session, [placement.id for placement, _ in rows])
    wanted_teams = set(teams)
    for placement_row, item_row in rows:
        item = None if item_row is None else from_doc(WorkItem, item_row.doc)
        entry = Entry(
            from_doc(Placement, placement_row.doc), item, tuple(by_id.get(placement_row.id, ()))
        )
        if wanted_teams and entry.team not in wanted_teams:
            continue
        yield entry
