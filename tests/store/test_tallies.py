"""The tallies give the same counts as the placements they count, at any moment.

A generated ledger goes in through the store as the pipeline writes it (placements, then their
signals, then state changes); every count the tallies answer (in total, per ISO week, per rule,
the lessons placed) is compared with the same count made over the placements table, for
periods starting on several days and at moments that put due dates on either side of `now`,
including the day a due date falls on. Folding the deltas changes nothing, also while writers
append; a rebuild after a bulk load gives the same tallies; the migration fills them in for
placements written before it.
"""

import random
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.base import utcnow
from core.placement import PlacementState
from router.reports.adoption import Filters, GroupBy, ReportService
from store import ledger, migrate, placements, tallies
from store.documents import to_doc
from store.engine import Database
from store.tables import LessonDayRow, PlacementRow, PlacementTallyRow
from tests.router.reports.test_sql_reports import NOW, T0, _ledger, _seed

MOMENTS = [
    T0 + timedelta(days=3, hours=13, minutes=7),
    T0 + timedelta(days=11, hours=2),
    NOW,
]


def _by_sql(db: Database, by: str | None, since: object, now: object) -> object:
    with db.transaction() as session:
        return ledger.tier_counts(session, by, Filters(since=since), now)  # type: ignore[arg-type]


def _by_tallies(db: Database, by: str | None, since: object, now: object) -> object:
    with db.transaction() as session:
        day = None if since is None else tallies.day_of(since)  # type: ignore[arg-type]
        return tallies.counts(session, by, day, now)  # type: ignore[arg-type]


def _same_everywhere(db: Database) -> int:
    """Compare every tallied count with the placements; how many comparisons were made."""
    compared = 0
    for now in MOMENTS:
        for start in (None, T0, T0 + timedelta(days=4), T0 + timedelta(days=12)):
            since = None if start is None else tallies.start_of(start.date())
            for by in (None, "week", "rule"):
                expected = _by_sql(db, by, since, now)
                assert expected, (by, since)  # the comparison must be about something
                assert _by_tallies(db, by, since, now) == expected, (by, since, now)
                compared += 1
            with db.transaction() as session:
                day = None if since is None else since.date()
                assert tallies.lessons_placed(session, day) == ledger.lesson_ids(
                    session, Filters(since=since), now
                )
    return compared


def _change_states(db: Database, seed: int) -> None:
    """Move some placements on (dismissed, withdrawn, a new due date) as the pipeline does."""
    rnd = random.Random(seed)
    with db.transaction() as session:
        ids = session.scalars(sa.select(PlacementRow.id).order_by(PlacementRow.id)).all()
        for placement_id in ids[::7]:
            placement = placements.get(session, placement_id)
            assert placement is not None
            due = placement.created_at + timedelta(days=rnd.randrange(1, 20))
            state = rnd.choice([PlacementState.DISMISSED, PlacementState.WITHDRAWN])
            changed = {"state": state, "due_at": due, "updated_at": utcnow()}
            placements.update(session, placement.model_copy(update=changed))


def test_the_tallies_count_what_the_placements_hold(db: Database) -> None:
    _seed(db, 5)
    assert _same_everywhere(db) == 36
    _change_states(db, 5)
    _same_everywhere(db)
    with db.transaction() as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(PlacementTallyRow))
        tallies.compact(session)
        after = session.scalar(sa.select(sa.func.count()).select_from(PlacementTallyRow))
    assert before is not None and after is not None and after < before
    _same_everywhere(db)


def test_a_day_boundary_splits_delivered_from_overdue_exactly(db: Database) -> None:
    """Every moment of one day a due date falls on: the tallies agree with the placements."""
    _seed(db, 6)
    with db.transaction() as session:
        dues = sorted(
            d
            for d in session.scalars(
                sa.select(PlacementRow.due_at).where(PlacementRow.tier == "delivered")
            )
            if d is not None
        )
    assert dues
    due = dues[len(dues) // 2]
    for now in (due - timedelta(microseconds=1), due, due + timedelta(microseconds=1)):
        for by in (None, "rule"):
            assert _by_tallies(db, by, None, now) == _by_sql(db, by, None, now), now


def test_the_report_service_reads_tallies_only_for_whole_days(db: Database) -> None:
    _seed(db, 7)
    service = ReportService(db)
    midnight = tallies.start_of((T0 + timedelta(days=2)).date())
    for filters in (Filters(since=midnight), Filters(since=midnight + timedelta(hours=5))):
        with db.transaction() as session:
            expected = ledger.tier_counts(session, "rule", filters, NOW)
        assert service.tier_counts(GroupBy.RULE, filters, NOW) == expected
        assert tallies.answers(filters) == (filters.since == midnight)
    assert not tallies.answers(Filters(since=midnight, teams=["payments"]))


def test_folding_while_writers_append_loses_nothing(postgres_url: str) -> None:
    """Writers append deltas while the sweep folds them, on PostgreSQL's real concurrency."""
    db = Database(postgres_url)
    migrate.upgrade(db)
    _, found = _ledger(random.Random(8), 400)
    errors: list[BaseException] = []

    def write(chunk: list[int]) -> None:
        try:
            for n in chunk:
                own = found[n][0].model_copy(update={"work_item_ref": f"github:acme/r#{n}"})
                with db.transaction() as session:
                    placements.add(session, own)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(list(range(k, 400, 3)),)) for k in range(3)]
    for writer in writers:
        writer.start()
    folds = 0
    while any(w.is_alive() for w in writers):
        with db.transaction() as session:
            tallies.compact(session)
        folds += 1
    for writer in writers:
        writer.join()
    assert not errors
    assert folds > 1
    with db.transaction() as session:
        total = session.scalar(sa.select(sa.func.sum(PlacementTallyRow.n)))
        lessons = session.scalar(sa.select(sa.func.sum(LessonDayRow.n)))
        placed = session.scalar(sa.select(sa.func.count()).select_from(PlacementRow))
    assert total == placed and lessons == placed
    assert _by_tallies(db, "rule", None, NOW) == _by_sql(db, "rule", None, NOW)
    db.dispose()


def test_a_rebuild_gives_the_tallies_the_writes_gave(db: Database) -> None:
    _seed(db, 9)
    _change_states(db, 9)
    expected = {by: _by_tallies(db, by, None, NOW) for by in (None, "week", "rule")}
    with db.transaction() as session:
        tallies.rebuild(session)
    assert {by: _by_tallies(db, by, None, NOW) for by in (None, "week", "rule")} == expected


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migration_counts_placements_written_before_it(
    backend: str, sqlite_url: str, postgres_url: str
) -> None:
    db = Database(sqlite_url if backend == "sqlite" else postgres_url)
    migrate.upgrade(db, "0011")
    _, generated = _ledger(random.Random(10), 120)
    found = [
        (p.model_copy(update={"work_item_ref": f"github:acme/r#{n}"}), signals)
        for n, (p, signals) in enumerate(generated)
    ]
    with db.transaction() as session:
        for placement, _signals in found:
            columns = ledger.report_columns(placement, ())
            session.execute(
                sa.insert(PlacementRow).values(
                    id=placement.id,
                    effect_id=placement.effect_id,
                    lesson_id=placement.lesson_id,
                    lesson_version=placement.lesson_version,
                    work_item_ref=placement.work_item_ref,
                    state=placement.state.value,
                    doc=to_doc(placement),
                    created_at=placement.created_at,
                    updated_at=placement.updated_at,
                    **columns,
                )
            )
    migrate.upgrade(db)
    for by in (None, "week", "rule"):
        assert _by_tallies(db, by, None, NOW) == _by_sql(db, by, None, NOW)
    with db.transaction() as session:
        assert tallies.lessons_placed(session, None) == sorted({p.lesson_id for p, _ in found})
    db.dispose()


def test_the_matrix_finds_rule_mandated_lessons_the_same_either_way(db: Database) -> None:
    """From the tallies (a period of whole days) or from the placements (any other period)."""
    from router.reports.compliance import ComplianceService

    _seed(db, 11, count=300)
    midnight = tallies.start_of(T0.date())
    whole = Filters(since=midnight, until=tallies.start_of(NOW.date()) + timedelta(days=1))
    ragged = Filters(since=T0 - timedelta(hours=1), until=NOW + timedelta(hours=1))
    assert tallies.whole_days(whole) is not None and tallies.whole_days(ragged) is None
    service = ComplianceService(db)
    fast, slow = service.matrix(whole, NOW), service.matrix(ragged, NOW)
    assert fast.lessons and fast.lessons == slow.lessons
    assert {k: c.as_dict() for k, c in fast.cells.items()} == {
        k: c.as_dict() for k, c in slow.cells.items()
    }


def test_the_ledger_sweep_folds_the_tallies(db: Database) -> None:
    from router.overdue import OverdueSweeper

    _seed(db, 12, count=60)
    _change_states(db, 12)
    with db.transaction() as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(PlacementTallyRow))
    OverdueSweeper(db, 60.0)._sweep()
    with db.transaction() as session:
        after = session.scalar(sa.select(sa.func.count()).select_from(PlacementTallyRow))
    assert before is not None and after is not None and after < before
