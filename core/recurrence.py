"""Recurrence: a later incident where a published lesson applied, and what its placements did.

Matching (pure, `match`): an incident recurs a lesson when
1. the lesson did not come from it (the incident is not in its provenance, nor is the lesson the
   draft captured from it);
2. it shares a service with the lesson's `applicability.services` or a component with its
   `applicability.components` (a lesson naming neither cannot recur: tags alone are too broad);
3. it shares a tag with `applicability.tags` and a team with `applicability.teams`, for each of
   those the lesson lists (as everywhere in a Scope, an empty field does not constrain);
4. no service, component, team or tag of the incident is in `applicability.exclusions`.
Repositories and paths describe code, not incidents, and play no part.

Placement (`related_placements`): the lesson had been placed for the incident's service or team
when a placement of any version of it, made no later than the incident started (or than its
detection when the start is unknown), sits in a work item whose team is one of the incident's
teams, whose service names (components, labels and repository name, as routing reads them) meet
the incident's services, or whose components meet the incident's components.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from core.base import CoreModel, Name, UtcDateTime
from core.capture import lesson_id_for
from core.incident import Incident, IncidentStatus
from core.lesson import Lesson
from core.placement import Placement, PlacementState
from core.work import WorkItem, WorkRef

CHECKED = frozenset(
    {IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED}
)
"""Incident states checked for recurrences (a finished postmortem adds no new occurrence)."""

IncidentRef = Annotated[str, StringConstraints(min_length=3, max_length=300)]


class MatchedOn(CoreModel):
    """The values the incident shares with the lesson's applicability."""

    services: tuple[Name, ...] = ()
    components: tuple[Name, ...] = ()
    tags: tuple[Name, ...] = ()
    teams: tuple[Name, ...] = ()


class PlacementOutcome(CoreModel):
    """A placement in work related to the incident, as it stood when the incident recurred."""

    placement_id: Name
    work_item_ref: WorkRef
    lesson_version: int = Field(ge=1)
    state: PlacementState
    related_by: tuple[Name, ...] = Field(description="e.g. `team:payments`, `service:api`.")
    placed_at: UtcDateTime


class Recurrence(CoreModel):
    """An incident where a published lesson applied: one per (incident, lesson)."""

    incident_ref: IncidentRef
    lesson_id: Name
    lesson_version: int = Field(ge=1, description="The published version in force.")
    matched_on: MatchedOn
    placements: tuple[PlacementOutcome, ...] = ()
    incident_started_at: UtcDateTime | None = None
    detected_at: UtcDateTime

    @property
    def placed(self) -> bool:
        """Whether the lesson had been placed for the incident's services or teams."""
        return bool(self.placements)

    @property
    def states(self) -> dict[str, int]:
        """How many of those placements are in each state."""
        counts: dict[str, int] = {}
        for placement in self.placements:
            counts[placement.state.value] = counts.get(placement.state.value, 0) + 1
        return counts


def _shared(wanted: Iterable[str], present: Iterable[str]) -> tuple[str, ...]:
    have = set(present)
    return tuple(v for v in wanted if v in have)


def match(incident: Incident, lesson: Lesson) -> MatchedOn | None:
    """What the incident shares with the lesson's applicability, or None when it does not recur it
    (the rules are in this module's docstring)."""
    if incident.ref in lesson.provenance.source_incidents or lesson.id == lesson_id_for(incident):
        return None
    a = lesson.applicability
    services = _shared(a.services, incident.services)
    components = _shared(a.components, incident.components)
    tags = _shared(a.tags, incident.tags)
    teams = _shared(a.teams, incident.teams)
    if not (services or components) or (a.tags and not tags) or (a.teams and not teams):
        return None
    ex = a.exclusions
    if (
        _shared(ex.services, incident.services)
        or _shared(ex.components, incident.components)
        or _shared(ex.teams, incident.teams)
        or _shared(ex.tags, incident.tags)
    ):
        return None
    return MatchedOn(services=services, components=components, tags=tags, teams=teams)


def relation(incident: Incident, item: WorkItem) -> tuple[str, ...]:
    """How a work item relates to the incident: `team:…`, `service:…`, `component:…` entries."""
    repo_name = item.project.rstrip("/").rsplit("/", 1)[-1]
    service_names = {*item.components, *item.labels, repo_name}
    found = [f"team:{item.team}"] if item.team is not None and item.team in incident.teams else []
    found += [f"service:{s}" for s in incident.services if s in service_names]
    found += [f"component:{c}" for c in _shared(incident.components, item.components)]
    return tuple(found)


def related_placements(
    incident: Incident,
    placements: Iterable[tuple[Placement, WorkItem | None]],
    detected_at: datetime,
) -> tuple[PlacementOutcome, ...]:
    """The lesson's placements that count as placed for this incident, oldest first."""
    cutoff = incident.started_at or detected_at
    found = []
    for placement, item in placements:
        related = () if item is None else relation(incident, item)
        if related and placement.created_at <= cutoff:
            found.append(
                PlacementOutcome(
                    placement_id=placement.id,
                    work_item_ref=placement.work_item_ref,
                    lesson_version=placement.lesson_version,
                    state=placement.state,
                    related_by=related,
                    placed_at=placement.created_at,
                )
            )
    return tuple(sorted(found, key=lambda p: (p.placed_at, p.placement_id)))


def recurrence(
    incident: Incident,
    lesson: Lesson,
    matched: MatchedOn,
    placements: Iterable[tuple[Placement, WorkItem | None]],
    detected_at: datetime,
) -> Recurrence:
    """The record of one recurrence."""
    return Recurrence(
        incident_ref=incident.ref,
        lesson_id=lesson.id,
        lesson_version=lesson.version,
        matched_on=matched,
        placements=related_placements(incident, placements, detected_at),
        incident_started_at=incident.started_at,
        detected_at=detected_at,
    )
