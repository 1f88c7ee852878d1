"""Append-only audit log: what Cairn did, to what, on whose behalf."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.tables import AuditRow


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """Append an entry in the caller's transaction."""
    session.add(AuditRow(at=now, actor=actor, action=action, subject=subject, details=details))


def entries(
    session: Session, *, action: str | None = None, subject: str | None = None, limit: int = 1000
) -> list[AuditEntry]:
    """Entries, oldest first, optionally filtered."""
    stmt = select(AuditRow).order_by(AuditRow.id).limit(limit)
    if action is not None:
        stmt = stmt.where(AuditRow.action == action)
    if subject is not None:
        stmt = stmt.where(AuditRow.subject == subject)
    return [
        AuditEntry(r.id, r.at, r.actor, r.action, r.subject, r.details)
        for r in session.scalars(stmt)
    ]


def count_by_action(session: Session) -> dict[str, int]:
    """How many entries of each action."""
    rows = session.execute(select(AuditRow.action, func.count()).group_by(AuditRow.action))
    return {action: int(n) for action, n in rows}
