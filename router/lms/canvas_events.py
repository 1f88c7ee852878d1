"""Canvas Live Events pushed to `POST /hooks/canvas`: a verified `course_completed` or
`submission_created` event completes the learner's training placements at once.

The learner is the member whose `canvas` id in the team map is the event's user, else whoever's
placement handle names that Canvas user (the LMS target found them by email when it enrolled
them). `course_completed` completes every placement of theirs whose lesson's Canvas module is in
that course; `submission_created` the one whose module is that course and assignment (a submission
completes a Canvas assignment, as the progress poll reads it). The delivery id is a hash of the
event (name, user, course, assignment, time), so a redelivered event records nothing; events about
people or modules Cairn does not know are counted, not refused (Canvas would retry them).
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy.orm import Session

from connectors.canvas.jwt import LiveEvent, LiveEventVerifier
from connectors.lms_target import Handle
from core.feedback import ItemMark
from core.placement import EmbeddingForm, PlacementState
from router.lms.learners import learner_ref
from router.lms.progress import mark_lessons
from router.settings import Settings
from store import lessons, placements, teams

CANVAS = "canvas"
HELD = (
    PlacementState.EMBEDDED,
    PlacementState.OVERDUE,
    PlacementState.COMPLETED,
    PlacementState.FAILED,
)
"""States of placements whose handle can name the learner (completed ones so that a redelivery
is found and recorded as nothing, not counted as an unknown learner)."""


@dataclass
class EventOutcome:
    """What one Live Event did."""

    recorded: int = 0
    unchanged: int = 0
    unknown_learner: int = 0
    unknown_module: int = 0
    not_placed: int = 0


def delivery_id(event: LiveEvent) -> str:
    """A stable id of the event: delivered twice, recorded once."""
    parts = (
        event.name,
        event.user_id,
        event.course_id or "",
        event.assignment_id or "",
        event.at.isoformat(),
    )
    return f"canvas-live-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:32]}"


def verifier(settings: Settings) -> LiveEventVerifier | None:
    """The verifier of the configured keys, or None when `CAIRN_CANVAS_LIVE_EVENTS_JWKS` is
    unset (ConfigurationError when it is set but unusable). A key file is read again when it
    changes, so rotated keys need no restart."""
    value = (settings.canvas_live_events_jwks or "").strip()
    if not value:
        return None
    stamp: int | None = None
    if not value.startswith("{"):
        try:
            stamp = Path(value).expanduser().stat().st_mtime_ns
        except OSError:
            stamp = None  # from_setting says it cannot be read
    return _verifier(
        value, settings.canvas_live_events_issuer, settings.canvas_live_events_audience, stamp
    )


@lru_cache(maxsize=8)
def _verifier(
    value: str, issuer: str | None, audience: str | None, stamp: int | None
) -> LiveEventVerifier:
    del stamp  # part of the cache key only
    return LiveEventVerifier.from_setting(value, issuer=issuer or None, audience=audience or None)


def _split(module: str) -> tuple[str, str]:
    course, _, assignment = module.partition("/")
    return course.strip(), assignment.strip()


def _lessons(session: Session, event: LiveEvent) -> set[str]:
    """The ids of the published lessons whose Canvas module the event is about."""
    found = set()
    for lesson in lessons.published(session):
        module = lesson.training.modules.get(CANVAS) if lesson.training is not None else None
        if not module:
            continue
        course, assignment = _split(module)
        if event.name == "course_completed":
            matches = event.course_id is not None and course == event.course_id
        else:
            matches = assignment == event.assignment_id and (
                event.course_id is None or course == event.course_id
            )
        if matches:
            found.add(lesson.id)
    return found


def _learners(session: Session, user_id: str) -> list[str]:
    """The learner work items the Canvas user is: by the team map, else by placement handles."""
    mapped = [learner_ref(team, m.person) for team, m in teams.find(session, lms=(CANVAS, user_id))]
    if mapped:
        return mapped
    refs: list[str] = []
    for state in HELD:
        for placement in placements.in_state(session, state):
            if placement.form != EmbeddingForm.LMS_ASSIGNMENT or not placement.handle:
                continue
            handle = Handle.parse(placement.handle)
            if handle is None or handle.lms != CANVAS or handle.user_id != user_id:
                continue
            if placement.work_item_ref not in refs:
                refs.append(placement.work_item_ref)
    return refs


def record(session: Session, event: LiveEvent, now: datetime) -> EventOutcome:
    """Record the event on the placements it completes, in the caller's transaction."""
    outcome = EventOutcome()
    lesson_ids = _lessons(session, event)
    if not lesson_ids:
        outcome.unknown_module += 1
        return outcome
    refs = _learners(session, event.user_id)
    if not refs:
        outcome.unknown_learner += 1
        return outcome
    delivery = delivery_id(event)
    placed = 0
    for ref in refs:
        matched, signals = mark_lessons(
            session,
            ref,
            lesson_ids,
            ItemMark.COMPLETED,
            at=event.at,
            actor=f"{CANVAS}:{event.user_id}",
            delivery=delivery,
            now=now,
            reason=f"Canvas: {event.name}",
        )
        placed += matched
        outcome.recorded += signals
    if not placed:
        outcome.not_placed += 1
    elif not outcome.recorded:
        outcome.unchanged += 1
    return outcome
