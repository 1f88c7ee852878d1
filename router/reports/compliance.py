"""The compliance matrix (mandated lessons × teams), waivers, and each cell's evidence.

The cells are counted by the database (store/ledger.py); the placements behind each cell are
listed too unless the caller only needs the cells (the CLI's table).
"""

import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core.access import Permission, Principal
from core.adoption import REACHED, Tier
from core.base import utcnow
from core.compliance import Cell, NotReached, cell_of
from core.errors import ForbiddenError, NotFoundError
from core.feedback import MANDATED
from core.lesson import LessonStatus
from core.waiver import Waiver
from router.reports.adoption import Assessed, Filters, ReportService
from router.stages import gating
from store import audit, ledger, lessons, tallies, waivers
from store.engine import Database
from store.ledger import NO_TEAM

_REACHED = frozenset(t.value for t in REACHED)


@dataclass
class MatrixCell:
    """One lesson × team: the cell, its placements' tiers, and the waiver behind `waived`."""

    lesson_id: str
    team: str
    cell: Cell = Cell.NOT_REACHED
    tiers: Counter[str] = field(default_factory=Counter)
    counted: Counter[str] = field(default_factory=Counter)
    """Tiers of the placements that decide the cell: reached the work, not waived per item."""
    placements: list[str] = field(default_factory=list)
    waived_placements: list[str] = field(default_factory=list)
    waiver: str | None = None
    team_work: int = 0
    """How many of the team's work items were seen in the period (for `not reached`)."""
    held_back: Counter[str] = field(default_factory=Counter)
    """Work items of the team the route selected the lesson for and held it back from, by
    reason (`suppressed`, `budget`)."""

    def reason(self) -> NotReached | None:
        """Why a cell was not reached: suppressed, budget, no matching rule (the team had work),
        no work, or not delivered (placed, but withdrawn or never delivered)."""
        if self.cell != Cell.NOT_REACHED:
            return None
        if self.tiers:
            return NotReached.NOT_DELIVERED
        if self.held_back[NotReached.SUPPRESSED]:
            return NotReached.SUPPRESSED
        if self.held_back[NotReached.BUDGET]:
            return NotReached.BUDGET
        return NotReached.NO_RULE if self.team_work else NotReached.NO_WORK

    def why(self) -> str | None:
        """The reason in words, with how many of the team's work items each part covers."""
        reason = self.reason()
        if reason is None:
            return None
        if reason == NotReached.NOT_DELIVERED:
            tiers = ", ".join(f"{tier} {n}" for tier, n in sorted(self.tiers.items()))
            return f"placed in the period but never in the work ({tiers})"
        if reason == NotReached.NO_WORK:
            return "no work item of this team was seen in the period"
        suppressed = self.held_back[NotReached.SUPPRESSED]
        budget = self.held_back[NotReached.BUDGET]
        parts = [
            f"held back by a suppression or a revision flag in {suppressed}" if suppressed else "",
            f"over the fatigue budget in {budget}" if budget else "",
        ]
        unmatched = self.team_work - suppressed - budget
        if unmatched > 0:
            parts.append(f"no rule placed it in {unmatched}")
        return (
            f"{self.team_work} work items of this team were seen in the period and none "
            f"received it: {', '.join(p for p in parts if p)}"
        )

    def as_dict(self, *, detail: bool = True) -> dict[str, Any]:
        """The cell as plain data (`detail`: with the ids of its placements)."""
        reason = self.reason()
        found: dict[str, Any] = {
            "lesson": self.lesson_id,
            "team": self.team,
            "cell": self.cell.value,
            "tiers": dict(sorted(self.tiers.items())),
        }
        if detail:
            found["placements"] = self.placements
            found["waived_placements"] = self.waived_placements
        found.update(
            {
                "waiver": self.waiver,
                "reason": None if reason is None else reason.value,
                "held_back": dict(sorted(self.held_back.items())),
                "why": self.why(),
            }
        )
        return found


@dataclass
class Matrix:
    """Mandated lessons × teams for a period, as it stood at `now`."""

    lessons: list[str]
    teams: list[str]
    cells: dict[tuple[str, str], MatrixCell]
    now: datetime
    reports: ReportService = field(repr=False)
    detail: bool = True
    """Whether each cell lists its placements (else only their counts)."""

    def counted(self, cells: Iterable[MatrixCell] | None = None) -> list[Assessed]:
        """The placements the given cells (default: all) count, with their tiers at `now`, in
        ledger order (read when asked; empty without `detail`)."""
        chosen = self.cells.values() if cells is None else cells
        ids = [pid for cell in chosen for pid in cell.placements]
        return self.reports.of_placements(ids, self.now)

    def as_dict(self) -> dict[str, Any]:
        """The matrix as plain data, cells in lesson then team order."""
        return {
            "lessons": self.lessons,
            "teams": self.teams,
            "cells": [
                self.cells[(lesson, team)].as_dict(detail=self.detail)
                for lesson in self.lessons
                for team in self.teams
            ],
        }


class ComplianceService:
    """The matrix, waivers and evidence, over the store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def mandated(self, only: list[str] | None = None) -> list[str]:
        """Published lessons whose current mandate is required or review-and-justify."""
        with self.db.transaction() as session:
            found = lessons.with_facet(
                session, "mandate", [m.value for m in MANDATED], status=LessonStatus.PUBLISHED
            )
        return [lesson_id for lesson_id in found if not only or lesson_id in only]

    def mandated_in(self, filters: Filters, now: datetime | None = None) -> list[str]:
        """The matrix's lessons for a period, in order: those published with a mandate, and
        those a rule placed with one in the period (among `filters.lessons`, if given)."""
        published = self.mandated(list(filters.lessons))
        with self.db.transaction() as session:
            by_rules = _placed_mandated(
                session, filters, now or utcnow(), [m.value for m in MANDATED]
            )
        return sorted({*published, *by_rules})

    def matrix(
        self, filters: Filters, now: datetime | None = None, *, detail: bool = True
    ) -> Matrix:
        """Mandated lessons × every team with a placement in the period (or the teams asked
        for).

        A lesson is mandated when its own mandate is, or when a rule placed it with one in the
        period; a cell counts every placement of the lesson in that team's work. Without
        `detail` the cells give their counts but not the ids of their placements.
        """
        now = now or utcnow()
        at = min(now, filters.until) if filters.until else now
        # Only the mandated lessons' placements are counted.
        mandated = self.mandated_in(filters, now)
        mandates = [m.value for m in MANDATED]
        with self.db.transaction() as session:
            wanted = set(mandated)
            scope = filters.of_lessons(mandated)  # no lessons would mean every lesson
            counts = (
                ledger.cell_counts(session, scope, now, mandates, placements=detail)
                if mandated
                else []
            )
            counts = [c for c in counts if c.lesson_id in wanted]
            active = [w for w in waivers.listed(session) if w.active(at) and w.lesson_id in wanted]
            # Every team with a placement in the period: one that never received a mandated
            # lesson is a column of `not reached` cells, not missing from the matrix.
            teams = sorted(
                set(filters.teams)
                or {*ledger.teams_placed(session, filters.since, filters.until)}
                | {c.team for c in counts}
            )
            cells = {
                (lesson_id, team): MatrixCell(lesson_id, team)
                for lesson_id in mandated
                for team in teams
            }
            for c in counts:
                cell = cells[(c.lesson_id, c.team)]
                cell.tiers.update(c.tiers)
                cell.counted.update({t: n for t, n in c.tiers.items() if t in _REACHED})
            per_item = {
                (w.lesson_id, w.team, w.work_item_ref)
                for w in active
                if w.work_item_ref is not None
            }
            waived_ids = set()
            pairs = [(lesson_id, ref) for lesson_id, _team, ref in per_item if ref is not None]
            for pid, lesson_id, team, ref, tier in ledger.in_work_items(session, scope, now, pairs):
                if (lesson_id, team, ref) in per_item and tier in REACHED:
                    cell = cells[(lesson_id, team)]
                    cell.waived_placements.append(pid)
                    cell.counted[tier.value] -= 1
                    waived_ids.add(pid)
            for c in counts:
                if c.placements:
                    ids = c.placements
                    if waived_ids:
                        ids = [pid for pid in ids if pid not in waived_ids]
                    cells[(c.lesson_id, c.team)].placements = ids
            for cell in cells.values():
                _decide(cell, active)
            _explain(session, filters, [c for c in cells.values() if c.cell == Cell.NOT_REACHED])
        return Matrix(mandated, teams, cells, now, ReportService(self.db), detail)

    def waive(
        self,
        actor: Principal,
        lesson_id: str,
        team: str,
        reason: str,
        lasts: timedelta,
        work_item_ref: str | None = None,
    ) -> Waiver:
        """Record a waiver approved by `actor` (compliance or admin), audited."""
        if not actor.can(Permission.WAIVE):
            raise ForbiddenError(f"{actor.id} may not grant waivers")
        if lasts <= timedelta(0) or lasts > timedelta(days=366):
            raise ValueError("expires: a waiver lasts more than nothing and at most 366 days")
        if team == NO_TEAM:
            raise ValueError(f"team: {NO_TEAM!r} gathers every work item without a team")
        now = utcnow()
        waiver = Waiver(
            id="wv_" + secrets.token_hex(8),
            lesson_id=lesson_id,
            team=team,
            work_item_ref=work_item_ref,
            reason=reason,
            approved_by=actor.id,
            created_at=now,
            expires_at=now + lasts,
        )
        with self.db.transaction() as session:
            if lessons.get(session, lesson_id) is None:
                raise NotFoundError(f"lesson {lesson_id!r} does not exist")
            waivers.add(session, waiver)
            details = waiver.model_dump(mode="json", exclude={"id", "lesson_id", "approved_by"})
            audit.record_by(
                session, actor, "waiver.granted", lesson_id, {"waiver": waiver.id, **details}, now
            )
            gating.recheck_after_waiver(session, waiver, now)
        return waiver

    def waivers(self) -> list[Waiver]:
        """Every waiver, active or not."""
        with self.db.transaction() as session:
            return waivers.listed(session)


def _placed_mandated(
    session: Session, filters: Filters, now: datetime, mandates: list[str]
) -> list[str]:
    """The lessons (among those asked for) that a rule placed with one of `mandates` in the
    period: from the tallies for a period of whole days, else from the placements."""
    days = tallies.whole_days(filters)
    if days is None:
        found = ledger.mandated_lessons(session, filters.of_lessons(filters.lessons), mandates)
    else:
        found = tallies.lessons_placed(session, days[0], days[1], mandates)
    return [lesson_id for lesson_id in found if not filters.lessons or lesson_id in filters.lessons]


def _decide(cell: MatrixCell, active: list[Waiver]) -> None:
    """Settle a cell from its counted tiers and the waivers in force."""
    team_wide = next(
        (
            w
            for w in active
            if w.lesson_id == cell.lesson_id and w.team == cell.team and w.work_item_ref is None
        ),
        None,
    )
    counted = [Tier(tier) for tier, n in cell.counted.items() if n > 0]
    cell.waiver = team_wide.id if team_wide else None
    all_waived = bool(cell.waived_placements) and not counted
    cell.cell = cell_of(counted, waived=team_wide is not None or all_waived)


def _explain(session: Session, filters: Filters, cells: list[MatrixCell]) -> None:
    """For cells not reached: how much work each team had, and what the route held back."""
    if not cells:
        return
    teams = sorted({c.team for c in cells})
    work = ledger.team_work(session, filters.since, filters.until, teams)
    held = ledger.held_back(
        session, filters.since, filters.until, sorted({c.lesson_id for c in cells}), teams
    )
    for cell in cells:
        cell.team_work = work.get(cell.team, 0)
        cell.held_back = held.get((cell.lesson_id, cell.team), Counter())
