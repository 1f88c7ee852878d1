"""Waiver: a recorded exemption of a team (or one work item) from a mandated lesson."""

from datetime import datetime

from pydantic import Field

from core.base import CoreModel, Name, Text, UtcDateTime
from core.work import WorkRef


class Waiver(CoreModel):
    """Who approved exempting whom from which lesson, why, and until when."""

    id: Name
    lesson_id: Name
    team: Name
    work_item_ref: WorkRef | None = Field(
        default=None, description="Only this work item; unset: all of the team's work."
    )
    reason: Text = Field(min_length=1)
    approved_by: Name
    created_at: UtcDateTime
    expires_at: UtcDateTime

    def active(self, at: datetime) -> bool:
        """Whether the waiver counts at `at` (created and not yet expired)."""
        return self.created_at <= at < self.expires_at
