"""The reports counted by the database equal the same reports worked out in Python.

A generated ledger (random states, signals, due dates, teams, work items never recorded, ticks
in sweeps, dismissal reasons) goes in through the store as the pipeline writes it; the adoption
report (every grouping, several filters) and the compliance matrix are then compared with
`core.adoption.report` and `core.compliance.cell_of` over every placement assessed in Python.
The migration that adds the report columns fills them in for rows written before it.
"""

import random
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.adoption import AT_REST, REACHED, assess, report, theatre_flags, tier_now, tier_of
from core.compliance import cell_of
from core.feedback import MANDATED
from core.lesson import Mandate
from core.placement import EmbeddingForm, Placement, PlacementState, Signal, SignalKind
from core.work import System, WorkItem
from router.reports.adoption import Filters, GroupBy, ReportService
from router.reports.compliance import ComplianceService
from store import ledger, migrate, placements, work_items
from store.documents import to_doc
from store.engine import Database
from store.tables import PlacementRow

T0 = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
TEAMS = ["payments", "ledger", None]
KINDS = list(SignalKind)


def _ledger(
    rnd: random.Random, count: int
) -> tuple[list[WorkItem], list[tuple[Placement, list[Signal]]]]:
    items = [
        WorkItem(
            system=System.GITHUB,
            ref=f"github:acme/repo-{n % 3}#{n}",
            project=f"acme/repo-{n % 3}",
            type="pull_request",
            team=TEAMS[n % 3],
        )
        for n in range(count // 5)
    ]
    found = []
    for n in range(count):
        created = T0 + timedelta(
            seconds=rnd.randrange(20 * 86400), microseconds=rnd.randrange(10**6)
        )
        state = rnd.choice(list(PlacementState))
        at = rnd.randrange(count // 4)  # about four placements a work item, some never recorded
        ref = f"github:acme/repo-{at % 3}#{at}"
        placement = Placement(
            id=f"p{n:04d}",
            lesson_id=f"lesson-{rnd.randrange(6)}",
            lesson_version=1 + n // 1000,
            work_item_ref=ref,
            rule_id=f"org/rule-{rnd.randrange(4)}",
            rule_set_version="v",
            form=EmbeddingForm.GITHUB_PR_CHECKLIST,
            mandate=rnd.choice(list(Mandate)),
            due_at=None if rnd.random() < 0.3 else created + timedelta(days=rnd.randrange(1, 15)),
            state=state,
            reason=rnd.choice([None, "n/a", "not here", "duplicate"])
            if state == PlacementState.DISMISSED
            else None,
            created_at=created,
            updated_at=created,
        )
        signals = []
        sweep = rnd.random() < 0.4
        for k in range(rnd.randrange(4)):
            at = created + timedelta(
                seconds=rnd.choice([5, 20, 3600]) if sweep else rnd.randrange(1, 9 * 86400)
            )
            signals.append(
                Signal(
                    id=f"s{n:04d}-{k}",
                    placement_id=placement.id,
                    kind=SignalKind.TICKED if sweep else rnd.choice(KINDS),
                    at=at,
                    delivery_id="edit-1" if sweep else f"d{n}-{k}",
                )
            )
        found.append((placement, signals))
    return items, found


def test_only_a_passing_due_date_changes_a_tier_with_time() -> None:
    """What lets the database keep the tier as a column: the tier at any moment is the tier at
    rest, turned `overdue` when the due date has passed."""
    _, found = _ledger(random.Random(9), 600)
    for placement, signals in found:
        at_rest = tier_of(placement, signals, AT_REST)
        for now in (T0, T0 + timedelta(days=9), NOW):
            assert tier_of(placement, signals, now) == tier_now(at_rest, placement.due_at, now)


def _seed(db: Database, seed: int, count: int = 240) -> None:
    items, found = _ledger(random.Random(seed), count)
    with db.transaction() as session:
        for item in items:
            work_items.record(session, item, T0)
        for placement, signals in found:
            placements.add(session, placement)
            for signal in signals:
                placements.add_signal(session, signal)


def _python(db: Database, by: GroupBy, filters: Filters) -> list[dict[str, Any]]:
    """The report as it was computed before the database did it, theatre judged over every
    placement of a work item."""
    with db.transaction() as session:
        every = list(ledger.entries(session))
    flags = theatre_flags((e.placement, e.signals) for e in every)
    keys = {
        GroupBy.LESSON: lambda e: e.placement.lesson_id,
        GroupBy.TEAM: lambda e: e.team,
        GroupBy.RULE: lambda e: e.placement.rule_id,
        GroupBy.REPOSITORY: lambda e: e.project,
    }
    chosen = []
    for e in every:
        p = e.placement
        adoption = replace(assess(p, list(e.signals), NOW), theatre=flags.get(p.id, frozenset()))
        if (
            (filters.lessons and p.lesson_id not in filters.lessons)
            or (filters.teams and e.team not in filters.teams)
            or (filters.projects and (e.work_item is None or e.project not in filters.projects))
            or (filters.since and p.created_at < filters.since)
            or (filters.until and p.created_at >= filters.until)
        ):
            continue
        chosen.append((keys[by](e), adoption))
    rows = report(chosen)
    total = report(("(all)", a) for _, a in chosen)
    return [r.as_dict() for r in [*rows, *total]]


FILTERS = [
    Filters(),
    Filters(since=T0 + timedelta(days=3), until=T0 + timedelta(days=11)),
    Filters(teams=["payments", "(no team)"]),
    Filters(lessons=["lesson-1", "lesson-4"], projects=["acme/repo-2"]),
]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_database_counts_what_python_counts(db: Database, seed: int) -> None:
    _seed(db, seed)
    service = ReportService(db)
    for filters in FILTERS:
        for by in GroupBy:
            rows, total = service.adoption(by, filters, NOW)
            found = [r.as_dict() for r in [*rows, total]]
            expected = _python(db, by, filters)
            if not expected:  # nothing selected: the total is an empty row either way
                expected = [found[-1]]
            assert found == expected, (by, filters)


def test_the_matrix_counted_by_the_database_matches_python(db: Database) -> None:
    _seed(db, 3, count=300)
    matrix = ComplianceService(db).matrix(Filters(), NOW)
    assessed = ReportService(db).assessed(Filters(), NOW)
    mandated = sorted(
        {a.entry.placement.lesson_id for a in assessed if a.entry.placement.mandate in MANDATED}
    )
    assert matrix.lessons == mandated  # no lesson is published: mandated by placements only
    teams = sorted({a.entry.team for a in assessed if a.entry.placement.lesson_id in mandated})
    assert matrix.teams == teams
    by_cell: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for a in assessed:
        by_cell[(a.entry.placement.lesson_id, a.entry.team)].append(a)
    for key, cell in matrix.cells.items():
        items = by_cell[key]
        reached = [a for a in items if a.adoption.tier in REACHED]
        assert cell.tiers == Counter(a.adoption.tier.value for a in items), key
        assert cell.placements == [a.entry.placement.id for a in reached], key
        assert cell.cell == cell_of([a.adoption.tier for a in reached], waived=False), key
    quick = ComplianceService(db).matrix(Filters(), NOW, detail=False)
    assert {k: c.cell for k, c in quick.cells.items()} == {
        k: c.cell for k, c in matrix.cells.items()
    }
    assert "placements" not in quick.as_dict()["cells"][0]


def test_the_report_columns_follow_the_work_item_team(db: Database) -> None:
    _seed(db, 4, count=60)
    with db.transaction() as session:
        ref = session.scalars(
            sa.select(PlacementRow.work_item_ref).where(PlacementRow.team == "payments")
        ).first()
        assert ref is not None
        item = work_items.get(session, ref)
        assert item is not None
        work_items.record(session, item.model_copy(update={"team": "ledger"}), NOW)
    rows, _ = ReportService(db).adoption(GroupBy.TEAM, Filters(), NOW)
    assert [r.as_dict() for r in rows] == _python(db, GroupBy.TEAM, Filters())[:-1]


def test_the_migration_fills_in_rows_written_before_it(database_url: str) -> None:
    db = Database(database_url)
    migrate.upgrade(db, "0006")
    items, found = _ledger(random.Random(5), 90)
    old_placements = sa.table(
        "placements",
        *(
            sa.column(c)
            for c in ("id", "effect_id", "lesson_id", "lesson_version", "work_item_ref", "state")
        ),
        sa.column("doc", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    old_signals = sa.table(
        "signals",
        *(sa.column(c) for c in ("id", "placement_id", "kind")),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("doc", sa.JSON()),
    )
    from store.tables import UtcDateTime

    stamp = UtcDateTime()
    with db.engine.begin() as conn:
        dialect = conn.dialect
        for item in items:
            conn.execute(
                sa.text(
                    "INSERT INTO work_items (ref, system, project, doc, updated_at) "
                    "VALUES (:ref, 'github', :project, :doc, :at)"
                ).bindparams(
                    sa.bindparam("doc", type_=sa.JSON()), sa.bindparam("at", type_=UtcDateTime())
                ),
                {"ref": item.ref, "project": item.project, "doc": to_doc(item), "at": T0},
            )
        for placement, signals in found:
            conn.execute(
                old_placements.insert().values(
                    id=placement.id,
                    effect_id=placement.effect_id + placement.id,
                    lesson_id=placement.lesson_id,
                    lesson_version=placement.lesson_version,
                    work_item_ref=placement.work_item_ref,
                    state=placement.state.value,
                    doc=to_doc(placement),
                    created_at=stamp.process_bind_param(placement.created_at, dialect),
                    updated_at=stamp.process_bind_param(placement.updated_at, dialect),
                )
            )
            for signal in signals:
                conn.execute(
                    old_signals.insert().values(
                        id=signal.id,
                        placement_id=signal.placement_id,
                        kind=signal.kind.value,
                        at=stamp.process_bind_param(signal.at, dialect),
                        doc=to_doc(signal),
                    )
                )
    migrate.upgrade(db)
    migrated = [
        r.as_dict() for by in GroupBy for r in [*ReportService(db).adoption(by, Filters(), NOW)[0]]
    ]
    # The same ledger written through the store, in a second database, reports the same.
    expected = [r for by in GroupBy for r in _python(db, by, Filters())[:-1]]
    assert migrated == expected
    with db.transaction() as session:
        teams = {
            pid: team
            for pid, team in session.execute(sa.select(PlacementRow.id, PlacementRow.team))
        }
    by_ref = {item.ref: item.team for item in items}
    assert teams == {p.id: by_ref.get(p.work_item_ref) for p, _ in found}
    db.dispose()
