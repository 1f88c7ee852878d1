"""The canonical Incident every incident-tracker connector produces."""

from enum import StrEnum
from typing import Annotated

from pydantic import Field, HttpUrl, StringConstraints

from core.base import NO_CONTROL_CHARACTERS, CoreModel, Name, Text, UtcDateTime

# Sized so that `source:external_id` fits the stores' reference columns.
SourceName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=40, pattern=NO_CONTROL_CHARACTERS
    ),
]
ExternalId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=255, pattern=NO_CONTROL_CHARACTERS
    ),
]


class Severity(StrEnum):
    """Severity on one scale across trackers; `rank` orders them (1 is the worst)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """1 for critical down to 5 for informational."""
        return list(Severity).index(self) + 1


class IncidentStatus(StrEnum):
    """Where the incident is in its life."""

    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    POSTMORTEM_DONE = "postmortem_done"


class Incident(CoreModel):
    """An incident as Cairn understands it, whichever tracker reported it."""

    source: SourceName = Field(description="The tracker: pagerduty, incidentio, generic, ...")
    external_id: ExternalId = Field(description="The tracker's own id for the incident.")
    title: Name
    status: IncidentStatus
    severity: Severity = Severity.MEDIUM
    services: tuple[Name, ...] = ()
    components: tuple[Name, ...] = ()
    teams: tuple[Name, ...] = ()
    tags: tuple[Name, ...] = ()
    started_at: UtcDateTime | None = None
    resolved_at: UtcDateTime | None = None
    url: HttpUrl | None = None
    postmortem_url: HttpUrl | None = None
    summary: Text = ""
    contributing_factors: tuple[Text, ...] = ()
    action_items: tuple[Text, ...] = ()

    @property
    def ref(self) -> str:
        """Stable reference, e.g. `pagerduty:PABC123`."""
        return f"{self.source}:{self.external_id}"


def updated(stored: Incident, delivered: Incident) -> Incident:
    """The stored incident updated by a later delivery about it.

    Thin deliveries (a postmortem note, a finished postmortem document) say little besides the
    new status and a link: what they leave unset or empty keeps its stored value.
    """
    changes = {
        name: getattr(delivered, name)
        for name in delivered.model_fields_set - {"source", "external_id"}
        if getattr(delivered, name) not in ((), None, "")
    }
    return stored.model_copy(update=changes)
