"""The placement ledger with each placement's adoption tier, and the adoption report.

The report is counted by the database (store/ledger.py) from the columns each placement keeps
current; the ledger pages read placements and their signals.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from core.adoption import Adoption, AdoptionRow, assess
from core.base import utcnow
from core.errors import NotFoundError
from router.reports.recurrence import RecurrenceView
from router.reports.recurrence import summary as recurrence_summary
from router.reports.recurrence import views as recurrence_views
from store import ledger, tallies
from store.engine import Database
from store.ledger import Entry
from store.ledger import Filters as Filters


class GroupBy(StrEnum):
    """What the adoption report is grouped by."""

    LESSON = "lesson"
    TEAM = "team"
    RULE = "rule"
    REPOSITORY = "repository"


@dataclass(frozen=True, slots=True)
class Assessed:
    """A ledger entry with its adoption."""

    entry: Entry
    adoption: Adoption

    def as_dict(self) -> dict[str, Any]:
        """The placement with its tier, team, project and the times its steps took."""
        adoption = self.adoption
        return {
            **self.entry.placement.model_dump(mode="json"),
            "tier": adoption.tier.value,
            "team": self.entry.team,
            "project": self.entry.project,
            "hours_to_acknowledge": _hours(adoption.acknowledged_after),
            "hours_to_verify": _hours(adoption.verified_after),
            "theatre": sorted(adoption.theatre),
        }


def _hours(value: Any) -> float | None:
    return None if value is None else round(value.total_seconds() / 3600, 2)


def _assessed(entry: Entry, now: datetime) -> Assessed:
    adoption = assess(entry.placement, list(entry.signals), now)
    return Assessed(entry, replace(adoption, theatre=entry.theatre))


class ReportService:
    """Read-only queries over placements and signals."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def assessed(self, filters: Filters, now: datetime | None = None) -> list[Assessed]:
        """Every placement the filters select, with its tier at `now`, oldest first."""
        now = now or utcnow()
        with self.db.transaction() as session:
            return [_assessed(e, now) for e in ledger.entries(session, filters, now=now)]

    def newest(
        self, filters: Filters, limit: int, offset: int = 0, now: datetime | None = None
    ) -> list[Assessed]:
        """One page of the placements the filters select, newest first, paged in the database."""
        now = now or utcnow()
        with self.db.transaction() as session:
            found = ledger.entries(
                session, filters, now=now, newest_first=True, limit=limit, offset=offset
            )
            return [_assessed(e, now) for e in found]

    def tier_counts(
        self, by: GroupBy | None, filters: Filters, now: datetime | None = None
    ) -> dict[str | None, dict[str, int]]:
        """Placements per tier, per group (None: the total under the key None); counts only.
        A period from a UTC midnight on, per rule or in total, is read from the tallies."""
        with self.db.transaction() as session:
            if by in (None, GroupBy.RULE) and tallies.answers(filters):
                key = None if by is None else by.value
                return tallies.counts(session, key, tallies.since_day(filters), now or utcnow())
            return ledger.tier_counts(
                session, None if by is None else by.value, filters, now or utcnow()
            )

    def weekly(self, filters: Filters, now: datetime | None = None) -> dict[str, dict[str, int]]:
        """Placements per ISO week and tier (counts only: the dashboard's trend); from the
        tallies for a period from a UTC midnight on."""
        with self.db.transaction() as session:
            if tallies.answers(filters):
                day = tallies.since_day(filters)
                found = tallies.counts(session, "week", day, now or utcnow())
            else:
                found = ledger.tier_counts(session, "week", filters, now or utcnow())
        return {str(week): tiers for week, tiers in found.items()}

    def recurrences(
        self, filters: Filters, now: datetime | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The recurrence counts of the lessons placed in the period, and each recurrence whose
        lesson was placed but not honoured before it."""
        with self.db.transaction() as session:
            placed = _placed(session, filters, now or utcnow())
        found, flagged = _recurrences(self.db, GroupBy.TEAM, placed)
        return found.get(ledger.TOTAL, _NO_RECURRENCE), flagged

    def of_placements(self, placement_ids: Sequence[str], now: datetime) -> list[Assessed]:
        """These placements with their tiers at `now`, oldest first."""
        found: list[Assessed] = []
        with self.db.transaction() as session:
            for start in range(0, len(placement_ids), 500):
                chunk = placement_ids[start : start + 500]
                found += [_assessed(e, now) for e in ledger.entries(session, placement_ids=chunk)]
        found.sort(key=lambda a: (a.entry.placement.created_at, a.entry.placement.id))
        return found

    def placement(self, placement_id: str) -> Assessed:
        """One placement with its signals; NotFoundError when there is none."""
        found = self.of_placements([placement_id], utcnow())
        if not found:
            raise NotFoundError(f"placement {placement_id!r} does not exist")
        return found[0]

    def adoption(
        self, by: GroupBy, filters: Filters, now: datetime | None = None
    ) -> tuple[list[AdoptionRow], AdoptionRow]:
        """Adoption rows per group and the total over all of them."""
        with self.db.transaction() as session:
            return ledger.adoption(session, by.value, filters, now or utcnow())

    def report(
        self, by: GroupBy, filters: Filters, now: datetime | None = None
    ) -> "AdoptionReport":
        """The adoption rows and the recurrences of the lessons placed (or asked for)."""
        now = now or utcnow()
        with self.db.transaction() as session:
            rows, total = ledger.adoption(session, by.value, filters, now)
            if by == GroupBy.LESSON:
                placed = [row.group for row in rows]
            else:
                placed = _placed(session, filters, now)
        recurrence, flagged = _recurrences(self.db, by, sorted({*placed, *filters.lessons}))
        return AdoptionReport(by, rows, total, recurrence, flagged)


def _placed(session: Session, filters: Filters, now: datetime) -> list[str]:
    """The lessons placed under `filters` (from the tallies when they can tell)."""
    if tallies.answers(filters):
        return tallies.lessons_placed(session, tallies.since_day(filters))
    return ledger.lesson_ids(session, filters, now)


def _recurrences(
    db: Database, by: GroupBy, lesson_ids: list[str]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Per group (lesson, or the team of the placements), the recurrence counts (`(all)` too),
    and every recurrence whose lesson was placed but not honoured before it.

    Grouped by rule or repository, only the total is given: a recurrence belongs to a lesson
    and to the teams it was placed with, not to one rule or repository.
    """
    found = recurrence_views(db, lesson_ids)
    grouped: dict[str, list[RecurrenceView]] = defaultdict(list)
    for view in found:
        if by == GroupBy.LESSON:
            grouped[view.recurrence.lesson_id].append(view)
        elif by == GroupBy.TEAM:
            for team in sorted(set(view.teams.values())):
                grouped[team].append(view)
    result = {name: recurrence_summary(views) for name, views in grouped.items()}
    result["(all)"] = recurrence_summary(found)
    flagged = [view.as_dict() for view in found if view.not_honoured]
    return result, flagged


_NO_RECURRENCE = {"recurrences": 0, "placed_before": 0, "placed_not_honoured": 0}


@dataclass(frozen=True, slots=True)
class AdoptionReport:
    """The adoption report as the API and the CLI give it."""

    by: GroupBy
    rows: list[AdoptionRow]
    total: AdoptionRow
    recurrence: dict[str, dict[str, Any]]
    placed_but_not_honoured: list[dict[str, Any]]

    def recurrence_of(self, group: str) -> dict[str, Any]:
        """The recurrence counts of one group (zeros when none recurred)."""
        return self.recurrence.get(group, _NO_RECURRENCE)

    def as_dict(self) -> dict[str, Any]:
        """Rows and total, each with its recurrence counts, then the flagged recurrences."""
        return {
            "by": self.by.value,
            "rows": [
                {**row.as_dict(), "recurrence": self.recurrence_of(row.group)} for row in self.rows
            ],
            "total": {**self.total.as_dict(), "recurrence": self.recurrence_of(self.total.group)},
            "placed_but_not_honoured": self.placed_but_not_honoured,
        }
