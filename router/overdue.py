"""Mandated placements past their due date with the item still open become `overdue`.

A background task (in `cairn serve` with workers, and in `cairn worker`) sweeps every
CAIRN_OVERDUE_SWEEP_SECONDS; each change is audited (`placement.overdue`) in the transaction
that makes it. A tick afterwards completes the placement as usual; an untick puts it back in the
work, and the next sweep finds it overdue again. Reminders on the PR or ticket are not built yet.
"""

import logging
from datetime import datetime

from core.base import utcnow
from core.feedback import MANDATED
from core.placement import PlacementState
from router.periodic import Periodic
from store import audit, placements
from store.engine import Database

log = logging.getLogger("cairn.overdue")
ACTOR = "cairn:overdue"


def sweep(db: Database, now: datetime | None = None) -> int:
    """Mark every mandated, embedded placement whose due date has passed; returns how many."""
    now = now or utcnow()
    marked = 0
    with db.transaction() as session:
        for placement in placements.in_state(session, PlacementState.EMBEDDED):
            due = placement.due_at
            if placement.mandate not in MANDATED or due is None or due > now:
                continue
            placements.update(
                session,
                placement.model_copy(update={"state": PlacementState.OVERDUE, "updated_at": now}),
            )
            audit.record(
                session,
                actor=ACTOR,
                action="placement.overdue",
                subject=placement.work_item_ref,
                details={
                    "placement": placement.id,
                    "lesson": f"{placement.lesson_id}@{placement.lesson_version}",
                    "due_at": due.isoformat(),
                    "mandate": placement.mandate.value,
                },
                now=now,
            )
            marked += 1
    return marked


class OverdueSweeper:
    """A background task calling `sweep` every `interval` seconds."""

    def __init__(self, db: Database, interval: float) -> None:
        self.db = db
        self._loop = Periodic("overdue-sweep", interval, self._sweep)

    async def start(self) -> None:
        """Start sweeping."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop sweeping."""
        await self._loop.stop()

    def _sweep(self) -> None:
        marked = sweep(self.db)
        if marked:
            log.info("%d placements became overdue", marked)
