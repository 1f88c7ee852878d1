"""The outbox: durable pipeline work items with leases, retries and a dead-letter state.

In embedded mode workers claim rows from here directly; in broker mode a relay claims rows and
publishes them. Either way a message is done only when its handler's transaction commits.

A delivery that runs a message holds it with a run token and a lease it keeps renewing (a
worker's claim, or `start_attempt` for a broker delivery). While that lease lasts no other
delivery of the message starts, and a run whose token was replaced (its lease lapsed and
another delivery took over) can neither record nor fail the message.
"""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Integer,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause

from store.tables import OUTBOX_OPEN_STATUSES, OutboxRow, core_table, flushed

EXPIRED = "lease expired on every attempt (its worker died or hung each time)"


class MessageStatus(StrEnum):
    """pending → leased → done, or back to pending after a failure, or dead after too many."""

    PENDING = "pending"
    LEASED = "leased"
    DONE = "done"
    DEAD = "dead"


# The statements every message runs, built once (bound parameters, no ORM): building and
# caching a statement costs several times what SQLite takes to run it. Executed on the
# session's connection, inside its transaction; they bypass the identity map, so the ORM never
# holds an outbox row these change.
_T = core_table(OutboxRow)
_ENQUEUE = insert(_T).returning(_T.c.id)
_MESSAGE = (
    _T.c.id,
    _T.c.topic,
    _T.c.key,
    _T.c.payload,
    _T.c.attempts,
    _T.c.run_token,
    _T.c.created_at,
)
"""The columns of a `Message`, in its order."""
_BEGIN = select(*_MESSAGE, _T.c.status).where(_T.c.id == bindparam("message_id")).with_for_update()
_EXHAUSTED = (
    update(_T)
    .where(
        _T.c.id.in_(
            select(_T.c.id)
            .where(
                _T.c.status == MessageStatus.LEASED.value,
                _T.c.leased_until <= bindparam("now"),
                _T.c.attempts >= bindparam("max_attempts"),
            )
            .with_for_update(skip_locked=True)  # never wait behind a handler still running
            .scalar_subquery()
        )
    )
    .values(
        status=MessageStatus.DEAD.value,
        leased_until=None,
        run_token=None,
        last_error=func.coalesce(
            literal(EXPIRED + "; the last error was: ") + _T.c.last_error, literal(EXPIRED)
        ),
    )
)
# Messages that share a key (a work item, a target) are handed out one at a time, oldest
# first: only the oldest open message of its key can be claimed. The claim walks the open
# messages in id order and checks each candidate with a correlated lookup of its key's oldest
# open message: one index probe per candidate, whatever the statistics say.
# A join against every key's head, the earlier form, is planned from statistics: after a burst,
# before autovacuum re-analysed the table, PostgreSQL compared every candidate with every head
# (0.06-1.1 s per claim of 100 with 3,000 waiting; 14 s with 10,000 more on one key). The walk's
# own cost is the messages it passes that wait behind an elder of their key: 0.1-0.24 s per
# claim with 10,000 waiting on one key (`bench/outbox_claim.py`).
_OPEN: tuple[ColumnClause[Any], ...] = tuple(
    literal_column(f"'{status}'") for status in OUTBOX_OPEN_STATUSES
)
"""The open statuses as literals, so that the partial indexes serve the statement."""
_ELDER = _T.alias("elder")
_HEAD_OF_KEY = (
    select(func.min(_ELDER.c.id))
    .where(_ELDER.c.key == _T.c.key, _ELDER.c.status.in_(_OPEN))
    .scalar_subquery()
)
_CLAIMABLE = (
    select(_T.c.id)
    .where(
        _T.c.status.in_(_OPEN),
        # Due: one expression no index serves, so that PostgreSQL walks `ix_outbox_open` in id
        # order and stops at the limit instead of collecting every due message to sort. (SQLite,
        # without statistics, reads the open messages through `ix_outbox_due` and sorts them.)
        case(
            (_T.c.status == MessageStatus.PENDING.value, _T.c.available_at),
            else_=_T.c.leased_until,
        )
        <= bindparam("now"),
        _T.c.id == _HEAD_OF_KEY,
    )
    .order_by(_T.c.id)
    .limit(bindparam("claim_limit", type_=Integer))
    .with_for_update(skip_locked=True)
)


def _claiming(attempts: int, claimable: Any = _CLAIMABLE) -> Any:
    return (
        update(_T)
        .where(_T.c.id.in_(claimable.scalar_subquery()))
        .values(
            status=MessageStatus.LEASED.value,
            leased_until=bindparam("until"),
            attempts=_T.c.attempts + attempts,
            run_token=bindparam("token"),
        )
        .returning(*_MESSAGE)
    )


_CLAIM_COUNTING = _claiming(1)
_CLAIM_FOR_RELAY = _claiming(0)
_ATTEMPT = (
    select(_T.c.status, _T.c.run_token, _T.c.leased_until, _T.c.attempts, _T.c.last_error)
    .where(_T.c.id == bindparam("message_id"))
    .with_for_update()
)
_TAKE = (
    update(_T)
    .where(_T.c.id == bindparam("message_id"))
    .values(
        attempts=_T.c.attempts + 1, run_token=bindparam("token"), leased_until=bindparam("until")
    )
)
_TAKE_IF_FREE = _TAKE.where(
    _T.c.status == MessageStatus.LEASED.value,
    or_(
        _T.c.run_token.is_(None),
        _T.c.leased_until.is_(None),
        _T.c.leased_until <= bindparam("now"),
    ),
    _T.c.attempts < bindparam("max_attempts"),
).returning(_T.c.id)
"""`start_attempt`'s common case in one statement (its checks, as conditions): the message is
leased to no live run and has attempts left. (PostgreSQL re-checks the conditions on a row
another delivery changed first.)"""
_KILL = (
    update(_T)
    .where(_T.c.id == bindparam("message_id"))
    .values(
        status=MessageStatus.DEAD.value,
        leased_until=None,
        run_token=None,
        last_error=bindparam("error"),
    )
)
_COMPLETE = (
    update(_T)
    .where(_T.c.id == bindparam("message_id"))
    .values(
        status=MessageStatus.DONE.value, done_at=bindparam("now"), leased_until=None, run_token=None
    )
)


@dataclass(frozen=True, slots=True)
class Message:
    """A unit of pipeline work."""

    id: int
    topic: str
    key: str
    payload: dict[str, Any]
    attempts: int
    token: str | None = None
    """The run token of the claim that handed this message out (None from a relay's claim)."""
    created_at: datetime | None = None
    """When it was queued."""


def new_token() -> str:
    """A fresh run token."""
    return uuid.uuid4().hex


def _message(row: Any) -> Message:
    """An outbox row's message (an ORM row, or a Core row with the same columns)."""
    return Message(
        row.id, row.topic, row.key, row.payload, row.attempts, row.run_token, row.created_at
    )


def enqueue(
    session: Session, *, topic: str, payload: dict[str, Any], key: str, now: datetime
) -> int:
    """Add work in the caller's transaction, so it exists exactly when the caller's writes do."""
    values = {
        "topic": topic,
        "key": key,
        "payload": payload,
        "status": MessageStatus.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "available_at": now,
        "leased_until": None,
        "done_at": None,
        "last_error": None,
        "run_token": None,
    }
    return int(flushed(session).execute(_ENQUEUE, values).scalar_one())


def claim(
    session: Session,
    *,
    now: datetime,
    lease: timedelta,
    max_attempts: int,
    limit: int = 50,
    count_attempt: bool = True,
) -> list[Message]:
    """Lease due messages: pending ones whose time has come, and leased ones whose lease expired.

    An expired lease means the worker (or the broker delivery) holding it died; the message is
    handed out again. Per key, messages go out in order and never two at once, so writes to one
    target are serialised across workers and processes.

    With `count_attempt` (a worker about to run the message) each claim is an attempt, so a
    message that keeps killing its worker is dead-lettered after `max_attempts` instead of
    crashing workers for ever, and the claim is the run: the messages carry its run token. A
    broker relay claims without counting and without a token: its lease only decides when a
    message lost on the way is published again, and the consumer counts the attempt and takes
    the token (`start_attempt`).
    """
    connection = flushed(session)
    if count_attempt:
        connection.execute(_EXHAUSTED, {"now": now, "max_attempts": max_attempts})
    rows = connection.execute(
        _CLAIM_COUNTING if count_attempt else _CLAIM_FOR_RELAY,
        {
            "now": now,
            "until": now + lease,
            "claim_limit": limit,
            # One token per claim: each of its messages is run by the one claiming worker.
            "token": new_token() if count_attempt else None,
        },
    ).all()
    return sorted((Message(*row) for row in rows), key=lambda m: m.id)


def begin(session: Session, message_id: int, token: str | None = None) -> Message | None:
    """Lock a leased message for processing; None if it is done, dead, waiting or unknown.

    Two deliveries of one message serialise here, and the second finds it done. A stale broker
    copy of a message that is waiting out a retry backoff (pending) does not run early either.
    With `token`, also None when another run holds the message now: this run lost its lease.
    """
    row = flushed(session).execute(_BEGIN, {"message_id": message_id}).first()
    if row is None or row.status != MessageStatus.LEASED:
        return None
    if token is not None and row.run_token != token:
        return None
    return _message(row)


def start_attempt(
    session: Session,
    message_id: int,
    max_attempts: int,
    *,
    token: str,
    now: datetime,
    lease: timedelta,
) -> MessageStatus | None:
    """Count a delivery that is about to run (broker mode), in its own committed transaction.

    Returns None when the message should run, now held by `token` until `now + lease`;
    otherwise the status that says why not: leased (another delivery holds a live lease on
    it: it is still running), done, waiting, or dead because deliveries keep dying mid-run.
    A run whose lease lapsed is taken as dead, and this delivery takes over.
    """
    connection = flushed(session)
    row = connection.execute(_ATTEMPT, {"message_id": message_id}).first()
    if row is None:
        return MessageStatus.DEAD
    if row.status != MessageStatus.LEASED:
        return MessageStatus(row.status)
    if row.run_token is not None and row.leased_until is not None and row.leased_until > now:
        return MessageStatus.LEASED
    if row.attempts >= max_attempts:
        error = _with_earlier(
            "every delivery died before finishing (max attempts reached)", row.last_error
        )
        connection.execute(_KILL, {"message_id": message_id, "error": error})
        return MessageStatus.DEAD
    connection.execute(_TAKE, {"message_id": message_id, "token": token, "until": now + lease})
    return None


def take(
    connection: Connection,
    message_id: int,
    max_attempts: int,
    *,
    token: str,
    now: datetime,
    lease: timedelta,
) -> bool:
    """`start_attempt` in one statement when nothing stands in the way: True when the delivery
    now holds the message, False when `start_attempt` must say why not (or kill it). Needs no
    transaction of its own (`Database.one_statement`)."""
    taken = connection.execute(
        _TAKE_IF_FREE,
        {
            "message_id": message_id,
            "token": token,
            "until": now + lease,
            "now": now,
            "max_attempts": max_attempts,
        },
    ).first()
    return taken is not None


def _with_earlier(reason: str, earlier: str | None) -> str:
    """Why a message died, keeping the error an earlier attempt recorded (the operator's clue:
    a target answering 500 every time, not only that the attempts ran out)."""
    if not earlier:
        return reason
    return f"{reason}; the last error was: {earlier}"[:2000]


def extend(session: Session, message_id: int, token: str, until: datetime) -> bool:
    """Renew a running delivery's lease; False when the message is no longer this run's."""
    result = session.execute(
        update(OutboxRow)
        .where(
            OutboxRow.id == message_id,
            OutboxRow.status == MessageStatus.LEASED,
            OutboxRow.run_token == token,
        )
        .values(leased_until=until)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def extend_waiting(
    session: Session, token: str, message_ids: Collection[int], until: datetime
) -> set[int]:
    """Renew the leases of messages a claim (`token`) handed out that still wait for a worker.
    A row another transaction has locked is left alone: a
    worker has begun it, and its run renews its own lease from now on. So this never waits
    on a row lock, and one slow run holds up no other message's renewal. Returns the ids
    renewed."""
    if not message_ids:
        return set()
    free = (
        select(OutboxRow.id)
        .where(
            OutboxRow.id.in_(message_ids),
            OutboxRow.status == MessageStatus.LEASED,
            OutboxRow.run_token == token,
        )
        .with_for_update(skip_locked=True)
    )
    renewed = session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(free.scalar_subquery()))
        .values(leased_until=until)
        .returning(OutboxRow.id)
    ).scalars()
    return set(renewed)


def complete(session: Session, message_id: int, now: datetime) -> None:
    """Mark a message done, in the same transaction as its handler's writes."""
    flushed(session).execute(_COMPLETE, {"message_id": message_id, "now": now})


def fail(
    session: Session,
    message_id: int,
    *,
    error: str,
    now: datetime,
    max_attempts: int,
    retry_after: float | None = None,
    token: str | None = None,
) -> MessageStatus:
    """Schedule a retry with exponential backoff, or dead-letter after `max_attempts`.

    With `token`, a run that no longer holds the message changes nothing and gets its status
    (leased: another delivery runs it now).
    """
    row = session.get(OutboxRow, message_id, with_for_update=True)
    if row is None or row.status == MessageStatus.DONE:
        return MessageStatus.DONE
    if token is not None and row.run_token != token:
        return MessageStatus(row.status)
    row.last_error = error[:2000]
    row.leased_until = None
    row.run_token = None
    if row.attempts >= max_attempts:
        row.status = MessageStatus.DEAD
    else:
        delay = retry_after if retry_after is not None else min(2.0 ** max(row.attempts, 1), 300.0)
        row.status = MessageStatus.PENDING
        row.available_at = now + timedelta(seconds=delay)
    return MessageStatus(row.status)


def release(session: Session, message_ids: list[int], now: datetime) -> None:
    """Hand leased messages back (e.g. the broker refused them) without waiting for the lease."""
    if message_ids:
        session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(message_ids), OutboxRow.status == MessageStatus.LEASED)
            .values(
                status=MessageStatus.PENDING, leased_until=None, run_token=None, available_at=now
            )
        )


def next_due(session: Session) -> datetime | None:
    """When the next pending or leased message becomes claimable (for idle workers' sleep)."""
    pending = session.execute(
        select(func.min(OutboxRow.available_at)).where(OutboxRow.status == MessageStatus.PENDING)
    ).scalar_one_or_none()
    leased = session.execute(
        select(func.min(OutboxRow.leased_until)).where(OutboxRow.status == MessageStatus.LEASED)
    ).scalar_one_or_none()
    candidates = [t for t in (pending, leased) if t is not None]
    return min(candidates) if candidates else None


def counts(session: Session) -> dict[str, int]:
    """Messages per status."""
    rows = session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
    found = {status: int(n) for status, n in rows}
    return {status.value: found.get(status.value, 0) for status in MessageStatus}


def dead_letters(session: Session, limit: int = 100) -> list[tuple[Message, str | None]]:
    """Dead-lettered messages with their last error, newest first."""
    rows = session.scalars(
        select(OutboxRow)
        .where(OutboxRow.status == MessageStatus.DEAD)
        .order_by(OutboxRow.id.desc())
        .limit(limit)
    )
    return [(_message(row), row.last_error) for row in rows]


def requeue_dead(session: Session, now: datetime) -> int:
    """Give every dead-lettered message a fresh start (after the cause was fixed)."""
    result = session.execute(
        update(OutboxRow)
        .where(OutboxRow.status == MessageStatus.DEAD)
        .values(status=MessageStatus.PENDING, attempts=0, available_at=now, run_token=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
