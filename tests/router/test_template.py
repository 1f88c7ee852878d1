"""PR templates (`form: github.pr_template`): a published lesson reaches the pull-request template
of every repository its rules select, through one Cairn pull request per repository, and how that
pull request ends is recorded on the placements."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.github import section, template
from connectors.github.fake import Delivery, FakeGitHub
from connectors.github.target import GitHubTarget
from connectors.github.webhook import TEMPLATE_CLOSED
from connectors.target import EmbedEntry
from core.access import Principal, Role
from core.base import utcnow
from core.lesson import Lesson
from core.placement import Placement, PlacementState, SignalKind
from core.work import System, WorkItem
from router.lessons.service import LessonService
from router.stages import DEFAULT_PUBLIC_URL
from router.stages.embed import lesson_link
from store import audit, outbox, placements, work_items
from store.engine import Database
from tests.router.support import drain, serving

GITHUB_SECRET = "template-github-secret"
API, DOCS, OTHER = "acme/api", "acme/docs-site", "other/lib"
DOCS_TEMPLATE = "## What changed\n\nDescribe the change.\n"
RULES = """\
pack: templates
level: organisation
priority: 100
rules:
  - id: testing-in-templates
    lesson: {tags: [testing]}
    work_item: {systems: [github], projects: ["acme/*"]}
    then: {form: github.pr_template, mandate: invited, text: "{{ lesson.statement }}"}
"""
OWNER = Principal("dana", frozenset({Role.ADMIN}))
REVIEWER = Principal("rui", frozenset({Role.REVIEWER}))


def known_repositories(db: Database) -> None:
    """Cairn has seen a pull request in each repository."""
    with db.transaction() as session:
        for number, repo in enumerate((API, DOCS, OTHER), start=1):
            item = WorkItem(
                system=System.GITHUB,
                ref=f"github:{repo}#{number}",
                project=repo,
                type="pull_request",
            )
            work_items.record(session, item, utcnow())


@dataclass
class World:
    client: TestClient
    db: Database
    github: FakeGitHub
    target: GitHubTarget


@pytest.fixture
def world(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[World]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "templates.yaml").write_text(RULES)
    with FakeGitHub(actor="cairn-bot").running() as github:
        github.default_branches.update({API: "main", DOCS: "trunk", OTHER: "main"})
        github.contents[(DOCS, "docs/pull_request_template.md")] = DOCS_TEMPLATE
        target = github.target()
        with serving(
            database_url,
            webhook_secret,
            prepare=known_repositories,
            rules_path=rules,
            github_webhook_secret=GITHUB_SECRET,
            targets={System.GITHUB: target},
        ) as (client, db):
            yield World(client, db, github, target)


def publish(db: Database, lesson_id: str, statement: str) -> None:
    service = LessonService(db)
    lesson = Lesson.model_validate(
        {
            "version": 1,
            "id": lesson_id,
            "title": f"Lesson {lesson_id}",
            "statement": statement,
            "provenance": {"captured_by": "dana", "captured_at": "2026-11-20T12:00:00Z"},
            "applicability": {"tags": ["testing"]},
            "owner": "platform",
            "severity_rank": 3,
        },
        strict=False,
    )
    service.create(lesson, OWNER)
    service.submit(lesson_id, OWNER)
    service.approve(lesson_id, REVIEWER, notes="worth it")
    service.publish(lesson_id, REVIEWER)


def post(world: World, delivery: Delivery, delivery_id: str | None = None) -> int:
    headers, body = FakeGitHub.signed(delivery, GITHUB_SECRET, delivery_id=delivery_id)
    status = world.client.post("/hooks/github", content=body, headers=headers).status_code
    assert status in (200, 202)
    return status


def placed(db: Database, repo: str) -> dict[str, Placement]:
    with db.transaction() as session:
        return {p.lesson_id: p for p in placements.for_work_item(session, template.ref(repo))}


def template_pulls(github: FakeGitHub, repo: str, state: str = "open") -> list[int]:
    return sorted(
        n
        for (r, n), p in github.pulls.items()
        if r == repo and p.head_ref == template.BRANCH and p.state == state
    )


def on_branch(github: FakeGitHub, repo: str, path: str) -> str:
    return github.files(repo, template.BRANCH)[path]


def calls(github: FakeGitHub, repo: str, since: int) -> tuple[int, int]:
    """(reads, writes) the repository received since request number `since`."""
    made = [r for r in github.requests[since:] if f"/repos/{repo}" in r]
    writes = sum(1 for r in made if not r.startswith("GET "))
    return len(made) - writes, writes


def merge(world: World, repo: str, delivery_id: str = "merge-1") -> Delivery:
    (number,) = template_pulls(world.github, repo)
    delivery = world.github.merge((repo, number), by="lead")
    post(world, delivery, delivery_id)
    drain(world.db)
    return delivery


def test_publish_opens_one_template_pull_request_per_selected_repository(world: World) -> None:
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    drain(world.db)
    # acme/api had no template: Cairn's branch creates the default one.
    (number,) = template_pulls(world.github, API)
    pull = world.github.pulls[(API, number)]
    assert (pull.base, pull.head_ref, pull.author) == ("main", "cairn/lessons", "cairn-bot")
    api = placed(world.db, API)["write-a-test"]
    assert api.state == PlacementState.EMBEDDED
    created = on_branch(world.github, API, template.DEFAULT_PATH)
    assert section.marker_id(api.id) in created
    assert "Add a test that reproduces the failure first." in created
    assert (API, template.DEFAULT_PATH) not in world.github.contents  # only through the PR
    assert section.marker_id(api.id) in (pull.body or "")
    # acme/docs-site's existing docs/ template is edited in place, its text kept.
    (docs_number,) = template_pulls(world.github, DOCS)
    assert world.github.pulls[(DOCS, docs_number)].base == "trunk"
    edited = on_branch(world.github, DOCS, "docs/pull_request_template.md")
    assert edited.startswith(DOCS_TEMPLATE)
    assert section.marker_id(placed(world.db, DOCS)["write-a-test"].id) in edited
    assert template.DEFAULT_PATH not in world.github.files(DOCS, template.BRANCH)
    assert world.github.contents[(DOCS, "docs/pull_request_template.md")] == DOCS_TEMPLATE
    # other/lib is outside the rule's projects.
    assert template_pulls(world.github, OTHER) == []
    assert placed(world.db, OTHER) == {}


def test_a_second_lesson_joins_the_open_pull_request_in_bounded_calls(world: World) -> None:
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    drain(world.db)
    first = len(world.github.requests)
    publish(world.db, "name-the-flag", "Name the feature flag in the description.")
    drain(world.db)
    assert len(template_pulls(world.github, API)) == 1  # the same pull request, not a second
    text = on_branch(world.github, API, template.DEFAULT_PATH)
    both = placed(world.db, API)
    assert all(section.marker_id(p.id) in text for p in both.values())
    assert {p.state for p in both.values()} == {PlacementState.EMBEDDED}
    # Reads: the repository, its open template PR, the template on Cairn's branch; writes: the
    # file and the pull request's body.
    assert calls(world.github, API, first) == (3, 2)
    # A redelivered embed message finds nothing to place: no API call at all.
    again = len(world.github.requests)
    with world.db.transaction() as session:
        outbox.enqueue(
            session,
            topic="embed",
            payload={"ref": template.ref(API)},
            key=template.ref(API),
            now=utcnow(),
        )
    drain(world.db)
    assert calls(world.github, API, again) == (0, 0)
    # A retry after a lost answer (the target called again with the same entries) writes none.
    item = template.work_item(API)
    entries = [
        EmbedEntry(
            placement_id=p.id,
            lesson_id=p.lesson_id,
            lesson_version=p.lesson_version,
            title=f"Lesson {p.lesson_id}",
            text=p.text,
            rule_id=p.rule_id,
            mandate=p.mandate,
            form=p.form,
            lesson_url=lesson_link(DEFAULT_PUBLIC_URL, p.lesson_id),
            handle=p.handle,
        )
        for p in both.values()
    ]
    result = world.target.embed(item, entries)
    assert (result.writes, result.reads) == (0, 3)
    assert on_branch(world.github, API, template.DEFAULT_PATH) == text


def test_merged_template_pull_request_verifies_and_a_redelivery_adds_nothing(
    world: World,
) -> None:
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    drain(world.db)
    delivery = merge(world, API)
    found = placed(world.db, API)["write-a-test"]
    assert found.state == PlacementState.COMPLETED
    assert section.marker_id(found.id) in world.github.contents[(API, template.DEFAULT_PATH)]
    with world.db.transaction() as session:
        signals = placements.signals(session, found.id)
    assert {s.kind for s in signals} == {SignalKind.TICKED, SignalKind.MERGED_CLEAN}
    assert {s.actor for s in signals} == {"lead"}
    assert post(world, delivery, "merge-1") == 200  # GitHub redelivers: a known duplicate
    drain(world.db)
    with world.db.transaction() as session:
        assert len(placements.signals(session, found.id)) == len(signals)
    assert placed(world.db, API)["write-a-test"] == found
    # The docs-site pull request is still open, its placement untouched.
    assert placed(world.db, DOCS)["write-a-test"].state == PlacementState.EMBEDDED


def test_closed_unmerged_dismisses_with_a_reason_and_is_not_put_back(world: World) -> None:
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    drain(world.db)
    (number,) = template_pulls(world.github, API)
    post(world, world.github.close((API, number), by="lead"))
    drain(world.db)
    turned_down = placed(world.db, API)["write-a-test"]
    assert turned_down.state == PlacementState.DISMISSED
    assert turned_down.reason == TEMPLATE_CLOSED
    # The next lesson opens a new pull request from a branch reset to the default branch,
    # without the lesson that was turned down.
    publish(world.db, "name-the-flag", "Name the feature flag in the description.")
    drain(world.db)
    (second,) = template_pulls(world.github, API)
    assert second != number
    text = on_branch(world.github, API, template.DEFAULT_PATH)
    assert section.marker_id(placed(world.db, API)["name-the-flag"].id) in text
    assert section.marker_id(turned_down.id) not in text


def test_a_fork_branch_named_like_cairns_dismisses_nothing(world: World) -> None:
    """Anyone may open a pull request from a fork's `cairn/lessons` branch and copy the template
    PR's body with its item markers; closing it must not touch the template's placements."""
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    drain(world.db)
    (number,) = template_pulls(world.github, API)
    real = world.github.pull_json(world.github.pulls[(API, number)])
    forged = Delivery(
        "pull_request",
        {
            "action": "closed",
            "number": number + 100,
            "pull_request": {
                **real,
                "number": number + 100,
                "state": "closed",
                "merged": False,
                "user": {"login": "mallory"},
                "head": {**real["head"], "repo": {"full_name": "mallory/api"}},
            },
            "repository": {"full_name": API},
            "sender": {"login": "mallory"},
        },
    )
    post(world, forged, "forged-close")
    drain(world.db)
    assert placed(world.db, API)["write-a-test"].state == PlacementState.EMBEDDED


def test_retire_removes_the_item_through_a_pull_request(world: World) -> None:
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    publish(world.db, "name-the-flag", "Name the feature flag in the description.")
    drain(world.db)
    merge(world, API)
    retired = placed(world.db, API)["write-a-test"]
    LessonService(world.db).retire("write-a-test", OWNER)
    drain(world.db)
    assert placed(world.db, API)["write-a-test"].state == PlacementState.WITHDRAWN
    assert len(template_pulls(world.github, API)) == 1
    text = on_branch(world.github, API, template.DEFAULT_PATH)
    assert section.marker_id(retired.id) not in text
    assert section.marker_id(placed(world.db, API)["name-the-flag"].id) in text
    # Not on the default branch until the pull request is merged.
    assert section.marker_id(retired.id) in world.github.contents[(API, template.DEFAULT_PATH)]
    merge(world, API, "merge-2")
    assert section.marker_id(retired.id) not in world.github.contents[(API, template.DEFAULT_PATH)]


def test_a_hand_edit_of_the_merged_section_is_recorded_and_changed_only_by_a_pr(
    world: World,
) -> None:
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    drain(world.db)
    merge(world, API)
    merged = world.github.contents[(API, template.DEFAULT_PATH)]
    by_hand = merged.replace("Add a test that reproduces", "Add a regression test that reproduces")
    world.github.contents[(API, template.DEFAULT_PATH)] = by_hand
    publish(world.db, "name-the-flag", "Name the feature flag in the description.")
    drain(world.db)
    assert world.github.contents[(API, template.DEFAULT_PATH)] == by_hand  # not overwritten
    (number,) = template_pulls(world.github, API)
    assert "edited by hand" in (world.github.pulls[(API, number)].body or "")
    with world.db.transaction() as session:
        found = audit.entries(session, action="template.edited_by_hand", subject=template.ref(API))
    assert len(found) == 1
    assert found[0].details["path"] == template.DEFAULT_PATH


def test_a_revision_of_a_merged_lesson_updates_the_template_through_a_new_pull_request(
    world: World,
) -> None:
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    drain(world.db)
    merge(world, API)
    service = LessonService(world.db)
    service.revise("write-a-test", OWNER)
    service.edit("write-a-test", {"statement": "Add a failing test before the change."}, OWNER)
    service.submit("write-a-test", OWNER)
    service.approve("write-a-test", REVIEWER, notes="clearer")
    service.publish("write-a-test", REVIEWER)
    drain(world.db)
    found = placed(world.db, API)["write-a-test"]
    assert (found.lesson_version, found.placed_version) == (2, 1)
    assert len(placed(world.db, API)) == 1  # revised in place, not placed a second time
    (_pull,) = template_pulls(world.github, API)
    text = on_branch(world.github, API, template.DEFAULT_PATH)
    assert "Add a failing test before the change." in text
    assert "_(updated to v2)_" in text
    assert "reproduces" in world.github.contents[(API, template.DEFAULT_PATH)]  # until merged
