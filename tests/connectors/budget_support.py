"""Many required lessons for one work item: what the end-to-end tests of the grouped item share.

Thirty published lessons, every one required by one organisation rule, against a fatigue budget
of five: each work item shows five items of their own and one grouped item holding the other
twenty-five (lesson ids sort them: `bulk-00` … `bulk-04` get items of their own).
"""

from typing import Any

from core.base import utcnow
from core.lesson import Lesson, LessonStatus
from store import lessons
from store.engine import Database

BUDGET = 5
REQUIRED = 30
OWN = {f"bulk-{n:02d}" for n in range(BUDGET)}
GROUPED = {f"bulk-{n:02d}" for n in range(BUDGET, REQUIRED)}


def rules(system: str, form: str, types: str = "") -> str:
    """One organisation pack: a budget of five, and every `bulk` lesson required."""
    return (
        "pack: budget-tests\nlevel: organisation\npriority: 100\n"
        f"budget: {{max_items_per_work_item: {BUDGET}}}\n"
        "rules:\n  - id: bulk-required\n    lesson: {tags: [bulk]}\n"
        f"    work_item: {{systems: [{system}]{types}}}\n"
        f"    then: {{form: {form}, mandate: required, due: 14d}}\n"
    )


def publish_required(db: Database) -> None:
    """Publish the thirty lessons."""
    with db.transaction() as session:
        for n in range(REQUIRED):
            lesson = Lesson.model_validate(
                {
                    "id": f"bulk-{n:02d}",
                    "version": 1,
                    "title": f"Required lesson number {n}",
                    "statement": f"Statement {n}: check it before merging.",
                    "provenance": {"captured_by": "dana", "captured_at": "2026-11-20T12:00:00Z"},
                    "applicability": {"tags": ["bulk"]},
                    "mandate": "required",
                    "owner": "platform",
                    "status": LessonStatus.DRAFT.value,
                },
                strict=False,
            )
            lessons.add(session, lesson, utcnow())
            lessons.publish(session, lesson.id, utcnow())


def adoption_by_lesson(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """The adoption report's non-zero tier counts per lesson."""
    return {row["group"]: {tier: n for tier, n in row["counts"].items() if n} for row in rows}
