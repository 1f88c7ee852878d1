"""Stage `recurrence`: record each published lesson an incident repeats, once per (incident,
lesson), with whether and how the lesson had been placed for the incident's services or teams."""

from typing import Any

from core.errors import PayloadError
from core.recurrence import match, recurrence
from router.pipeline import StageContext
from store import audit, incidents, lessons, recurrences

TOPIC = "recurrence"
ACTOR = "cairn:recurrence"


def handle(ctx: StageContext, payload: dict[str, Any]) -> None:
    """Check the incident's latest state against every published lesson."""
    ref = payload.get("ref")
    if not isinstance(ref, str):
        raise PayloadError("recurrence message without an incident ref")
    incident = incidents.get(ctx.session, ref)
    if incident is None:
        raise PayloadError(f"incident {ref!r} is not stored")
    for lesson in lessons.published(ctx.session):
        matched = match(incident, lesson)
        if matched is None or recurrences.get(ctx.session, ref, lesson.id) is not None:
            continue  # a later state of the same incident is not a second recurrence
        placed = recurrences.placements_with_work_items(ctx.session, lesson.id)
        found = recurrence(incident, lesson, matched, placed, ctx.now)
        recurrences.add(ctx.session, found)
        audit.record(
            ctx.session,
            actor=ACTOR,
            action="lesson.recurred",
            subject=lesson.id,
            details={
                "incident": ref,
                "version": lesson.version,
                "matched_on": matched.model_dump(mode="json", exclude_defaults=True),
                "placed": found.placed,
                "placement_states": found.states,
            },
            now=ctx.now,
        )
