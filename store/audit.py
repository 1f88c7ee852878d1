"""Append-only audit log: what Cairn did, to what, on whose behalf; a hash chain shows tampering.

Each entry carries a sequence number, the previous entry's hash and its own hash over a canonical
encoding of everything it records. A transaction's entries are linked into the chain as it
commits: the single head row is locked only then, for the commit itself, so writers on
PostgreSQL queue behind each other for that moment alone (SQLite serialises writers anyway) and
the chain never forks. An entry exists exactly when the transaction that recorded it commits.
`verify` walks the chain: an altered row, a deleted, inserted or reordered one, or a cut tail is
named. Whoever can write the database can also rebuild the whole chain, which is why `head`
exists: anchor its value outside Cairn (a ticket, a signed mail, a timestamping service).
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, bindparam, cast, event, func, insert, select, update
from sqlalchemy.orm import Session

from core.access import Principal
from store.tables import AuditHeadRow, AuditRow, core_table, flushed

# Linking runs at every commit that recorded something: built once, run without the ORM (see
# `store.tables.core_table`); the entries go in as one executemany.
_HEAD_T = core_table(AuditHeadRow)
_LOCK_HEAD = select(_HEAD_T.c.seq, _HEAD_T.c.hash).where(_HEAD_T.c.id == 1).with_for_update()
_READ_HEAD = select(_HEAD_T.c.seq, _HEAD_T.c.hash).where(_HEAD_T.c.id == 1)
_MOVE_HEAD = (
    update(_HEAD_T)
    .where(_HEAD_T.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_APPEND = insert(core_table(AuditRow))

GENESIS = "0" * 64
"""The previous hash of the first entry."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record."""

    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]


def entry_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
) -> str:
    """SHA-256 over the canonical JSON of one entry and the hash before it."""
    canonical = json.dumps(
        {
            "prev": prev_hash,
            "seq": seq,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_KEY = "cairn.audit"
"""Where a session keeps the entries it recorded until it commits."""

_Pending = tuple[datetime, str, str, str, dict[str, Any]]


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """Append an entry in the caller's transaction, linked to the one before it when the
    transaction commits (and not at all if it rolls back)."""
    # The JSON column gives back what JSON can hold; hash exactly that. Encoding now makes a
    # detail JSON cannot hold fail here, at the call that recorded it.
    stored = json.loads(json.dumps(details))
    pending: list[_Pending] = session.info.setdefault(_KEY, [])
    pending.append((now, actor, action, subject, stored))


def _link(session: Session) -> None:
    """Chain the session's recorded entries after the head, in the order they were recorded:
    one locked read of the head, one multi-row insert."""
    pending: list[_Pending] | None = session.info.pop(_KEY, None)
    if not pending:
        return
    # Every other write of the transaction goes out before the head is locked, so the lock is
    # held for the audit rows and the commit alone (writers on PostgreSQL queue on it).
    session.flush()
    connection = session.connection()
    head = connection.execute(_LOCK_HEAD).first()
    if head is None:
        raise RuntimeError("the audit chain has no head row: run `cairn db upgrade`")
    seq, prev = head.seq, head.hash
    rows = []
    for now, actor, action, subject, stored in pending:
        seq += 1
        digest = entry_hash(prev, seq, now, actor, action, subject, stored)
        rows.append(
            {
                "at": now,
                "actor": actor,
                "action": action,
                "subject": subject,
                "details": stored,
                "seq": seq,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    connection.execute(_APPEND, rows)
    connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})


@event.listens_for(Session, "before_commit")
def _link_on_commit(session: Session) -> None:
    _link(session)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    """A rolled-back transaction recorded nothing."""
    session.info.pop(_KEY, None)


def record_by(
    session: Session,
    actor: Principal,
    action: str,
    subject: str,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """An entry for a principal, with its `--as` label beside the id when it has one."""
    label = {} if actor.label is None else {"label": actor.label}
    record(
        session,
        actor=actor.id,
        action=action,
        subject=subject,
        details={**details, **label},
        now=now,
    )


def entries(
    session: Session, *, action: str | None = None, subject: str | None = None, limit: int = 1000
) -> list[AuditEntry]:
    """Entries, oldest first, optionally filtered (this transaction's own included)."""
    _link(session)
    stmt = select(AuditRow).order_by(AuditRow.seq).limit(limit)
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
    _link(session)
    rows = session.execute(select(AuditRow.action, func.count()).group_by(AuditRow.action))
    return {action: int(n) for action, n in rows}


@dataclass(frozen=True, slots=True)
class Head:
    """The chain's newest link."""

    seq: int
    hash: str


def head(session: Session) -> Head:
    """The current head of the chain (sequence number and hash)."""
    _link(session)
    row = flushed(session).execute(_READ_HEAD).first()
    return Head(0, GENESIS) if row is None else Head(row.seq, row.hash)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `verify` found: how many entries it checked, and the first problem if any."""

    checked: int
    problem: str | None = None

    @property
    def intact(self) -> bool:
        """Whether the chain verified end to end."""
        return self.problem is None


def _first_unreadable(session: Session, after: int) -> str:
    """Which row after seq `after` holds a value its column can no longer decode."""
    stmt = (
        select(AuditRow.id, AuditRow.seq, cast(AuditRow.at, Text), cast(AuditRow.details, Text))
        .where(AuditRow.seq > after)
        .order_by(AuditRow.seq)
    )
    for row_id, seq, at, details in session.execute(stmt):
        try:
            json.loads(details)
            datetime.fromisoformat(str(at))
        except ValueError:
            return f"audit row id {row_id} (seq {seq})"
    return f"the audit row after seq {after}"


def verify(session: Session, *, batch: int = 10_000) -> Verdict:
    """Walk the chain in sequence order; the first altered, missing, extra or moved row wins."""
    _link(session)
    prev, expected, checked = GENESIS, 1, 0
    columns = (
        AuditRow.id,
        AuditRow.seq,
        AuditRow.at,
        AuditRow.actor,
        AuditRow.action,
        AuditRow.subject,
        AuditRow.details,
        AuditRow.prev_hash,
        AuditRow.hash,
    )
    # Plain rows, not ORM objects: the walk is bound by hashing, not by building entities.
    stmt = select(*columns).order_by(AuditRow.seq).execution_options(yield_per=batch)
    rows = iter(session.execute(stmt))
    while True:
        try:
            row = next(rows, None)
        except (ValueError, TypeError) as exc:  # a stored value no longer decodes
            where = _first_unreadable(session, expected - 1)
            return Verdict(checked, f"{where}: cannot be read ({type(exc).__name__}; altered)")
        if row is None:
            break
        row_id, seq, at, actor, action, subject, details, prev_hash, digest = row
        where = f"audit row id {row_id} (seq {seq})"
        if seq != expected:
            what = "deleted" if seq > expected else "inserted"
            return Verdict(checked, f"{where}: expected seq {expected}; a row was {what}")
        if prev_hash != prev:
            return Verdict(
                checked, f"{where}: does not follow the row before it (moved or inserted)"
            )
        try:
            found = entry_hash(prev_hash, seq, at, actor, action, subject, details)
        except (ValueError, TypeError, AttributeError) as exc:
            return Verdict(checked, f"{where}: cannot be read ({type(exc).__name__}; altered)")
        if found != digest:
            return Verdict(checked, f"{where}: its content does not match its hash (altered)")
        prev, expected, checked = digest, expected + 1, checked + 1
    last = head(session)
    if last.seq > checked:
        return Verdict(
            checked, f"the chain ends at seq {checked} but its head says {last.seq}: rows removed"
        )
    if (last.seq, last.hash) != (checked, prev):
        return Verdict(
            checked,
            f"the chain ends at seq {checked} but its head says {last.seq}: rows were added "
            "after the head, or the head was altered",
        )
    return Verdict(checked)
