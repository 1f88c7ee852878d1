"""Recurrences joined with adoption: had the lesson been placed, and honoured, before it recurred?

For every recorded recurrence of a lesson, each placement of it in work related to the incident
is replayed to the tier it had when the incident started (or was detected, when the start is
unknown). A placement made before the incident but not acknowledged or verified by then is
"placed but not honoured": the lesson was in front of the team and the failure came anyway.
"""

from dataclasses import dataclass, field
from typing import Any

from core.adoption import HONOURED, Tier, tier_at
from core.recurrence import Recurrence
from store import ledger, recurrences
from store.engine import Database
from store.ledger import Entry


@dataclass
class RecurrenceView:
    """One recurrence with each related placement's tier at the incident's start."""

    recurrence: Recurrence
    tiers: dict[str, Tier | None] = field(default_factory=dict)
    teams: dict[str, str] = field(default_factory=dict)

    @property
    def placed(self) -> bool:
        """Whether any related placement existed when the incident started."""
        return any(tier is not None for tier in self.tiers.values())

    @property
    def not_honoured(self) -> list[str]:
        """Placements in front of the team before the incident that were not acted on."""
        return [
            pid
            for pid, tier in self.tiers.items()
            if tier is not None and tier not in HONOURED and tier != Tier.WITHDRAWN
        ]

    def as_dict(self) -> dict[str, Any]:
        """The recurrence, what was placed, and the flag."""
        r = self.recurrence
        return {
            "incident": r.incident_ref,
            "lesson": r.lesson_id,
            "lesson_version": r.lesson_version,
            "started_at": (r.incident_started_at or r.detected_at).isoformat(),
            "placed_before": self.placed,
            "placements": {
                pid: None if tier is None else tier.value for pid, tier in self.tiers.items()
            },
            "placed_not_honoured": self.not_honoured,
        }


def views(db: Database, lesson_ids: list[str]) -> list[RecurrenceView]:
    """Every recurrence of these lessons, with its placements replayed to the incident's start
    (the recurrences in one query, their placements in as few as 500 ids allow)."""
    found: list[RecurrenceView] = []
    with db.transaction() as session:
        every = recurrences.for_lessons(session, lesson_ids)
        ids = sorted({p.placement_id for r in every for p in r.placements})
        entries: dict[str, Entry] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            entries.update(
                (e.placement.id, e) for e in ledger.entries(session, placement_ids=chunk)
            )
    for recurrence in every:
        at = recurrence.incident_started_at or recurrence.detected_at
        view = RecurrenceView(recurrence)
        for placement in recurrence.placements:
            entry = entries.get(placement.placement_id)
            if entry is not None:
                view.tiers[placement.placement_id] = tier_at(entry.placement, entry.signals, at)
                view.teams[placement.placement_id] = entry.team
        found.append(view)
    return found


def summary(found: list[RecurrenceView]) -> dict[str, Any]:
    """Counts for a report row: recurrences, placed before, placed but not honoured."""
    return {
        "recurrences": len(found),
        "placed_before": sum(v.placed for v in found),
        "placed_not_honoured": sum(bool(v.not_honoured) for v in found),
    }
