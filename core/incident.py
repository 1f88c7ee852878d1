"""The canonical Incident every incident-tracker connector produces."""

from enum import StrEnum

from pydantic import Field, HttpUrl

from core.base import CoreModel, Name, Text, UtcDateTime


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

    source: Name = Field(description="The tracker: pagerduty, incidentio, opsgenie, generic.")
    external_id: Name = Field(description="The tracker's own id for the incident.")
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
