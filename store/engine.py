"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

try:
    import fcntl
except ImportError:  # not on POSIX: Cairn's processes meet SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

DEFAULT_DATABASE_URL = "sqlite:///cairn.db"

CHECKPOINT_BACKSTOP_PAGES = 10_000
"""With a checkpointer thread running, a commit copies the write-ahead log into the database
file itself only once the log holds this many pages (about 40 MB): the checkpointer has fallen
that far behind, or stopped. SQLite's own default is 1,000."""

log = logging.getLogger("cairn.store")


def normalise_url(url: str) -> str:
    """Pick the drivers Cairn ships with: psycopg 3 for PostgreSQL, sqlite3 for SQLite."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook issue BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN,
    # so two writers never deadlock upgrading a read lock; WAL lets readers proceed meanwhile.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash (kill -9); only power loss may drop the tail.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str = DEFAULT_DATABASE_URL, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and write-intent transactions.

    Statement parameters are kept out of error messages: they carry webhook payloads.
    """
    url = normalise_url(url)
    kwargs.setdefault("hide_parameters", True)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return create_engine(url, **kwargs)


class Database:
    """Owns the engine and hands out one transaction at a time as a unit of work."""

    def __init__(self, url: str = DEFAULT_DATABASE_URL, **kwargs: Any) -> None:
        self.engine = make_engine(url, **kwargs)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one write lock, and every transaction here takes it (BEGIN IMMEDIATE).
        # Writers queue for it on a lock of their own that hands it over the moment it is free
        # (`_Writer`: the threads of this process on a mutex, Cairn's processes on one file
        # lock); left to SQLite's busy handler, a waiter sleeps in steps of 1, 2, 5, 10… ms and
        # wakes up well after the lock was released.
        database = self.engine.url.database
        self._file = (
            database if self.dialect == "sqlite" and database and database != ":memory:" else None
        )
        """The SQLite database's file (None: PostgreSQL, or SQLite in memory)."""
        self._writer: AbstractContextManager[Any] = nullcontext()
        if self.dialect == "sqlite":
            self._writer = _Writer(self._file)
        self._checkpointer: _Checkpointer | None = None

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self._writer, self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def one_statement(self) -> Iterator[Connection]:
        """A connection for a single statement that is a transaction by itself: PostgreSQL runs
        it in autocommit, without the two round trips of BEGIN and COMMIT; SQLite in a write
        transaction as usual. Only for one statement: two would not be atomic."""
        if self.dialect == "sqlite":
            with self._writer, self.engine.begin() as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    def checkpoint_in_background(self, interval: float = 1.0) -> None:
        """SQLite: copy the write-ahead log into the database file from a thread of its own,
        every `interval` seconds, instead of in whichever commit finds the log full.

        Left to SQLite, every thousandth page written makes one commit copy the log and sync
        the file twice: milliseconds inside a transaction that holds the write lock (and, here,
        the mutex every other transaction of the process waits on). The thread's passive
        checkpoint waits for no reader or writer; each commit still only appends to the log, so
        what survives a crash does not change. PostgreSQL: nothing to do.
        """
        if self._file is None or self._checkpointer is not None:
            return
        event.listen(self.engine, "connect", _checkpoint_backstop)
        self.engine.dispose()  # pooled connections come back with the backstop set
        self._checkpointer = _Checkpointer(self._file, interval)
        self._checkpointer.start()

    def dispose(self) -> None:
        """Close every pooled connection (and stop the checkpointer, after a last checkpoint)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self.engine.dispose()
        if isinstance(self._writer, _Writer):
            self._writer.close()

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"


class _Writer:
    """The right to write one SQLite file, for every thread of every Cairn process using it.

    Within a process, a reentrant mutex; across processes, an exclusive `flock` on the file
    `<database>-lock` beside it, which the kernel hands to the next waiter as soon as it is
    released, and releases by itself when a process dies (so `kill -9` leaves nothing
    behind). Processes that do not take it (the `sqlite3` shell, say) still meet SQLite's own
    lock and busy handler. An in-memory database (`file` None) has only the mutex.
    """

    def __init__(self, file: str | None) -> None:
        self._mutex = threading.RLock()
        self._depth = 0
        self._path = None if file is None else f"{file}-lock"
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        if self._path is None or fcntl is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> None:
        self._mutex.acquire()
        try:
            if self._depth == 0:
                fd = self._file()
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # waits without the GIL
        except BaseException:
            self._mutex.release()
            raise
        self._depth += 1

    def __exit__(self, *_: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def close(self) -> None:
        """Close the lock file (a later transaction opens it again)."""
        with self._mutex:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None


def _checkpoint_backstop(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_BACKSTOP_PAGES}")
    cursor.close()


class _Checkpointer:
    """A thread with a connection of its own that runs passive WAL checkpoints."""

    def __init__(self, path: str, interval: float) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cairn-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    # The connection releases the GIL while SQLite copies and syncs.
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the next round tries again; commits backstop
                    log.warning("background checkpoint failed: %s", exc)
                if stopping:
                    return
        finally:
            connection.close()
