"""Mandated placements past due become `overdue`, once, audited; in the running app as well."""

import time
from datetime import timedelta

from core.base import utcnow
from core.feedback import ItemMark, ItemObservation, Observation, reconcile
from core.lesson import Mandate
from core.placement import EmbeddingForm, Placement, PlacementState
from router.overdue import sweep
from store import audit, placements
from store.engine import Database
from tests.router.support import serving

NOW = utcnow()


def _placement(
    pid: str, mandate: Mandate, state: PlacementState, due_in: float | None
) -> Placement:
    return Placement(
        id=pid,
        lesson_id=pid,
        lesson_version=1,
        work_item_ref="github:acme/api#1",
        rule_id="r",
        rule_set_version="v",
        form=EmbeddingForm.GITHUB_PR_CHECKLIST,
        mandate=mandate,
        due_at=None if due_in is None else NOW + timedelta(hours=due_in),
        state=state,
        created_at=NOW - timedelta(days=3),
        updated_at=NOW - timedelta(days=3),
    )


SEEDED = [
    _placement("late", Mandate.REQUIRED, PlacementState.EMBEDDED, -1),
    _placement("late-justify", Mandate.REVIEW_AND_JUSTIFY, PlacementState.EMBEDDED, -1),
    _placement("late-invited", Mandate.INVITED, PlacementState.EMBEDDED, -1),
    _placement("on-time", Mandate.REQUIRED, PlacementState.EMBEDDED, 5),
    _placement("done", Mandate.REQUIRED, PlacementState.COMPLETED, -1),
    _placement("no-due", Mandate.REQUIRED, PlacementState.EMBEDDED, None),
]


def test_only_open_mandated_items_past_due_turn_overdue_once(db: Database) -> None:
    with db.transaction() as session:
        for placement in SEEDED:
            placements.add(session, placement)
    assert sweep(db, NOW) == 2
    assert sweep(db, NOW) == 0  # already overdue: nothing more, no second audit entry
    with db.transaction() as session:
        states = {p.id: p.state for p in placements.for_work_item(session, "github:acme/api#1")}
        marked = audit.entries(session, action="placement.overdue")
    assert {pid for pid, state in states.items() if state == PlacementState.OVERDUE} == {
        "late",
        "late-justify",
    }
    assert sorted(e.details["placement"] for e in marked) == ["late", "late-justify"]
    # A tick still completes an overdue item.
    with db.transaction() as session:
        current = placements.for_work_item(session, "github:acme/api#1")
    ticked = reconcile(
        current,
        Observation(
            work_item_ref="github:acme/api#1",
            observed_at=NOW,
            items=(ItemObservation(placement_id="late", mark=ItemMark.TICKED),),
        ),
    )
    assert [(c.placement.id, c.placement.state) for c in ticked] == [
        ("late", PlacementState.COMPLETED)
    ]


def test_the_running_app_sweeps(database_url: str, webhook_secret: str) -> None:
    def prepare(db: Database) -> None:
        with db.transaction() as session:
            placements.add(session, SEEDED[0])

    with serving(database_url, webhook_secret, prepare=prepare, overdue_sweep_seconds=0.05) as (
        _client,
        db,
    ):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db.transaction() as session:
                found = placements.get(session, "late")
            if found is not None and found.state == PlacementState.OVERDUE:
                break
            time.sleep(0.05)
    assert found is not None and found.state == PlacementState.OVERDUE
