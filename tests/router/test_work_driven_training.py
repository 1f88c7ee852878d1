"""Work-driven training end to end: a pull request matching a rule with `form: lms.assignment`
assigns the lesson's course to the PR's assignee (the team-map member with that GitHub login)
through the Moodle contract fake, on the learner's work item and never in the PR; a redelivery or
another matching PR assigns nothing new, and an assignee who is not in the team map gets nothing,
which the audit trail says."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from connectors.generic.webhook import sign
from connectors.lms_target import Handle, LmsTarget
from connectors.moodle.fake import MoodleFake
from core.base import utcnow
from core.placement import EmbeddingForm, PlacementState
from core.team import Member, Team
from core.work import System
from router.lms import learners
from rules.model import Rule
from store import audit, lessons, placements, teams, work_items
from store.engine import Database
from tests.router.support import PR, PR_REF, drain, serving
from tests.router.test_training import course_lesson

RULES = """\
pack: work-training
level: organisation
rules:
  - id: pool-course-for-pool-changes
    description: Whoever changes the pool sizing of payments-api takes the pool course.
    lesson:
      forms: [training]
    work_item:
      systems: [github]
      projects: [acme/payments-api]
      paths: ["src/payments/db/**"]
    then:
      form: lms.assignment
      due: 30d
      text: "{{ lesson.title }} (for {{ work_item.ref }})"
"""
DANA = learners.learner_ref("payments", "dana@example.com")


@dataclass
class World:
    client: TestClient
    db: Database
    moodle: MoodleFake
    course: int
    dana: int
    secret: str


@pytest.fixture
def world(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[World]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "work-training.yaml").write_text(RULES)
    moodle = MoodleFake()
    course = moodle.add_course("POOL-101", "Pool sizing")
    dana = moodle.add_user("dana@example.com")

    def prepare(db: Database) -> None:
        now = utcnow()
        with db.transaction() as session:
            lessons.add(session, course_lesson(course), now)
            lessons.publish(session, "pool-course", now)
            member = Member(
                person="dana@example.com",
                name="Dana",
                email="dana@example.com",
                logins={"github": "dana"},  # the fixture PR's assignee
            )
            teams.replace_team(session, Team(name="payments", members=(member,)), now)
            # Dana is in another team too: the PR's team is the one she learns in.
            teams.replace_team(session, Team(name="web", members=(member,)), now)

    with (
        moodle.running(),
        serving(
            database_url,
            webhook_secret,
            prepare=prepare,
            rules_path=rules,
            targets={System.LMS: LmsTarget(moodle.client())},
        ) as (client, db),
    ):
        yield World(client, db, moodle, course, dana, webhook_secret)


def deliver(world: World, body: bytes, delivery: str) -> None:
    answer = world.client.post(
        "/hooks/generic", content=body, headers=sign(world.secret, delivery, body)
    )
    assert answer.status_code == 202, answer.text
    drain(world.db)


def pull_request(number: int, assignee: str) -> bytes:
    doc: dict[str, Any] = json.loads(PR.read_bytes())
    doc["work_item"].update(
        ref=f"github:acme/payments-api#{number}",
        url=f"https://github.example.com/acme/payments-api/pull/{number}",
        assignee=assignee,
    )
    return json.dumps(doc).encode()


def placed(db: Database, ref: str) -> list[Any]:
    with db.transaction() as session:
        return placements.for_work_item(session, ref)


def entries(db: Database, action: str) -> list[Any]:
    with db.transaction() as session:
        return audit.entries(session, action=action)


@pytest.mark.parametrize("systems", [["github"], ["jira"], ["github", "jira"], ["lms"]])
def test_training_may_be_assigned_from_tickets_and_pull_requests(systems: list[str]) -> None:
    rule = Rule.model_validate(
        {"id": "r", "work_item": {"systems": systems}, "then": {"form": "lms.assignment"}}
    )
    assert rule.then.form == EmbeddingForm.LMS_ASSIGNMENT
    with pytest.raises(ValidationError, match="cannot be placed in"):
        Rule.model_validate(
            {"id": "r", "work_item": {"systems": ["lms"]}, "then": {"form": "jira.checklist"}}
        )


def test_a_matching_pull_request_enrols_its_assignee_once(world: World) -> None:
    db, moodle = world.db, world.moodle
    assert json.loads(PR.read_bytes())["work_item"]["assignee"] == "dana"
    deliver(world, PR.read_bytes(), "msg_pr_1")

    assert placed(db, PR_REF) == []  # nothing in the PR itself
    [training] = placed(db, DANA)
    assert training.form == EmbeddingForm.LMS_ASSIGNMENT
    assert training.state == PlacementState.EMBEDDED
    assert training.lesson_id == "pool-course"
    assert training.rule_id == "work-training/pool-course-for-pool-changes"
    assert training.due_at is not None
    assert training.text == f"Pool sizing in 20 minutes (for {PR_REF})"
    handle = Handle.parse(training.handle or "")
    assert handle is not None and (handle.lms, handle.module) == ("moodle", str(world.course))
    assert moodle.is_enrolled(world.dana, world.course)
    assert placed(db, learners.learner_ref("web", "dana@example.com")) == []
    with db.transaction() as session:
        learner = work_items.get(session, DANA)
    assert learner is not None and learner.assignee == "dana@example.com"
    [planned] = entries(db, "placement.planned")
    assert planned.subject == DANA
    assert planned.details["via"] == PR_REF
    assert planned.details["placement"] == training.id
    assert planned.details["form"] == "lms.assignment"

    enrols = moodle.count("enrol_manual_enrol_users")
    assert enrols == 1
    deliver(world, PR.read_bytes(), "msg_pr_2")  # the PR changes again
    deliver(world, pull_request(482, "dana"), "msg_pr_3")  # another PR of hers
    assert moodle.count("enrol_manual_enrol_users") == enrols  # nobody enrolled twice
    assert [p.id for p in placed(db, DANA)] == [training.id]
    assert placed(db, "github:acme/payments-api#482") == []
    assert len(entries(db, "placement.planned")) == 1

    # The lesson-driven sync of the same learner finds the assignment already made.
    learners.sync(db)
    drain(db)
    assert moodle.count("enrol_manual_enrol_users") == enrols
    assert entries(db, "training.no_learner") == []


def test_an_assignee_outside_the_team_map_is_trained_nowhere(world: World) -> None:
    db = world.db
    deliver(world, pull_request(490, "zed"), "msg_pr_zed")
    ref = "github:acme/payments-api#490"
    assert placed(db, ref) == []
    assert placed(db, DANA) == []
    assert world.moodle.count("enrol_manual_enrol_users") == 0
    assert entries(db, "placement.planned") == []
    [missing] = entries(db, "training.no_learner")
    assert missing.subject == ref
    assert missing.details["assignee"] == "zed"
    assert missing.details["system"] == "github"
    assert missing.details["lesson"].startswith("pool-course@")
    assert missing.details["rule"] == "work-training/pool-course-for-pool-changes"
