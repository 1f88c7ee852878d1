"""Past the fatigue budget on a Jira issue, through the app, the `jira` client and the fake.

Thirty required lessons, a budget of five: five task items of their own and one grouped task
item linking to the work item's list, in one write that also records in the `cairn.lessons`
property which lessons the grouped item stands for; a redelivery makes no request. Dismissing the
grouped item dismisses each of its twenty-five lessons with the reason; ticking it (sub-task form)
ticks each.
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
from connectors.retrying import RetryPolicy
from core.placement import Placement, PlacementState, SignalKind
from core.work import System
from store import placements
from store.engine import Database
from tests.connectors.budget_support import (
    GROUPED,
    OWN,
    REQUIRED,
    adoption_by_lesson,
    publish_required,
    rules,
)
from tests.router.support import drain, serving

JIRA_SECRET = "jira-e2e-secret-0123456789abcdef"
_ids = itertools.count(1)


@pytest.fixture
def fake() -> Iterator[JiraFake]:
    with JiraFake().running() as running:
        yield running


@pytest.fixture
def app(
    database_url: str, webhook_secret: str, tmp_path: Path, fake: JiraFake
) -> Iterator[tuple[TestClient, Database]]:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "stories.yaml").write_text(rules("jira", "jira.checklist", ", types: [Story]"))
    tasks = rules("jira", "jira.subtask", ", types: [Task]").replace("budget-tests", "tasks")
    (folder / "tasks.yaml").write_text(tasks.replace("bulk-required", "bulk-subtasks"))
    target = fake.target(policy=RetryPolicy(attempts=1, base_wait=0.01, max_wait=0.5))
    with serving(
        database_url,
        webhook_secret,
        prepare=publish_required,
        rules_path=folder,
        jira_webhook_secret=JIRA_SECRET,
        targets={System.JIRA: target},
    ) as running:
        yield running


def send(client: TestClient, payload: dict[str, Any], identifier: str | None = None) -> int:
    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return client.post(url, content=body, headers=headers).status_code

    return deliver(payload, "/hooks/jira", JIRA_SECRET, identifier or f"g-{next(_ids)}", post=post)


def placed(db: Database, key: str) -> dict[str, Placement]:
    with db.transaction() as session:
        return {p.lesson_id: p for p in placements.for_work_item(session, f"jira:{key}")}


def kinds(db: Database, key: str) -> dict[str, list[SignalKind]]:
    with db.transaction() as session:
        return {
            p.lesson_id: [s.kind for s in placements.signals(session, p.id)]
            for p in placements.for_work_item(session, f"jira:{key}")
        }


def our_items(fake: JiraFake, key: str) -> list[dict[str, Any]]:
    [found] = [n for n in fake.description(key)["content"] if n.get("type") == "taskList"]
    return list(found["content"])


def edit_group(engineer: Engineer, key: str, change: Any) -> dict[str, Any]:
    """The engineer changes the grouped task item; the `jira:issue_updated` payload."""
    fake = engineer.fake
    before = fake.description(key)
    after = json.loads(json.dumps(before))
    [task_list] = [n for n in after["content"] if n.get("type") == "taskList"]
    [group] = [
        n for n in task_list["content"] if n["attrs"]["localId"].startswith(adf.GROUP_PREFIX)
    ]
    change(group)
    fake.edit(key, {"description": after})
    text = {"from": None, "to": None, "fromString": adf.plain_text(before)}
    changed = {"field": "description", "fieldtype": "jira", "fieldId": "description", **text}
    return engineer.payload("jira:issue_updated", key, [{**changed, "toString": ""}])


def test_required_lessons_past_the_budget_share_one_task_item_and_are_dismissed_each(
    app: tuple[TestClient, Database], fake: JiraFake
) -> None:
    client, db = app
    engineer = Engineer(fake)
    key, created = engineer.create_issue("PAY", "Scale ledger workers", "Human text.")
    assert send(client, created, "created-1") == 202
    drain(db)
    found = placed(db, key)
    assert len(found) == REQUIRED
    assert {k for k, p in found.items() if p.grouped} == GROUPED
    assert {p.state for p in found.values()} == {PlacementState.EMBEDDED}
    items = our_items(fake, key)
    assert len(items) == 6
    group = items[-1]
    group_id = group["attrs"]["localId"]
    assert group_id == adf.group_id(min(found[k].id for k in GROUPED))  # its first lesson's
    assert adf.plain_text(group).startswith("25 more required lessons: grouped to keep")
    link = group["content"][-1]["marks"][0]["attrs"]["href"]
    assert link == "http://127.0.0.1:8000/ui/work/jira%3A" + key
    assert fake.writes[key] == 1  # the description and the property in one request
    recorded = fake.property(key, "cairn.lessons")["items"]
    assert {recorded[p.id]["localId"] for k, p in found.items() if k in GROUPED} == {group_id}
    assert {found[k].handle for k in GROUPED} == {group_id}

    requests = len(fake.requests)
    assert send(client, created, "created-1") == 200  # a redelivery
    assert send(client, engineer.payload("jira:issue_updated", key, [])) == 202  # routes again
    drain(db)
    assert len(fake.requests) == requests and fake.writes[key] == 1

    def dismiss(node: dict[str, Any]) -> None:
        node["content"].append({"type": "text", "text": " N/A: the platform enforces these"})

    assert send(client, edit_group(engineer, key, dismiss)) == 202
    drain(db)
    after = placed(db, key)
    assert {(after[k].state, after[k].reason) for k in GROUPED} == {
        (PlacementState.DISMISSED, "the platform enforces these")
    }
    assert {after[k].state for k in OWN} == {PlacementState.EMBEDDED}
    signalled = kinds(db, key)
    assert {k: signalled[k] for k in GROUPED} == {k: [SignalKind.DISMISSED] for k in GROUPED}
    assert {k: signalled[k] for k in OWN} == {k: [] for k in OWN}
    report = client.get("/api/v1/reports/adoption", params={"by": "lesson"}).json()
    assert adoption_by_lesson(report["rows"]) == {
        **{k: {"delivered": 1} for k in OWN},
        **{k: {"dismissed": 1} for k in GROUPED},
    }
    assert report["total"]["dismissals"] == {"the platform enforces these": len(GROUPED)}
    assert fake.writes[key] == 1  # feedback never writes


def test_grouped_subtask_lessons_are_one_checklist_item_and_a_tick_ticks_each(
    app: tuple[TestClient, Database], fake: JiraFake
) -> None:
    client, db = app
    engineer = Engineer(fake)
    key, created = engineer.create_issue("PAY", "Roll out the CDN", issue_type="Task")
    assert send(client, created) == 202
    drain(db)
    found = placed(db, key)
    assert {k for k, p in found.items() if p.grouped} == GROUPED
    assert len(fake.children(key)) == len(OWN)  # sub-tasks only for the lessons of their own
    [group] = our_items(fake, key)
    assert adf.plain_text(group).startswith("25 more required lessons")
    assert fake.writes[key] == len(OWN) + 1  # a create per sub-task, one description write

    def tick(node: dict[str, Any]) -> None:
        node["attrs"]["state"] = "DONE"

    assert send(client, edit_group(engineer, key, tick)) == 202
    drain(db)
    after = placed(db, key)
    assert {after[k].state for k in GROUPED} == {PlacementState.COMPLETED}
    signalled = kinds(db, key)
    # Shown in the checklist, so a tick (acknowledged), not a sub-task done.
    assert {k: signalled[k] for k in GROUPED} == {k: [SignalKind.TICKED] for k in GROUPED}
    assert {k: signalled[k] for k in OWN} == {k: [] for k in OWN}
