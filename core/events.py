"""The canonical event envelope the generic webhook source carries."""

from typing import Annotated, Literal

from pydantic import Field

from core.base import CoreModel
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


CanonicalEvent = Annotated[IncidentEvent | WorkItemEvent, Field(discriminator="type")]
"""What `POST /hooks/generic` accepts: one incident or one work item."""
