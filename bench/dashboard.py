"""How long each dashboard page takes to render over a large memory and ledger.

Seeds a database with `bench/reports.py`'s ledger (N placements over a quarter, three signals
each on average, 40 teams, 500 repositories) and adds published lessons up to `--lessons`, then
asks each page through the app in-process (an admin bearer token; the same handlers, templates
and queries a browser gets, without the network) `--rounds` times and prints the median
milliseconds per page and one JSON line. The project's target: every page under 300 ms with
10,000 lessons and 1,000,000 placements.

    .venv/bin/python bench/dashboard.py --placements 20000 --lessons 2000
    .venv/bin/python bench/dashboard.py --placements 1000000 --lessons 10000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/cairn_bench
"""

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.access import SYSTEM, Role
from core.lesson import Lesson, LessonStatus
from router.access.tokens import TokenService
from router.compose import build_runtime
from router.http.app import create_app
from router.settings import Settings
from store import lessons
from store.engine import Database

sys.path.insert(0, str(Path(__file__).parent))
import reports  # the ledger seeding of the reports bench

WORDS = ["pool", "retry", "timeout", "cache", "deploy", "queue", "index", "lock", "schema"]


def _more_lessons(url: str, total: int) -> None:
    db = Database(url)
    with db.transaction() as session:
        for n in range(reports.LESSONS, total):
            word, other = WORDS[n % len(WORDS)], WORDS[(n // 7) % len(WORDS)]
            lesson = Lesson.model_validate(
                {
                    "id": f"lesson-{n}",
                    "version": 1,
                    "title": f"Check the {word} before the {other} ({n})",
                    "statement": f"When you change the {word}, look at the {other} too.",
                    "provenance": {
                        "captured_by": "bench",
                        "captured_at": reports.START.isoformat(),
                    },
                    "owner": f"team-{n % reports.TEAMS}",
                    "applicability": {"tags": [word, other]},
                    "status": LessonStatus.DRAFT.value,
                },
                strict=False,
            )
            lessons.add(session, lesson, reports.START)
            lessons.publish(session, lesson.id, reports.START)
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--placements", type=int, default=1_000_000)
    parser.add_argument("--lessons", type=int, default=10_000)
    parser.add_argument("--database-url", default=None, help="An empty PostgreSQL database.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="The data is there already.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'dashboard.db'}"
        seeded = None
        if not args.reuse:
            started = time.perf_counter()
            receive, send = multiprocessing.Pipe(duplex=False)
            child = multiprocessing.get_context("fork").Process(
                target=reports._seed, args=(url, args.placements, 1, send)
            )
            child.start()
            receive.recv()
            child.join()
            _more_lessons(url, args.lessons)
            seeded = round(time.perf_counter() - started, 1)
        settings = Settings(database_url=SecretStr(url), broker_url=None)
        runtime = build_runtime(settings, consume=False)
        token = TokenService(runtime.db).create(
            f"bench-{time.monotonic_ns()}", Role.ADMIN, (), None, SYSTEM
        )
        quarter = "from=2026-07-01&to=2026-09-28"
        ref = quote(reports._work_item(0).ref, safe="")
        pages = {
            "overview": "/ui/?weeks=26",
            "lessons": "/ui/lessons",
            "search": "/ui/lessons?q=pool+retry&tag=pool",
            "lesson": "/ui/lessons/lesson-5",
            "review": "/ui/review",
            "compliance": f"/ui/compliance?{quarter}",
            "cell": f"/ui/compliance/cell?lesson=lesson-0&team=team-0&{quarter}",
            "rules": "/ui/rules",
            "work_item": f"/ui/work/{ref}",
        }
        timings: dict[str, list[float]] = {}
        with TestClient(
            create_app(runtime), headers={"Authorization": f"Bearer {token.secret}"}
        ) as client:
            for name, path in pages.items():
                taken = []
                for _ in range(args.rounds):
                    started = time.perf_counter()
                    answer = client.get(path)
                    taken.append(round((time.perf_counter() - started) * 1000, 1))
                    if answer.status_code != 200:
                        raise SystemExit(f"{path}: {answer.status_code} {answer.text[:300]}")
                timings[name] = taken
                print(f"{name:<12} {statistics.median(taken):>9.1f} ms  {path}", flush=True)
        counted = reports._counts(runtime.db)
        runtime.db.dispose()
    print(
        json.dumps(
            {
                "bench": "dashboard",
                "backend": runtime.db.dialect,
                "placements": counted[0],
                "signals": counted[1],
                "lessons": args.lessons,
                "seed_seconds": seeded,
                "median_ms": {k: statistics.median(v) for k, v in timings.items()},
                "rounds_ms": timings,
                "target_ms": 300,
            }
        )
    )


if __name__ == "__main__":
    main()
