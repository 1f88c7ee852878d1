"""The canonical event envelope the generic webhook source carries."""

from typing import Annotated, Literal

from pydantic import Field

from core.base import CoreModel
from core.feedback import Observation
from core.incident import Incident
from core.work import WorkItem


class IncidentEvent(CoreModel):
    """An incident changed state."""

    type: Literal["incident"]
    incident: Incident


class WorkItemEvent(CoreModel):
    """A work item was created or changed."""

    type: Literal["work_item"]
    work_item: WorkItem
    complete: bool = Field(
        default=False,
        description="Read the target first for what the event leaves out (changed files, team).",
    )


class FeedbackEvent(CoreModel):
    """A work item's placed items changed, or the work item ended (the back-channel)."""

    type: Literal["feedback"]
    observation: Observation


CanonicalEvent = Annotated[
    IncidentEvent | WorkItemEvent | FeedbackEvent, Field(discriminator="type")
]
"""What `POST /hooks/generic` accepts: one incident, one work item, or feedback on one."""
