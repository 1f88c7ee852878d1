"""Revisions reach the work in Jira: the checklist item or the sub-task of an older version shows
the new version's text, as each placement's rule says (`on_revision`)."""

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.jira import adf
from connectors.jira.engineer import Engineer, deliver
from connectors.jira.fake import JiraFake
from connectors.jira.target import JiraTarget
from connectors.retrying import RetryPolicy
from core.base import utcnow
from core.placement import Placement, PlacementState
from core.work import System
from router.pipeline import Effect, StageContext
from router.ruleset.active import ActiveRules
from router.stages import build_stages
from store import outbox, placements
from store.engine import Database
from tests.router.support import drain, publish_examples, serving
from tests.router.test_revisions import NEW_STATEMENT, POOL, publish_v2

JIRA_SECRET = "revisions-jira-secret-0123456789abcdef"
REASON = "reopened: lesson revised to v2 because the old rule missed thread pools"


def rules_text(form: str, policy: str) -> str:
    return f"""\
pack: revisions
level: organisation
priority: 100
rules:
  - id: pool-on-stories
    lesson: {{tags: [connection-pool]}}
    work_item: {{systems: [jira], types: [Story]}}
    then: {{form: {form}, mandate: required}}
    on_revision: {policy}
"""


@dataclass
class World:
    client: TestClient
    db: Database
    jira: JiraFake
    target: JiraTarget
    rules: Path
    engineer: Engineer
    key: str = ""

    def post(self, payload: dict[str, Any]) -> None:
        def post(url: str, body: bytes, headers: dict[str, str]) -> int:
            return int(self.client.post(url, content=body, headers=headers).status_code)

        ident = f"rev-{utcnow().timestamp()}-{len(payload)}-{id(payload)}"
        assert deliver(payload, "/hooks/jira", JIRA_SECRET, ident, post=post) == 202

    def pool(self) -> Placement:
        with self.db.transaction() as session:
            found = placements.for_work_item(session, f"jira:{self.key}")
        return next(p for p in found if p.lesson_id == POOL)


@pytest.fixture
def make_world(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[Any]:
    stack = ExitStack()

    def make(form: str, policy: str) -> World:
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "revisions.yaml").write_text(rules_text(form, policy))
        jira = stack.enter_context(JiraFake().running())
        target = jira.target(policy=RetryPolicy(attempts=2, base_wait=0.01, max_wait=1))
        client, db = stack.enter_context(
            serving(
                database_url,
                webhook_secret,
                prepare=publish_examples,
                rules_path=rules,
                jira_webhook_secret=JIRA_SECRET,
                targets={System.JIRA: target},
            )
        )
        world = World(client, db, jira, target, rules, Engineer(jira))
        key, created = world.engineer.create_issue(
            "PAY", "Scale ledger workers", "Human text.", components=("ledger-api",)
        )
        world.key = key
        world.post(created)
        drain(db)
        assert world.pool().state == PlacementState.EMBEDDED
        return world

    with stack:
        yield make


def task(world: World, placement_id: str) -> dict[str, Any]:
    wanted = adf.local_id(placement_id)
    for node in world.jira.description(world.key).get("content") or []:
        for item in node.get("content") or [] if node.get("type") == "taskList" else []:
            if (item.get("attrs") or {}).get("localId") == wanted:
                return dict(item)
    raise KeyError(placement_id)


def tick(world: World) -> None:
    world.post(world.engineer.tick(world.key, world.pool().id))
    drain(world.db)
    assert world.pool().state == PlacementState.COMPLETED


def test_checklist_update_keeps_the_tick_and_the_engineers_words(make_world: Any) -> None:
    world: World = make_world("jira.checklist", "update")
    tick(world)
    world.post(world.engineer.add_paragraph(world.key, "Our own note."))
    drain(world.db)
    publish_v2(world.db)
    drain(world.db)
    pool = world.pool()
    assert (pool.lesson_version, pool.placed_version, pool.state) == (
        2,
        1,
        PlacementState.COMPLETED,
    )
    item = task(world, pool.id)
    text = adf.plain_text(item)
    assert item["attrs"]["state"] == "DONE"
    assert "eighty percent" in text and "updated to v2" in text
    assert "Our own note." in adf.plain_text(world.jira.description(world.key))


def test_checklist_reopen_shows_the_reason_once_and_redelivery_writes_nothing(
    make_world: Any,
) -> None:
    world: World = make_world("jira.checklist", "replace_and_reopen")
    tick(world)
    publish_v2(world.db)
    drain(world.db)
    pool = world.pool()
    item = task(world, pool.id)
    assert item["attrs"]["state"] == "TODO" and REASON in adf.plain_text(item)
    assert pool.state == PlacementState.EMBEDDED
    tick(world)  # the engineer ticks it again after reading why
    writes = world.jira.writes[world.key]
    with world.db.transaction() as session:
        outbox.enqueue(
            session,
            topic="embed",
            payload={"ref": f"jira:{world.key}", "revision": {"lesson": POOL, "version": 2}},
            key=f"jira:{world.key}",
            now=utcnow(),
        )
    drain(world.db)
    assert world.jira.writes[world.key] == writes
    assert task(world, pool.id)["attrs"]["state"] == "DONE"
    assert world.pool().state == PlacementState.COMPLETED


def test_checklist_keep_changes_nothing(make_world: Any) -> None:
    world: World = make_world("jira.checklist", "keep")
    tick(world)
    before = world.jira.description(world.key)
    publish_v2(world.db)
    drain(world.db)
    assert world.jira.description(world.key) == before
    assert world.pool().lesson_version == 1


def test_a_tick_racing_the_update_is_kept(make_world: Any) -> None:
    world: World = make_world("jira.checklist", "update")
    stage = build_stages(ActiveRules(world.rules), {System.JIRA: world.target})["embed"]
    assert isinstance(stage, Effect)
    publish_v2(world.db)
    payload = {"ref": f"jira:{world.key}", "revision": {"lesson": POOL, "version": 2}}
    with world.db.transaction() as session:
        plan = stage.prepare(StageContext(session, utcnow(), 0), payload)
    world.engineer.tick(world.key, world.pool().id)  # while Cairn's update is in flight
    stage.perform(plan)
    item = task(world, world.pool().id)
    assert item["attrs"]["state"] == "DONE"
    assert "updated to v2" in adf.plain_text(item)


def subtask(world: World) -> dict[str, Any]:
    handle = world.pool().handle
    assert handle is not None
    return dict(world.jira.issues[handle]["fields"])


def test_subtask_update_rewrites_its_description(make_world: Any) -> None:
    world: World = make_world("jira.subtask", "update")
    publish_v2(world.db)
    drain(world.db)
    text = adf.plain_text(subtask(world)["description"])
    assert NEW_STATEMENT.split(",")[0] in text and "updated to v2" in text
    assert world.pool().lesson_version == 2


def test_subtask_reopen_moves_a_done_subtask_back_to_open(make_world: Any) -> None:
    world: World = make_world("jira.subtask", "replace_and_reopen")
    handle = world.pool().handle
    assert handle is not None
    world.post(world.engineer.move(handle, "Done"))
    drain(world.db)
    assert world.pool().state == PlacementState.COMPLETED
    publish_v2(world.db)
    drain(world.db)
    fields = subtask(world)
    assert fields["status"]["statusCategory"]["key"] == "new"
    assert REASON in adf.plain_text(fields["description"])
    assert world.pool().state == PlacementState.EMBEDDED
