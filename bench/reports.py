"""How long the adoption report and the compliance matrix take over a large ledger.

Seeds a migrated database (PostgreSQL by --database-url, else a temporary SQLite file) with N
placements over a quarter (90 days, 40 teams, 500 repositories, 300 lessons of which 60
required, 200 rules, four placements per work item) and 2 to 4 signals per placement (3 on
average: ticks, unticks, dismissals, merges). Each row gets its report columns from the same
code the service uses (`store.ledger.report_columns`, theatre judged per work item); PostgreSQL
is filled with COPY, then `VACUUM ANALYZE` stands in for autovacuum. Seeding runs in a child
process, so the peak memory printed for the reports is the reports' own.

It then times, each over the quarter and `--rounds` times (all rounds printed, the median
kept): `ReportService.adoption` by team, `ComplianceService.matrix` with the placement ids of
every cell (as the API and the CSV/JSON give it), and the matrix of cells alone (the CLI's
table). The target named by the project is under 2 s each at 1,000,000 placements and
3,000,000 signals. Prints one JSON line.

    .venv/bin/python bench/reports.py --placements 20000
    .venv/bin/python bench/reports.py --placements 1000000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/cairn_bench
"""

import argparse
import json
import multiprocessing
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from core.adoption import theatre_flags
from core.lesson import Lesson, LessonStatus, Mandate
from core.placement import EmbeddingForm, Placement, PlacementState, Signal, SignalKind
from core.work import System, WorkItem
from router.reports.adoption import Filters, GroupBy, ReportService
from router.reports.compliance import ComplianceService
from store import lessons, migrate, tallies
from store.engine import Database
from store.ledger import report_columns, theatre_text
from store.tables import PlacementRow, SignalRow, WorkItemEventRow, WorkItemRow

START = datetime(2026, 7, 1, tzinfo=UTC)
TEAMS, REPOSITORIES, LESSONS, REQUIRED, RULES = 40, 500, 300, 60, 200
KINDS = [
    SignalKind.TICKED,
    SignalKind.MERGED_CLEAN,
    SignalKind.DISMISSED,
    SignalKind.MERGED_UNCHECKED,
    SignalKind.UNTICKED,
]
PLACEMENT_COLUMNS = [
    "id",
    "effect_id",
    "lesson_id",
    "lesson_version",
    "work_item_ref",
    "state",
    "doc",
    "created_at",
    "updated_at",
    "team",
    "project",
    "rule_id",
    "mandate",
    "due_at",
    "week",
    "tier",
    "acknowledged_after",
    "verified_after",
    "dismissal_reason",
    "theatre",
]
SIGNAL_COLUMNS = ["id", "placement_id", "kind", "at", "doc"]


def _work_item(n: int) -> WorkItem:
    return WorkItem(
        system=System.GITHUB,
        ref=f"github:acme/repo-{n % REPOSITORIES}#{n}",
        project=f"acme/repo-{n % REPOSITORIES}",
        type="pull_request",
        team=f"team-{n % TEAMS}",
    )


def _placement(n: int, rnd: random.Random) -> tuple[Placement, list[Signal]]:
    """Placement n (of work item n // 4) and its signals; unvalidated for speed, the same
    values every run for one seed."""
    created = START + timedelta(seconds=rnd.randrange(90 * 86400))
    outcome = rnd.random()
    state = (
        PlacementState.COMPLETED
        if outcome < 0.5
        else PlacementState.DISMISSED
        if outcome < 0.6
        else PlacementState.EMBEDDED
    )
    item = n // 4
    placement = Placement.model_construct(
        id=f"pl_{n:012d}",
        lesson_id=f"lesson-{rnd.randrange(LESSONS)}",
        lesson_version=1,
        work_item_ref=f"github:acme/repo-{item % REPOSITORIES}#{item}",
        rule_id=f"org/rule-{rnd.randrange(RULES)}",
        rule_set_version="bench",
        form=EmbeddingForm.GITHUB_PR_CHECKLIST,
        mandate=Mandate.REQUIRED if rnd.random() < 0.3 else Mandate.INVITED,
        due_at=created + timedelta(days=7),
        state=state,
        handle=None,
        text="",
        reason="n/a here" if state == PlacementState.DISMISSED else None,
        observed_at=None,
        created_at=created,
        updated_at=created,
    )
    signals = [
        Signal.model_construct(
            id=f"sg_{n:012d}_{k}",
            placement_id=placement.id,
            kind=KINDS[rnd.randrange(len(KINDS))],
            actor=None,
            at=created + timedelta(hours=rnd.randrange(1, 200)),
            reason=None,
            delivery_id=f"d{n}-{k}",
        )
        for k in range(rnd.choice((2, 3, 4)))
    ]
    signals.sort(key=lambda s: (s.at, s.id))
    return placement, signals


def _rows(placements: int, seed: int) -> Iterator[tuple[list[Any], list[list[Any]]]]:
    """Placement rows and their signal rows, a work item (four placements) at a time."""
    rnd = random.Random(seed)
    for first in range(0, placements, 4):
        group = [_placement(n, rnd) for n in range(first, min(first + 4, placements))]
        flags = theatre_flags(group)
        item = _work_item(first // 4)
        for placement, signals in group:
            columns = report_columns(placement, signals)
            columns["theatre"] = theatre_text(flags.get(placement.id, ()))
            columns["team"], columns["project"] = item.team, item.project
            values = {
                "id": placement.id,
                "effect_id": f"{placement.effect_id}|{placement.id}",
                "lesson_id": placement.lesson_id,
                "lesson_version": 1,
                "work_item_ref": placement.work_item_ref,
                "state": placement.state.value,
                "doc": placement.model_dump_json(),
                "created_at": placement.created_at,
                "updated_at": placement.updated_at,
                **columns,
            }
            yield (
                [values[c] for c in PLACEMENT_COLUMNS],
                [[s.id, s.placement_id, s.kind.value, s.at, s.model_dump_json()] for s in signals],
            )


def _lessons(db: Database) -> None:
    with db.transaction() as session:
        for n in range(LESSONS):
            lesson = Lesson.model_validate(
                {
                    "id": f"lesson-{n}",
                    "version": 1,
                    "title": f"Lesson {n}",
                    "statement": "s",
                    "provenance": {"captured_by": "bench", "captured_at": START.isoformat()},
                    "owner": f"team-{n % TEAMS}",
                    "mandate": (Mandate.REQUIRED if n < REQUIRED else Mandate.INVITED).value,
                    "status": LessonStatus.DRAFT.value,
                },
                strict=False,
            )
            lessons.add(session, lesson, START)
            lessons.publish(session, lesson.id, START)


def _work_items(count: int) -> Iterator[tuple[list[Any], list[Any]]]:
    """(work item row, its one observed event) per work item."""
    for n in range(count):
        item = _work_item(n)
        doc = item.model_dump_json()
        yield (
            [item.ref, "github", item.project, doc, START],
            [item.ref, START, doc],
        )


def _seed_postgresql(db: Database, placements: int, seed: int) -> None:
    # Two connections, so placements and their signals stream side by side.
    raw, other = db.engine.raw_connection(), db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        items = list(_work_items((placements + 3) // 4))
        with cursor.copy(
            "COPY work_items (ref, system, project, doc, updated_at) FROM STDIN"
        ) as copy:
            for row, _ in items:
                copy.write_row(row)
        with cursor.copy("COPY work_item_events (ref, observed_at, doc) FROM STDIN") as copy:
            for _, event in items:
                copy.write_row(event)
        del items
        with (
            cursor.copy(f"COPY placements ({', '.join(PLACEMENT_COLUMNS)}) FROM STDIN") as rows,
            other.cursor().copy(f"COPY signals ({', '.join(SIGNAL_COLUMNS)}) FROM STDIN") as sent,
        ):
            for row, found in _rows(placements, seed):
                rows.write_row(row)
                for signal in found:
                    sent.write_row(signal)
        raw.commit()
        other.commit()
    finally:
        raw.close()
        other.close()
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def _seed_sqlite(db: Database, placements: int, seed: int, batch: int = 10_000) -> None:
    with db.transaction() as session:
        rows, events = [], []
        for row, _event in _work_items((placements + 3) // 4):
            ref, system, project, doc, at = row
            rows.append(
                {
                    "ref": ref,
                    "system": system,
                    "project": project,
                    "doc": json.loads(doc),
                    "updated_at": at,
                }
            )
            events.append({"ref": ref, "observed_at": at, "doc": json.loads(doc)})
        session.execute(insert(WorkItemRow), rows)
        session.execute(insert(WorkItemEventRow), events)
    placed: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    for row, found in _rows(placements, seed):
        values = dict(zip(PLACEMENT_COLUMNS, row, strict=True))
        values["doc"] = json.loads(values["doc"])
        placed.append(values)
        signals += [
            {**dict(zip(SIGNAL_COLUMNS, s, strict=True)), "doc": json.loads(s[4])} for s in found
        ]
        if len(placed) >= batch:
            _insert(db, placed, signals)
            placed, signals = [], []
    _insert(db, placed, signals)
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))


def _insert(db: Database, placed: list[dict[str, Any]], signals: list[dict[str, Any]]) -> None:
    if placed:
        with db.transaction() as session:
            session.execute(insert(PlacementRow), placed)
            session.execute(insert(SignalRow), signals)


def _seed(url: str, placements: int, seed: int, report: Any) -> None:
    """Migrate and fill the database (in a child process); send back seconds and peak RSS."""
    started = time.perf_counter()
    db = Database(url)
    migrate.upgrade(db)
    _lessons(db)
    if db.dialect == "postgresql":
        _seed_postgresql(db, placements, seed)
    else:
        _seed_sqlite(db, placements, seed)
    # The rows went in by bulk load, past store/placements.py: count them into the tallies.
    with db.transaction() as session:
        tallies.rebuild(session)
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE placement_tallies, lesson_days")
            )
    db.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    report.send((time.perf_counter() - started, rss))


def _counts(db: Database) -> tuple[int, int]:
    with db.transaction() as session:
        placed = session.scalar(select(func.count()).select_from(PlacementRow)) or 0
        signals = session.scalar(select(func.count()).select_from(SignalRow)) or 0
    return placed, signals


def _rounds(action: Callable[[], Any], rounds: int) -> tuple[Any, list[float]]:
    taken, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = action()
        taken.append(round(time.perf_counter() - started, 3))
    return result, taken


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--placements", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=None,
        help="An empty database (PostgreSQL); default: a temporary SQLite file.",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="The database already holds this bench's data: time the reports only.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'reports.db'}"
        seed_seconds, seed_rss = None, None
        if not args.reuse:
            receive, send = multiprocessing.Pipe(duplex=False)
            child = multiprocessing.get_context("fork").Process(
                target=_seed, args=(url, args.placements, args.seed, send)
            )
            child.start()
            seed_seconds, seed_rss = receive.recv()
            child.join()
        db = Database(url)
        placed, signals = _counts(db)
        quarter = Filters(since=START, until=START + timedelta(days=90))
        now = START + timedelta(days=91)
        (rows, _), adoption = _rounds(
            lambda: ReportService(db).adoption(GroupBy.TEAM, quarter, now), args.rounds
        )
        compliance = ComplianceService(db)
        matrix, listed = _rounds(lambda: compliance.matrix(quarter, now), args.rounds)
        _, cells = _rounds(lambda: compliance.matrix(quarter, now, detail=False), args.rounds)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        db.dispose()
    print(
        json.dumps(
            {
                "bench": "reports",
                "backend": db.dialect,
                "placements": placed,
                "signals": signals,
                "seed_seconds": None if seed_seconds is None else round(seed_seconds, 1),
                "seed_max_rss_mb": seed_rss,
                "adoption_by_team_seconds": statistics.median(adoption),
                "adoption_rounds": adoption,
                "adoption_rows": len(rows),
                "matrix_seconds": statistics.median(listed),
                "matrix_rounds": listed,
                "matrix_cells_only_seconds": statistics.median(cells),
                "matrix_cells_only_rounds": cells,
                "matrix_cells": len(matrix.cells),
                "matrix_placements_listed": sum(len(c.placements) for c in matrix.cells.values()),
                "reports_max_rss_mb": rss_mb,
                "target_seconds": 2,
            }
        )
    )


if __name__ == "__main__":
    main()
