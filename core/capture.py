"""Turning a resolved incident or finished postmortem into a draft lesson (pure)."""

import re
from datetime import datetime

from core.incident import Incident, IncidentStatus
from core.lesson import Applicability, Confidence, Lesson, LessonContext, LessonStatus, Provenance

CAPTURED_BY = "cairn:capture"
CAPTURING = frozenset({IncidentStatus.RESOLVED, IncidentStatus.POSTMORTEM_DONE})
"""Incident states that carry something to learn from."""


def lesson_id_for(incident: Incident) -> str:
    """A stable lesson id per incident, so a repeat or an update never makes a second draft."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{incident.source}-{incident.external_id}".lower())
    return f"from-{slug.strip('-')}"[:200]


def _evidence(incident: Incident) -> tuple[object, ...]:
    return tuple(link for link in (incident.postmortem_url, incident.url) if link is not None)


def draft_from(incident: Incident, now: datetime) -> Lesson:
    """A draft lesson that keeps the incident's provenance, context and evidence."""
    return Lesson.model_validate(
        {
            "id": lesson_id_for(incident),
            "version": 1,
            "title": incident.title,
            "statement": incident.summary or f"To be written from {incident.ref}.",
            "provenance": Provenance.model_validate(
                {
                    "source_incidents": [incident.ref],
                    "evidence_links": [str(link) for link in _evidence(incident)],
                    "captured_by": CAPTURED_BY,
                    "captured_at": now,
                },
                strict=False,
            ),
            "context": LessonContext(
                what_happened=incident.summary,
                contributing_conditions=incident.contributing_factors,
                confidence=Confidence.LOW,
            ),
            "applicability": Applicability(
                services=incident.services,
                components=incident.components,
                tags=incident.tags,
            ),
            "owner": incident.teams[0] if incident.teams else "unassigned",
            "status": LessonStatus.DRAFT,
            "severity_rank": incident.severity.rank,
        },
        strict=False,
    )


def refresh(lesson: Lesson, incident: Incident) -> Lesson:
    """Fold a later state of a source incident (e.g. the finished postmortem) into a draft.

    Only what the incident says is refreshed; the author's statement and title stay theirs
    unless they were still the placeholders.
    """
    fresh = draft_from(incident, lesson.provenance.captured_at)
    update: dict[str, object] = {
        "context": lesson.context.model_copy(
            update={
                "what_happened": incident.summary or lesson.context.what_happened,
                "contributing_conditions": incident.contributing_factors
                or lesson.context.contributing_conditions,
            }
        ),
        "provenance": lesson.provenance.model_copy(
            update={
                "evidence_links": tuple(
                    dict.fromkeys(
                        (*lesson.provenance.evidence_links, *fresh.provenance.evidence_links)
                    )
                )
            }
        ),
        "severity_rank": min(lesson.severity_rank or 6, incident.severity.rank),
    }
    if lesson.statement.startswith("To be written from "):
        update["statement"] = fresh.statement
    return lesson.model_copy(update=update)
