"""Reading completion back from the LMS: each open training placement's enrolment is asked for
its progress, and a completion (or a failure) is recorded as a signal, like a tick in a PR."""

import hashlib
import logging
from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from connectors.lms import Completion, LmsClient
from connectors.lms_target import Handle
from core.base import utcnow
from core.errors import CairnError
from core.feedback import ItemMark, ItemObservation, Observation
from core.placement import EmbeddingForm, PlacementState
from router.stages import feedback
from store import placements
from store.engine import Database

log = logging.getLogger("cairn.training")
OPEN = (PlacementState.EMBEDDED, PlacementState.OVERDUE)
MARKS = {
    Completion.COMPLETED: ItemMark.COMPLETED,
    Completion.PASSED: ItemMark.COMPLETED,
    Completion.FAILED: ItemMark.FAILED,
}


def _delivery(handle: Handle, completion: Completion) -> str:
    """A stable id for "the LMS said this enrolment reached this state": read twice, one signal."""
    digest = hashlib.sha256(f"{handle}|{completion.value}".encode()).hexdigest()[:24]
    return f"{handle.lms}-progress-{digest}"


def poll(
    db: Database, clients: Mapping[str, LmsClient], limit: int = 500, now: datetime | None = None
) -> int:
    """Ask the LMS about up to `limit` open training placements; returns the signals recorded."""
    with db.transaction() as session:
        open_ones = [
            p
            for state in OPEN
            for p in placements.in_state(session, state)
            if p.form == EmbeddingForm.LMS_ASSIGNMENT and p.handle
        ][:limit]
    recorded = 0
    for placement in open_ones:
        handle = Handle.parse(placement.handle or "")
        client = None if handle is None else clients.get(handle.lms)
        if handle is None or client is None:
            continue
        try:
            progress = client.progress(handle.enrolment())
        except CairnError as exc:
            log.warning("progress of %s: %s", placement.id, exc)
            continue
        mark = MARKS.get(progress.completion)
        if mark is None:
            continue
        at = progress.at or now or utcnow()
        observation = Observation(
            work_item_ref=placement.work_item_ref,
            observed_at=at,
            actor=f"{handle.lms}:{handle.user_id}",
            delivery_id=_delivery(handle, progress.completion),
            items=(ItemObservation(placement_id=placement.id, mark=mark, reason=progress.detail),),
        )
        with db.transaction() as session:
            recorded += len(feedback.apply(session, observation, now or utcnow()))
    return recorded


def mark_lessons(
    session: Session,
    ref: str,
    lesson_ids: Collection[str],
    mark: ItemMark,
    *,
    at: datetime,
    actor: str,
    delivery: str,
    now: datetime,
    reason: str | None = None,
) -> tuple[int, int]:
    """Mark the training placements of these lessons in one learner's work item `ref`, as one
    observation (a redelivery of `delivery` records nothing): (placements matched, signals
    recorded). Completions reported by an LRS or by Canvas Live Events come in through here."""
    items = tuple(
        ItemObservation(placement_id=p.id, mark=mark, reason=reason)
        for p in placements.for_work_item(session, ref)
        if p.form == EmbeddingForm.LMS_ASSIGNMENT and p.lesson_id in lesson_ids
    )
    if not items:
        return 0, 0
    observation = Observation(
        work_item_ref=ref,
        observed_at=at,
        actor=actor[:200],
        delivery_id=delivery[:200],
        items=items,
    )
    return len(items), len(feedback.apply(session, observation, now))
