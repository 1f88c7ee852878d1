"""Stage `capture`: a resolved incident or finished postmortem becomes (or updates) a draft."""

from typing import Any

from core.capture import CAPTURED_BY, draft_from, lesson_id_for, refresh
from core.errors import PayloadError
from core.lesson import LessonStatus
from router.pipeline import StageContext
from store import audit, incidents, lessons

TOPIC = "capture"


def handle(ctx: StageContext, payload: dict[str, Any]) -> None:
    """Create the incident's draft lesson once; later incident states refresh the draft."""
    ref = payload.get("ref")
    if not isinstance(ref, str):
        raise PayloadError("capture message without an incident ref")
    incident = incidents.get(ctx.session, ref)
    if incident is None:
        raise PayloadError(f"incident {ref!r} is not stored")
    lesson_id = lesson_id_for(incident)
    existing = lessons.get(ctx.session, lesson_id)
    if existing is None:
        lessons.add(ctx.session, draft_from(incident, ctx.now), ctx.now)
        action = "lesson.captured"
    elif existing.status in (LessonStatus.DRAFT, LessonStatus.IN_REVIEW):
        lessons.save(ctx.session, refresh(existing, incident), ctx.now)
        action = "lesson.capture_refreshed"
    else:
        action = "lesson.capture_skipped"  # already published or retired: the owner decides
    audit.record(
        ctx.session,
        actor=CAPTURED_BY,
        action=action,
        subject=lesson_id,
        details={"incident": ref, "incident_status": incident.status.value},
        now=ctx.now,
    )
