"""Overdue reminders through the running app and its pipeline, against the GitHub and Jira
contract fakes (real PyGithub and `jira` clients), on SQLite and PostgreSQL.

A mandated item goes overdue → one comment on the PR and one on the ticket naming it; another
sweep or a redelivery within the window posts nothing; after the window one more; a ticked item
is never reminded; a retry after a crash finds its comment and posts nothing twice.
"""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.github.fake import Delivery, FakeGitHub
from connectors.github.reminder import marker
from connectors.github.target import GitHubTarget
from connectors.jira import adf
from connectors.jira.engineer import Engineer, deliver
from connectors.jira.fake import JiraFake
from connectors.retrying import RetryPolicy
from connectors.target import Reminder
from core.base import utcnow
from core.placement import Placement, PlacementState
from core.work import System
from router.overdue import Reminders, sweep
from router.pipeline import REMIND_TOPIC
from store import audit, outbox, placements, work_items
from store.engine import Database
from tests.router.support import drain, publish_examples, serving

GITHUB_SECRET = "reminders-github-secret"
JIRA_SECRET = "reminders-jira-secret-0123456789abcdef"
REPO = "acme/payments-api"
PR_REF = f"github:{REPO}#1"
POOL, CSS = "derive-pool-size", "cache-bust-css"
POOL_TITLE = "Derive the database pool size from the worker count"
LESSON_URL = "http://127.0.0.1:8000/ui/lessons/derive-pool-size"
RULES = """\
pack: reminders
level: organisation
priority: 100
rules:
  - id: pool-on-prs
    lesson: {tags: [connection-pool]}
    work_item: {systems: [github]}
    then: {form: github.pr_checklist, mandate: required, due: 2d}
  - id: css-on-prs
    lesson: {tags: [frontend]}
    work_item: {systems: [github]}
    then: {form: github.pr_checklist, mandate: required, due: 2d}
  - id: pool-on-stories
    lesson: {tags: [connection-pool]}
    work_item: {systems: [jira], types: [Story]}
    then: {form: jira.checklist, mandate: required, due: 2d}
  - id: css-on-stories
    lesson: {tags: [frontend]}
    work_item: {systems: [jira], types: [Story]}
    then: {form: jira.checklist, mandate: review_and_justify, due: 2d}
"""
WINDOW = timedelta(hours=168)
BOTH = Reminders(WINDOW, frozenset({System.GITHUB, System.JIRA}))
_ids = itertools.count(1)


@dataclass
class World:
    """The running app, its database, both fakes and the targets pointed at them."""

    client: TestClient
    db: Database
    github: FakeGitHub
    jira: JiraFake
    github_target: GitHubTarget


@pytest.fixture
def world(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[World]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "reminders.yaml").write_text(RULES)
    with FakeGitHub(actor="cairn-bot").running() as github, JiraFake().running() as jira:
        github_target = github.target()
        targets = {
            System.GITHUB: github_target,
            System.JIRA: jira.target(policy=RetryPolicy(attempts=2, base_wait=0.01, max_wait=1)),
        }
        with serving(
            database_url,
            webhook_secret,
            prepare=publish_examples,
            rules_path=rules,
            github_webhook_secret=GITHUB_SECRET,
            jira_webhook_secret=JIRA_SECRET,
            targets=targets,
            overdue_sweep_seconds=3600,  # the tests sweep themselves, at chosen times
        ) as (client, db):
            yield World(client, db, github, jira, github_target)


def post_github(world: World, delivery: Delivery) -> None:
    headers, body = FakeGitHub.signed(delivery, GITHUB_SECRET)
    assert world.client.post("/hooks/github", content=body, headers=headers).status_code == 202


def post_jira(world: World, payload: dict[str, Any]) -> None:
    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        return world.client.post(url, content=body, headers=headers).status_code

    assert deliver(payload, "/hooks/jira", JIRA_SECRET, f"rem-{next(_ids)}", post=post) == 202


def placed(db: Database, ref: str) -> dict[str, Placement]:
    with db.transaction() as session:
        return {p.lesson_id: p for p in placements.for_work_item(session, ref)}


def open_work(world: World) -> str:
    """A PR and a Story, each with the pool lesson (left open) and the CSS lesson (ticked)."""
    post_github(
        world, world.github.open_pull(REPO, title="More workers", body="Text.", files=["a"])
    )
    engineer = Engineer(world.jira)
    key, created = engineer.create_issue(
        "PAY", "Scale ledger workers", "Human text.", components=("ledger-api",)
    )
    post_jira(world, created)
    drain(world.db)
    pr, story = placed(world.db, PR_REF), placed(world.db, f"jira:{key}")
    assert {p.state for p in [*pr.values(), *story.values()]} == {PlacementState.EMBEDDED}
    post_github(world, world.github.tick((REPO, 1), pr[CSS].id))
    post_jira(world, engineer.tick(key, story[CSS].id))
    drain(world.db)
    assert placed(world.db, PR_REF)[CSS].state == PlacementState.COMPLETED
    assert placed(world.db, f"jira:{key}")[CSS].state == PlacementState.COMPLETED
    return key


def github_comments(world: World) -> list[str]:
    return [c["body"] for c in world.github.comments.get((REPO, 1), [])]


def expected_github(placement: Placement, number: int) -> str:
    assert placement.due_at is not None
    return (
        f"<!-- cairn:reminder:{placement.id}:{number} -->\n"
        "**Overdue lesson:** this mandated item is past its due date and still open on this "
        "pull request.\n"
        "\n"
        f"- **{POOL_TITLE}** — required — due {placement.due_at.date().isoformat()} · "
        f"[Lesson]({LESSON_URL})\n"
        "\n"
        "_Tick it in the Lessons section of the description once it is handled; if it does not "
        "apply, write `N/A: reason` after it._"
    )


def expected_jira(placement: Placement) -> dict[str, Any]:
    assert placement.due_at is not None
    due = placement.due_at.date().isoformat()
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "Overdue lesson: ", "marks": [{"type": "strong"}]},
                    {
                        "type": "text",
                        "text": "this mandated item is past its due date and still open on "
                        "this issue.",
                    },
                ],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [
                                    {
                                        "type": "text",
                                        "text": POOL_TITLE,
                                        "marks": [{"type": "strong"}],
                                    },
                                    {"type": "text", "text": f" — required — due {due}"},
                                    {"type": "text", "text": " — "},
                                    {
                                        "type": "text",
                                        "text": "lesson",
                                        "marks": [{"type": "link", "attrs": {"href": LESSON_URL}}],
                                    },
                                ],
                            }
                        ],
                    }
                ],
            },
            {
                "type": "paragraph",
                "content": [
                    {
                        "type": "text",
                        "text": "Tick it in the Lessons learned list of the description (or "
                        "finish its sub-task) once it is handled; if it does not apply, mark it "
                        "not applicable with a reason.",
                    }
                ],
            },
        ],
    }


def rewind(db: Database, placement_id: str, by: timedelta) -> None:
    """Move a placement's last reminder back in time, as if the window had passed."""
    with db.transaction() as session:
        found = placements.get(session, placement_id)
        assert found is not None and found.reminded_at is not None
        placements.update(session, found.model_copy(update={"reminded_at": found.reminded_at - by}))


def reminded(db: Database) -> list[dict[str, Any]]:
    with db.transaction() as session:
        return [e.details for e in audit.entries(session, action="placement.reminded")]


def test_one_reminder_per_placement_per_window(world: World) -> None:
    db = world.db
    key = open_work(world)
    jira_ref = f"jira:{key}"
    later = utcnow() + timedelta(days=3)  # past the 2-day due dates

    assert sweep(db, later, reminders=BOTH) == 2  # the two open pool items; ticked CSS ones not
    drain(db)
    pr_pool, story_pool = placed(db, PR_REF)[POOL], placed(db, jira_ref)[POOL]
    assert github_comments(world) == [expected_github(pr_pool, 1)]
    [comment] = world.jira.comments(key)
    assert comment["body"] == expected_jira(story_pool)
    assert comment["properties"] == {"cairn.reminder": {"keys": [f"{story_pool.id}:1"]}}
    for placement in (pr_pool, story_pool):
        assert placement.state == PlacementState.OVERDUE
        assert placement.reminders == 1 and placement.reminded_at is not None
    details = reminded(db)
    assert sorted((d["placement"], d["reminder"], d["key"]) for d in details) == sorted(
        [(pr_pool.id, 1, f"{pr_pool.id}:1"), (story_pool.id, 1, f"{story_pool.id}:1")]
    )
    assert {d["comment"] for d in details} == {"1001", comment["id"]}

    # Within the window: another sweep queues nothing, and a redelivered reminder posts nothing.
    writes = (world.github.writes[(REPO, 1)], world.jira.writes[key])
    assert sweep(db, later, reminders=BOTH) == 0
    with db.transaction() as session:
        assert outbox.counts(session)["pending"] == 0
        for ref in (PR_REF, jira_ref):
            outbox.enqueue(session, topic=REMIND_TOPIC, payload={"ref": ref}, key=ref, now=utcnow())
    drain(db)
    assert (world.github.writes[(REPO, 1)], world.jira.writes[key]) == writes
    assert len(github_comments(world)) == 1 and len(world.jira.comments(key)) == 1
    assert len(reminded(db)) == 2

    # After the window: one more reminder on each, with the next key.
    rewind(db, pr_pool.id, WINDOW + timedelta(hours=1))
    rewind(db, story_pool.id, WINDOW + timedelta(hours=1))
    assert sweep(db, utcnow(), reminders=BOTH) == 0
    drain(db)
    pr_pool, story_pool = placed(db, PR_REF)[POOL], placed(db, jira_ref)[POOL]
    assert github_comments(world) == [
        expected_github(pr_pool, 1),
        expected_github(pr_pool, 2),
    ]
    assert [c["properties"]["cairn.reminder"]["keys"] for c in world.jira.comments(key)] == [
        [f"{story_pool.id}:1"],
        [f"{story_pool.id}:2"],
    ]
    assert pr_pool.reminders == 2 and story_pool.reminders == 2
    assert len(reminded(db)) == 4

    # The ticked items were never reminded, nor named in any comment.
    for ref in (PR_REF, jira_ref):
        css = placed(db, ref)[CSS]
        assert css.state == PlacementState.COMPLETED
        assert css.reminded_at is None and css.reminders == 0
    assert not any("Fingerprint static assets" in body for body in github_comments(world))
    jira_text = [adf.plain_text(c["body"]) for c in world.jira.comments(key)]
    assert not any("Fingerprint static assets" in text for text in jira_text)


def test_a_retry_after_a_crash_finds_its_comment(world: World) -> None:
    db = world.db
    open_work(world)
    later = utcnow() + timedelta(days=3)
    pool = placed(db, PR_REF)[POOL]
    assert pool.due_at is not None
    # The comment was posted, then the worker died before recording it.
    with db.transaction() as session:
        item = work_items.get(session, PR_REF)
    assert item is not None
    done = world.github_target.remind(
        item,
        [
            Reminder(
                placement_id=pool.id,
                key=f"{pool.id}:1",
                title=POOL_TITLE,
                mandate=pool.mandate,
                due_at=pool.due_at,
                lesson_url=LESSON_URL,
            )
        ],
    )
    assert done.writes == 1
    sweep(db, later, reminders=Reminders(WINDOW, frozenset({System.GITHUB})))
    drain(db)
    assert len(github_comments(world)) == 1  # the retry read its marker and posted nothing
    assert marker(f"{pool.id}:1") in github_comments(world)[0]
    after = placed(db, PR_REF)[POOL]
    assert after.reminders == 1 and after.reminded_at is not None
    [details] = reminded(db)
    assert details["comment"] is None and details["writes"] == 0


def test_a_window_of_zero_turns_reminders_off(world: World) -> None:
    db = world.db
    key = open_work(world)
    later: datetime = utcnow() + timedelta(days=3)
    assert sweep(db, later, reminders=Reminders(timedelta(0), BOTH.systems)) == 2
    drain(db)
    assert github_comments(world) == [] and world.jira.comments(key) == []
    assert placed(db, PR_REF)[POOL].state == PlacementState.OVERDUE
    # A target that cannot remind (none configured for the system) gets nothing queued either.
    assert sweep(db, later, reminders=Reminders(WINDOW, frozenset())) == 0
    with db.transaction() as session:
        assert outbox.counts(session)["pending"] == 0
