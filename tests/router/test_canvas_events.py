"""Canvas Live Events end to end: training lessons are assigned through the Canvas contract fake
(learners found by the team map's Canvas id or by email), then signed `course_completed` and
`submission_created` events pushed to `POST /hooks/canvas` complete the learners' placements,
once however often Canvas redelivers them; bad tokens are refused, unknown people counted."""

import copy
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from connectors.canvas.fake import CanvasFake
from connectors.canvas.jwt import LiveEvent
from connectors.lms_target import Handle, LmsTarget
from core.adoption import Tier
from core.base import utcnow
from core.lesson import Lesson, LessonStatus
from core.placement import PlacementState
from core.team import Member, Team
from core.work import System
from router.lms import canvas_events, learners
from router.reports.adoption import Filters, ReportService
from store import lessons, placements, teams
from store.engine import Database
from tests.connectors.canvas.test_jwt import (
    AUDIENCE,
    COMPLETED,
    ISSUER,
    KID,
    OTHER,
    SIGNING,
    SUBMITTED,
    jwks,
    token,
)
from tests.router.support import EXAMPLES, drain, serving

COURSE = 565
GLOBAL = 21070000000000000  # shard 2107 × 10**13: how Live Events spell some ids
JWT = {"Content-Type": "application/jwt"}


def training_lesson(lesson_id: str, title: str, module: str, team: str = "payments") -> Lesson:
    found = TypeAdapter(list[Lesson]).validate_json((EXAMPLES / "lessons.json").read_bytes())
    doc = found[0].model_dump(mode="json")
    doc.update(
        id=lesson_id,
        title=title,
        form="training",
        status=LessonStatus.DRAFT.value,
        training={"title": title, "duration_minutes": 20, "modules": {"canvas": module}},
        applicability={"teams": [team]},
    )
    return Lesson.model_validate(doc, strict=False)


@dataclass
class Canvas:
    client: TestClient
    db: Database
    fake: CanvasFake
    assignments: tuple[int, int]
    users: dict[str, int]


@pytest.fixture
def canvas(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[Canvas]:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(EXAMPLES / "training.yaml", rules / "training.yaml")
    keys = tmp_path / "canvas-keys.json"  # the keys as a file: the setting names its path
    keys.write_text(json.dumps(jwks(("old", OTHER), (KID, SIGNING))))
    fake = CanvasFake()
    first = fake.add_assignment("Pool sizing", course_id=COURSE)
    second = fake.add_assignment("Pool sizing under load", course_id=COURSE)
    elsewhere = fake.add_assignment("Elsewhere", course_id=777)
    users = {name: fake.add_user(f"{name}@example.com", name.title()) for name in ("dana", "ed")}

    def prepare(db: Database) -> None:
        now = utcnow()
        with db.transaction() as session:
            for lesson in (
                training_lesson("pool-basics", "Pool sizing", f"{COURSE}/{first}"),
                training_lesson("pool-load", "Pools under load", f"{COURSE}/{second}"),
                training_lesson("other-course", "Elsewhere", f"777/{elsewhere}", team="web"),
            ):
                lessons.add(session, lesson, now)
                lessons.publish(session, lesson.id, now)
            members = (
                # Dana has no Canvas id in the map: the target finds her by email.
                Member(person="dana@example.com", name="Dana", email="dana@example.com"),
                Member(
                    person="ed@example.com",
                    name="Ed",
                    email="ed@example.com",
                    lms_ids={"canvas": str(users["ed"])},
                ),
            )
            teams.replace_team(session, Team(name="payments", members=members), now)

    with (
        fake.running(),
        serving(
            database_url,
            webhook_secret,
            prepare=prepare,
            rules_path=rules,
            targets={System.LMS: LmsTarget(fake.client())},
            canvas_live_events_jwks=str(keys),
            canvas_live_events_issuer=ISSUER,
            canvas_live_events_audience=AUDIENCE,
        ) as (client, db),
    ):
        learners.sync(db)
        drain(db)
        yield Canvas(client, db, fake, (first, second), users)


def placed(db: Database, person: str) -> dict[str, Any]:
    """The learner's placements by lesson id."""
    with db.transaction() as session:
        found = placements.for_work_item(session, learners.learner_ref("payments", person))
    return {p.lesson_id: p for p in found}


def course_completed(user_id: int, course_id: int = COURSE, **extra: Any) -> str:
    claims = copy.deepcopy(COMPLETED)
    claims["metadata"]["context_id"] = str(GLOBAL + course_id)
    claims["body"]["user"]["id"] = str(user_id)
    claims["body"]["course"]["id"] = str(course_id)
    return token(claims, **{"iss": ISSUER, "aud": AUDIENCE, **extra})


def submission_created(user_id: int, assignment_id: int) -> str:
    claims = copy.deepcopy(SUBMITTED)
    claims["metadata"]["context_id"] = str(GLOBAL + COURSE)
    claims["body"]["user_id"] = str(GLOBAL + user_id)
    claims["body"]["assignment_id"] = str(GLOBAL + assignment_id)
    return token(claims, iss=ISSUER, aud=AUDIENCE)


def push(client: TestClient, jwt_text: str) -> Any:
    return client.post("/hooks/canvas", content=jwt_text.encode(), headers=JWT)


def test_the_learners_are_enrolled_through_canvas(canvas: Canvas) -> None:
    first, second = canvas.assignments
    for person, name in (("dana@example.com", "dana"), ("ed@example.com", "ed")):
        mine = placed(canvas.db, person)
        assert set(mine) == {"pool-basics", "pool-load"}  # the third is for another team
        for lesson_id, assignment in (("pool-basics", first), ("pool-load", second)):
            assert mine[lesson_id].state == PlacementState.EMBEDDED
            handle = Handle.parse(mine[lesson_id].handle or "")
            assert handle is not None and handle.lms == "canvas"
            assert (handle.user_id, handle.module) == (
                str(canvas.users[name]),
                f"{COURSE}/{assignment}",
            )
        assert canvas.fake.student_enrollments(COURSE, canvas.users[name])


def test_a_completed_course_completes_every_placement_in_it_once(canvas: Canvas) -> None:
    event = course_completed(canvas.users["dana"])  # Dana: found by her placements' handles
    answer = push(canvas.client, event)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "recorded",
        "event": "course_completed",
        "recorded": 2,
        "unchanged": 0,
        "unknown_learner": 0,
        "unknown_module": 0,
        "not_placed": 0,
    }
    mine = placed(canvas.db, "dana@example.com")
    assert {p.state for p in mine.values()} == {PlacementState.COMPLETED}
    [assessed] = ReportService(canvas.db).assessed(
        Filters(work_items=[mine["pool-basics"].work_item_ref], lessons=["pool-basics"])
    )
    assert assessed.adoption.tier == Tier.VERIFIED

    again = push(canvas.client, event)  # Canvas redelivers
    assert again.status_code == 200, again.text
    assert again.json()["recorded"] == 0
    assert again.json()["unchanged"] == 1
    assert {p.state for p in placed(canvas.db, "ed@example.com").values()} == {
        PlacementState.EMBEDDED
    }


def test_a_submission_completes_that_assignment_only(canvas: Canvas) -> None:
    first, _ = canvas.assignments
    event = submission_created(canvas.users["ed"], first)  # Ed: by his id in the team map
    answer = canvas.client.post("/hooks/canvas", json={"jwt": event})  # the JSON form
    assert answer.status_code == 200, answer.text
    assert answer.json()["recorded"] == 1
    mine = placed(canvas.db, "ed@example.com")
    assert mine["pool-basics"].state == PlacementState.COMPLETED
    assert mine["pool-load"].state == PlacementState.EMBEDDED
    assert push(canvas.client, event).json()["recorded"] == 0


def test_people_and_courses_cairn_does_not_know_are_counted(canvas: Canvas) -> None:
    nobody = push(canvas.client, course_completed(9999))
    assert nobody.status_code == 200, nobody.text
    assert nobody.json()["unknown_learner"] == 1
    elsewhere = push(canvas.client, course_completed(canvas.users["dana"], course_id=4040))
    assert elsewhere.json()["unknown_module"] == 1
    # A lesson in course 777 exists, but it is for another team: Ed was not assigned it.
    not_placed = push(canvas.client, course_completed(canvas.users["ed"], course_id=777))
    assert not_placed.json()["not_placed"] == 1
    other = copy.deepcopy(COMPLETED)
    other["metadata"]["event_name"] = "logged_in"
    ignored = push(canvas.client, token(other, iss=ISSUER, aud=AUDIENCE))
    assert ignored.status_code == 200
    assert ignored.json()["status"] == "ignored"
    assert {p.state for p in placed(canvas.db, "dana@example.com").values()} == {
        PlacementState.EMBEDDED
    }


def test_bad_tokens_are_refused_and_junk_is_a_bad_request(canvas: Canvas) -> None:
    dana = canvas.users["dana"]
    past = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    forged = copy.deepcopy(COMPLETED)
    forged["body"]["user"]["id"] = str(dana)
    refused = {  # "bad signature": another key under the right kid
        "expired": course_completed(dana, exp=past),
        "bad signature": token(forged, key=OTHER, iss=ISSUER, aud=AUDIENCE),
        "wrong audience": course_completed(dana, aud="https://elsewhere.example.com"),
        "not a JWT": "not-a-jwt",
    }
    for why, bad in refused.items():
        answer = push(canvas.client, bad)
        assert answer.status_code == 401, (why, answer.text)
        assert answer.json()["reason"].startswith("signature verification failed:"), why
    no_token = canvas.client.post("/hooks/canvas", json={"event": "course_completed"})
    assert no_token.status_code == 401
    for junk in (b"[[[", b"\xff\xfe\x00"):
        answer = canvas.client.post("/hooks/canvas", content=junk, headers=JWT)
        assert answer.status_code == 400, answer.text
    shapeless = push(canvas.client, token({"metadata": {"event_name": "course_completed"}}))
    assert shapeless.status_code == 401  # no iss/aud: refused before it is read
    no_body = token({"metadata": {"event_name": "course_completed"}}, iss=ISSUER, aud=AUDIENCE)
    assert push(canvas.client, no_body).status_code == 400
    assert {p.state for p in placed(canvas.db, "dana@example.com").values()} == {
        PlacementState.EMBEDDED
    }


@pytest.mark.parametrize(
    ("keys", "reason"),
    [(None, "not enabled"), ("/no/such/keys.json", "cannot read"), ("{}", "no usable key")],
)
def test_without_usable_keys_the_route_is_not_there(
    database_url: str, webhook_secret: str, keys: str | None, reason: str
) -> None:
    with serving(database_url, webhook_secret, canvas_live_events_jwks=keys) as (client, _):
        answer = client.post("/hooks/canvas", content=course_completed(1021).encode())
        assert answer.status_code == 404
        assert reason in answer.json()["reason"]


def test_the_delivery_id_is_the_event() -> None:
    at = datetime(2026, 11, 21, tzinfo=UTC)
    event = LiveEvent("course_completed", "1021", "565", None, at)
    assert canvas_events.delivery_id(event) == canvas_events.delivery_id(event._replace())
    assert canvas_events.delivery_id(event) != canvas_events.delivery_id(
        event._replace(at=at + timedelta(seconds=1))
    )
