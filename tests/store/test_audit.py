"""The audit log's hash chain: appends link up, and any tampering is named by `verify`."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from store import audit, migrate, tallies
from store.engine import Database
from store.tables import CounterRow

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _append(db: Database, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        with db.transaction() as session:
            audit.record(
                session,
                actor=f"token:user-{i % 3}",
                action="lesson.edited",
                subject=f"lesson-{i}",
                details={"version": i, "label": "ä ü", "nested": {"b": [1, 2.5], "a": None}},
                now=T0 + timedelta(seconds=i, microseconds=i),
            )


def _exec(db: Database, sql: str, **params: object) -> None:
    with db.transaction() as session:
        session.execute(text(sql), params)


def test_appends_form_an_intact_chain_with_a_head(db: Database) -> None:
    with db.transaction() as session:
        assert audit.verify(session).intact
        assert audit.head(session) == audit.Head(0, audit.GENESIS)
    _append(db, 5)
    with db.transaction() as session:
        verdict = audit.verify(session)
        head = audit.head(session)
    assert (verdict.intact, verdict.checked) == (True, 5)
    assert head.seq == 5 and len(head.hash) == 64


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        ("UPDATE audit_log SET actor = 'token:mallory' WHERE seq = 3", "seq 3): its content"),
        ("UPDATE audit_log SET details = '{\"version\": 99}' WHERE seq = 2", "seq 2): its content"),
        ("UPDATE audit_log SET at = at WHERE seq = 2", None),  # a no-op write changes nothing
        ("DELETE FROM audit_log WHERE seq = 3", "expected seq 3; a row was deleted"),
        ("DELETE FROM audit_log WHERE seq = 5", "head says 5: rows removed"),
        ("UPDATE audit_head SET seq = 4", "rows were added after the head"),
    ],
    ids=["actor", "details", "no-op", "delete-middle", "delete-last", "appended"],
)
def test_tampering_is_named(db: Database, tamper: str, found: str | None) -> None:
    _append(db, 5)
    _exec(db, tamper)
    with db.transaction() as session:
        verdict = audit.verify(session)
    if found is None:
        assert verdict.intact
    else:
        assert verdict.problem is not None and found in verdict.problem, verdict.problem


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_log SET details = '{not json' WHERE seq = 3",
        "UPDATE audit_log SET at = 'yesterday' WHERE seq = 3",
        "UPDATE audit_log SET at = 12345 WHERE seq = 3",
    ],
    ids=["details", "at-text", "at-number"],
)
def test_a_row_that_no_longer_decodes_is_named_not_a_crash(
    sqlite_db: Database, tamper: str
) -> None:
    # SQLite stores what it is given; PostgreSQL's column types refuse such values outright.
    _append(sqlite_db, 5)
    _exec(sqlite_db, tamper)
    with sqlite_db.transaction() as session:
        verdict = audit.verify(session)
    assert verdict.problem is not None and "cannot be read" in verdict.problem
    assert "seq 2" in verdict.problem or "seq 3" in verdict.problem


def test_swapping_two_rows_is_detected(db: Database) -> None:
    _append(db, 4)
    # Swap the sequence numbers of rows 2 and 3 (a reordering), through a free value.
    _exec(db, "UPDATE audit_log SET seq = 1000 WHERE seq = 2")
    _exec(db, "UPDATE audit_log SET seq = 2 WHERE seq = 3")
    _exec(db, "UPDATE audit_log SET seq = 3 WHERE seq = 1000")
    with db.transaction() as session:
        verdict = audit.verify(session)
    assert verdict.problem is not None and "(seq 2): does not follow" in verdict.problem


def test_an_inserted_row_is_detected(db: Database) -> None:
    _append(db, 3)
    with db.transaction() as session:
        [row] = session.execute(text("SELECT prev_hash, hash FROM audit_log WHERE seq = 3")).all()
    # A forged entry appended with a plausible link but no matching head.
    _exec(
        db,
        "INSERT INTO audit_log (at, actor, action, subject, details, seq, prev_hash, hash) "
        "VALUES (:at, 'token:mallory', 'lesson.approved', 'x', '{}', 4, :prev, :hash)",
        at=T0.replace(tzinfo=None),
        prev=row.hash,
        hash="f" * 64,
    )
    with db.transaction() as session:
        verdict = audit.verify(session)
    assert verdict.problem is not None and "(seq 4): its content" in verdict.problem


@pytest.mark.postgres
def test_concurrent_writers_never_fork_the_chain(postgres_url: str) -> None:
    db = Database(postgres_url)
    migrate.upgrade(db)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: _append(db, 25, start=k * 25), range(8)))
    with db.transaction() as session:
        verdict = audit.verify(session)
    assert (verdict.intact, verdict.checked) == (True, 200), verdict.problem
    db.dispose()


def _entry(session: Session, action: str) -> None:
    audit.record(session, actor="cairn:test", action=action, subject="s", details={}, now=T0)


@pytest.mark.postgres
def test_an_open_transaction_that_audited_does_not_hold_up_other_writers(
    postgres_url: str,
) -> None:
    """The head row is locked only while a transaction commits: a long stage transaction that
    recorded an entry early does not serialise every other auditing transaction behind it."""
    db = Database(postgres_url)
    migrate.upgrade(db)
    with db.transaction() as slow:
        _entry(slow, "slow.first")
        slow.flush()
        with db.transaction() as quick:
            quick.execute(text("SET LOCAL lock_timeout = '2s'"))
            _entry(quick, "quick")
        _entry(slow, "slow.second")
    with db.transaction() as session:
        verdict = audit.verify(session)
        actions = [e.action for e in audit.entries(session)]
    assert (verdict.intact, verdict.checked) == (True, 3), verdict.problem
    assert actions == ["quick", "slow.first", "slow.second"]  # chained in commit order
    db.dispose()


@pytest.mark.postgres
def test_the_head_is_locked_after_every_other_write_of_the_transaction(
    postgres_url: str,
) -> None:
    """Writers queue on the head lock, so it covers the audit rows and the commit alone: the
    transaction's own rows and its tallies are written before it is taken."""
    db = Database(postgres_url)
    migrate.upgrade(db)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.transaction() as session:
        _entry(session, "first")
        session.add(CounterRow(name="test.counter", value=1))
        tallies.placed(session, tallies.key_of(T0, "pack/rule", "delivered", None), "l", "m")
    db.dispose()
    locked = next(n for n, sql in enumerate(statements) if "FOR UPDATE" in sql)
    assert "audit_head" in statements[locked]
    before = " ".join(statements[:locked])
    assert "INSERT INTO counters" in before and "INSERT INTO placement_tallies" in before
    assert all(
        sql.startswith(("INSERT INTO audit_log", "UPDATE audit_head"))
        for sql in statements[locked + 1 :]
    ), statements[locked + 1 :]


def test_a_rolled_back_transaction_leaves_no_entry_and_readers_see_their_own(
    db: Database,
) -> None:
    with pytest.raises(RuntimeError), db.transaction() as session:
        _entry(session, "lost")
        raise RuntimeError("the stage failed")
    with db.transaction() as session:
        _entry(session, "kept")
        assert [e.action for e in audit.entries(session)] == ["kept"]
        assert audit.head(session).seq == 1
    with db.transaction() as session:
        assert audit.count_by_action(session) == {"kept": 1}
        assert audit.verify(session).intact


def test_a_detail_json_cannot_hold_fails_at_the_call(db: Database) -> None:
    with db.transaction() as session, pytest.raises(TypeError):
        audit.record(session, actor="a", action="x", subject="s", details={"at": object()}, now=T0)


def test_upgrading_an_existing_log_chains_its_rows_in_id_order(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db, "0002")
    for i in range(3):
        _exec(
            db,
            "INSERT INTO audit_log (at, actor, action, subject, details) "
            "VALUES (:at, 'cli:ops', 'lesson.created', :subject, '{\"version\": 1}')",
            at=(T0 + timedelta(minutes=i)).replace(tzinfo=None),
            subject=f"old-{i}",
        )
    migrate.upgrade(db)
    _append(db, 2)
    with db.transaction() as session:
        verdict = audit.verify(session)
        subjects = [e.subject for e in audit.entries(session)]
    assert (verdict.intact, verdict.checked) == (True, 5), verdict.problem
    assert subjects[:3] == ["old-0", "old-1", "old-2"]
    db.dispose()
