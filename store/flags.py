"""Repository of revision flags: one row per rule or lesson, raised again after a clear."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from core.errors import NotFoundError
from store.tables import FlagRow, core_table, flushed

_T = core_table(FlagRow)
_OPEN_OF_KIND = select(_T.c.subject).where(
    _T.c.kind == bindparam("flag_kind"), _T.c.cleared_at.is_(None)
)
"""Read by every routing: built once, run without the ORM (see `store.tables.core_table`)."""


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag as stored."""

    kind: str
    subject: str
    flagged_at: datetime
    measured: dict[str, Any]
    cleared_at: datetime | None
    cleared_by: str | None

    @property
    def open(self) -> bool:
        """Whether nobody has cleared it since it was raised."""
        return self.cleared_at is None


def _flag(row: FlagRow) -> Flag:
    return Flag(row.kind, row.subject, row.flagged_at, row.doc, row.cleared_at, row.cleared_by)


def raise_flag(
    session: Session, kind: str, subject: str, measured: dict[str, Any], now: datetime
) -> bool:
    """Flag `subject` unless an open flag exists; True when a flag was raised."""
    row = session.get(FlagRow, (kind, subject), with_for_update=True)
    if row is None:
        session.add(
            FlagRow(
                kind=kind,
                subject=subject,
                flagged_at=now,
                doc=measured,
                cleared_at=None,
                cleared_by=None,
            )
        )
        session.flush()
        return True
    if row.cleared_at is None:
        row.doc = measured  # still open: keep the newest measurement
        return False
    row.flagged_at, row.doc, row.cleared_at, row.cleared_by = now, measured, None, None
    return True


def clear(session: Session, kind: str, subject: str, by: str, now: datetime) -> Flag:
    """Clear an open flag; NotFoundError when there is none open."""
    row = session.get(FlagRow, (kind, subject), with_for_update=True)
    if row is None or row.cleared_at is not None:
        raise NotFoundError(f"no open flag on {kind} {subject!r}")
    row.cleared_at, row.cleared_by = now, by
    return _flag(row)


def open_subjects(session: Session, kind: str) -> set[str]:
    """The subjects of `kind` (`rule`, `lesson`) with an open flag."""
    return set(flushed(session).execute(_OPEN_OF_KIND, {"flag_kind": kind}).scalars())


def listed(session: Session, *, open_only: bool = False) -> list[Flag]:
    """Flags, newest first."""
    stmt = select(FlagRow).order_by(FlagRow.flagged_at.desc(), FlagRow.kind, FlagRow.subject)
    if open_only:
        stmt = stmt.where(FlagRow.cleared_at.is_(None))
    return [_flag(row) for row in session.scalars(stmt)]
