"""Observation → Signals: every mark against every placement state, closures, repeats."""

from datetime import UTC, datetime, timedelta

import pytest

from core.feedback import Closure, ItemMark, ItemObservation, Observation, reconcile
from core.lesson import Mandate
from core.placement import EmbeddingForm, Placement, PlacementState, SignalKind

T0 = datetime(2026, 11, 1, tzinfo=UTC)
REF = "github:acme/api#7"


def placement(
    pid: str = "pl_1",
    state: PlacementState = PlacementState.EMBEDDED,
    mandate: Mandate = Mandate.REQUIRED,
    form: EmbeddingForm = EmbeddingForm.GITHUB_PR_CHECKLIST,
    reason: str | None = None,
) -> Placement:
    return Placement(
        id=pid,
        lesson_id=f"lesson-{pid}",
        lesson_version=1,
        work_item_ref=REF,
        rule_id="org/r",
        rule_set_version="abc",
        form=form,
        mandate=mandate,
        state=state,
        reason=reason,
        created_at=T0,
        updated_at=T0,
    )


def observe(
    *items: ItemObservation,
    closure: Closure | None = None,
    delivery: str = "d1",
    hours: float = 1,
) -> Observation:
    return Observation(
        work_item_ref=REF,
        observed_at=T0 + timedelta(hours=hours),
        actor="dana",
        delivery_id=delivery,
        items=items,
        closure=closure,
    )


def mark(m: ItemMark, pid: str = "pl_1", reason: str | None = None) -> ItemObservation:
    return ItemObservation(placement_id=pid, mark=m, reason=reason)


@pytest.mark.parametrize(
    ("state", "item", "expected"),
    [
        (PlacementState.EMBEDDED, mark(ItemMark.TICKED), (SignalKind.TICKED, "completed")),
        (PlacementState.OVERDUE, mark(ItemMark.TICKED), (SignalKind.TICKED, "completed")),
        (PlacementState.COMPLETED, mark(ItemMark.TICKED), None),
        (PlacementState.EMBEDDED, mark(ItemMark.OPEN), None),
        (PlacementState.COMPLETED, mark(ItemMark.OPEN), (SignalKind.UNTICKED, "embedded")),
        (PlacementState.DISMISSED, mark(ItemMark.OPEN), (SignalKind.UNTICKED, "embedded")),
        (
            PlacementState.EMBEDDED,
            mark(ItemMark.DISMISSED, reason="no database here"),
            (SignalKind.DISMISSED, "dismissed"),
        ),
        (PlacementState.DISMISSED, mark(ItemMark.TICKED), (SignalKind.TICKED, "completed")),
        (PlacementState.PLANNED, mark(ItemMark.TICKED), None),  # not in the target yet
        (PlacementState.WITHDRAWN, mark(ItemMark.TICKED), None),
        (PlacementState.FAILED, mark(ItemMark.TICKED), None),
    ],
)
def test_each_mark_against_each_state(
    state: PlacementState,
    item: ItemObservation,
    expected: tuple[SignalKind, str] | None,
) -> None:
    changes = reconcile([placement(state=state)], observe(item))
    if expected is None:
        assert changes == []
        return
    [change] = changes
    assert (change.signal.kind, change.placement.state.value) == expected
    assert change.signal.actor == "dana"
    assert change.signal.delivery_id == "d1"
    assert change.placement.updated_at == T0 + timedelta(hours=1)


def test_a_dismissal_keeps_its_reason_and_a_new_reason_is_a_new_signal() -> None:
    [first] = reconcile([placement()], observe(mark(ItemMark.DISMISSED, reason="n/a: no db")))
    assert first.placement.reason == "n/a: no db"
    assert first.signal.reason == "n/a: no db"
    same = observe(mark(ItemMark.DISMISSED, reason="n/a: no db"), delivery="d2")
    assert reconcile([first.placement], same) == []
    changed = observe(mark(ItemMark.DISMISSED, reason="other reason"), delivery="d2")
    [second] = reconcile([first.placement], changed)
    assert second.signal.reason == "other reason"
    assert second.signal.id != first.signal.id


def test_an_older_observation_arriving_late_is_recorded_but_does_not_undo_a_newer_one() -> None:
    ticked = reconcile([placement()], observe(mark(ItemMark.TICKED), hours=1))[0].placement
    # Observed at 3h (reopened), delivered first; then the dismissal observed at 2h arrives.
    reopened = reconcile([ticked], observe(mark(ItemMark.OPEN), delivery="d3", hours=3))
    [newer] = reopened
    assert newer.placement.state == PlacementState.EMBEDDED
    assert newer.placement.observed_at == T0 + timedelta(hours=3)
    late = observe(mark(ItemMark.DISMISSED, reason="n/a"), delivery="d2", hours=2)
    [older] = reconcile([newer.placement], late)
    assert (older.signal.kind, older.signal.reason) == (SignalKind.DISMISSED, "n/a")
    assert older.signal.at == T0 + timedelta(hours=2)
    assert older.placement == newer.placement  # the state stays the 3h observation's
    # In order, the same dismissal does change the state.
    [in_order] = reconcile([ticked], late)
    assert in_order.placement.state == PlacementState.DISMISSED


def test_a_finished_subtask_is_a_subtask_signal() -> None:
    subtask = placement(form=EmbeddingForm.JIRA_SUBTASK)
    [change] = reconcile([subtask], observe(mark(ItemMark.TICKED)))
    assert change.signal.kind == SignalKind.SUBTASK_DONE


def test_signal_ids_are_stable_per_delivery_and_differ_across_deliveries() -> None:
    a = reconcile([placement()], observe(mark(ItemMark.TICKED)))[0].signal.id
    b = reconcile([placement()], observe(mark(ItemMark.TICKED)))[0].signal.id
    c = reconcile([placement()], observe(mark(ItemMark.TICKED), delivery="d9"))[0].signal.id
    assert a == b != c


def test_unknown_and_forged_items_are_ignored() -> None:
    assert reconcile([placement()], observe(mark(ItemMark.TICKED, pid="pl_forged"))) == []


def test_a_merge_records_open_items_as_unchecked_and_ticked_ones_as_clean() -> None:
    current = [
        placement("pl_req", mandate=Mandate.REQUIRED),
        placement("pl_just", mandate=Mandate.REVIEW_AND_JUSTIFY),
        placement("pl_inv", mandate=Mandate.INVITED),
        placement("pl_done", state=PlacementState.COMPLETED),
        placement("pl_dis", state=PlacementState.DISMISSED, reason="n/a"),
        placement("pl_gone", state=PlacementState.WITHDRAWN),
    ]
    changes = reconcile(current, observe(closure=Closure.MERGED))
    assert sorted((c.placement.id, c.signal.kind) for c in changes) == [
        ("pl_done", SignalKind.MERGED_CLEAN),
        ("pl_inv", SignalKind.MERGED_UNCHECKED),
        ("pl_just", SignalKind.MERGED_UNCHECKED),
        ("pl_req", SignalKind.MERGED_UNCHECKED),
    ]
    # The closure changes no state; dismissed and withdrawn items get no closure signal.
    assert {c.placement.id: c.placement.state for c in changes} == {
        "pl_done": PlacementState.COMPLETED,
        "pl_inv": PlacementState.EMBEDDED,
        "pl_just": PlacementState.EMBEDDED,
        "pl_req": PlacementState.EMBEDDED,
    }


def test_a_tick_in_the_closing_event_counts_before_the_closure() -> None:
    changes = reconcile([placement()], observe(mark(ItemMark.TICKED), closure=Closure.RESOLVED))
    assert [c.signal.kind for c in changes] == [SignalKind.TICKED, SignalKind.RESOLVED_CLEAN]


def test_resolution_and_plain_close() -> None:
    resolved = reconcile([placement()], observe(closure=Closure.RESOLVED))
    assert [c.signal.kind for c in resolved] == [SignalKind.RESOLVED_UNCHECKED]
    assert reconcile([placement()], observe(closure=Closure.CLOSED)) == []
