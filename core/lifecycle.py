"""The lesson lifecycle: draft → in_review → published → retired, with revisions. Pure rules."""

from datetime import datetime
from typing import Any

from core.errors import ConflictError
from core.lesson import Applicability, Lesson, LessonStatus, Mandate, Review

EDITABLE = frozenset(
    {
        "title",
        "statement",
        "form",
        "context",
        "applicability",
        "mandate",
        "checklist",
        "training",
        "owner",
        "review_by",
        "provenance",
    }
)
"""Fields an author may change while a lesson is a draft or in review."""


def _require(lesson: Lesson, *allowed: LessonStatus, action: str) -> None:
    if lesson.status not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise ConflictError(
            f"cannot {action} lesson {lesson.id!r}: it is {lesson.status.value}, not {wanted}"
        )


CAPTURE_RECORD = ("captured_by", "captured_at")
"""Provenance fields no edit changes: who captured the lesson, and when."""


def _with_author(lesson: Lesson, author: str | None) -> dict[str, Any]:
    if author is None or author in lesson.authors:
        return {}
    return {"authors": (*lesson.authors, author)}


def edit(lesson: Lesson, changes: dict[str, Any], author: str | None = None) -> Lesson:
    """Change a draft or a lesson in review; an edit in review withdraws its approval.

    Provenance stays editable (incidents, evidence) but keeps its capture record.
    """
    _require(lesson, LessonStatus.DRAFT, LessonStatus.IN_REVIEW, action="edit")
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ConflictError(f"these fields cannot be edited: {sorted(unknown)}")
    current = lesson.model_dump()
    if isinstance(changes.get("provenance"), dict):
        kept = {name: current["provenance"][name] for name in CAPTURE_RECORD}
        changes = {**changes, "provenance": {**changes["provenance"], **kept}}
    merged = {**current, **changes, "review": None, **_with_author(lesson, author)}
    return Lesson.model_validate(merged, strict=False)


def submit(lesson: Lesson) -> Lesson:
    """Ask for review."""
    _require(lesson, LessonStatus.DRAFT, action="submit")
    return lesson.model_copy(update={"status": LessonStatus.IN_REVIEW})


def approve(
    lesson: Lesson,
    *,
    reviewer: str,
    at: datetime,
    notes: str = "",
    applicability: Applicability | None = None,
    mandate: Mandate | None = None,
) -> Lesson:
    """Record the transferability check: where it applies, exclusions, adaptations, mandate."""
    _require(lesson, LessonStatus.IN_REVIEW, action="approve")
    if reviewer == lesson.provenance.captured_by:
        raise ConflictError("the person who captured a lesson cannot also approve it")
    if reviewer in lesson.authors:
        raise ConflictError("a person who wrote this version cannot also approve it")
    if lesson.review is not None:
        raise ConflictError(
            f"lesson {lesson.id!r} was already approved by {lesson.review.reviewer}; "
            "an edit withdraws an approval"
        )
    update: dict[str, Any] = {"review": Review(reviewer=reviewer, reviewed_at=at, notes=notes)}
    if applicability is not None:
        update["applicability"] = applicability
    if mandate is not None:
        update["mandate"] = mandate
    return Lesson.model_validate({**lesson.model_dump(), **update}, strict=False)


def check_publishable(lesson: Lesson) -> None:
    """Only an approved lesson in review can be published."""
    _require(lesson, LessonStatus.IN_REVIEW, action="publish")
    if lesson.review is None:
        raise ConflictError(f"lesson {lesson.id!r} has not been approved")


def revise(lesson: Lesson, author: str | None = None) -> Lesson:
    """Open the next version as a draft; the published one stays in force meanwhile."""
    _require(lesson, LessonStatus.PUBLISHED, action="revise")
    update: dict[str, Any] = {
        "status": LessonStatus.DRAFT,
        "version": lesson.version + 1,
        "review": None,
        "authors": () if author is None else (author,),
    }
    return lesson.model_copy(update=update)


def retire(lesson: Lesson) -> Lesson:
    """Withdraw the lesson from routing for good."""
    _require(
        lesson,
        LessonStatus.DRAFT,
        LessonStatus.IN_REVIEW,
        LessonStatus.PUBLISHED,
        action="retire",
    )
    return lesson.model_copy(update={"status": LessonStatus.RETIRED})
