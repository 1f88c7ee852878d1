"""`/api/v1/teams` over the real app: read by every role, changed by `platform` (and admins),
typed bodies, FILE:LINE errors on import, never a 5xx."""

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from store import audit, teams
from store.engine import Database
from tests.router.support import bearer, serving

DANA = {
    "person": "Dana@Example.com",
    "name": "Dana Hill",
    "email": "dana@example.com",
    "lms_ids": {"moodle": "17", "canvas": "4021"},
    "logins": {"github": "dana-h"},
}
LEE = {"person": "lee", "email": "lee@example.com", "lms_ids": {"xapi": "lee-account"}}
PEOPLE: dict[str, dict[str, str]] = {}


@pytest.fixture
def api(database_url: str, webhook_secret: str) -> Iterator[tuple[TestClient, Database]]:
    with serving(database_url, webhook_secret) as (client, db):
        PEOPLE["platform"] = bearer(db, "plat", "platform")
        PEOPLE["reader"] = bearer(db, "read", "reader")
        PEOPLE["owner"] = bearer(db, "own", "owner", "payments")
        yield client, db


def _put(client: TestClient, team: str, members: object, who: str = "platform") -> Response:
    answer: Response = client.put(
        f"/api/v1/teams/{team}", json={"members": members}, headers=PEOPLE[who]
    )
    return answer


def test_platform_puts_a_team_and_everyone_reads_it(api: tuple[TestClient, Database]) -> None:
    client, db = api
    put = _put(client, "payments", [DANA, LEE])
    assert put.status_code == 200, put.text
    assert put.json() == {"team": "payments", "added": 2, "changed": 0, "removed": 0}
    again = _put(client, "payments", [LEE, DANA])
    assert again.json() == {"team": "payments", "added": 0, "changed": 0, "removed": 0}

    shown = client.get("/api/v1/teams/payments", headers=PEOPLE["reader"])
    assert shown.status_code == 200
    assert shown.json()["members"][0] == {**DANA, "person": "dana@example.com"}
    assert [t["name"] for t in client.get("/api/v1/teams", headers=PEOPLE["reader"]).json()] == [
        "payments"
    ]
    with db.transaction() as session:
        assert teams.find(session, lms=("xapi", "lee-account"))[0][0] == "payments"
        [entry] = audit.entries(session, action="team.imported")
    assert (entry.actor, entry.subject, entry.details) == (
        "token:plat",
        "team:payments",
        {"added": 2, "changed": 0, "removed": 0, "via": "api"},
    )

    emptied = _put(client, "payments", [])
    assert emptied.json() == {"team": "payments", "added": 0, "changed": 0, "removed": 2}
    missing = client.get("/api/v1/teams/payments")
    assert missing.status_code == 404 and "no team 'payments'" in missing.json()["reason"]


def test_only_platform_and_admin_change_the_map(api: tuple[TestClient, Database]) -> None:
    client, _ = api
    for who in ("reader", "owner"):
        refused = _put(client, "payments", [DANA], who)
        assert refused.status_code == 403
        upload = client.post(
            "/api/v1/teams/import",
            json={"filename": "t.yaml", "text": "teams: {}\n"},
            headers=PEOPLE[who],
        )
        assert upload.status_code == 403
    assert _put(client, "payments", [DANA], "platform").status_code == 200
    assert client.put("/api/v1/teams/ops", json={"members": [LEE]}).status_code == 200  # admin


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"members": [DANA], "owner": "x"}, "Extra inputs are not permitted"),
        ({}, "members"),
        ({"members": [{**DANA, "lms_ids": {"moodle": 17}}]}, "Input should be a valid string"),
        ({"members": [{**DANA, "email": "dana@"}]}, "is not an email address"),
        ({"members": [{"person": "dana h"}]}, "a person is an email or a login"),
        ({"members": [{"person": "x", "slack": "y"}]}, "Extra inputs are not permitted"),
        ({"members": [DANA, {**LEE, "person": "DANA@example.com"}]}, "listed twice"),
        ({"members": "dana"}, "members"),
        ({"members": [{**DANA, "lms_ids": {"Moodle": "1"}}]}, "a system name is lower-case"),
    ],
)
def test_a_bad_body_is_a_422_with_a_reason(
    api: tuple[TestClient, Database], body: dict[str, object], reason: str
) -> None:
    client, db = api
    answer = client.put("/api/v1/teams/payments", json=body, headers=PEOPLE["platform"])
    assert answer.status_code == 422, answer.text
    assert reason in answer.text
    with db.transaction() as session:
        assert teams.teams(session) == []


def test_a_bad_team_name_or_body_type_is_refused(api: tuple[TestClient, Database]) -> None:
    client, _ = api
    blank = client.put("/api/v1/teams/%20", json={"members": [DANA]})
    assert blank.status_code == 422 and "name" in blank.json()["reason"]
    control = client.put("/api/v1/teams/a%0Ab", json={"members": [DANA]})
    assert control.status_code == 422
    as_text = client.put(
        "/api/v1/teams/payments", content=b'{"members": []}', headers={"Content-Type": "text/plain"}
    )
    assert as_text.status_code == 415
    broken = client.put(
        "/api/v1/teams/payments",
        content=b'{"members": [' + b"[" * 100_000,
        headers={"Content-Type": "application/json"},
    )
    assert 400 <= broken.status_code < 500


def test_an_id_of_another_person_is_a_conflict(api: tuple[TestClient, Database]) -> None:
    client, _ = api
    _put(client, "payments", [DANA])
    clash = _put(client, "ops", [{"person": "sam", "lms_ids": {"moodle": "17"}}])
    assert clash.status_code == 409
    assert "moodle id '17' is also given to 'dana@example.com'" in clash.json()["reason"]
    # The same person in a second team is no clash.
    assert _put(client, "ops", [DANA]).status_code == 200


def test_import_is_all_or_nothing_with_file_line_errors(api: tuple[TestClient, Database]) -> None:
    client, db = api
    good = "team,person,email,moodle\npayments,dana,dana@example.com,17\nops,sam,,\n"
    done = client.post(
        "/api/v1/teams/import",
        json={"filename": "people.csv", "text": good},
        headers=PEOPLE["platform"],
    )
    assert done.status_code == 200, done.text
    assert done.json() == {
        "teams": {
            "payments": {"added": 1, "changed": 0, "removed": 0},
            "ops": {"added": 1, "changed": 0, "removed": 0},
        },
        "changed": True,
    }
    again = client.post("/api/v1/teams/import", json={"filename": "people.csv", "text": good})
    assert again.json()["changed"] is False

    bad = (
        "teams:\n  payments:\n    - person: dana\n      email: nope\n"
        "  ops:\n    - {person: sam, slack: x}\n"
    )
    refused = client.post("/api/v1/teams/import", json={"filename": "teams.yaml", "text": bad})
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        "teams.yaml:4: team 'payments', person 'dana': email: 'nope' is not an email address "
        "(name@domain.tld)",
        "teams.yaml:6: unknown field 'slack' (expected person, name, email, moodle, canvas, "
        "xapi, github, jira, lms, logins)",
    ]
    assert refused.json()["reason"] == refused.json()["errors"][0]
    with db.transaction() as session:
        assert [m.person for _, m in teams.all_members(session)] == ["sam", "dana"]


@pytest.mark.parametrize(
    ("filename", "text", "expected"),
    [
        ("t.yaml", "[" * 50_000, "t.yaml:1: nested too deeply to be a teams file"),
        ("t.yaml", "teams:\n  a:\n    - {person: d, moodle: " + "9" * 10_000 + "}\n", "t.yaml:3:"),
        ("t.csv", "team,person\na," + "9" * 200_000 + "\n", "t.csv:2: invalid CSV"),
        ("t.yaml", "&a [*a, *a]", "t.yaml:1:"),
    ],
)
def test_hostile_files_are_a_422(
    api: tuple[TestClient, Database], filename: str, text: str, expected: str
) -> None:
    client, _ = api
    # Escaped JSON carries lone surrogates as a client may send them.
    body = json.dumps({"filename": filename, "text": text}).encode()
    answer = client.post(
        "/api/v1/teams/import", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0].startswith(expected), answer.json()


def test_a_body_that_is_not_text_is_a_422_with_a_reason(api: tuple[TestClient, Database]) -> None:
    client, _ = api
    for path, body in (
        ("/api/v1/teams/import", {"filename": "t.csv", "text": "team,person\na,\ud800\n"}),
        ("/api/v1/teams/import", {"filename": "\ud800.yaml", "text": "teams: {}"}),
        ("/api/v1/teams/payments", {"members": [{"person": "\ud800"}]}),
    ):
        method = "PUT" if path.endswith("payments") else "POST"
        answer = client.request(
            method,
            path,
            content=json.dumps(body).encode(),  # escaped: lone surrogates as clients send them
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 422, answer.text
        assert "valid string" in answer.json()["reason"]


@pytest.mark.parametrize(
    "body",
    [
        {"filename": "t.yaml"},
        {"filename": "t\n.yaml", "text": "teams: {}"},
        {"filename": "", "text": "teams: {}"},
        {"filename": "t.yaml", "text": 5},
        {"filename": "t.yaml", "text": "teams: {}", "dry_run": True},
    ],
)
def test_a_bad_import_body_is_a_422(api: tuple[TestClient, Database], body: object) -> None:
    client, _ = api
    assert client.post("/api/v1/teams/import", json=body).status_code == 422
