"""Cursors of incremental readers, kept in the same transaction as what they read."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store.tables import CursorRow


def get(session: Session, name: str) -> dict[str, Any] | None:
    """The stored cursor, or None before the first read."""
    row = session.get(CursorRow, name, with_for_update=True)
    return None if row is None else dict(row.doc)


def put(session: Session, name: str, doc: dict[str, Any], now: datetime) -> None:
    """Store where the reader stopped."""
    row = session.get(CursorRow, name, with_for_update=True)
    if row is None:
        session.add(CursorRow(name=name, doc=doc, updated_at=now))
        session.flush()
        return
    row.doc = doc
    row.updated_at = now
