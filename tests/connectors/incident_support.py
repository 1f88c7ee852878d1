"""Helpers shared by the incident-source tests: exact fixture expectations and the e2e check."""

import json
from pathlib import Path
from typing import Any

from connectors.base import InboundEvent
from core.events import IncidentEvent
from store import lessons
from store.engine import Database


def fixture_names(folder: Path) -> list[str]:
    """Every fixture file in a connector's folder."""
    return sorted(p.name for p in folder.glob("*.json"))


def incidents_of(events: list[InboundEvent]) -> list[dict[str, Any]]:
    """The parsed incidents as JSON, defaults left out, for exact comparison."""
    assert all(isinstance(e, IncidentEvent) for e in events)
    return [
        e.incident.model_dump(mode="json", exclude_defaults=True)
        for e in events
        if isinstance(e, IncidentEvent)
    ]


def with_changes(path: Path, **changes: Any) -> bytes:
    """A fixture with top-level keys replaced."""
    data = json.loads(path.read_bytes())
    data.update(changes)
    return json.dumps(data).encode()


def draft_ids(db: Database) -> list[str]:
    """Ids of the lessons in the store."""
    with db.transaction() as session:
        return [lesson.id for lesson in lessons.list_lessons(session)]
