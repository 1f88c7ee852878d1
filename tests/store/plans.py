"""SQLite's query plans of the statements a block of code runs, for tests that guard an index."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from store.engine import Database


@contextmanager
def sqlite_plans(db: Database) -> Iterator[list[list[str]]]:
    """Collects, once the block ends, the plan steps of each SELECT the block ran on `db`."""
    assert db.dialect == "sqlite"
    ran: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            ran.append((statement, parameters))

    plans: list[list[str]] = []
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        yield plans
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    with db.engine.connect() as connection:
        for statement, parameters in ran:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            plans.append([row[-1] for row in rows])
