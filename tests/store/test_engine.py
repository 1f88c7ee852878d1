"""Pooled PostgreSQL connections: checked before each use, or only after sitting idle."""

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from store.engine import Database

pytestmark = pytest.mark.postgres


def _terminate_others(url: str) -> int:
    """End every server session on the test database but this one (a restart, as the pool
    sees it); how many were ended."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _one(db: Database) -> int:
    with db.transaction() as session:
        return int(session.execute(text("SELECT 1")).scalar_one())


@pytest.fixture
def pings(postgres_url: str) -> Iterator[tuple[Database, list[int]]]:
    """A database whose connections are checked after 0.3 s idle; the list counts the checks."""
    db = Database(postgres_url, ping_idle_seconds=0.3)
    counted: list[int] = []
    ping = db.engine.dialect.do_ping

    def counting(dbapi: Any) -> bool:
        counted.append(1)
        return ping(dbapi)

    db.engine.dialect.do_ping = counting  # type: ignore[method-assign,assignment]
    yield db, counted
    db.dispose()


def test_a_connection_in_steady_use_is_not_checked_before_each_transaction(
    pings: tuple[Database, list[int]],
) -> None:
    db, counted = pings
    _one(db)  # a new connection: checked
    first = len(counted)
    for _ in range(20):
        _one(db)
    assert len(counted) == first


def test_a_connection_idle_past_the_window_is_checked_and_replaced_when_broken(
    pings: tuple[Database, list[int]], postgres_url: str
) -> None:
    db, counted = pings
    _one(db)
    assert _terminate_others(postgres_url) >= 1
    time.sleep(0.5)
    before = len(counted)
    assert _one(db) == 1  # the broken connection was replaced before use
    assert len(counted) > before


def test_a_connection_broken_within_the_window_fails_one_transaction_then_the_pool_heals(
    postgres_url: str,
) -> None:
    db = Database(postgres_url, ping_idle_seconds=60)
    try:
        _one(db)
        assert _terminate_others(postgres_url) >= 1
        with pytest.raises(DBAPIError):
            _one(db)
        assert _one(db) == 1
    finally:
        db.dispose()


def test_the_default_checks_every_connection_before_use(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        _one(db)
        assert _terminate_others(postgres_url) >= 1
        assert _one(db) == 1  # no failure: the check found the connection broken
    finally:
        db.dispose()
