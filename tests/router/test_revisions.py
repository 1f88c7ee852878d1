"""Revisions reach the work: publishing version n+1 rewrites the open items placed from older
versions, in the PR section, as each placement's rule says (`on_revision`)."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from connectors.github import section
from connectors.github.fake import Delivery, FakeGitHub
from connectors.github.target import GitHubTarget
from core.access import Principal, Role
from core.base import utcnow
from core.placement import Placement, PlacementState, SignalKind
from core.work import System
from router.lessons.service import LessonService
from router.pipeline import Effect, StageContext
from router.ruleset.active import ActiveRules
from router.stages import build_stages
from rules.model import OnRevision, Rule
from store import audit, outbox, placements
from store.engine import Database
from tests.router.support import drain, publish_examples, serving

GITHUB_SECRET = "revisions-github-secret"
REPO = "acme/payments-api"
PR_REF = f"github:{REPO}#1"
POOL, CSS = "derive-pool-size", "cache-bust-css"
NEW_STATEMENT = "Size the pool from workers times threads, and alert at eighty percent use."


def rules_text(pool: str, css: str) -> str:
    return f"""\
pack: revisions
level: organisation
priority: 100
rules:
  - id: pool-on-prs
    lesson: {{tags: [connection-pool]}}
    work_item: {{systems: [github]}}
    then: {{form: github.pr_checklist, mandate: required}}
    on_revision: {pool}
  - id: css-on-prs
    lesson: {{tags: [frontend]}}
    work_item: {{systems: [github]}}
    then: {{form: github.pr_checklist, mandate: required}}
    on_revision: {css}
"""


@dataclass
class World:
    client: TestClient
    db: Database
    github: FakeGitHub
    rules: Path


def world_with(
    database_url: str, webhook_secret: str, tmp_path: Path, pool: str
) -> Iterator[World]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "revisions.yaml").write_text(rules_text(pool, "update"))
    with FakeGitHub(actor="cairn-bot").running() as github:
        target = github.target()
        with serving(
            database_url,
            webhook_secret,
            prepare=publish_examples,
            rules_path=rules,
            github_webhook_secret=GITHUB_SECRET,
            targets={System.GITHUB: target},
        ) as (client, db):
            yield World(client, db, github, rules)


@pytest.fixture
def world(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[World]:
    yield from world_with(database_url, webhook_secret, tmp_path, "update")


@pytest.fixture
def reopening(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[World]:
    yield from world_with(database_url, webhook_secret, tmp_path, "replace_and_reopen")


@pytest.fixture
def keeping(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[World]:
    yield from world_with(database_url, webhook_secret, tmp_path, "keep")


def post(world: World, delivery: Delivery) -> None:
    headers, body = FakeGitHub.signed(delivery, GITHUB_SECRET)
    assert world.client.post("/hooks/github", content=body, headers=headers).status_code == 202


def placed(db: Database) -> dict[str, Placement]:
    with db.transaction() as session:
        return {p.lesson_id: p for p in placements.for_work_item(session, PR_REF)}


def body(world: World) -> str:
    return world.github.pulls[(REPO, 1)].body or ""


def line(world: World, placement_id: str) -> str:
    marker = section.marker_id(placement_id)
    return next(x for x in body(world).split("\n") if marker in x)


def open_pr(world: World, *, tick_pool: bool) -> dict[str, Placement]:
    """A PR with the pool lesson and the CSS lesson placed at v1 (CSS ticked)."""
    post(world, world.github.open_pull(REPO, title="More workers", body="Text.", files=["a"]))
    drain(world.db)
    first = placed(world.db)
    assert {p.state for p in first.values()} == {PlacementState.EMBEDDED}
    post(world, world.github.tick((REPO, 1), first[CSS].id))
    drain(world.db)  # one edit at a time: each webhook carries the body as it was then
    if tick_pool:
        post(world, world.github.tick((REPO, 1), first[POOL].id))
        drain(world.db)
    found = placed(world.db)
    assert found[CSS].state == PlacementState.COMPLETED
    ticked = PlacementState.COMPLETED if tick_pool else PlacementState.EMBEDDED
    assert found[POOL].state == ticked
    return found


def publish_v2(db: Database, notes: str = "the old rule missed thread pools") -> None:
    service = LessonService(db)
    owner = Principal("dana", frozenset({Role.ADMIN}))
    reviewer = Principal("rui", frozenset({Role.REVIEWER}))
    service.revise(POOL, owner)
    service.edit(POOL, {"statement": NEW_STATEMENT}, owner)
    service.submit(POOL, owner)
    service.approve(POOL, reviewer, notes=notes)
    service.publish(POOL, reviewer)


def test_update_rewrites_the_open_item_keeps_its_tick_and_leaves_others(world: World) -> None:
    before = open_pr(world, tick_pool=True)
    css_line = line(world, before[CSS].id)
    publish_v2(world.db)
    drain(world.db)
    after = placed(world.db)
    pool = after[POOL]
    assert (pool.id, pool.lesson_version, pool.placed_version) == (before[POOL].id, 2, 1)
    assert pool.state == PlacementState.COMPLETED
    shown = line(world, pool.id)
    assert shown.startswith("- [x] ")
    assert "thread pools" not in shown  # the reason shows only when an item is reopened
    assert "eighty percent" in shown and "_(updated to v2)_" in shown
    assert line(world, before[CSS].id) == css_line  # another lesson: untouched
    assert after[CSS] == before[CSS]


def test_signals_keep_the_version_they_were_given_against(world: World) -> None:
    before = open_pr(world, tick_pool=True)
    publish_v2(world.db)
    drain(world.db)
    post(world, world.github.edit_body((REPO, 1), body(world).replace("- [x]", "- [ ]")))
    drain(world.db)
    with world.db.transaction() as session:
        found = placements.signals(session, before[POOL].id)
    # Both came within one second (the order of equal times is the database's): by kind.
    assert {s.kind: s.lesson_version for s in found} == {
        SignalKind.TICKED: 1,
        SignalKind.UNTICKED: 2,
    }
    assert len(found) == 2


def test_replace_and_reopen_unticks_a_ticked_required_item_once(reopening: World) -> None:
    world = reopening
    before = open_pr(world, tick_pool=True)
    publish_v2(world.db)
    drain(world.db)
    pool = placed(world.db)[POOL]
    assert pool.state == PlacementState.EMBEDDED
    assert pool.reopened == "lesson revised to v2 because the old rule missed thread pools"
    shown = line(world, pool.id)
    assert shown.startswith("- [ ] ")
    assert "reopened: lesson revised to v2 because the old rule missed thread pools" in shown
    # The engineer ticks it again: a later embed of the work item keeps their tick.
    post(world, world.github.tick((REPO, 1), before[POOL].id))
    drain(world.db)
    assert placed(world.db)[POOL].state == PlacementState.COMPLETED
    post(world, world.github.push((REPO, 1), ["b"]))
    drain(world.db)
    assert line(world, pool.id).startswith("- [x] ")


def test_keep_changes_nothing_in_the_target(keeping: World) -> None:
    world = keeping
    before = open_pr(world, tick_pool=False)
    text = body(world)
    publish_v2(world.db)
    drain(world.db)
    assert body(world) == text
    assert placed(world.db) == before
    with world.db.transaction() as session:
        outdated = audit.entries(session, action="placement.outdated", subject=PR_REF)
        revised = audit.entries(session, action="placement.revised", subject=PR_REF)
    assert len(outdated) == 1
    assert revised == []


def test_dismissed_placements_are_not_revised(world: World) -> None:
    before = open_pr(world, tick_pool=False)
    post(world, world.github.dismiss((REPO, 1), before[POOL].id, "no pool here"))
    drain(world.db)
    text = body(world)
    publish_v2(world.db)
    drain(world.db)
    assert placed(world.db)[POOL].lesson_version == 1
    assert body(world) == text


def test_merged_work_is_history_and_is_not_revised(world: World) -> None:
    before = open_pr(world, tick_pool=True)
    post(world, world.github.merge((REPO, 1)))
    drain(world.db)
    text, writes = body(world), world.github.writes[(REPO, 1)]
    publish_v2(world.db)
    drain(world.db)
    assert body(world) == text
    assert world.github.writes[(REPO, 1)] == writes
    assert placed(world.db)[POOL] == before[POOL]
    with world.db.transaction() as session:
        assert audit.entries(session, action="placement.revised") == []


def test_a_redelivered_revision_writes_nothing(world: World) -> None:
    open_pr(world, tick_pool=False)
    publish_v2(world.db)
    drain(world.db)
    text = body(world)
    writes = world.github.writes[(REPO, 1)]
    with world.db.transaction() as session:
        outbox.enqueue(
            session,
            topic="embed",
            payload={"ref": PR_REF, "revision": {"lesson": POOL, "version": 2}},
            key=PR_REF,
            now=placed(world.db)[POOL].updated_at,
        )
    drain(world.db)
    assert body(world) == text
    assert world.github.writes[(REPO, 1)] == writes


def test_a_human_tick_racing_the_update_is_kept(world: World) -> None:
    before = open_pr(world, tick_pool=False)
    stage = build_stages(ActiveRules(world.rules), {System.GITHUB: target_of(world)})["embed"]
    publish_v2(world.db)
    payload = {"ref": PR_REF, "revision": {"lesson": POOL, "version": 2}}
    assert isinstance(stage, Effect)
    with world.db.transaction() as session:
        plan = stage.prepare(StageContext(session, utcnow(), 0), payload)
    world.github.tick((REPO, 1), before[POOL].id)  # while Cairn's update is in flight
    stage.perform(plan)
    shown = line(world, before[POOL].id)
    assert shown.startswith("- [x] ") and "_(updated to v2)_" in shown


def target_of(world: World) -> GitHubTarget:
    return world.github.target()


def test_on_revision_defaults_to_update_and_refuses_unknown_values() -> None:
    rule = {"id": "r", "then": {"form": "github.pr_checklist"}}
    assert Rule.model_validate(rule).on_revision == OnRevision.UPDATE
    chosen = Rule.model_validate({**rule, "on_revision": "replace_and_reopen"})
    assert chosen.on_revision == OnRevision.REPLACE_AND_REOPEN
    with pytest.raises(ValidationError, match="on_revision"):
        Rule.model_validate({**rule, "on_revision": "rewrite"})
