"""The Jira loop through the running app, on SQLite and PostgreSQL, against the contract fake.

Signed webhook in → checklist (or sub-tasks) in the issue → simulated engineer acts → signed
webhook → observe → signals. No mocks: the real `jira` client talks to the fake over HTTP.
"""

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.jira import adf
from connectors.jira.engineer import Engineer, deliver
from connectors.jira.fake import JiraFake
from connectors.jira.webhook import sign
from connectors.retrying import RetryPolicy
from core.placement import Placement, PlacementState, SignalKind
from core.work import System
from store import placements, work_items
from store.engine import Database
from tests.router.support import drain, publish_examples, serving

JIRA_SECRET = "jira-e2e-secret-0123456789abcdef"
RULES = """\
pack: jira-tests
level: organisation
priority: 100
rules:
  - id: pool-lessons-on-stories
    lesson: {tags: [connection-pool]}
    work_item: {systems: [jira], types: [Story]}
    then: {form: jira.checklist, mandate: required, due: 14d}
  - id: deploy-lessons-on-stories
    lesson: {tags: [deploy]}
    work_item: {systems: [jira], types: [Story]}
    then: {form: jira.checklist, mandate: invited}
  - id: deploy-lessons-as-subtasks
    lesson: {tags: [deploy]}
    work_item: {systems: [jira], types: [Task]}
    then: {form: jira.subtask, mandate: required}
"""
POOL, CSS = "derive-pool-size", "cache-bust-css"
_ids = itertools.count(1)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "jira.yaml").write_text(RULES)
    return folder


@pytest.fixture
def fake() -> Iterator[JiraFake]:
    with JiraFake().running() as running:
        yield running


@pytest.fixture
def app(
    database_url: str, webhook_secret: str, rules_dir: Path, fake: JiraFake
) -> Iterator[tuple[TestClient, Database]]:
    target = fake.target(policy=RetryPolicy(attempts=1, base_wait=0.01, max_wait=0.5))
    with serving(
        database_url,
        webhook_secret,
        prepare=publish_examples,
        rules_path=rules_dir,
        jira_webhook_secret=JIRA_SECRET,
        targets={System.JIRA: target},
    ) as running:
        yield running


def send(client: TestClient, payload: dict[str, Any], identifier: str | None = None) -> int:
    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return client.post(url, content=body, headers=headers).status_code

    delivery = identifier or f"e2e-{next(_ids)}"
    return deliver(payload, "/hooks/jira", JIRA_SECRET, delivery, post=post)


def placed(db: Database, key: str) -> dict[str, Placement]:
    with db.transaction() as session:
        return {p.lesson_id: p for p in placements.for_work_item(session, f"jira:{key}")}


def kinds(db: Database, placement: Placement) -> list[SignalKind]:
    with db.transaction() as session:
        return [s.kind for s in placements.signals(session, placement.id)]


def test_checklist_loop(app: tuple[TestClient, Database], fake: JiraFake) -> None:
    client, db = app
    engineer = Engineer(fake)
    key, created = engineer.create_issue(
        "PAY",
        "Scale ledger workers",
        "Human text.",
        labels=("team:payments",),
        components=("ledger-api",),
    )
    assert send(client, created, "created-1") == 202
    drain(db)
    found = placed(db, key)
    assert {k: p.state for k, p in found.items()} == {
        POOL: PlacementState.EMBEDDED,
        CSS: PlacementState.EMBEDDED,
    }
    doc = fake.description(key)
    assert adf.plain_text(doc["content"][0]) == "Human text."
    assert adf.plain_text(doc["content"][1]) == "Lessons learned"
    assert len(doc["content"][2]["content"]) == 2
    assert fake.writes[key] == 1  # one write: description and property together

    before = len(fake.requests)
    assert send(client, created, "created-1") == 200  # a redelivery
    summary = engineer.payload("jira:issue_updated", key, [])
    assert send(client, summary) == 202  # a later event routes again but places nothing new
    drain(db)
    assert fake.writes[key] == 1 and len(fake.requests) == before

    assert send(client, engineer.tick(key, found[POOL].id)) == 202
    drain(db)
    assert send(client, engineer.dismiss(key, found[CSS].id, "no static assets here")) == 202
    drain(db)
    after = placed(db, key)
    assert after[POOL].state == PlacementState.COMPLETED
    assert kinds(db, after[POOL]) == [SignalKind.TICKED]
    assert after[CSS].state == PlacementState.DISMISSED
    assert after[CSS].reason == "no static assets here"
    assert kinds(db, after[CSS]) == [SignalKind.DISMISSED]

    # Cairn's own edit coming back: nothing read, nothing recorded.
    before = len(fake.requests)
    own = engineer.payload(
        "jira:issue_updated",
        key,
        [{"field": "description", "fieldId": "description"}],
        user={"accountId": fake.account_id, "displayName": "Cairn"},
    )
    assert send(client, own) == 202
    drain(db)
    assert len(fake.requests) == before
    assert kinds(db, after[POOL]) == [SignalKind.TICKED]
    assert fake.writes[key] == 1


def test_resolving_with_a_required_item_open(
    app: tuple[TestClient, Database], fake: JiraFake
) -> None:
    client, db = app
    engineer = Engineer(fake)
    key, created = engineer.create_issue("PAY", "Scale ledger workers", components=("ledger-api",))
    send(client, created)
    drain(db)
    assert send(client, engineer.move(key, "Done")) == 202
    drain(db)
    found = placed(db, key)
    assert kinds(db, found[POOL]) == [SignalKind.RESOLVED_UNCHECKED]
    # An invited item left open is recorded too (it counts as ignored in adoption), though it
    # carried no obligation: only mandated ones make a check fail.
    assert kinds(db, found[CSS]) == [SignalKind.RESOLVED_UNCHECKED]


def test_subtasks_once_and_done(app: tuple[TestClient, Database], fake: JiraFake) -> None:
    client, db = app
    engineer = Engineer(fake)
    key, created = engineer.create_issue("PAY", "Roll out the CDN", issue_type="Task")
    # The first create is rate-limited past what the target sleeps: the embed is retried later.
    fake.fail(429, times=1, retry_after="1", match="POST /issue$")
    send(client, created)
    drain(db, seconds=20)
    [subtask] = fake.children(key)
    assert subtask["fields"]["labels"] == ["cairn-lesson"]
    found = placed(db, key)
    assert found[CSS].state == PlacementState.EMBEDDED
    assert found[CSS].handle == subtask["key"]
    send(client, created)  # a second delivery (new id): still one sub-task
    drain(db)
    assert len(fake.children(key)) == 1

    assert send(client, engineer.move(subtask["key"], "Done")) == 202
    drain(db)
    done = placed(db, key)[CSS]
    assert done.state == PlacementState.COMPLETED
    assert kinds(db, done) == [SignalKind.SUBTASK_DONE]


def test_a_racing_human_edit_is_preserved(app: tuple[TestClient, Database], fake: JiraFake) -> None:
    client, db = app
    engineer = Engineer(fake)
    key, created = engineer.create_issue(
        "PAY", "Scale ledger workers", "Original.", components=("ledger-api",)
    )
    # The engineer saves an edit right after Cairn read the issue and before it writes.
    fake.after(f"GET /issue/{key}$", lambda: engineer.add_paragraph(key, "Saved meanwhile."))
    send(client, created)
    drain(db)
    texts = [adf.plain_text(node) for node in fake.description(key)["content"]]
    assert texts[:3] == ["Original.", "Saved meanwhile.", "Lessons learned"]
    assert fake.writes[key] == 1


def test_signatures_over_http(app: tuple[TestClient, Database], fake: JiraFake) -> None:
    client, db = app
    key, created = Engineer(fake).create_issue("PAY", "Scale ledger workers")
    body = json.dumps(created).encode()
    good = sign(JIRA_SECRET, body, "sig-1")
    assert client.post("/hooks/jira", content=body).status_code == 401  # missing
    bad = {**good, "X-Hub-Signature": "sha256=" + "0" * 64}
    assert client.post("/hooks/jira", content=body, headers=bad).status_code == 401
    tampered = body.replace(b"Scale", b"Scalf")
    assert client.post("/hooks/jira", content=tampered, headers=good).status_code == 401
    comment = {"webhookEvent": "comment_created", "comment": {"id": "1"}}
    assert send(client, comment) == 202  # known, unsupported: acknowledged, nothing stored
    drain(db)
    with db.transaction() as session:
        assert work_items.get(session, f"jira:{key}") is None
    assert client.post("/hooks/jira", content=body, headers=good).status_code == 202  # good
    drain(db)
    with db.transaction() as session:
        assert work_items.get(session, f"jira:{key}") is not None
