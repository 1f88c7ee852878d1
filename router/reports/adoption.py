"""The placement ledger with each placement's adoption tier, and the adoption report."""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.adoption import Adoption, AdoptionRow, Tier, assess, report, theatre_flags
from core.base import utcnow
from core.errors import NotFoundError
from core.placement import PlacementState
from router.reports.recurrence import RecurrenceView
from router.reports.recurrence import summary as recurrence_summary
from router.reports.recurrence import views as recurrence_views
from store import ledger
from store.engine import Database
from store.ledger import Entry


class GroupBy(StrEnum):
    """What the adoption report is grouped by."""

    LESSON = "lesson"
    TEAM = "team"
    RULE = "rule"
    REPOSITORY = "repository"


_GROUPS: dict[GroupBy, Callable[[Entry], str]] = {
    GroupBy.LESSON: lambda e: e.placement.lesson_id,
    GroupBy.TEAM: lambda e: e.team,
    GroupBy.RULE: lambda e: e.placement.rule_id,
    GroupBy.REPOSITORY: lambda e: e.project,
}


@dataclass(frozen=True, slots=True)
class Filters:
    """Which placements a ledger page or a report covers; empty means any."""

    lessons: Sequence[str] = ()
    teams: Sequence[str] = ()
    projects: Sequence[str] = ()
    states: Sequence[PlacementState] = ()
    tiers: Sequence[Tier] = ()
    since: datetime | None = None
    until: datetime | None = None
    work_items: Sequence[str] = ()

    def of_lessons(self, lessons: Sequence[str]) -> "Filters":
        """These lessons, in the same period and teams, with no other filter."""
        return Filters(lessons=lessons, teams=self.teams, since=self.since, until=self.until)


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


class ReportService:
    """Read-only queries over placements and signals."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def assessed(self, filters: Filters, now: datetime | None = None) -> list[Assessed]:
        """Every placement the filters select, with its tier at `now`, oldest first."""
        now = now or utcnow()
        with self.db.transaction() as session:
            found = ledger.entries(
                session,
                lessons=filters.lessons,
                teams=filters.teams,
                projects=filters.projects,
                states=filters.states,
                since=filters.since,
                until=filters.until,
            )
            entries = list(found)
        flags = theatre_flags((e.placement, e.signals) for e in entries)
        result = [
            Assessed(
                e,
                replace(
                    assess(e.placement, list(e.signals), now),
                    theatre=flags.get(e.placement.id, frozenset()),
                ),
            )
            for e in entries
        ]
        if filters.work_items:
            result = [a for a in result if a.entry.placement.work_item_ref in filters.work_items]
        if filters.tiers:
            result = [a for a in result if a.adoption.tier in filters.tiers]
        return result

    def placement(self, placement_id: str) -> Assessed:
        """One placement with its signals; NotFoundError when there is none."""
        with self.db.transaction() as session:
            found = list(ledger.entries(session, placement_ids=[placement_id]))
        if not found:
            raise NotFoundError(f"placement {placement_id!r} does not exist")
        entry = found[0]
        return Assessed(entry, assess(entry.placement, list(entry.signals), utcnow()))

    def adoption(
        self, by: GroupBy, filters: Filters, now: datetime | None = None
    ) -> tuple[list[AdoptionRow], AdoptionRow]:
        """Adoption rows per group and the total over all of them."""
        return _rows(by, self.assessed(filters, now))

    def report(
        self, by: GroupBy, filters: Filters, now: datetime | None = None
    ) -> "AdoptionReport":
        """The adoption rows and the recurrences joined in, from one read of the ledger."""
        assessed = self.assessed(filters, now)
        rows, total = _rows(by, assessed)
        lesson_ids = {a.entry.placement.lesson_id for a in assessed} | set(filters.lessons)
        recurrence, flagged = _recurrences(self.db, by, sorted(lesson_ids))
        return AdoptionReport(by, rows, total, recurrence, flagged)


def _rows(by: GroupBy, assessed: list[Assessed]) -> tuple[list[AdoptionRow], AdoptionRow]:
    group = _GROUPS[by]
    rows = report((group(a.entry), a.adoption) for a in assessed)
    total = report(("(all)", a.adoption) for a in assessed)
    return rows, total[0] if total else AdoptionRow("(all)")


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
