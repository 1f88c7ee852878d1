"""Placements contract: one placement per effect, state updates, and signals recorded once."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from core.base import utcnow
from core.errors import NotFoundError
from core.lesson import Mandate
from core.placement import EmbeddingForm, Placement, PlacementState, Signal, SignalKind
from store import placements
from store.documents import to_doc
from store.engine import Database
from store.tables import PlacementRow, PlacementTallyRow

PR = "github:acme/api#1"
ISSUE = "jira:PAY-42"
T0 = utcnow().replace(microsecond=0)


def make_placement(placement_id: str = "pl-1", **changes: Any) -> Placement:
    fields: dict[str, Any] = {
        "id": placement_id,
        "lesson_id": "retry-budgets",
        "lesson_version": 1,
        "work_item_ref": PR,
        "rule_id": "payments-prs",
        "rule_set_version": "v7",
        "form": EmbeddingForm.GITHUB_PR_CHECKLIST,
        "mandate": Mandate.REQUIRED,
        "created_at": T0,
        "updated_at": T0,
    }
    return Placement(**(fields | changes))


def make_signal(signal_id: str, at_minute: int, **changes: Any) -> Signal:
    fields: dict[str, Any] = {
        "id": signal_id,
        "placement_id": "pl-1",
        "kind": SignalKind.TICKED,
        "actor": "bob",
        "at": T0 + timedelta(minutes=at_minute),
        "delivery_id": f"delivery-{signal_id}",
    }
    return Signal(**(fields | changes))


def add(db: Database, *items: Placement) -> list[Placement]:
    with db.transaction() as session:
        return [placements.add(session, placement) for placement in items]


def get(db: Database, placement_id: str) -> Placement | None:
    with db.transaction() as session:
        return placements.get(session, placement_id)


def ids(found: list[Placement]) -> list[str]:
    return [placement.id for placement in found]


# --- add and get -------------------------------------------------------------------------------


def test_add_returns_the_placement_and_get_reads_it_back(db: Database) -> None:
    placement = make_placement(due_at=T0 + timedelta(days=7), handle="cairn:retry-budgets@1")

    assert add(db, placement) == [placement]

    assert get(db, "pl-1") == placement
    assert get(db, "pl-unknown") is None


def test_a_second_placement_of_the_same_effect_returns_the_first(db: Database) -> None:
    first = make_placement("pl-1")
    retry = make_placement(
        "pl-2",
        rule_id="another-rule",
        rule_set_version="v8",
        mandate=Mandate.INVITED,
        created_at=T0 + timedelta(minutes=1),
        updated_at=T0 + timedelta(minutes=1),
    )
    assert retry.effect_id == first.effect_id
    add(db, first)

    assert add(db, retry) == [first]

    assert get(db, "pl-2") is None
    with db.transaction() as session:
        assert placements.for_work_item(session, PR) == [first]


def test_the_same_effect_twice_in_one_transaction_is_recorded_once(db: Database) -> None:
    first, retry = make_placement("pl-1"), make_placement("pl-2")

    assert add(db, first, retry) == [first, first]

    with db.transaction() as session:
        assert placements.for_lesson(session, "retry-budgets") == [first]


@pytest.mark.parametrize(
    "changes",
    [
        {"lesson_version": 2},
        {"form": EmbeddingForm.GITHUB_PR_TEMPLATE},
        {"work_item_ref": "github:acme/api#2"},
        {"lesson_id": "other-lesson"},
    ],
    ids=["new-version", "other-form", "other-target", "other-lesson"],
)
def test_a_different_effect_is_a_new_placement(db: Database, changes: dict[str, Any]) -> None:
    first = make_placement("pl-1")
    other = make_placement("pl-2", **changes)

    assert add(db, first, other) == [first, other]

    assert get(db, "pl-1") == first
    assert get(db, "pl-2") == other


def test_add_many_returns_each_in_order_with_repeats_resolved_to_the_stored_one(
    db: Database,
) -> None:
    stored = make_placement("pl-1")
    add(db, stored)
    other_pr = make_placement("pl-2", work_item_ref="github:acme/api#2")
    v2 = make_placement("pl-3", lesson_version=2)
    repeat = make_placement("pl-retry")  # the effect of pl-1, planned again

    with db.transaction() as session:
        found = placements.add_many(session, [other_pr, repeat, v2, v2])

    assert found == [other_pr, stored, v2, v2]
    with db.transaction() as session:
        assert ids(placements.for_lesson(session, "retry-budgets")) == ["pl-1", "pl-2", "pl-3"]
        assert placements.add_many(session, []) == []


# --- update ------------------------------------------------------------------------------------


def test_update_stores_state_handle_and_due_date(db: Database) -> None:
    planned = make_placement()
    add(db, planned)
    embedded = planned.model_copy(
        update={
            "state": PlacementState.EMBEDDED,
            "handle": "cairn:retry-budgets@1",
            "due_at": T0 + timedelta(days=3),
            "updated_at": T0 + timedelta(minutes=5),
        }
    )

    with db.transaction() as session:
        placements.update(session, embedded)

    assert get(db, "pl-1") == embedded
    with db.transaction() as session:
        assert placements.for_work_item(session, PR) == [embedded]
        assert placements.for_lesson(session, "retry-budgets") == [embedded]


def test_update_keeps_the_effect_so_a_repeat_add_returns_the_updated_placement(
    db: Database,
) -> None:
    planned = make_placement()
    add(db, planned)
    completed = planned.model_copy(update={"state": PlacementState.COMPLETED})
    with db.transaction() as session:
        placements.update(session, completed)

    assert add(db, make_placement("pl-retry")) == [completed]


def test_update_of_an_unknown_placement_is_not_found(db: Database) -> None:
    with pytest.raises(NotFoundError), db.transaction() as session:
        placements.update(session, make_placement())

    assert get(db, "pl-1") is None


def test_update_many_stores_each_and_an_unknown_one_changes_nothing(db: Database) -> None:
    first, second = make_placement("pl-1"), make_placement("pl-2", lesson_id="other-lesson")
    add(db, first, second)
    moved = [
        p.model_copy(update={"state": PlacementState.EMBEDDED, "handle": f"h-{p.id}"})
        for p in (second, first)
    ]
    with db.transaction() as session:
        placements.update_many(session, moved)
    assert [get(db, "pl-1"), get(db, "pl-2")] == [moved[1], moved[0]]

    gone = make_placement("pl-unknown")
    completed = first.model_copy(update={"state": PlacementState.COMPLETED})
    with pytest.raises(NotFoundError), db.transaction() as session:
        placements.update_many(session, [completed, gone])
    assert get(db, "pl-1") == moved[1]


# --- queries -----------------------------------------------------------------------------------


def test_for_work_item_and_for_lesson_select_their_placements(db: Database) -> None:
    pr_v1 = make_placement("pl-1")
    pr_v2 = make_placement("pl-2", lesson_version=2, created_at=T0 + timedelta(minutes=1))
    issue = make_placement(
        "pl-3",
        work_item_ref=ISSUE,
        form=EmbeddingForm.JIRA_CHECKLIST,
        created_at=T0 + timedelta(minutes=2),
    )
    other_lesson = make_placement(
        "pl-4", lesson_id="feature-flags", created_at=T0 + timedelta(minutes=3)
    )
    add(db, pr_v1, pr_v2, issue, other_lesson)

    with db.transaction() as session:
        on_pr = placements.for_work_item(session, PR)
        on_issue = placements.for_work_item(session, ISSUE)
        nowhere = placements.for_work_item(session, "github:acme/api#999")
        of_lesson = placements.for_lesson(session, "retry-budgets")
        of_other = placements.for_lesson(session, "feature-flags")

    assert on_pr == [pr_v1, pr_v2, other_lesson]
    assert on_issue == [issue]
    assert nowhere == []
    assert of_lesson == [pr_v1, pr_v2, issue]
    assert of_other == [other_lesson]


def test_for_work_item_lists_oldest_first(db: Database) -> None:
    older = make_placement("pl-b", created_at=T0, updated_at=T0)
    newer = make_placement(
        "pl-a",
        lesson_id="feature-flags",
        created_at=T0 + timedelta(hours=1),
        updated_at=T0 + timedelta(hours=1),
    )
    add(db, older, newer)

    with db.transaction() as session:
        assert ids(placements.for_work_item(session, PR)) == ["pl-b", "pl-a"]


# --- signals -----------------------------------------------------------------------------------


def test_a_signal_is_recorded_once_per_id(db: Database) -> None:
    add(db, make_placement())
    ticked = make_signal("sig-1", 1)
    replay = make_signal("sig-1", 2, kind=SignalKind.UNTICKED, actor="eve")

    with db.transaction() as session:
        assert placements.add_signal(session, ticked) is True
    with db.transaction() as session:
        assert placements.add_signal(session, replay) is False
        assert placements.add_signal(session, ticked) is False

    with db.transaction() as session:
        assert placements.signals(session, "pl-1") == [ticked]


def test_signals_come_back_in_time_order_for_their_placement_only(db: Database) -> None:
    add(db, make_placement("pl-1"), make_placement("pl-2", work_item_ref=ISSUE))
    dismissed = make_signal(
        "sig-c", 30, kind=SignalKind.DISMISSED, reason="not applicable: no retries here"
    )
    ticked = make_signal("sig-a", 10)
    unticked = make_signal("sig-b", 20, kind=SignalKind.UNTICKED, actor=None)
    elsewhere = make_signal("sig-d", 0, placement_id="pl-2")
    with db.transaction() as session:
        for signal in (dismissed, elsewhere, ticked, unticked):
            assert placements.add_signal(session, signal) is True

    with db.transaction() as session:
        assert placements.signals(session, "pl-1") == [ticked, unticked, dismissed]
        assert placements.signals(session, "pl-2") == [elsewhere]
        assert placements.signals(session, "pl-unknown") == []


def test_signal_time_order_beats_id_order(db: Database) -> None:
    add(db, make_placement())
    late = make_signal("sig-1", 5)
    early = make_signal("sig-2", 1)
    with db.transaction() as session:
        placements.add_signal(session, late)
        placements.add_signal(session, early)

    with db.transaction() as session:
        assert placements.signals(session, "pl-1") == [early, late]


def test_a_read_outside_the_orm_sees_the_transactions_pending_orm_writes(db: Database) -> None:
    # The hot path reads with statements built once and run without the ORM; an ORM change
    # made earlier in the same transaction and not yet flushed must still be seen, as an ORM
    # query would see it (the revision stage edits placement rows through the ORM, then embed
    # reads the work item's placements).
    add(db, make_placement())
    with db.transaction() as session:
        row = session.get(PlacementRow, "pl-1")
        assert row is not None
        row.doc = to_doc(make_placement(state=PlacementState.EMBEDDED, handle="item-7"))
        found = placements.for_work_item(session, PR)
    assert [(p.state, p.handle) for p in found] == [(PlacementState.EMBEDDED, "item-7")]


def test_update_many_leaves_no_stale_orm_copy_of_a_row_it_changed(db: Database) -> None:
    # update_many writes without the ORM; a copy of the row the transaction had loaded before
    # must not be served afterwards with the old state.
    add(db, make_placement())
    with db.transaction() as session:
        loaded = session.get(PlacementRow, "pl-1")
        assert loaded is not None and loaded.state == PlacementState.PLANNED.value
        placements.update_many(
            session, [make_placement(state=PlacementState.EMBEDDED, handle="item-7")]
        )
        again = placements.get(session, "pl-1")
        row = session.get(PlacementRow, "pl-1")
        assert row is not None
        assert (row.state, row.tier) == (PlacementState.EMBEDDED.value, "delivered")
    assert again is not None and again.state == PlacementState.EMBEDDED
    stored = get(db, "pl-1")
    assert stored is not None and (stored.state, stored.handle) == (
        PlacementState.EMBEDDED,
        "item-7",
    )


def _tallies(db: Database) -> dict[str, int]:
    with db.transaction() as session:
        rows = session.execute(
            select(PlacementTallyRow.tier, func.sum(PlacementTallyRow.n)).group_by(
                PlacementTallyRow.tier
            )
        ).all()
    return {tier: int(n) for tier, n in rows if n}


def test_a_placement_updated_twice_in_one_call_moves_its_tally_once(db: Database) -> None:
    add(db, make_placement())
    first = make_placement(state=PlacementState.EMBEDDED, handle="item-1")
    second = make_placement(state=PlacementState.EMBEDDED, handle="item-2")
    with db.transaction() as session:
        placements.update_many(session, [first, second])
    assert _tallies(db) == {"delivered": 1}
    stored = get(db, "pl-1")
    assert stored is not None and stored.handle == "item-2"


def test_an_unknown_placement_in_update_many_changes_nothing_else(db: Database) -> None:
    add(db, make_placement())
    with db.transaction() as session, pytest.raises(NotFoundError):
        placements.update_many(
            session,
            [
                make_placement(state=PlacementState.EMBEDDED, handle="item-1"),
                make_placement("pl-unknown"),
            ],
        )
    # Even a caller that goes on to commit finds the row and its tally as they were.
    stored = get(db, "pl-1")
    assert stored is not None and stored.state == PlacementState.PLANNED
    assert _tallies(db) == {"undelivered": 1}
