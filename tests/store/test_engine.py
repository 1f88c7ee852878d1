"""The engine's SQLite housekeeping: write-ahead log checkpoints from a thread of their own."""

import time
from pathlib import Path

from sqlalchemy import text

from store import migrate
from store.engine import CHECKPOINT_BACKSTOP_PAGES, Database


def fill(db: Database, rows: int = 200) -> None:
    """About 800 KB in one transaction: 200 pages of the log, under SQLite's own threshold of
    1,000 pages, so no commit copies them into the database file."""
    with db.transaction() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS filler (body TEXT)"))
        session.execute(
            text("INSERT INTO filler (body) VALUES (:body)"), [{"body": "x" * 4000}] * rows
        )


def wait_for(check: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_the_checkpointer_copies_the_log_into_the_database_file(sqlite_url: str) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    db = Database(sqlite_url)
    migrate.upgrade(db)
    try:
        db.checkpoint_in_background(interval=0.05)
        before = path.stat().st_size
        fill(db)
        # Nothing but the checkpointer writes the log's pages into the file at this size.
        assert wait_for(lambda: path.stat().st_size > before + 500_000)
        with db.transaction() as session:
            assert session.execute(text("SELECT count(*) FROM filler")).scalar_one() == 200
    finally:
        db.dispose()
    assert db._checkpointer is None


def test_without_the_checkpointer_the_log_stays_in_the_log(sqlite_url: str) -> None:
    """The counterpart of the test above: the growth it waits for is the thread's doing."""
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    db = Database(sqlite_url)
    migrate.upgrade(db)
    try:
        before = path.stat().st_size
        fill(db)
        time.sleep(0.3)
        assert path.stat().st_size < before + 500_000
    finally:
        db.dispose()


def test_commits_keep_a_backstop_while_the_checkpointer_runs(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    try:
        with db.transaction() as session:
            assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 1000
        db.checkpoint_in_background(interval=60)
        with db.transaction() as session:
            backstop = session.execute(text("PRAGMA wal_autocheckpoint")).scalar_one()
        assert backstop == CHECKPOINT_BACKSTOP_PAGES
        thread = db._checkpointer._thread  # type: ignore[union-attr]
        assert thread.is_alive()
    finally:
        db.dispose()
    # Stopping does not wait out the interval.
    assert not thread.is_alive()


def test_postgresql_needs_no_checkpointer(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        db.checkpoint_in_background(interval=0.05)
        assert db._checkpointer is None
    finally:
        db.dispose()
