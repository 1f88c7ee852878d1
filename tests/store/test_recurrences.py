"""Recurrences contract: one per (incident, lesson), read back by lesson and by incident, and the
lesson's placements joined to their work items."""

from datetime import timedelta

from core.placement import PlacementState
from core.recurrence import MatchedOn, PlacementOutcome, Recurrence
from core.work import WorkItem
from store import placements, recurrences, work_items
from store.engine import Database
from tests.store.test_placements import PR, T0, make_placement


def make_recurrence(
    incident_ref: str, lesson_id: str, minute: int, **changes: object
) -> Recurrence:
    return Recurrence.model_validate(
        {
            "incident_ref": incident_ref,
            "lesson_id": lesson_id,
            "lesson_version": 2,
            "matched_on": MatchedOn(services=("payments-api",)),
            "detected_at": T0 + timedelta(minutes=minute),
            **changes,
        }
    )


def test_recorded_once_per_incident_and_lesson(db: Database) -> None:
    outcome = PlacementOutcome(
        placement_id="pl-1",
        work_item_ref=PR,
        lesson_version=1,
        state=PlacementState.DISMISSED,
        related_by=("team:payments",),
        placed_at=T0,
    )
    first = make_recurrence("generic:INC-9", "retry-budgets", 5, placements=(outcome,))
    with db.transaction() as session:
        assert recurrences.add(session, first)
        assert not recurrences.add(session, make_recurrence("generic:INC-9", "retry-budgets", 9))
        recurrences.add(session, make_recurrence("generic:INC-3", "retry-budgets", 1))
        recurrences.add(session, make_recurrence("generic:INC-9", "pool-size", 7))
    with db.transaction() as session:
        assert recurrences.get(session, "generic:INC-9", "retry-budgets") == first
        assert recurrences.get(session, "generic:INC-9", "nope") is None
        by_lesson = recurrences.for_lesson(session, "retry-budgets")
        by_incident = recurrences.for_incident(session, "generic:INC-9")
    assert [r.incident_ref for r in by_lesson] == ["generic:INC-3", "generic:INC-9"]
    assert by_lesson[1].placed and by_lesson[1].states == {"dismissed": 1}
    assert [r.lesson_id for r in by_incident] == ["pool-size", "retry-budgets"]


def test_placements_come_with_their_work_items(db: Database) -> None:
    item = WorkItem.model_validate(
        {"system": "github", "ref": PR, "project": "acme/api", "type": "pull_request"},
        strict=False,
    )
    with db.transaction() as session:
        work_items.record(session, item, T0)
        placements.add(session, make_placement("pl-1"))
        placements.add(
            session,
            make_placement(
                "pl-2", work_item_ref="jira:GONE-1", created_at=T0 + timedelta(minutes=1)
            ),
        )
        placements.add(session, make_placement("pl-3", lesson_id="other"))
    with db.transaction() as session:
        found = recurrences.placements_with_work_items(session, "retry-budgets")
    assert [(p.id, w.ref if w else None) for p, w in found] == [("pl-1", PR), ("pl-2", None)]
