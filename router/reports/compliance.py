"""The compliance matrix (mandated lessons × teams), waivers, and each cell's evidence."""

import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.access import Permission, Principal
from core.adoption import REACHED, Tier
from core.base import utcnow
from core.compliance import Cell, cell_of
from core.errors import ForbiddenError, NotFoundError
from core.feedback import MANDATED
from core.lesson import LessonStatus
from core.waiver import Waiver
from router.reports.adoption import Assessed, Filters, ReportService
from store import audit, lessons, waivers, work_items
from store.engine import Database
from store.ledger import NO_TEAM


@dataclass
class MatrixCell:
    """One lesson × team: the cell, its placements' tiers, and the waiver behind `waived`."""

    lesson_id: str
    team: str
    cell: Cell = Cell.NOT_REACHED
    tiers: Counter[str] = field(default_factory=Counter)
    placements: list[str] = field(default_factory=list)
    waived_placements: list[str] = field(default_factory=list)
    waiver: str | None = None
    team_work: int = 0
    """How many of the team's work items were seen in the period (for `not reached`)."""

    def why(self) -> str | None:
        """For a cell not reached: whether the team had work the lesson could have gone into."""
        if self.cell != Cell.NOT_REACHED:
            return None
        if self.team_work == 0:
            return "no work item of this team was seen in the period"
        return (
            f"{self.team_work} work items of this team were seen in the period and none "
            "received it: no rule placed it there, or it was suppressed or over the budget "
            "(`cairn rules test` on one of them says which)"
        )

    def as_dict(self) -> dict[str, Any]:
        """The cell as plain data."""
        return {
            "lesson": self.lesson_id,
            "team": self.team,
            "cell": self.cell.value,
            "tiers": dict(sorted(self.tiers.items())),
            "placements": self.placements,
            "waived_placements": self.waived_placements,
            "waiver": self.waiver,
            "why": self.why(),
        }


@dataclass
class Matrix:
    """Mandated lessons × teams for a period."""

    lessons: list[str]
    teams: list[str]
    cells: dict[tuple[str, str], MatrixCell]
    assessed: dict[str, Assessed] = field(default_factory=dict, repr=False)
    """Every placement the cells count, by id (the evidence reads them from here)."""

    def counted(self, cells: Iterable[MatrixCell] | None = None) -> list[Assessed]:
        """The placements the given cells (default: all) count, in ledger order."""
        chosen = self.cells.values() if cells is None else cells
        wanted = {pid for cell in chosen for pid in cell.placements}
        return [a for pid, a in self.assessed.items() if pid in wanted]

    def as_dict(self) -> dict[str, Any]:
        """The matrix as plain data, cells in lesson then team order."""
        return {
            "lessons": self.lessons,
            "teams": self.teams,
            "cells": [
                self.cells[(lesson, team)].as_dict()
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
            found = lessons.list_lessons(session, status=LessonStatus.PUBLISHED)
        return sorted(
            lesson.id
            for lesson in found
            if lesson.mandate in MANDATED and (not only or lesson.id in only)
        )

    def matrix(self, filters: Filters, now: datetime | None = None) -> Matrix:
        """Mandated lessons × every team with work in the period (or the teams asked for).

        A lesson is mandated when its own mandate is, or when a rule placed it with one in the
        period; a cell counts every placement of the lesson in that team's work.
        """
        now = now or utcnow()
        at = min(now, filters.until) if filters.until else now
        assessed = ReportService(self.db).assessed(filters.of_lessons(filters.lessons), now)
        placed_mandated = {
            a.entry.placement.lesson_id for a in assessed if a.entry.placement.mandate in MANDATED
        }
        mandated = sorted(set(self.mandated(list(filters.lessons))) | placed_mandated)
        assessed = [a for a in assessed if a.entry.placement.lesson_id in mandated]
        with self.db.transaction() as session:
            active = [w for w in waivers.listed(session) if w.active(at)]
            work = work_items.refs_by_team(session, filters.since, filters.until)
        teams = sorted(set(filters.teams) or {a.entry.team for a in assessed})
        by_cell: dict[tuple[str, str], list[Assessed]] = defaultdict(list)
        for item in assessed:
            by_cell[(item.entry.placement.lesson_id, item.entry.team)].append(item)
        cells = {
            (lesson_id, team): _cell(lesson_id, team, by_cell[(lesson_id, team)], active)
            for lesson_id in mandated
            for team in teams
        }
        for (_lesson, team), cell in cells.items():
            cell.team_work = len(work.get(None if team == NO_TEAM else team, ()))
        return Matrix(mandated, teams, cells, {a.entry.placement.id: a for a in assessed})

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
        return waiver

    def waivers(self) -> list[Waiver]:
        """Every waiver, active or not."""
        with self.db.transaction() as session:
            return waivers.listed(session)


def _cell(lesson_id: str, team: str, items: list[Assessed], active: list[Waiver]) -> MatrixCell:
    cell = MatrixCell(lesson_id, team)
    team_wide = next(
        (
            w
            for w in active
            if w.lesson_id == lesson_id and w.team == team and w.work_item_ref is None
        ),
        None,
    )
    per_item = {
        w.work_item_ref
        for w in active
        if w.lesson_id == lesson_id and w.team == team and w.work_item_ref is not None
    }
    counted: list[Tier] = []
    for item in items:
        placement = item.entry.placement
        cell.tiers[item.adoption.tier.value] += 1
        if item.adoption.tier not in REACHED:
            continue  # withdrawn, or never delivered: nothing the team could act on
        if placement.work_item_ref in per_item:
            cell.waived_placements.append(placement.id)
            continue
        cell.placements.append(placement.id)
        counted.append(item.adoption.tier)
    cell.waiver = team_wide.id if team_wide else None
    all_waived = bool(cell.waived_placements) and not cell.placements
    cell.cell = cell_of(counted, waived=team_wide is not None or all_waived)
    return cell
