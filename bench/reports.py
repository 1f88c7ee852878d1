"""How long the adoption report and the compliance matrix take over a large ledger.

Seeds a migrated database (PostgreSQL by --database-url, else a temporary SQLite file) with N
placements over a quarter (90 days, 40 teams, 300 lessons of which 60 required, 200 rules) and
three signals per placement on average (ticks, unticks, dismissals, merges), then times
`ReportService.adoption` (by team) and `ComplianceService.matrix` over that quarter. The target
named by the project is under 2 s each at 1,000,000 placements and 3,000,000 signals.
Prints one JSON line.
"""

import argparse
import json
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from core.lesson import Lesson, LessonStatus, Mandate
from core.placement import EmbeddingForm, Placement, PlacementState, Signal, SignalKind
from core.work import System, WorkItem
from router.reports.adoption import Filters, GroupBy, ReportService
from router.reports.compliance import ComplianceService
from store import lessons, migrate
from store.documents import to_doc
from store.engine import Database
from store.tables import PlacementRow, SignalRow, WorkItemRow

START = datetime(2026, 7, 1, tzinfo=UTC)
KINDS = [
    SignalKind.TICKED,
    SignalKind.MERGED_CLEAN,
    SignalKind.DISMISSED,
    SignalKind.MERGED_UNCHECKED,
    SignalKind.UNTICKED,
]


def seed(db: Database, placements: int, seed_value: int, batch: int = 10_000) -> float:
    """Insert the synthetic quarter; returns seconds taken."""
    rnd = random.Random(seed_value)
    started = time.perf_counter()
    with db.transaction() as session:
        for n in range(300):
            mandate = Mandate.REQUIRED if n < 60 else Mandate.INVITED
            lesson = Lesson.model_validate(
                {
                    "id": f"lesson-{n}",
                    "version": 1,
                    "title": f"Lesson {n}",
                    "statement": "s",
                    "provenance": {"captured_by": "bench", "captured_at": START.isoformat()},
                    "owner": f"team-{n % 40}",
                    "mandate": mandate.value,
                    "status": LessonStatus.DRAFT.value,
                },
                strict=False,
            )
            lessons.add(session, lesson, START)
            lessons.publish(session, lesson.id, START)
        items = []
        for n in range(placements // 4 + 1):
            item = WorkItem(
                system=System.GITHUB,
                ref=f"github:acme/repo-{n % 500}#{n}",
                project=f"acme/repo-{n % 500}",
                type="pull_request",
                team=f"team-{n % 40}",
            )
            items.append(
                {
                    "ref": item.ref,
                    "system": "github",
                    "project": item.project,
                    "doc": to_doc(item),
                    "updated_at": START,
                }
            )
        session.execute(insert(WorkItemRow), items)
    made = 0
    while made < placements:
        rows, signals = [], []
        for n in range(made, min(made + batch, placements)):
            created = START + timedelta(seconds=rnd.randrange(90 * 86400))
            outcome = rnd.random()
            state = (
                PlacementState.COMPLETED
                if outcome < 0.5
                else PlacementState.DISMISSED
                if outcome < 0.6
                else PlacementState.EMBEDDED
            )
            placement = Placement(
                id=f"pl_{n:012d}",
                lesson_id=f"lesson-{rnd.randrange(300)}",
                lesson_version=1,
                work_item_ref=f"github:acme/repo-{(n // 4) % 500}#{n // 4}",
                rule_id=f"org/rule-{rnd.randrange(200)}",
                rule_set_version="bench",
                form=EmbeddingForm.GITHUB_PR_CHECKLIST,
                mandate=Mandate.REQUIRED if rnd.random() < 0.3 else Mandate.INVITED,
                due_at=created + timedelta(days=7),
                state=state,
                reason="n/a here" if state == PlacementState.DISMISSED else None,
                created_at=created,
                updated_at=created,
            )
            rows.append(
                {
                    "id": placement.id,
                    "effect_id": placement.effect_id + f"|{n}",
                    "lesson_id": placement.lesson_id,
                    "lesson_version": 1,
                    "work_item_ref": placement.work_item_ref,
                    "state": state.value,
                    "doc": to_doc(placement),
                    "created_at": created,
                    "updated_at": created,
                }
            )
            for k in range(rnd.choice((2, 3, 4))):
                at = created + timedelta(hours=rnd.randrange(1, 200))
                signal = Signal(
                    id=f"sg_{n:012d}_{k}",
                    placement_id=placement.id,
                    kind=KINDS[rnd.randrange(len(KINDS))],
                    at=at,
                    delivery_id=f"d{n}-{k}",
                )
                signals.append(
                    {
                        "id": signal.id,
                        "placement_id": placement.id,
                        "kind": signal.kind.value,
                        "at": at,
                        "doc": to_doc(signal),
                    }
                )
        with db.transaction() as session:
            session.execute(insert(PlacementRow), rows)
            session.execute(insert(SignalRow), signals)
        made += len(rows)
    return time.perf_counter() - started


def timed(action):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = action()
    return result, round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--placements", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="Default: a temporary SQLite file.")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'reports.db'}"
        db = Database(url)
        migrate.upgrade(db)
        seeded = seed(db, args.placements, args.seed)
        quarter = Filters(since=START, until=START + timedelta(days=90))
        now = START + timedelta(days=91)
        (rows, _), adoption_s = timed(
            lambda: ReportService(db).adoption(GroupBy.TEAM, quarter, now)
        )
        matrix, matrix_s = timed(lambda: ComplianceService(db).matrix(quarter, now))
        rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        db.dispose()
    print(
        json.dumps(
            {
                "bench": "reports",
                "backend": url.split(":")[0],
                "placements": args.placements,
                "signals_per_placement": 3,
                "seed_seconds": round(seeded, 1),
                "adoption_by_team_seconds": adoption_s,
                "adoption_rows": len(rows),
                "matrix_seconds": matrix_s,
                "max_rss_mb": rss_mb,
                "matrix_cells": len(matrix.cells),
                "target_seconds": 2,
            }
        )
    )


if __name__ == "__main__":
    main()
