"""Monotonic counters kept in the database (clock-free revision numbers)."""

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.tables import CounterRow, core_table, flushed

_T = core_table(CounterRow)
_READ = select(_T.c.value).where(_T.c.name == bindparam("counter"))
"""Read by every routing (the lesson catalogue's revision): built once, run without the ORM."""


def bump(session: Session, name: str) -> None:
    """Add one to `name` in the caller's transaction (creating it at 1)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    created = session.execute(
        insert(CounterRow)
        .values(name=name, value=1)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(CounterRow.name)
    ).scalar_one_or_none()
    if created is None:
        session.execute(
            update(CounterRow).where(CounterRow.name == name).values(value=CounterRow.value + 1)
        )


def read(session: Session, name: str) -> int:
    """The current value of `name` (0 if never bumped)."""
    value = flushed(session).execute(_READ, {"counter": name}).scalar()
    return int(value or 0)
