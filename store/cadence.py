"""Repository of the review cadence: each owner team's issue and the claim a run holds on it,
and up to when each lesson's feedback was read."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.placement import SignalKind
from store.tables import CadenceIssueRow, FeedbackReadRow, PlacementRow, SignalRow


@dataclass(frozen=True, slots=True)
class Record:
    """A team's cadence issue as last recorded."""

    team: str
    system: str | None
    issue_ref: str | None
    url: str | None
    digest: str | None
    checked_at: datetime | None


def _record(row: CadenceIssueRow) -> Record:
    return Record(row.team, row.system, row.issue_ref, row.url, row.digest, row.checked_at)


def claim(
    session: Session, team: str, token: str, now: datetime, lease: timedelta
) -> Record | None:
    """Hold the team's cadence for one run until `now + lease`; None when another run holds
    it. The team is the table's key: of two runs inserting the first row at once, the second
    fails with IntegrityError at flush (the caller counts that as held)."""
    row = session.get(CadenceIssueRow, team, with_for_update=True)
    if row is None:
        row = CadenceIssueRow(
            team=team,
            system=None,
            issue_ref=None,
            url=None,
            digest=None,
            claim_token=token,
            claimed_until=now + lease,
            checked_at=None,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return _record(row)
    held = row.claimed_until is not None and row.claimed_until > now
    if row.claim_token is not None and row.claim_token != token and held:
        return None
    row.claim_token, row.claimed_until = token, now + lease
    return _record(row)


def settle(
    session: Session,
    team: str,
    token: str,
    now: datetime,
    *,
    system: str | None,
    issue_ref: str | None,
    url: str | None,
    digest: str | None,
) -> bool:
    """Record the issue the run left and give the claim back; False when the run no longer
    held it (its lease lapsed and another run took over: that run records instead)."""
    row = session.get(CadenceIssueRow, team, with_for_update=True)
    if row is None or row.claim_token != token:
        return False
    row.system, row.issue_ref, row.url, row.digest = system, issue_ref, url, digest
    row.claim_token, row.claimed_until = None, None
    row.checked_at = row.updated_at = now
    return True


def release(session: Session, team: str, token: str) -> None:
    """Give the claim back unchanged (the run failed before settling)."""
    row = session.get(CadenceIssueRow, team, with_for_update=True)
    if row is not None and row.claim_token == token:
        row.claim_token, row.claimed_until = None, None


def records(session: Session) -> dict[str, Record]:
    """Every team's cadence record."""
    return {row.team: _record(row) for row in session.scalars(select(CadenceIssueRow))}


def unread_feedback(session: Session) -> dict[str, int]:
    """Lesson → how many times its items were dismissed (`N/A: reason`, or a closed sub-task)
    since its owners last marked its feedback read (or ever, when they never did)."""
    stmt = (
        select(PlacementRow.lesson_id, func.count())
        .join(SignalRow, SignalRow.placement_id == PlacementRow.id)
        .outerjoin(FeedbackReadRow, FeedbackReadRow.lesson_id == PlacementRow.lesson_id)
        .where(
            SignalRow.kind == SignalKind.DISMISSED.value,
            or_(FeedbackReadRow.read_at.is_(None), SignalRow.at > FeedbackReadRow.read_at),
        )
        .group_by(PlacementRow.lesson_id)
    )
    return {lesson_id: int(n) for lesson_id, n in session.execute(stmt)}


def mark_read(session: Session, lesson_id: str, by: str, now: datetime) -> None:
    """Mark the lesson's feedback read up to `now`."""
    row = session.get(FeedbackReadRow, lesson_id, with_for_update=True)
    if row is None:
        session.add(FeedbackReadRow(lesson_id=lesson_id, read_at=now, read_by=by))
        session.flush()
        return
    row.read_at, row.read_by = now, by
