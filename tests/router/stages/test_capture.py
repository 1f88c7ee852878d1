"""Capture: a resolved incident becomes one draft lesson with its provenance; later states of
the incident refresh that draft, never duplicate it."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.generic.webhook import sign
from router.access.operator import cli_principal
from router.lessons.service import LessonService
from store import audit, lessons
from store.engine import Database
from tests.router.support import FIXTURES, drain, serving

INCIDENT = json.loads((FIXTURES / "incident_resolved.json").read_text())
LESSON_ID = "from-generic-inc-2041"


@pytest.fixture
def service(database_url: str, webhook_secret: str) -> Iterator[tuple[TestClient, Database, str]]:
    with serving(database_url, webhook_secret) as (client, db):
        yield client, db, webhook_secret


def send(client: TestClient, secret: str, delivery: str, **changes: Any) -> None:
    body = json.dumps({**INCIDENT, "incident": {**INCIDENT["incident"], **changes}}).encode()
    response = client.post("/hooks/generic", content=body, headers=sign(secret, delivery, body))
    assert response.status_code == 202, response.text


def test_a_resolved_incident_becomes_a_draft_with_its_provenance(
    service: tuple[TestClient, Database, str],
) -> None:
    client, db, secret = service
    send(client, secret, "d1")
    drain(db)
    with db.transaction() as session:
        draft = lessons.get(session, LESSON_ID)
    assert draft is not None
    assert (draft.status.value, draft.version, draft.owner) == ("draft", 1, "payments")
    assert draft.provenance.source_incidents == ("generic:INC-2041",)
    assert [str(u) for u in draft.provenance.evidence_links] == [
        "https://wiki.example.com/postmortems/INC-2041",
        "https://status.example.com/incidents/INC-2041",
    ]
    assert draft.context.what_happened == INCIDENT["incident"]["summary"]
    assert draft.context.contributing_conditions == tuple(
        INCIDENT["incident"]["contributing_factors"]
    )
    assert draft.applicability.services == ("payments-api",)
    assert draft.severity_rank == 2


def test_later_states_refresh_the_same_draft(service: tuple[TestClient, Database, str]) -> None:
    client, db, secret = service
    send(client, secret, "d1", summary="", contributing_factors=[])
    drain(db)
    send(
        client,
        secret,
        "d2",
        status="postmortem_done",
        severity="critical",
        summary="Workers doubled, the pool did not.",
        contributing_factors=["pool size hard-coded"],
    )
    drain(db)
    with db.transaction() as session:
        drafts = lessons.list_lessons(session)
        actions = [e.action for e in audit.entries(session, subject=LESSON_ID)]
    assert [d.id for d in drafts] == [LESSON_ID]
    [draft] = drafts
    assert draft.statement == "Workers doubled, the pool did not."  # the placeholder is replaced
    assert draft.context.contributing_conditions == ("pool size hard-coded",)
    assert draft.severity_rank == 1
    assert actions == ["lesson.captured", "lesson.capture_refreshed"]


def test_open_incidents_are_not_captured_and_published_lessons_are_left_alone(
    service: tuple[TestClient, Database, str],
) -> None:
    client, db, secret = service
    send(client, secret, "d0", status="triggered")
    drain(db)
    with db.transaction() as session:
        assert lessons.list_lessons(session) == []
    send(client, secret, "d1")
    drain(db)
    review = LessonService(db)
    review.submit(LESSON_ID, cli_principal())
    review.approve(LESSON_ID, cli_principal())  # captured by cairn:capture, not the operator
    review.publish(LESSON_ID, cli_principal())
    send(client, secret, "d2", status="postmortem_done", summary="Changed afterwards")
    drain(db)
    with db.transaction() as session:
        published = lessons.get(session, LESSON_ID)
        last = audit.entries(session, subject=LESSON_ID)[-1]
    assert published is not None and published.statement == INCIDENT["incident"]["summary"]
    assert last.action == "lesson.capture_skipped"
