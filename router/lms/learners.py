"""Learners as work items: each member of each team in the team map is one `lms:<team>/<person>`
work item, routed like any other, so rules with `form: lms.assignment` assign training to them.

`sync` records each learner (only when something about them changed) and asks the pipeline to
route every learner again: placing is idempotent per (lesson version, learner), so a lesson
published since, a rule added, or a member who joined a team gets their assignment, and nobody
is enrolled twice.
"""

from datetime import datetime

from connectors.lms_target import learner_item, learner_ref
from core.base import utcnow
from store import audit, outbox, teams, work_items
from store.engine import Database

__all__ = ["learner_item", "learner_ref", "sync"]

ROUTE_TOPIC = "route"
ACTOR = "cairn:training"


def sync(db: Database, now: datetime | None = None) -> int:
    """Record every learner that changed and queue a route of every learner; returns how many
    learners were queued."""
    now = now or utcnow()
    queued = 0
    with db.transaction() as session:
        for team, member in teams.all_members(session):
            item = learner_item(team, member)
            work_items.record_if_changed(session, item, now)
            outbox.enqueue(
                session, topic=ROUTE_TOPIC, payload={"ref": item.ref}, key=item.ref, now=now
            )
            queued += 1
        if queued:
            audit.record(
                session,
                actor=ACTOR,
                action="training.synced",
                subject="lms",
                details={"learners": queued},
                now=now,
            )
    return queued
