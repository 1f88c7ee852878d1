"""Record what an observation says about placed items: changed placements, Signals, audit."""

from datetime import datetime

from sqlalchemy.orm import Session

from core.feedback import Change, Observation, reconcile
from store import audit, placements

ACTOR = "cairn:feedback"


def apply(session: Session, observation: Observation, now: datetime) -> list[Change]:
    """Store the changes an observation makes (a repeat of a recorded delivery changes nothing)."""
    current = placements.for_work_item(session, observation.work_item_ref)
    applied: list[Change] = []
    for change in reconcile(current, observation):
        if not placements.add_signal(session, change.signal):
            continue  # this delivery was recorded before
        placements.update(session, change.placement)
        applied.append(change)
        audit.record(
            session,
            actor=observation.actor or ACTOR,
            action=f"signal.{change.signal.kind.value}",
            subject=observation.work_item_ref,
            details={
                "placement": change.placement.id,
                "lesson": f"{change.placement.lesson_id}@{change.placement.lesson_version}",
                "state": change.placement.state.value,
                "reason": change.signal.reason,
                "delivery": observation.delivery_id,
            },
            now=now,
        )
    return applied
