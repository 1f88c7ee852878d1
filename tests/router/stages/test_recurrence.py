"""Recurrence end to end: signed incidents through the HTTP app find the published lessons they
repeat, once per (incident, lesson), with what became of the lessons' placements."""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.generic.webhook import sign
from core.base import utcnow
from core.placement import PlacementState
from store import audit, placements
from store.engine import Database
from tests.router.support import EXAMPLES, FIXTURES, PR, PR_REF, drain, publish_examples, serving

INCIDENT = json.loads((FIXTURES / "incident_resolved.json").read_text())


@pytest.fixture
def app(
    database_url: str, webhook_secret: str, tmp_path: Path
) -> Iterator[tuple[TestClient, Database, str]]:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("organisation.yaml", "team-payments.yaml"):
        shutil.copy(EXAMPLES / name, rules / name)
    with serving(database_url, webhook_secret, prepare=publish_examples, rules_path=rules) as (
        client,
        db,
    ):
        yield client, db, webhook_secret


def post(client: TestClient, secret: str, delivery: str, body: bytes) -> None:
    response = client.post("/hooks/generic", content=body, headers=sign(secret, delivery, body))
    assert response.status_code == 202, response.text


def incident(external_id: str, status: str, **changes: Any) -> bytes:
    fields = {"external_id": external_id, "status": status, "started_at": None, **changes}
    return json.dumps({**INCIDENT, "incident": {**INCIDENT["incident"], **fields}}).encode()


def test_an_incident_repeating_a_placed_lesson_is_recorded_once(
    app: tuple[TestClient, Database, str],
) -> None:
    client, db, secret = app
    post(client, secret, "pr-1", PR.read_bytes())
    drain(db)
    with db.transaction() as session:
        [placed] = placements.for_work_item(session, PR_REF)
        placements.update(
            session,
            placed.model_copy(update={"state": PlacementState.DISMISSED, "updated_at": utcnow()}),
        )

    for number, status in enumerate(("triggered", "acknowledged", "resolved")):
        post(client, secret, f"inc-3000-{number}", incident("INC-3000", status))
        drain(db)

    found = client.get("/api/v1/lessons/derive-pool-size/recurrences")
    assert found.status_code == 200, found.text
    [recurrence] = found.json()
    assert recurrence["incident_ref"] == "generic:INC-3000"
    assert recurrence["lesson_version"] == 1
    assert recurrence["matched_on"] == {
        "services": ["payments-api"],
        "components": [],
        "tags": ["database", "connection-pool"],
        "teams": [],
    }
    assert (recurrence["placed"], recurrence["placement_states"]) == (True, {"dismissed": 1})
    [outcome] = recurrence["placements"]
    assert (outcome["work_item_ref"], outcome["related_by"]) == (
        PR_REF,
        ["team:payments", "service:payments-api"],
    )
    # Tags alone (the other example lesson) never make a recurrence.
    assert client.get("/api/v1/lessons/cache-bust-css/recurrences").json() == []
    with db.transaction() as session:
        recorded = audit.entries(session, action="lesson.recurred")
    assert [(e.subject, e.details["incident"], e.details["placed"]) for e in recorded] == [
        ("derive-pool-size", "generic:INC-3000", True)
    ]
    assert client.get("/api/v1/lessons/nope/recurrences").status_code == 404


def test_the_source_incident_and_unrelated_incidents_are_not_recurrences(
    app: tuple[TestClient, Database, str],
) -> None:
    client, db, secret = app
    post(client, secret, "src", incident("INC-2041", "triggered"))  # derive-pool-size's source
    post(client, secret, "other", incident("INC-5", "triggered", services=["search"]))
    post(client, secret, "untagged", incident("INC-6", "acknowledged", tags=["cpu"]))
    post(client, secret, "pm", incident("INC-7", "postmortem_done"))  # not an occurrence
    drain(db)
    assert client.get("/api/v1/lessons/derive-pool-size/recurrences").json() == []
    post(client, secret, "unplaced", incident("INC-8", "resolved", teams=["ledger"]))
    drain(db)
    [recurrence] = client.get("/api/v1/lessons/derive-pool-size/recurrences").json()
    assert (recurrence["incident_ref"], recurrence["placed"]) == ("generic:INC-8", False)
