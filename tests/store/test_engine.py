"""The engine's SQLite housekeeping: write-ahead log checkpoints from a thread of their own."""

import fcntl
import os
import subprocess
import sys
import threading
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


def test_writers_of_two_databases_on_one_file_queue_for_the_lock(sqlite_url: str) -> None:
    """Two `Database`s stand for two processes (each opens the lock file itself). With SQLite's
    busy handler off, the second writer's BEGIN IMMEDIATE would fail at once while the first
    holds the write lock; it waits on the file lock instead, and writes once the first is done."""
    first, second = Database(sqlite_url), Database(sqlite_url)
    migrate.upgrade(first)
    with second.transaction() as session:
        session.execute(text("PRAGMA busy_timeout=0"))
    order: list[str] = []
    holding, go_on = threading.Event(), threading.Event()

    def hold() -> None:
        with first.transaction() as session:
            session.execute(text("CREATE TABLE seen (who TEXT)"))
            holding.set()
            go_on.wait(10)
            session.execute(text("INSERT INTO seen VALUES ('first')"))
            order.append("first commits")

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        threading.Timer(0.2, go_on.set).start()
        with second.transaction() as session:
            order.append("second writes")
            session.execute(text("INSERT INTO seen VALUES ('second')"))
        holder.join(10)
        assert order == ["first commits", "second writes"]
        with first.transaction() as session:
            rows = session.execute(text("SELECT who FROM seen ORDER BY rowid")).scalars().all()
        assert rows == ["first", "second"]
    finally:
        go_on.set()
        holder.join(10)
        first.dispose()
        second.dispose()


def test_the_file_lock_is_free_again_after_each_transaction(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    lock_file = Path(sqlite_url.removeprefix("sqlite:///") + "-lock")
    try:
        with db.transaction():
            with db.transaction():  # reentrant: the inner one takes nothing more
                pass
            assert not _free(lock_file)
        assert _free(lock_file)
    finally:
        db.dispose()


def _free(lock_file: Path) -> bool:
    """Whether another open file description could take the lock now."""
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_a_process_killed_while_writing_does_not_keep_the_lock(sqlite_url: str) -> None:
    """`kill -9` in the middle of a transaction: the kernel frees the file lock with the
    process, and SQLite rolls the transaction back; the next writer goes on at once."""
    db = Database(sqlite_url)
    migrate.upgrade(db)
    lock_file = Path(sqlite_url.removeprefix("sqlite:///") + "-lock")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from sqlalchemy import text\n"
            "from store.engine import Database\n"
            f"db = Database({sqlite_url!r})\n"
            "with db.transaction() as session:\n"
            "    session.execute(text('CREATE TABLE half (x INTEGER)'))\n"
            "    print('holding', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        assert not _free(lock_file)
        holder.kill()
        holder.wait(10)
        assert _free(lock_file)
        with db.transaction() as session:
            session.execute(text("PRAGMA busy_timeout=0"))
            tables = session.execute(
                text("SELECT name FROM sqlite_master WHERE name = 'half'")
            ).all()
            session.execute(text("CREATE TABLE after_the_kill (x INTEGER)"))
        assert tables == []  # the killed transaction left nothing
    finally:
        holder.kill()
        holder.wait(10)
        db.dispose()
