"""Overdue placements: when one is due a reminder, and the digest its lesson's owner gets."""

import math
from datetime import datetime, timedelta

from pydantic import Field

from core.base import CoreModel, Name, UtcDateTime
from core.feedback import MANDATED
from core.lesson import Mandate
from core.placement import Placement, PlacementState
from core.work import WorkRef


def is_overdue(placement: Placement, now: datetime) -> bool:
    """Marked `overdue`, or a mandated item still open whose due date passed (not swept yet)."""
    if placement.state == PlacementState.OVERDUE:
        return True
    due = placement.due_at
    return (
        placement.state == PlacementState.EMBEDDED
        and placement.mandate in MANDATED
        and due is not None
        and due <= now
    )


def reminder_due(placement: Placement, now: datetime, window: timedelta) -> bool:
    """True when an overdue placement may be reminded now: never yet, or not within `window`.

    A window of zero (or less) switches reminders off.
    """
    if window <= timedelta(0) or placement.state != PlacementState.OVERDUE:
        return False
    if placement.mandate not in MANDATED:
        return False
    last = placement.reminded_at
    return last is None or last + window <= now


def reminder_key(placement: Placement) -> str:
    """The effect key of the placement's next reminder: the same on every retry of it, a new one
    after it was recorded (so one comment per placement per window)."""
    return f"{placement.id}:{placement.reminders + 1}"


def days_overdue(due_at: datetime, now: datetime) -> int:
    """Whole days since the due date (0 on the day it passed)."""
    return max(0, math.floor((now - due_at) / timedelta(days=1)))


class OverdueItem(CoreModel):
    """One overdue placement of an owner's lesson, as the digest lists it."""

    placement_id: Name
    lesson_id: Name
    lesson_version: int = Field(ge=1)
    title: str
    team: Name | None = Field(default=None, description="The work item's team, when known.")
    work_item_ref: WorkRef
    work_item_url: str | None = None
    mandate: Mandate
    due_at: UtcDateTime
    days_overdue: int = Field(ge=0)
    reminded: bool
    reminded_at: UtcDateTime | None = None


class OverdueDigest(CoreModel):
    """What a lesson owner's team is told: the overdue placements of the lessons it owns."""

    owner: Name
    generated_at: UtcDateTime
    items: tuple[OverdueItem, ...] = ()
