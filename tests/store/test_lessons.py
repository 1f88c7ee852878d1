"""Lessons contract: a mutable working copy, immutable published versions, and the routing set."""

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import HttpUrl

from core.base import utcnow
from core.errors import ConflictError, NotFoundError
from core.lesson import (
    Applicability,
    ChecklistItem,
    Confidence,
    Lesson,
    LessonContext,
    LessonForm,
    LessonStatus,
    Mandate,
    Provenance,
    Scope,
    TrainingModule,
)
from store import lessons
from store.engine import Database
from tests.store.plans import sqlite_plans


def make_lesson(lesson_id: str = "retry-budgets", **changes: Any) -> Lesson:
    fields: dict[str, Any] = {
        "id": lesson_id,
        "version": 1,
        "title": "Bound retries with a budget",
        "statement": "Every client retry loop has a budget and jitter.",
        "provenance": Provenance(
            captured_by="ana", captured_at=datetime(2025, 3, 2, 8, 0, tzinfo=UTC)
        ),
        "owner": "sre",
    }
    return Lesson(**(fields | changes))


def revise(lesson: Lesson, **changes: Any) -> Lesson:
    return lesson.model_copy(update=changes)


def add(db: Database, *items: Lesson) -> None:
    with db.transaction() as session:
        for lesson in items:
            lessons.add(session, lesson, utcnow())


def save(db: Database, lesson: Lesson) -> None:
    with db.transaction() as session:
        lessons.save(session, lesson, utcnow())


def publish(db: Database, lesson_id: str) -> Lesson:
    with db.transaction() as session:
        return lessons.publish(session, lesson_id, utcnow())


def get(db: Database, lesson_id: str) -> Lesson | None:
    with db.transaction() as session:
        return lessons.get(session, lesson_id)


def get_version(db: Database, lesson_id: str, version: int) -> Lesson | None:
    with db.transaction() as session:
        return lessons.get_version(session, lesson_id, version)


def versions(db: Database, lesson_id: str) -> list[int]:
    with db.transaction() as session:
        return lessons.versions(session, lesson_id)


def published(db: Database) -> list[tuple[str, int]]:
    with db.transaction() as session:
        return [(lesson.id, lesson.version) for lesson in lessons.published(session)]


# --- working copy ------------------------------------------------------------------------------


def test_a_full_lesson_round_trips_exactly(db: Database) -> None:
    lesson = make_lesson(
        form=LessonForm.CHECKLIST,
        provenance=Provenance(
            source_incidents=("pagerduty:PABC123",),
            evidence_links=(HttpUrl("https://docs.example.com/pm/1"),),
            captured_by="ana",
            captured_at=datetime(2025, 3, 2, 8, 0, 0, 250000, tzinfo=UTC),
        ),
        context=LessonContext(
            what_happened="Retry storm",
            expected="Graceful degradation",
            actual="Cascading failure",
            contributing_conditions=("no jitter",),
            confidence=Confidence.HIGH,
        ),
        applicability=Applicability(
            services=("checkout",),
            paths=("src/**/retry*.py",),
            exclusions=Scope(repos=("acme/legacy",)),
            adaptation_notes="Batch jobs may use longer budgets.",
        ),
        mandate=Mandate.REVIEW_AND_JUSTIFY,
        checklist=(
            ChecklistItem(id="budget", text="Retries are bounded"),
            ChecklistItem(id="jitter", text="Backoff has jitter"),
        ),
        training=TrainingModule(
            title="Retries 101", url=HttpUrl("https://lms.example.com/c/1"), duration_minutes=20
        ),
        review_by=date(2026, 3, 1),
        severity_rank=2,
    )
    add(db, lesson)

    assert get(db, lesson.id) == lesson


def test_unknown_lesson_reads_as_none(db: Database) -> None:
    add(db, make_lesson())

    assert get(db, "nope") is None
    assert get_version(db, "retry-budgets", 1) is None
    assert versions(db, "retry-budgets") == []


def test_add_with_a_used_id_conflicts(db: Database) -> None:
    add(db, make_lesson())

    with pytest.raises(ConflictError):
        add(db, make_lesson(title="Another lesson"))

    assert get(db, "retry-budgets") == make_lesson()


def test_add_twice_in_one_transaction_conflicts(db: Database) -> None:
    with pytest.raises(ConflictError), db.transaction() as session:
        lessons.add(session, make_lesson(), utcnow())
        lessons.add(session, make_lesson(), utcnow())

    assert get(db, "retry-budgets") is None


def test_save_replaces_the_working_copy(db: Database) -> None:
    add(db, make_lesson())
    edited = revise(make_lesson(), statement="Retries need budgets.", owner="platform")

    save(db, edited)

    assert get(db, "retry-budgets") == edited


def test_save_of_an_unknown_lesson_is_not_found(db: Database) -> None:
    with pytest.raises(NotFoundError):
        save(db, make_lesson())

    assert get(db, "retry-budgets") is None


def test_list_lessons_orders_by_id_and_filters_by_status(db: Database) -> None:
    add(
        db,
        make_lesson("c-lesson", status=LessonStatus.IN_REVIEW),
        make_lesson("a-lesson"),
        make_lesson("b-lesson"),
    )
    publish(db, "b-lesson")

    with db.transaction() as session:
        everything = lessons.list_lessons(session)
        drafts = lessons.list_lessons(session, status=LessonStatus.DRAFT)
        live = lessons.list_lessons(session, status=LessonStatus.PUBLISHED)
        retired = lessons.list_lessons(session, status=LessonStatus.RETIRED)

    assert [lesson.id for lesson in everything] == ["a-lesson", "b-lesson", "c-lesson"]
    assert [lesson.id for lesson in drafts] == ["a-lesson"]
    assert [(lesson.id, lesson.status) for lesson in live] == [("b-lesson", LessonStatus.PUBLISHED)]
    assert retired == []


# --- publishing --------------------------------------------------------------------------------


def test_publish_freezes_the_working_copy_as_a_version(db: Database) -> None:
    draft = make_lesson(status=LessonStatus.IN_REVIEW)
    add(db, draft)

    result = publish(db, draft.id)

    expected = revise(draft, status=LessonStatus.PUBLISHED)
    assert result == expected
    assert get_version(db, draft.id, 1) == expected
    assert get(db, draft.id) == expected
    assert versions(db, draft.id) == [1]


def test_later_edits_do_not_change_a_published_version(db: Database) -> None:
    add(db, make_lesson())
    v1 = publish(db, "retry-budgets")

    save(db, revise(v1, statement="Edited after publishing, same version."))
    assert get_version(db, "retry-budgets", 1) == v1

    v2_draft = revise(v1, version=2, statement="Budgets per dependency.")
    save(db, v2_draft)

    assert get_version(db, "retry-budgets", 1) == v1
    assert get_version(db, "retry-budgets", 2) is None
    assert get(db, "retry-budgets") == v2_draft


def test_publishing_a_new_version_keeps_the_old_one(db: Database) -> None:
    add(db, make_lesson())
    v1 = publish(db, "retry-budgets")
    save(db, revise(v1, version=2, statement="Budgets per dependency."))

    v2 = publish(db, "retry-budgets")

    assert v2.version == 2
    assert v2.statement == "Budgets per dependency."
    assert versions(db, "retry-budgets") == [1, 2]
    assert get_version(db, "retry-budgets", 1) == v1
    assert get_version(db, "retry-budgets", 2) == v2


def test_publishing_the_same_version_twice_conflicts(db: Database) -> None:
    add(db, make_lesson())
    v1 = publish(db, "retry-budgets")

    with pytest.raises(ConflictError):
        publish(db, "retry-budgets")

    save(db, revise(v1, statement="Sneaky edit without a new version."))
    with pytest.raises(ConflictError):
        publish(db, "retry-budgets")

    assert versions(db, "retry-budgets") == [1]
    assert get_version(db, "retry-budgets", 1) == v1


def test_publish_of_an_unknown_lesson_is_not_found(db: Database) -> None:
    with pytest.raises(NotFoundError):
        publish(db, "nope")

    assert versions(db, "nope") == []


def test_save_below_the_published_version_conflicts(db: Database) -> None:
    add(db, make_lesson())
    publish(db, "retry-budgets")
    save(db, revise(make_lesson(), version=2))
    v2 = publish(db, "retry-budgets")

    with pytest.raises(ConflictError):
        save(db, make_lesson(version=1, statement="Rolled back"))

    assert get(db, "retry-budgets") == v2


# --- the routing set ---------------------------------------------------------------------------


def test_published_lists_only_published_lessons_at_their_current_version(db: Database) -> None:
    add(
        db,
        make_lesson("a-draft"),
        make_lesson("b-once"),
        make_lesson("c-twice"),
        make_lesson("d-retired"),
    )
    publish(db, "b-once")
    v1 = publish(db, "c-twice")
    save(db, revise(v1, version=2, statement="Second take."))
    publish(db, "c-twice")
    retired = publish(db, "d-retired")
    save(db, revise(retired, status=LessonStatus.RETIRED))

    with db.transaction() as session:
        routing = lessons.published(session)

    assert [(lesson.id, lesson.version) for lesson in routing] == [("b-once", 1), ("c-twice", 2)]
    assert routing[1].statement == "Second take."
    assert all(lesson.status is LessonStatus.PUBLISHED for lesson in routing)


def test_published_serves_the_frozen_version_not_the_edited_working_copy(db: Database) -> None:
    add(db, make_lesson())
    v1 = publish(db, "retry-budgets")
    save(db, revise(v1, statement="Edited in place, not yet republished."))

    with db.transaction() as session:
        assert lessons.published(session) == [v1]


def test_nothing_is_published_before_publish(db: Database) -> None:
    add(db, make_lesson(status=LessonStatus.PUBLISHED))

    assert published(db) == []


def test_drafting_a_revision_keeps_the_published_version_live(db: Database) -> None:
    add(db, make_lesson())
    v1 = publish(db, "retry-budgets")

    save(db, revise(v1, version=2, status=LessonStatus.DRAFT, statement="Work in progress."))

    assert published(db) == [("retry-budgets", 1)]


def test_the_catalogue_revision_moves_with_every_change_whatever_the_clock(db: Database) -> None:
    """The cache key of the routing engine: a counter, so an old timestamp cannot hide a change."""
    with db.transaction() as session:
        start = lessons.fingerprint(session)
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    lesson = make_lesson()
    steps = [
        lambda s: lessons.add(s, lesson, long_ago),
        lambda s: lessons.save(s, lesson.model_copy(update={"title": "Edited"}), long_ago),
        lambda s: lessons.publish(s, lesson.id, long_ago),
    ]
    seen = [start]
    for step in steps:
        with db.transaction() as session:
            step(session)
            seen.append(lessons.fingerprint(session))
    assert seen == [start, start + 1, start + 2, start + 3]


def test_get_versions_reads_exactly_the_pairs_asked_for(db: Database) -> None:
    add(db, make_lesson("a"), make_lesson("b"), make_lesson("c"))
    for lesson_id in ("a", "b", "c"):
        publish(db, lesson_id)
    save(db, revise(make_lesson("a"), version=2, title="Second"))
    publish(db, "a")
    with db.transaction() as session:
        found = lessons.get_versions(session, [("a", 2), ("b", 1), ("b", 1), ("c", 2), ("z", 1)])
    # ("a", 1) exists but was not asked for; ("c", 2) and ("z", 1) do not exist.
    assert sorted(found) == [("a", 2), ("b", 1)]
    assert found[("a", 2)].title == "Second"


def test_get_versions_searches_the_primary_key_on_sqlite(sqlite_db: Database) -> None:
    """Every embed reads the versions it places. A row-value IN alone made SQLite scan every
    published version of every lesson for it; the lesson ids beside it let SQLite search."""
    with sqlite_plans(sqlite_db) as plans, sqlite_db.transaction() as session:
        lessons.get_versions(session, [("a", 1), ("b", 2)])
    [plan] = plans
    assert any(step.startswith("SEARCH lesson_versions") for step in plan), plan
    assert not any(step.startswith("SCAN lesson_versions") for step in plan), plan
