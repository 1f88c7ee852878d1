"""What the merge check weighs: each placed item's gate (its rule's, in the rule set in force)
and whether a waiver exempts the work item from its lesson."""

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from connectors.target import EmbedEntry
from core.feedback import Observation
from core.gate import Gate
from core.placement import PlacementState
from core.waiver import Waiver
from core.work import System, WorkItem
from router.ruleset.active import ActiveRules
from store import outbox, placements, waivers, work_items

OBSERVE_TOPIC = "observe"
CHECKED = frozenset({System.GITHUB})
"""Systems whose work items carry a merge check."""
_OPEN = frozenset({PlacementState.PLANNED, PlacementState.EMBEDDED, PlacementState.OVERDUE})

Gates = Callable[[str], Gate]
"""Pack-qualified rule id (`pack/rule`, as placements record it) → the rule's gate."""


def default_gates(_rule_id: str) -> Gate:
    """Every rule at the default gate, `warn` (no rule set configured)."""
    return Gate.WARN


def gates_of(rules: ActiveRules) -> Gates:
    """The gate of each rule in the rule set in force when asked; a rule no longer in it (its
    placements live on) weighs as the default, `warn`."""

    def gate(rule_id: str) -> Gate:
        rule_set = rules.rule_set
        if rule_set is None:
            return Gate.WARN
        pack_name, _, rule_name = rule_id.partition("/")
        for pack in rule_set.packs:
            if pack.pack == pack_name:
                for rule in pack.rules:
                    if rule.id == rule_name:
                        return rule.gate
        return Gate.WARN

    return gate


def annotate(
    session: Session,
    item: WorkItem,
    entries: Sequence[EmbedEntry],
    gates: Gates,
    now: datetime,
) -> tuple[EmbedEntry, ...]:
    """`entries` with their gate and waived flag filled in for the work item's check."""
    waived = waivers.waived_lessons(session, item.team, item.ref, now)
    return tuple(replace(e, gate=gates(e.rule_id), waived=e.lesson_id in waived) for e in entries)


def recheck_after_waiver(session: Session, waiver: Waiver, now: datetime) -> list[str]:
    """Queue a re-read of every open work item the waiver exempts that shows the lesson as an
    open item, so its merge check counts the item as done; the refs queued."""
    refs: list[str] = []
    for placement in placements.for_lesson(session, waiver.lesson_id):
        ref = placement.work_item_ref
        if placement.state not in _OPEN or ref in refs:
            continue
        if waiver.work_item_ref is not None and ref != waiver.work_item_ref:
            continue
        item = work_items.get(session, ref)
        if item is None or item.team != waiver.team or item.system not in CHECKED:
            continue
        recheck(session, ref, now, delivery_id=f"waiver:{waiver.id}")
        refs.append(ref)
    return refs


def recheck(session: Session, ref: str, now: datetime, *, delivery_id: str | None = None) -> None:
    """Queue a re-read of the work item by the observe stage (keyed by it), which records its
    marks and brings its merge check in line."""
    observation = Observation(work_item_ref=ref, observed_at=now, delivery_id=delivery_id)
    payload = {"observation": observation.model_dump(mode="json")}
    outbox.enqueue(session, topic=OBSERVE_TOPIC, payload=payload, key=ref, now=now)
