"""The demo's training step: a lesson in the training form is reviewed and published, assigned
through the Moodle contract fake to each member of the payments team, and completed two ways: one
learner finishes the course in Moodle, the other's LMS reports it as an xAPI statement to a
learning record store that Cairn polls. Both placements end `verified`."""

import asyncio
from typing import Any

from pydantic import SecretStr

from connectors.moodle.fake import MoodleFake
from connectors.xapi.client import XapiClient
from connectors.xapi.fake import FakeLrs
from core.adoption import Tier
from core.lesson import Lesson
from core.team import Member
from router.demo.review import DemoApi, Say, publish_examples
from router.lms import learners, progress
from router.lms.statements import StatementPoller
from router.reports.adoption import Filters, ReportService
from store.engine import Database

IRI = "https://lms.example.com/activities/pool-sizing"
LRS_USER, LRS_PASSWORD = "cairn", "cairn-lrs-fake"  # the fake's own credentials


def course(examples: list[Lesson], course_id: int) -> Lesson:
    """A training lesson built on the first example: its module in Moodle and its xAPI IRI."""
    doc: dict[str, Any] = examples[0].model_dump(mode="json")
    doc.update(
        id="pool-sizing-course",
        title="Pool sizing in 20 minutes",
        form="training",
        training={
            "title": "Pool sizing",
            "duration_minutes": 20,
            "modules": {"moodle": str(course_id), "xapi": IRI},
        },
        applicability={"teams": ["payments"]},
    )
    return Lesson.model_validate(doc, strict=False)


def _tiers(db: Database, refs: list[str]) -> dict[str, str]:
    found = ReportService(db).assessed(Filters(work_items=refs))
    return {a.entry.placement.work_item_ref: a.adoption.tier.value for a in found}


async def run_training_demo(
    say: Say,
    api: DemoApi,
    db: Database,
    moodle: MoodleFake,
    examples: list[Lesson],
    drained: Any,
) -> bool:
    """Assign, complete, verify; True when both learners end verified."""
    course_id = moodle.add_course("POOL-101", "Pool sizing")
    dana = moodle.add_user("dana@example.com", "Dana", "Hill")
    moodle.add_user("ed@example.com", "Ed", "Park")
    if await publish_examples(api, [course(examples, course_id)], say):
        return False
    members = (
        Member(person="dana@example.com", name="Dana Hill", email="dana@example.com"),
        Member(
            person="ed@example.com",
            name="Ed Park",
            email="ed@example.com",
            lms_ids={"xapi": "ed-p"},
        ),
    )
    body = {"members": [m.model_dump(mode="json") for m in members]}
    put = await api.call("platform", "PUT", "/api/v1/teams/payments", body)
    if put.status_code != 200:
        say("training", f"team map: {put.status_code} {put.text}")
        return False
    say(
        "training",
        "team map (PUT /api/v1/teams/payments as platform): dana@example.com, ed@example.com",
    )
    queued = learners.sync(db)
    await drained()
    say(
        "training",
        f"{queued} learners routed; Moodle course {course_id} enrolments: "
        f"{moodle.count('enrol_manual_enrol_users')} (one per learner)",
    )
    moodle.complete(dana, course_id)
    recorded = progress.poll(db, {"moodle": moodle.client()})
    say("training", f"Dana finished the course in Moodle: {recorded} completion read back")
    lrs = FakeLrs(LRS_USER, LRS_PASSWORD)
    with lrs.running():
        lrs.add(
            {
                "actor": {"objectType": "Agent", "account": {"homePage": IRI, "name": "ed-p"}},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
                "object": {"objectType": "Activity", "id": IRI},
            }
        )
        poller = StatementPoller(db, XapiClient(lrs.url, LRS_USER, SecretStr(LRS_PASSWORD)))
        from_lrs = await asyncio.to_thread(poller.poll_once)
    say(
        "training",
        f"Ed's LMS reported an xAPI `completed` statement to an LRS (Cairn's own LRS fake, not "
        f"Ralph): {from_lrs} completion read back",
    )
    refs = [learners.learner_ref("payments", m.person) for m in members]
    tiers = _tiers(db, refs)
    for ref in refs:
        say("training", f"{ref}: {tiers.get(ref, 'not placed')}")
    return all(tiers.get(ref) == Tier.VERIFIED.value for ref in refs)
