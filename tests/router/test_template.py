"""PR templates (`form: github.pr_template`): a published lesson reaches the pull-request template
of every repository its rules select, through one Cairn pull request per repository, and how that
pull request ends is recorded on the placements."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from connectors.github import section, template
from connectors.github.fake import Delivery, FakeGitHub
from connectors.github.target import GitHubTarget
from connectors.github.webhook import TEMPLATE_CLOSED
from connectors.target import EmbedEntry
from core.access import Principal, Role
from core.base import utcnow
from core.errors import TransientError
from core.lesson import Lesson
from core.placement import Placement, PlacementState, SignalKind
from core.work import System, WorkItem
from router.lessons.service import LessonService
from router.pipeline import StageContext
from router.ruleset.active import ActiveRules
from router.ruleset.source import read_rule_files, rule_set_of
from router.settings import Settings
from router.stages import DEFAULT_PUBLIC_URL, diffuse
from router.stages.diffuse import TemplateRulesWatch
from router.stages.embed import lesson_link
from store import audit, outbox, placements, work_items
from store.engine import Database
from store.tables import OutboxRow
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


@contextmanager
def served(database_url: str, webhook_secret: str, rules: Path, **settings: Any) -> Iterator[World]:
    """Cairn with the rule packs in `rules`, the GitHub fake knowing the three repositories
    (and any in `settings`' listed ones), and Cairn having seen a pull request in each."""
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
            **settings,
        ) as (client, db):
            yield World(client, db, github, target)


def rules_dir(tmp_path: Path, **packs: str) -> Path:
    """A rules directory holding each pack as `<name>.yaml`."""
    rules = tmp_path / "rules"
    rules.mkdir(parents=True)
    for name, text in packs.items():
        (rules / f"{name}.yaml").write_text(text)
    return rules


@pytest.fixture
def world(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[World]:
    with served(database_url, webhook_secret, rules_dir(tmp_path, templates=RULES)) as world:
        yield world


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


def test_the_closing_comment_of_whoever_closed_is_the_dismissal_reason(world: World) -> None:
    """GitHub's "Close with comment" posts the comment, then closes: the closer's comment near
    the close is the reason; someone else's, or the closer's from long before, is not."""
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    drain(world.db)
    (number,) = template_pulls(world.github, API)
    pull = world.github.pulls[(API, number)]
    world.github.comment(pull, "Old thought, not the reason.", "lead")
    world.github.comments[(API, number)][-1]["created_at"] = "2020-01-01T00:00:00Z"
    world.github.comment(pull, "I would merge this.", "reviewer")
    world.github.comment(pull, "We keep test advice in CONTRIBUTING.md,\n\nnot here.", "lead")
    delivery = world.github.close((API, number), by="lead")
    post(world, delivery, "close-1")
    drain(world.db)
    turned_down = placed(world.db, API)["write-a-test"]
    assert turned_down.state == PlacementState.DISMISSED
    assert turned_down.reason == "We keep test advice in CONTRIBUTING.md, not here."
    with world.db.transaction() as session:
        signals = placements.signals(session, turned_down.id)
    assert [(s.kind, s.actor, s.reason) for s in signals] == [
        (SignalKind.DISMISSED, "lead", "We keep test advice in CONTRIBUTING.md, not here.")
    ]
    assert post(world, delivery, "close-1") == 200  # redelivered: a known duplicate
    drain(world.db)
    with world.db.transaction() as session:
        assert len(placements.signals(session, turned_down.id)) == 1


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


def test_a_template_rule_change_places_the_published_lessons_it_now_selects(
    database_url: str, webhook_secret: str, tmp_path: Path
) -> None:
    """Editing the rules is diffusion too: a template rule that now selects a repository places
    the lessons published before the edit, once, whichever process sees the change."""
    narrow = RULES.replace('projects: ["acme/*"]', 'projects: ["acme/docs-site"]')
    rules = rules_dir(tmp_path, templates=narrow)
    with served(database_url, webhook_secret, rules, rules_reload_seconds=0.1) as world:
        db, github = world.db, world.github
        publish(db, "write-a-test", "Add a test that reproduces the failure first.")
        drain(db)
        assert (template_pulls(github, API), len(template_pulls(github, DOCS))) == ([], 1)

        (rules / "templates.yaml").write_text(RULES)  # now every acme repository
        deadline = time.monotonic() + 15
        while not template_pulls(github, API) and time.monotonic() < deadline:
            time.sleep(0.05)
        drain(db)
        (number,) = template_pulls(github, API)
        item = placed(db, API)["write-a-test"]
        assert section.marker_id(item.id) in on_branch(github, API, template.DEFAULT_PATH)
        assert len(template_pulls(github, DOCS)) == 1 and template_pulls(github, OTHER) == []

        # Another process holding the same rules (its own watch, nothing in memory) finds
        # the change recorded and enqueues nothing; later checks of unchanged files neither.
        TemplateRulesWatch(db)(rule_set_of(read_rule_files(rules)))
        time.sleep(0.5)
        drain(db)
        with db.transaction() as session:
            diffusions = session.scalars(
                select(OutboxRow.payload).where(OutboxRow.topic == diffuse.TOPIC)
            ).all()
        by_rules = [p for p in diffusions if "rules" in p]
        assert len(by_rules) == 2, diffusions  # the rules at start, and the one change
        assert template_pulls(github, API) == [number]
        assert placed(db, API)["write-a-test"].id == item.id


def test_a_repository_seen_for_the_first_time_gets_the_lessons_published_before(
    world: World,
) -> None:
    publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
    drain(world.db)
    fresh = "acme/new-service"
    assert template_pulls(world.github, fresh) == []
    opened = world.github.open_pull(fresh, title="First change", body="Hello.", files=[])
    post(world, opened, "fresh-1")
    drain(world.db)
    (number,) = template_pulls(world.github, fresh)
    found = placed(world.db, fresh)["write-a-test"]
    assert section.marker_id(found.id) in on_branch(world.github, fresh, template.DEFAULT_PATH)
    # Its second pull request is not a first sighting: nothing new is diffused.
    post(world, world.github.open_pull(fresh, title="Second", body="", files=[]), "fresh-2")
    drain(world.db)
    assert template_pulls(world.github, fresh) == [number]
    with world.db.transaction() as session:
        firsts = session.scalars(
            select(OutboxRow.payload).where(OutboxRow.topic == diffuse.TOPIC)
        ).all()
    assert [p["repository"] for p in firsts if "repository" in p] == [fresh]
    # A repository outside every template rule's projects gets no template.
    post(world, world.github.open_pull("other/new", title="x", body="", files=[]), "other-1")
    drain(world.db)
    assert template_pulls(world.github, "other/new") == []


OPT_OUTS = """\
pack: opt-outs
level: organisation
priority: 200
rules:
  - id: no-testing-lessons-here
    lesson: {tags: [testing]}
    work_item: {systems: [github], projects: ["acme/docs-site"]}
    then: {suppress: true}
  - id: not-for-generated-code
    lesson: {tags: [testing]}
    work_item: {projects: ["acme/api"], paths: ["generated/**"]}
    then: {suppress: true}
"""


TEAM_PACK = """\
pack: api-team
level: team
team: api
priority: 300
rules:
  - id: not-in-our-work
    lesson: {tags: [testing]}
    work_item: {systems: [github]}
    then: {suppress: true}
"""
"""A team pack speaks for its team's work items: its opt-out leaves every template alone."""


def test_a_repository_wide_opt_out_keeps_the_lesson_out_of_that_template_only(
    database_url: str, webhook_secret: str, tmp_path: Path
) -> None:
    """An organisation's `suppress` rule naming only systems and repositories opts the whole
    repository out, template included; one about some pull requests (their paths) does not
    touch the template, nor does a team pack's opt-out."""
    rules = rules_dir(tmp_path, templates=RULES, **{"opt-outs": OPT_OUTS, "api-team": TEAM_PACK})
    with served(database_url, webhook_secret, rules) as world:
        publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
        drain(world.db)
        assert len(template_pulls(world.github, API)) == 1
        assert "write-a-test" in placed(world.db, API)
        assert template_pulls(world.github, DOCS) == [] and placed(world.db, DOCS) == {}


def test_a_lesson_whose_applicability_rules_a_repository_out_stays_out_of_its_template(
    world: World,
) -> None:
    service = LessonService(world.db)
    lesson = Lesson.model_validate(
        {
            "version": 1,
            "id": "api-only",
            "title": "Lesson api-only",
            "statement": "Only the API repository needs this.",
            "provenance": {"captured_by": "dana", "captured_at": "2026-11-20T12:00:00Z"},
            "applicability": {"tags": ["testing"], "exclusions": {"repos": ["acme/docs-*"]}},
            "owner": "platform",
        },
        strict=False,
    )
    service.create(lesson, OWNER)
    service.submit("api-only", OWNER)
    service.approve("api-only", REVIEWER, notes="worth it")
    service.publish("api-only", REVIEWER)
    drain(world.db)
    assert "api-only" in placed(world.db, API)
    assert "api-only" not in placed(world.db, DOCS)


def test_listed_repositories_get_templates_before_cairn_sees_a_pull_request_there(
    database_url: str, webhook_secret: str, tmp_path: Path
) -> None:
    unseen = "acme/not-yet-seen"
    rules = rules_dir(tmp_path, templates=RULES)
    listed = f" {unseen} , other/listed"
    with served(database_url, webhook_secret, rules, github_template_repositories=listed) as world:
        world.github.default_branches[unseen] = "main"
        publish(world.db, "write-a-test", "Add a test that reproduces the failure first.")
        drain(world.db)
        assert len(template_pulls(world.github, unseen)) == 1
        found = placed(world.db, unseen)["write-a-test"]
        text = on_branch(world.github, unseen, template.DEFAULT_PATH)
        assert section.marker_id(found.id) in text
        assert template_pulls(world.github, "other/listed") == []  # listed, no rule selects it


@pytest.mark.parametrize("value", ["acme", "acme/api,", "acme/api, bad repo/x", "a/b/c"])
def test_a_malformed_template_repository_list_stops_start_up(value: str) -> None:
    with pytest.raises(ValidationError, match="github_template_repositories"):
        Settings(database_url=SecretStr("sqlite://"), github_template_repositories=value)


def test_a_process_behind_on_the_rules_retries_a_rule_change_instead_of_dropping_it(
    sqlite_db: Database, tmp_path: Path
) -> None:
    narrow = RULES.replace('projects: ["acme/*"]', 'projects: ["acme/docs-site"]')
    old_rules, new_rules = (
        rules_dir(tmp_path / "old", t=narrow),
        rules_dir(tmp_path / "new", t=RULES),
    )
    TemplateRulesWatch(sqlite_db)(rule_set_of(read_rule_files(new_rules)))  # the other process
    with sqlite_db.transaction() as session:
        (payload,) = session.scalars(select(OutboxRow.payload)).all()
        ctx = StageContext(session, utcnow(), 1)
        behind = diffuse.make_handler(ActiveRules(old_rules))
        with pytest.raises(TransientError):
            behind(ctx, payload)  # the change is kept for when this process has read it
        diffuse.make_handler(ActiveRules(new_rules))(ctx, payload)  # caught up: runs


def test_template_rules_removed_and_put_back_are_a_change(
    sqlite_db: Database, tmp_path: Path
) -> None:
    with_rule = rule_set_of(read_rule_files(rules_dir(tmp_path / "a", t=RULES)))
    without = rule_set_of(read_rule_files(rules_dir(tmp_path / "b", t=OPT_OUTS)))
    for rule_set in (with_rule, without, with_rule):
        TemplateRulesWatch(sqlite_db)(rule_set)  # a fresh process each time
    with sqlite_db.transaction() as session:
        payloads = session.scalars(select(OutboxRow.payload)).all()
    assert [p["rules"] for p in payloads] == [diffuse.template_rules_digest(with_rule)] * 2
