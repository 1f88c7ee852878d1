"""Repository of lessons: a mutable working copy plus immutable published versions."""

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError
from core.lesson import Lesson, LessonStatus
from store import counters, search
from store.documents import from_doc, to_doc
from store.tables import LessonFacetRow, LessonRow, LessonVersionRow, core_table, flushed

_REVISION = "lessons"


def add(session: Session, lesson: Lesson, now: datetime) -> None:
    """Store a new lesson; its id must be unused."""
    if session.get(LessonRow, lesson.id) is not None:
        raise ConflictError(f"lesson {lesson.id!r} already exists")
    session.add(
        LessonRow(
            id=lesson.id,
            status=lesson.status.value,
            owner=lesson.owner,
            version=lesson.version,
            published_version=None,
            doc=to_doc(lesson),
            updated_at=now,
        )
    )
    session.flush()
    search.index(session, lesson)
    counters.bump(session, _REVISION)


def get(session: Session, lesson_id: str) -> Lesson | None:
    """The working copy of a lesson."""
    row = session.get(LessonRow, lesson_id)
    return None if row is None else from_doc(Lesson, row.doc)


def save(session: Session, lesson: Lesson, now: datetime) -> None:
    """Replace the working copy (edits, status changes); published versions stay untouched."""
    row = session.get(LessonRow, lesson.id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"lesson {lesson.id!r} does not exist")
    if row.published_version is not None and lesson.version < row.published_version:
        raise ConflictError(f"lesson {lesson.id!r} is already at version {row.published_version}")
    row.status = lesson.status.value
    row.owner = lesson.owner
    row.version = lesson.version
    row.doc = to_doc(lesson)
    row.updated_at = now
    search.index(session, lesson)
    counters.bump(session, _REVISION)


def publish(session: Session, lesson_id: str, now: datetime) -> Lesson:
    """Freeze the working copy as an immutable published version."""
    row = session.get(LessonRow, lesson_id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"lesson {lesson_id!r} does not exist")
    lesson = from_doc(Lesson, row.doc).model_copy(update={"status": LessonStatus.PUBLISHED})
    if session.get(LessonVersionRow, (lesson_id, lesson.version)) is not None:
        raise ConflictError(f"lesson {lesson_id!r} version {lesson.version} is already published")
    session.add(
        LessonVersionRow(
            lesson_id=lesson_id, version=lesson.version, doc=to_doc(lesson), published_at=now
        )
    )
    row.status = LessonStatus.PUBLISHED.value
    row.published_version = lesson.version
    row.doc = to_doc(lesson)
    row.updated_at = now
    session.flush()
    search.index(session, lesson)
    counters.bump(session, _REVISION)
    return lesson


def get_version(session: Session, lesson_id: str, version: int) -> Lesson | None:
    """One published version, exactly as it was published."""
    row = session.get(LessonVersionRow, (lesson_id, version))
    return None if row is None else from_doc(Lesson, row.doc)


_VERSION_T = core_table(LessonVersionRow)
_VERSIONS = select(_VERSION_T.c.lesson_id, _VERSION_T.c.version, _VERSION_T.c.doc).where(
    # SQLite scans the whole table for a row-value IN alone (every published version, on every
    # embed); with the lesson ids beside it, it searches the primary key.
    _VERSION_T.c.lesson_id.in_(bindparam("lesson_ids", expanding=True)),
    tuple_(_VERSION_T.c.lesson_id, _VERSION_T.c.version).in_(bindparam("keys", expanding=True)),
)
"""Run for every embedded work item: built once, run without the ORM (see
`store.tables.core_table`)."""


def get_versions(
    session: Session, wanted: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], Lesson]:
    """Published versions by (lesson id, version), in one read; those not found are absent."""
    keys = sorted(set(wanted))
    if not keys:
        return {}
    lesson_ids = sorted({lesson_id for lesson_id, _ in keys})
    rows = flushed(session).execute(_VERSIONS, {"lesson_ids": lesson_ids, "keys": keys})
    return {(row.lesson_id, row.version): from_doc(Lesson, row.doc) for row in rows}


def versions(session: Session, lesson_id: str) -> list[int]:
    """Published version numbers of a lesson, ascending."""
    return list(
        session.scalars(
            select(LessonVersionRow.version)
            .where(LessonVersionRow.lesson_id == lesson_id)
            .order_by(LessonVersionRow.version)
        )
    )


def list_lessons(session: Session, *, status: LessonStatus | None = None) -> list[Lesson]:
    """Working copies, optionally by status, ordered by id."""
    stmt = select(LessonRow).order_by(LessonRow.id)
    if status is not None:
        stmt = stmt.where(LessonRow.status == status.value)
    return [from_doc(Lesson, row.doc) for row in session.scalars(stmt)]


def owners(session: Session, *, owner: str | None = None) -> dict[str, str]:
    """Lesson id → owner team, of every lesson (or those `owner` owns), without reading docs."""
    stmt = select(LessonRow.id, LessonRow.owner).order_by(LessonRow.id)
    if owner is not None:
        stmt = stmt.where(LessonRow.owner == owner)
    return {lesson_id: team for lesson_id, team in session.execute(stmt)}


def with_facet(
    session: Session, facet: str, values: Sequence[str], *, status: LessonStatus | None = None
) -> list[str]:
    """Ids of the lessons whose working copy has `facet` among `values` (the search facets),
    ordered by id: a mandate or owner question answered from an index, not from every doc."""
    stmt = (
        select(LessonRow.id)
        .join(LessonFacetRow, LessonFacetRow.lesson_id == LessonRow.id)
        .where(LessonFacetRow.facet == facet, LessonFacetRow.value.in_(list(values)))
        .distinct()
        .order_by(LessonRow.id)
    )
    if status is not None:
        stmt = stmt.where(LessonRow.status == status.value)
    return list(session.scalars(stmt))


def due_for_review(session: Session, by: date) -> list[Lesson]:
    """Published lessons whose review-by date is `by` or earlier, soonest first; found through
    their `review_by` facet, so only those lessons' documents are read."""
    stmt = (
        select(LessonRow.doc)
        .join(LessonFacetRow, LessonFacetRow.lesson_id == LessonRow.id)
        .where(
            LessonRow.status == LessonStatus.PUBLISHED.value,
            LessonFacetRow.facet == "review_by",
            LessonFacetRow.value <= by.isoformat(),
        )
    )
    found = [from_doc(Lesson, doc) for doc in session.scalars(stmt)]
    return sorted(found, key=lambda lesson: (lesson.review_by or by, lesson.id))


def published(session: Session) -> list[Lesson]:
    """The current published version of every published lesson (the routing input)."""
    stmt = (
        select(LessonVersionRow)
        .join(
            LessonRow,
            (LessonRow.id == LessonVersionRow.lesson_id)
            & (LessonRow.published_version == LessonVersionRow.version),
        )
        # A revision being drafted leaves the published version live; only retiring withdraws it.
        .where(LessonRow.status != LessonStatus.RETIRED.value)
        .order_by(LessonVersionRow.lesson_id)
    )
    return [from_doc(Lesson, row.doc) for row in session.scalars(stmt)]


def fingerprint(session: Session) -> int:
    """The catalogue revision: it changes with every lesson added, edited, published or retired
    (a counter, so no clock skew or late commit can hide a change)."""
    return counters.read(session, _REVISION)
