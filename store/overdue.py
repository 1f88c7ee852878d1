"""Queries behind overdue reminders and owner digests, and the claim on each owner's digest."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.overdue import OverdueDigest, OverdueItem, days_overdue, is_overdue
from core.placement import Placement, PlacementState
from core.work import WorkItem
from store import lessons, work_items
from store.documents import from_doc
from store.outbox import MessageStatus
from store.tables import DigestRow, LessonRow, OutboxRow, PlacementRow

_UNFINISHED = (MessageStatus.PENDING, MessageStatus.LEASED, MessageStatus.DEAD)


def due_for_reminder(
    session: Session, now: datetime, window: timedelta, prefixes: Collection[str], topic: str
) -> list[str]:
    """Work items (refs starting with one of `prefixes`) with an overdue placement never
    reminded or not within `window`, and no reminder of theirs still queued (or dead-lettered:
    that waits for an operator, as other dead work does)."""
    if window <= timedelta(0) or not prefixes:
        return []
    rows = session.scalars(
        select(PlacementRow.work_item_ref)
        .where(
            PlacementRow.state == PlacementState.OVERDUE.value,
            or_(PlacementRow.reminded_at.is_(None), PlacementRow.reminded_at <= now - window),
        )
        .distinct()
    )
    refs = sorted(ref for ref in rows if ref.startswith(tuple(prefixes)))
    if not refs:
        return []
    queued = set(
        session.scalars(
            select(OutboxRow.key).where(
                OutboxRow.topic == topic,
                OutboxRow.status.in_([s.value for s in _UNFINISHED]),
                OutboxRow.key.in_(refs),
            )
        )
    )
    return [ref for ref in refs if ref not in queued]


def owners(session: Session) -> list[str]:
    """Every team owning a lesson with a placement marked `overdue`, in name order."""
    rows = session.scalars(
        select(LessonRow.owner)
        .join(PlacementRow, PlacementRow.lesson_id == LessonRow.id)
        .where(PlacementRow.state == PlacementState.OVERDUE.value)
        .distinct()
    )
    return sorted(rows)


def digest(session: Session, owner: str, now: datetime) -> OverdueDigest:
    """The overdue placements of the lessons `owner` owns, longest overdue first.

    Overdue means marked `overdue`, or a mandated item still open past its due date that the
    sweep has not reached yet.
    """
    docs = session.scalars(
        select(PlacementRow.doc)
        .join(LessonRow, LessonRow.id == PlacementRow.lesson_id)
        .where(
            LessonRow.owner == owner,
            PlacementRow.state.in_([PlacementState.OVERDUE.value, PlacementState.EMBEDDED.value]),
        )
    )
    found = [p for p in (from_doc(Placement, doc) for doc in docs) if is_overdue(p, now)]
    found.sort(key=lambda p: (p.due_at or now, p.lesson_id, p.work_item_ref, p.id))
    items: dict[str, WorkItem | None] = {}
    titles: dict[tuple[str, int], str] = {}
    listed = []
    for placement in found:
        if placement.work_item_ref not in items:
            items[placement.work_item_ref] = work_items.get(session, placement.work_item_ref)
        item = items[placement.work_item_ref]
        version = (placement.lesson_id, placement.lesson_version)
        if version not in titles:
            lesson = lessons.get_version(session, *version)
            titles[version] = placement.lesson_id if lesson is None else lesson.title
        due = placement.due_at or now
        listed.append(
            OverdueItem(
                placement_id=placement.id,
                lesson_id=placement.lesson_id,
                lesson_version=placement.lesson_version,
                title=titles[version],
                team=None if item is None else item.team,
                work_item_ref=placement.work_item_ref,
                work_item_url=None if item is None or item.url is None else str(item.url),
                mandate=placement.mandate,
                due_at=due,
                days_overdue=days_overdue(due, now),
                reminded=placement.reminded_at is not None,
                reminded_at=placement.reminded_at,
            )
        )
    return OverdueDigest(owner=owner, generated_at=now, items=tuple(listed))


@dataclass(frozen=True, slots=True)
class DigestClaim:
    """This worker's right to push `owner`'s digest now; `previous` is restored if it fails."""

    owner: str
    at: datetime
    previous: datetime | None


def claim_digest(
    session: Session, owner: str, now: datetime, interval: timedelta
) -> DigestClaim | None:
    """Claim `owner`'s digest unless one went out within `interval` (or another worker holds
    the claim): at most one digest per owner per interval, across workers."""
    row = session.get(DigestRow, owner, with_for_update=True)
    if row is None:
        try:
            with session.begin_nested():
                session.add(DigestRow(owner=owner, sent_at=now))
        except IntegrityError:
            return None  # another worker claimed it first
        return DigestClaim(owner, now, None)
    if row.sent_at > now - interval:
        return None
    previous, row.sent_at = row.sent_at, now
    return DigestClaim(owner, now, previous)


def release_digest(session: Session, claim: DigestClaim) -> None:
    """Give a claim back after the digest could not be delivered: the next sweep tries again."""
    match = (DigestRow.owner == claim.owner, DigestRow.sent_at == claim.at)
    if claim.previous is None:
        session.execute(delete(DigestRow).where(*match))
    else:
        session.execute(update(DigestRow).where(*match).values(sent_at=claim.previous))
