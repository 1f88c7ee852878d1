"""Training end to end: a lesson in the training form is assigned through the Moodle contract
fake to each member of the team it applies to (once, however often the sync runs), completion
comes back from Moodle's progress, from an xAPI store polled with a cursor, and from a pushed
statement, and each learner's placement ends `verified`; retiring the lesson withdraws the
enrolments."""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, TypeAdapter

from connectors.lms_target import Handle, LmsTarget
from connectors.moodle.fake import MoodleFake
from connectors.xapi.client import XapiClient
from connectors.xapi.fake import FakeLrs
from core.adoption import Tier
from core.base import utcnow
from core.lesson import Lesson, LessonStatus
from core.placement import PlacementState
from core.team import Member, Team
from core.work import System
from router.lms import learners, progress
from router.lms.statements import StatementPoller
from router.reports.adoption import Filters, ReportService
from store import lessons, placements, teams
from store.engine import Database
from tests.router.support import EXAMPLES, drain, serving

IRI = "https://lms.example.com/activities/pool-sizing"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PUSH_SECRET = "push-secret-for-tests-0123456789abcdef"


def course_lesson(course_id: int) -> Lesson:
    found = TypeAdapter(list[Lesson]).validate_json((EXAMPLES / "lessons.json").read_bytes())
    doc = found[0].model_dump(mode="json")
    doc.update(
        id="pool-course",
        title="Pool sizing in 20 minutes",
        form="training",
        status=LessonStatus.DRAFT.value,
        training={
            "title": "Pool sizing",
            "duration_minutes": 20,
            "modules": {"moodle": str(course_id), "xapi": IRI},
        },
        applicability={"teams": ["payments"]},
    )
    return Lesson.model_validate(doc, strict=False)


@dataclass
class Training:
    client: TestClient
    db: Database
    moodle: MoodleFake
    course: int
    users: dict[str, int]


@pytest.fixture
def training(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[Training]:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(EXAMPLES / "training.yaml", rules / "training.yaml")
    moodle = MoodleFake()
    course = moodle.add_course("POOL-101", "Pool sizing")
    users = {name: moodle.add_user(f"{name}@example.com") for name in ("dana", "ed")}

    def prepare(db: Database) -> None:
        now = utcnow()
        with db.transaction() as session:
            lessons.add(session, course_lesson(course), now)
            lessons.publish(session, "pool-course", now)
            members = (
                Member(person="dana@example.com", name="Dana", email="dana@example.com"),
                Member(
                    person="ed@example.com",
                    name="Ed",
                    email="ed@example.com",
                    lms_ids={"moodle": str(users["ed"]), "xapi": "ed-h"},
                ),
                Member(person="fay@example.com", name="Fay", email="fay@example.com"),
            )
            teams.replace_team(session, Team(name="payments", members=members), now)
            teams.replace_team(
                session, Team(name="web", members=(Member(person="gus@example.com"),)), now
            )

    with moodle.running():
        client_for_target = moodle.client()
        with serving(
            database_url,
            webhook_secret,
            prepare=prepare,
            rules_path=rules,
            targets={System.LMS: LmsTarget(client_for_target)},
            xapi_push_secret=SecretStr(PUSH_SECRET),
        ) as (client, db):
            yield Training(client, db, moodle, course, users)


def learner_placements(db: Database, person: str, team: str = "payments") -> list[Any]:
    with db.transaction() as session:
        return placements.for_work_item(session, learners.learner_ref(team, person))


def test_a_course_is_assigned_once_to_each_member_and_completion_verifies_it(
    training: Training,
) -> None:
    db, moodle = training.db, training.moodle
    assert learners.sync(db) == 4  # three in payments, one in web
    drain(db)
    for person in ("dana@example.com", "ed@example.com"):
        [placed] = learner_placements(db, person)
        assert placed.state == PlacementState.EMBEDDED
        handle = Handle.parse(placed.handle or "")
        assert handle is not None and handle.lms == "moodle"
        assert handle.module == str(training.course)
    assert moodle.is_enrolled(training.users["dana"], training.course)
    assert moodle.is_enrolled(training.users["ed"], training.course)
    # Fay is in the team but not in Moodle: her assignment cannot be made, and says so.
    [fay] = learner_placements(db, "fay@example.com")
    assert fay.state == PlacementState.FAILED
    assert learner_placements(db, "gus@example.com", "web") == []  # not a team it applies to
    # Ed's Moodle id came from the team map: no look-up by email for him.
    lookups = [p for f, p in moodle.calls if f == "core_user_get_users_by_field"]
    assert all("ed@example.com" not in str(p) for p in lookups)

    enrols = moodle.count("enrol_manual_enrol_users")
    learners.sync(db)
    drain(db)
    assert moodle.count("enrol_manual_enrol_users") == enrols  # nobody enrolled twice

    assert progress.poll(db, {"moodle": moodle.client()}) == 0  # nobody finished yet
    moodle.complete(training.users["dana"], training.course, datetime(2026, 12, 1, tzinfo=UTC))
    assert progress.poll(db, {"moodle": moodle.client()}) == 1
    assert progress.poll(db, {"moodle": moodle.client()}) == 0  # read again: recorded once
    [dana] = learner_placements(db, "dana@example.com")
    assert dana.state == PlacementState.COMPLETED
    [assessed] = ReportService(db).assessed(Filters(work_items=[dana.work_item_ref]))
    assert assessed.adoption.tier == Tier.VERIFIED


def _statement(actor: dict[str, Any], verb: str = COMPLETED) -> dict[str, Any]:
    return {
        "actor": {"objectType": "Agent", **actor},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"objectType": "Activity", "id": IRI},
        "result": {"completion": True},
    }


def test_statements_from_an_lrs_and_pushed_ones_complete_assignments(training: Training) -> None:
    db = training.db
    learners.sync(db)
    drain(db)
    lrs = FakeLrs()
    with lrs.running():
        poller = StatementPoller(db, XapiClient(lrs.url, "cairn", SecretStr("cairn-lrs-fake")))
        lrs.add(_statement({"account": {"homePage": "https://lms.example.com", "name": "ed-h"}}))
        lrs.add(_statement({"mbox": "mailto:nobody@example.com"}))  # not in the team map
        assert poller.poll_once() == 1
        assert poller.poll_once() == 0  # the cursor moved past them
        restarted = StatementPoller(db, XapiClient(lrs.url, "cairn", SecretStr("cairn-lrs-fake")))
        assert restarted.poll_once() == 0
    [ed] = learner_placements(db, "ed@example.com")
    assert ed.state == PlacementState.COMPLETED

    pushed = {
        **_statement({"mbox": "mailto:dana@example.com"}),
        "id": "5e1f3c1a-0000-4000-8000-000000000001",
    }
    headers = {"Authorization": f"Bearer {PUSH_SECRET}"}
    answer = training.client.post("/hooks/xapi", json=pushed, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["recorded"] == 1
    again = training.client.post("/hooks/xapi", json=pushed, headers=headers)
    assert again.json()["recorded"] == 0
    [dana] = learner_placements(db, "dana@example.com")
    assert dana.state == PlacementState.COMPLETED
    wrong = training.client.post(
        "/hooks/xapi", json=pushed, headers={"Authorization": "Bearer not-it"}
    )
    assert wrong.status_code == 401
    junk = training.client.post("/hooks/xapi", content=b"[[[", headers=headers)
    assert junk.status_code == 400


def test_retiring_the_lesson_withdraws_the_enrolments(training: Training) -> None:
    db, moodle = training.db, training.moodle
    learners.sync(db)
    drain(db)
    assert moodle.is_enrolled(training.users["dana"], training.course)
    answer = training.client.post("/api/v1/lessons/pool-course/retire")
    assert answer.status_code == 200, answer.text
    drain(db)
    assert not moodle.is_enrolled(training.users["dana"], training.course)
    [dana] = learner_placements(db, "dana@example.com")
    assert dana.state == PlacementState.WITHDRAWN


def test_a_module_the_lms_does_not_have_fails_that_placement_only(training: Training) -> None:
    db, moodle = training.db, training.moodle
    with db.transaction() as session:
        lesson = course_lesson(999_999).model_copy(update={"id": "ghost-course"})
        lessons.add(session, lesson, utcnow())
        lessons.publish(session, "ghost-course", utcnow())
    learners.sync(db)
    drain(db)  # no dead letter: the ghost course fails alone
    by_lesson = {p.lesson_id: p for p in learner_placements(db, "dana@example.com")}
    assert by_lesson["pool-course"].state == PlacementState.EMBEDDED
    assert by_lesson["ghost-course"].state == PlacementState.FAILED
    assert moodle.is_enrolled(training.users["dana"], training.course)
