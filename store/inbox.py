"""The inbox: accepted webhook deliveries, de-duplicated on the sender's delivery id."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.tables import InboxRow, core_table, flushed

# Run for every delivery: built once, run without the ORM (see `store.tables.core_table`).
_T = core_table(InboxRow)
_GET = select(_T).where(_T.c.id == bindparam("inbox_id"))
_PROCESSED = (
    update(_T).where(_T.c.id == bindparam("inbox_id")).values(processed_at=bindparam("now"))
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """An inbox row as the pipeline reads it."""

    id: int
    source: str
    delivery_key: str
    received_at: datetime
    headers: Mapping[str, str]
    body: bytes
    processed_at: datetime | None


def _insert_ignoring_duplicates(session: Session, values: dict[str, object]) -> Insert:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(InboxRow)
        .values(values)
        .on_conflict_do_nothing(index_elements=["source", "delivery_key"])
    )


def accept(
    session: Session,
    *,
    source: str,
    delivery_key: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> int | None:
    """Store a delivery; returns its inbox id, or None when this delivery id is already known."""
    stmt = _insert_ignoring_duplicates(
        session,
        {
            "source": source,
            "delivery_key": delivery_key,
            "received_at": now,
            "headers": dict(headers),
            "body": body,
        },
    ).returning(InboxRow.id)
    return session.execute(stmt).scalar_one_or_none()


def get(session: Session, inbox_id: int) -> Delivery | None:
    """One delivery by inbox id."""
    row = flushed(session).execute(_GET, {"inbox_id": inbox_id}).first()
    if row is None:
        return None
    return Delivery(
        id=row.id,
        source=row.source,
        delivery_key=row.delivery_key,
        received_at=row.received_at,
        headers=row.headers,
        body=row.body,
        processed_at=row.processed_at,
    )


def mark_processed(session: Session, inbox_id: int, now: datetime) -> None:
    """Record that the pipeline has consumed this delivery."""
    flushed(session).execute(_PROCESSED, {"inbox_id": inbox_id, "now": now})


def counts(session: Session) -> dict[str, int]:
    """How many deliveries were accepted and processed."""
    total, processed = session.execute(
        select(func.count(InboxRow.id), func.count(InboxRow.processed_at))
    ).one()
    return {"accepted": int(total), "processed": int(processed)}
