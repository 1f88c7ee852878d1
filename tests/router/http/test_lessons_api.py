"""The lesson lifecycle end to end through the HTTP API: draft → review → publish → revise →
retire, with the placements it affects."""

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from connectors.generic.webhook import sign
from store import audit, placements
from store.engine import Database
from tests.router.support import DRAFT, EXAMPLES, PR, PR_REF, bearer, drain, serving

# Who acts: dana owns the platform team's lessons, lee reviews; set up with the app.
PEOPLE: dict[str, dict[str, str]] = {}


@pytest.fixture
def api(database_url: str, webhook_secret: str) -> Iterator[tuple[TestClient, Database]]:
    with serving(database_url, webhook_secret, rules_path=EXAMPLES, rules_reload_seconds=0.1) as (
        client,
        db,
    ):
        PEOPLE["dana"] = bearer(db, "dana", "owner", "platform")
        PEOPLE["lee"] = bearer(db, "lee", "reviewer")
        yield client, db


def _act(client: TestClient, verb: str, actor: str = "lee", **body: object) -> dict[str, object]:
    response = client.post(
        f"/api/v1/lessons/derive-pool-size/{verb}",
        headers=PEOPLE[actor],
        **({"json": body} if body else {}),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_lifecycle_through_the_api(api: tuple[TestClient, Database], webhook_secret: str) -> None:
    client, db = api
    claimed = {**DRAFT, "provenance": {**DRAFT["provenance"], "captured_by": "someone-else"}}
    created = client.post("/api/v1/lessons", json=claimed, headers=PEOPLE["dana"])
    assert created.status_code == 201, created.text
    assert (created.json()["status"], created.json()["version"]) == ("draft", 1)
    # The server says who captured it, whatever the body claimed.
    assert created.json()["provenance"]["captured_by"] == "token:dana"

    assert _act(client, "submit", "dana")["status"] == "in_review"
    approved = _act(
        client, "approve", "lee", notes="Holds for every pooled service", mandate="required"
    )
    assert approved["review"]["reviewer"] == "token:lee" and approved["mandate"] == "required"
    assert _act(client, "publish")["status"] == "published"

    # The published lesson is routed into a matching pull request.
    body = PR.read_bytes()
    client.post("/hooks/generic", content=body, headers=sign(webhook_secret, "pr-1", body))
    drain(db)
    with db.transaction() as session:
        [placed] = placements.for_work_item(session, PR_REF)
    assert (placed.lesson_id, placed.lesson_version, placed.state.value) == (
        "derive-pool-size",
        1,
        "planned",
    )

    # Revising opens version 2 as a draft while version 1 stays in force.
    revised = client.post("/api/v1/lessons/derive-pool-size/revise").json()
    assert (revised["status"], revised["version"], revised["review"]) == ("draft", 2, None)
    edited = client.patch(
        "/api/v1/lessons/derive-pool-size",
        json={"statement": "Size the pool from workers x threads, and alert at 80%."},
        headers=PEOPLE["dana"],
    )
    assert edited.status_code == 200, edited.text
    _act(client, "submit", "dana")
    _act(client, "approve", "lee")
    assert _act(client, "publish")["version"] == 2
    shown = client.get("/api/v1/lessons/derive-pool-size").json()
    assert shown["published_versions"] == [1, 2]
    first = client.get("/api/v1/lessons/derive-pool-size/versions/1").json()
    assert first["statement"] == DRAFT["statement"]  # version 1 is immutable
    with db.transaction() as session:
        outdated = audit.entries(session, action="placement.outdated")
    assert [
        (e.subject, e.details["placed_version"], e.details["current_version"]) for e in outdated
    ] == [(PR_REF, 1, 2)]

    # Retiring withdraws the open placement and takes the lesson out of routing.
    retired = _act(client, "retire", "dana")
    assert (retired["status"], retired["withdrawn_placements"]) == ("retired", 1)
    with db.transaction() as session:
        [withdrawn] = placements.for_work_item(session, PR_REF)
        trail = [(e.action, e.actor) for e in audit.entries(session, subject="derive-pool-size")]
    assert withdrawn.state.value == "withdrawn"
    # Every mutating call is recorded with the principal the server authenticated.
    assert trail == [
        ("lesson.created", "token:dana"),
        ("lesson.submitted", "token:dana"),
        ("lesson.approved", "token:lee"),
        ("lesson.published", "token:lee"),
        ("lesson.revision_started", "token:tests-admin"),
        ("lesson.edited", "token:dana"),
        ("lesson.submitted", "token:dana"),
        ("lesson.approved", "token:lee"),
        ("lesson.published", "token:lee"),
        ("lesson.retired", "token:dana"),
    ]
    listed = client.get("/api/v1/lessons", params={"status": "retired"}).json()
    assert [lesson["id"] for lesson in listed] == ["derive-pool-size"]


@pytest.mark.parametrize(
    ("steps", "verb", "actor", "status", "reason"),
    [
        ((), "publish", "lee", 409, "it is draft, not in_review"),
        (("submit",), "publish", "lee", 409, "has not been approved"),
        (("submit",), "approve", "dana", 403, "needs the role admin or reviewer"),
        ((), "revise", "dana", 409, "it is draft, not published"),
        (("submit", "approve", "publish", "retire"), "submit", "dana", 409, "it is retired"),
        ((), "submit", "lee", 403, "needs the role admin or owner"),
    ],
    ids=[
        "publish-draft",
        "publish-unapproved",
        "owner-approves",
        "revise-draft",
        "after-retire",
        "reviewer-submits",
    ],
)
def test_illegal_steps_are_refused_with_the_reason(
    api: tuple[TestClient, Database],
    steps: tuple[str, ...],
    verb: str,
    actor: str,
    status: int,
    reason: str,
) -> None:
    client, _ = api
    assert client.post("/api/v1/lessons", json=DRAFT, headers=PEOPLE["dana"]).status_code == 201
    for step in steps:
        _act(client, step, "lee" if step in ("approve", "publish") else "dana")
    response = client.post(
        f"/api/v1/lessons/derive-pool-size/{verb}", headers=PEOPLE[actor], json={}
    )
    assert response.status_code == status
    assert reason in response.json()["reason"]


def test_bad_requests_name_the_problem(api: tuple[TestClient, Database]) -> None:
    client, _ = api
    missing = client.post("/api/v1/lessons", json={**DRAFT, "title": ""})
    assert missing.status_code == 422 and "title" in missing.json()["reason"]
    assert client.post("/api/v1/lessons", json=DRAFT).status_code == 201
    again = client.post("/api/v1/lessons", json=DRAFT)
    assert again.status_code == 409 and "already exists" in again.json()["reason"]
    unknown = client.get("/api/v1/lessons/nope")
    assert unknown.status_code == 404
    not_editable = client.patch("/api/v1/lessons/derive-pool-size", json={"version": 9})
    assert not_editable.status_code == 409 and "cannot be edited" in not_editable.json()["reason"]
    bad_mandate = client.post("/api/v1/lessons/derive-pool-size/approve", json={"mandate": "maybe"})
    assert bad_mandate.status_code == 422
    assert json.loads(client.get("/openapi.json").text)["paths"][
        "/api/v1/lessons/{lesson_id}/publish"
    ]
