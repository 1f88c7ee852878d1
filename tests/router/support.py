"""Helpers for tests that run the whole app in-process: start it, and wait for its pipeline."""

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr, TypeAdapter

import rules
from connectors import generic
from connectors.base import Enricher
from connectors.target import Target
from core.access import Role
from core.base import utcnow
from core.lesson import Lesson, LessonStatus
from core.work import System
from router.access.operator import cli_principal
from router.access.tokens import TokenService
from router.compose import build_runtime
from router.http.app import create_app
from router.settings import Settings
from store import lessons, migrate, outbox
from store.engine import Database

EXAMPLES = Path(rules.__file__).parent / "examples"
FIXTURES = Path(generic.__file__).parent / "fixtures"
PR = FIXTURES / "work_item_pull_request.json"
PR_REF = "github:acme/payments-api#481"


def publish_examples(db: Database) -> None:
    found = TypeAdapter(list[Lesson]).validate_json((EXAMPLES / "lessons.json").read_bytes())
    with db.transaction() as session:
        for lesson in found:
            lessons.add(session, lesson.model_copy(update={"status": LessonStatus.DRAFT}), utcnow())
            lessons.publish(session, lesson.id, utcnow())


# A draft lesson as a client would send it.
DRAFT = {
    "id": "derive-pool-size",
    "title": "Derive the database pool size from the worker count",
    "statement": "Recompute the pool limit whenever worker or thread counts change.",
    "provenance": {"captured_by": "dana", "captured_at": "2026-11-20T12:00:00Z"},
    "applicability": {"tags": ["connection-pool"], "services": ["payments-api"]},
    "owner": "platform",
    "severity_rank": 2,
}


def bearer(db: Database, name: str, role: str, *teams: str) -> dict[str, str]:
    """Headers carrying a new API token `name` with `role` (and teams, for owners)."""
    created = TokenService(db).create(name, Role(role), teams, None, cli_principal("tests"))
    return {"Authorization": f"Bearer {created.secret}"}


@contextmanager
def serving(
    database_url: str,
    secret: str,
    *,
    prepare: Callable[[Database], None] | None = None,
    targets: Mapping[System, Target] | None = None,
    enrichers: Mapping[str, Enricher] | None = None,
    **settings: Any,
) -> Iterator[tuple[TestClient, Database]]:
    """A migrated database (optionally seeded by `prepare`) and the app with its workers.

    `targets` stand in for the outside systems' connectors (contract fakes behind them). The
    client sends an admin token (`token:tests-admin`) unless a request gives its own headers.
    """
    db = Database(database_url)
    migrate.upgrade(db)
    if prepare is not None:
        prepare(db)
    config = Settings(
        database_url=SecretStr(database_url),
        generic_webhook_secret=SecretStr(secret),
        poll_interval=0.05,
        **settings,
    )
    try:
        app = create_app(build_runtime(config, targets=targets, enrichers=enrichers))
        with TestClient(app, headers=bearer(db, "tests-admin", "admin")) as client:
            yield client, db
    finally:
        db.dispose()


def drain(db: Database, seconds: float = 10.0) -> None:
    """Wait until no work is pending or leased; fail on a dead letter or on timeout."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with db.transaction() as session:
            counts = outbox.counts(session)
        if counts["pending"] + counts["leased"] == 0:
            assert counts["dead"] == 0, counts
            return
        time.sleep(0.05)
    raise AssertionError(f"pipeline did not drain: {counts}")
