"""What a target shows about the items Cairn placed in it, and the Signals that follow.

Connectors turn a webhook (or a re-read of the target) into an `Observation`: the mark each
placed item carries now, and whether the work item was closed. `reconcile` compares it with the
stored placements and yields only real changes, so a redelivery, or an edit Cairn made itself,
produces no signal.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from core.base import CoreModel, Name, Text, UtcDateTime
from core.lesson import Mandate
from core.placement import EmbeddingForm, Placement, PlacementState, Signal, SignalKind
from core.work import WorkRef


class ItemMark(StrEnum):
    """The state of one placed item as the target shows it."""

    OPEN = "open"
    TICKED = "ticked"
    DISMISSED = "dismissed"
    COMPLETED = "completed"
    """Training: the learner completed (or passed) the module."""
    FAILED = "failed"
    """Training: the learner failed the module; recorded, the assignment stays open."""


class Closure(StrEnum):
    """How the work item ended, when the event ended it."""

    MERGED = "merged"
    CLOSED = "closed"
    RESOLVED = "resolved"


class ItemObservation(CoreModel):
    """One placed item, found by its placement id in the target."""

    placement_id: Name
    mark: ItemMark
    reason: Text | None = None


class Observation(CoreModel):
    """What one event (or one re-read) shows about a work item's placed items."""

    work_item_ref: WorkRef
    observed_at: UtcDateTime
    actor: Name | None = None
    delivery_id: Name | None = None
    items: tuple[ItemObservation, ...] | None = None
    """None when the event does not show the items: the target must be re-read."""
    closure: Closure | None = None
    body_changed: bool = True
    """False when the event is known not to touch the items (no re-read is needed)."""
    via: WorkRef | None = None
    """The pull request the event came through when it is not the work item itself (a
    template's pull request): where a closing comment giving the reason is read."""


LIVE = frozenset(
    {
        PlacementState.EMBEDDED,
        PlacementState.COMPLETED,
        PlacementState.DISMISSED,
        PlacementState.OVERDUE,
    }
)
"""Placements whose item is in the target and whose marks are worth reading."""

MANDATED = frozenset({Mandate.REQUIRED, Mandate.REVIEW_AND_JUSTIFY})
"""Mandates whose items must be ticked or justified before the work item ends."""

_CLOSURE_SIGNAL = {
    Closure.MERGED: (SignalKind.MERGED_UNCHECKED, SignalKind.MERGED_CLEAN),
    Closure.RESOLVED: (SignalKind.RESOLVED_UNCHECKED, SignalKind.RESOLVED_CLEAN),
}
"""How a finished work item leaves each item: (still open, ticked). A plain close says nothing."""


@dataclass(frozen=True, slots=True)
class Change:
    """A placement's new state and the signal that records why."""

    placement: Placement
    signal: Signal


def _signal_id(placement_id: str, kind: SignalKind, observation: Observation, extra: str) -> str:
    # Stable for a redelivery of the same event, distinct for a later event.
    basis = observation.delivery_id or observation.observed_at.isoformat()
    digest = hashlib.sha256(f"{placement_id}|{kind}|{basis}|{extra}".encode()).hexdigest()
    return "sg_" + digest[:24]


def _signal(
    placement: Placement, observation: Observation, kind: SignalKind, reason: str | None = None
) -> Signal:
    return Signal(
        id=_signal_id(placement.id, kind, observation, reason or ""),
        placement_id=placement.id,
        kind=kind,
        actor=observation.actor,
        at=observation.observed_at,
        reason=reason,
        delivery_id=observation.delivery_id,
        lesson_version=placement.lesson_version,
    )


def _change(
    placement: Placement,
    observation: Observation,
    kind: SignalKind,
    state: PlacementState,
    reason: str | None = None,
) -> Change:
    signal = _signal(placement, observation, kind, reason)
    last = placement.observed_at
    if last is not None and observation.observed_at < last:
        # Deliveries can arrive out of order: an observation older than the one the state
        # reflects is recorded as what happened then, but the state stays the newer one's.
        return Change(placement, signal)
    updated = placement.model_copy(
        update={
            "state": state,
            "reason": reason,
            "observed_at": observation.observed_at,
            "updated_at": observation.observed_at,
        }
    )
    return Change(updated, signal)


def _item_change(placement: Placement, item: ItemObservation, obs: Observation) -> Change | None:
    state = placement.state
    if item.mark == ItemMark.TICKED and state != PlacementState.COMPLETED:
        # A grouped sub-task lesson is shown in the grouped checklist item: a tick, not a done
        # sub-task.
        done = (
            SignalKind.SUBTASK_DONE
            if placement.form == EmbeddingForm.JIRA_SUBTASK and not placement.grouped
            else SignalKind.TICKED
        )
        return _change(placement, obs, done, PlacementState.COMPLETED)
    if item.mark == ItemMark.DISMISSED and (
        state != PlacementState.DISMISSED or (item.reason or None) != placement.reason
    ):
        return _change(placement, obs, SignalKind.DISMISSED, PlacementState.DISMISSED, item.reason)
    if item.mark == ItemMark.COMPLETED and state != PlacementState.COMPLETED:
        return _change(
            placement, obs, SignalKind.TRAINING_COMPLETED, PlacementState.COMPLETED, item.reason
        )
    if item.mark == ItemMark.FAILED and state != PlacementState.COMPLETED:
        reason = f"failed: {item.reason}" if item.reason else "failed"
        if placement.reason == reason:
            return None  # the same failure read again
        return _change(placement, obs, SignalKind.TRAINING_FAILED, state, reason)
    if item.mark == ItemMark.OPEN and state in (PlacementState.COMPLETED, PlacementState.DISMISSED):
        return _change(placement, obs, SignalKind.UNTICKED, PlacementState.EMBEDDED)
    return None


def reconcile(placements: Iterable[Placement], observation: Observation) -> list[Change]:
    """The changes an observation makes to a work item's placements (none for a repeat)."""
    live = {p.id: p for p in placements if p.state in LIVE}
    changes: list[Change] = []
    for item in observation.items or ():
        placement = live.get(item.placement_id)
        if placement is None:
            continue  # an item of a withdrawn placement, or a forged marker: not ours to track
        change = _item_change(placement, item, observation)
        if change is not None:
            changes.append(change)
            live[placement.id] = change.placement
    kinds = None if observation.closure is None else _CLOSURE_SIGNAL.get(observation.closure)
    if kinds is not None:
        unchecked, clean = kinds
        for placement in live.values():
            if placement.state in (PlacementState.EMBEDDED, PlacementState.OVERDUE):
                kind = unchecked  # the work ended with the item open: ignored
            elif placement.state == PlacementState.COMPLETED:
                kind = clean  # the work ended with the item ticked: verified
            else:
                continue
            # The placement stays as it is; only the signal records the closure.
            changes.append(Change(placement, _signal(placement, observation, kind)))
    return changes
