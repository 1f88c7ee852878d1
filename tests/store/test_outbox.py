"""Outbox contract: leases, retries with backoff, dead letters and exactly-once claiming."""

import itertools
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from core.base import utcnow
from store import migrate, outbox
from store.engine import Database
from store.outbox import Message, MessageStatus
from store.tables import OUTBOX_OPEN_STATUSES, OutboxRow

LEASE = timedelta(seconds=30)
MAX_ATTEMPTS = 3
TICK = timedelta(microseconds=1)


KEYS = itertools.count()


def enqueue(db: Database, now: datetime, count: int = 1, topic: str = "route") -> list[int]:
    """`count` messages, each with a key of its own."""
    with db.transaction() as session:
        return [
            outbox.enqueue(
                session,
                topic=topic,
                payload={"n": n, "tags": ["a", "b"]},
                key=f"k-{next(KEYS)}",
                now=now,
            )
            for n in range(count)
        ]


def claim(
    db: Database, now: datetime, *, max_attempts: int = MAX_ATTEMPTS, limit: int = 50
) -> list[Message]:
    with db.transaction() as session:
        return outbox.claim(session, now=now, lease=LEASE, max_attempts=max_attempts, limit=limit)


def fail(
    db: Database,
    message_id: int,
    now: datetime,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    retry_after: float | None = None,
    error: str = "boom",
) -> MessageStatus:
    with db.transaction() as session:
        return outbox.fail(
            session,
            message_id,
            error=error,
            now=now,
            max_attempts=max_attempts,
            retry_after=retry_after,
        )


def counts(db: Database) -> dict[str, int]:
    with db.transaction() as session:
        return outbox.counts(session)


def next_due(db: Database) -> datetime | None:
    with db.transaction() as session:
        return outbox.next_due(session)


def status_counts(**nonzero: int) -> dict[str, int]:
    return {status.value: nonzero.get(status.value, 0) for status in MessageStatus}


# --- enqueue and claim -------------------------------------------------------------------------


def test_enqueue_adds_pending_messages(db: Database) -> None:
    ids = enqueue(db, utcnow(), count=3)

    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert counts(db) == status_counts(pending=3)


def test_empty_outbox(db: Database) -> None:
    now = utcnow()

    assert counts(db) == status_counts()
    assert claim(db, now) == []
    assert next_due(db) is None
    with db.transaction() as session:
        assert outbox.dead_letters(session) == []


def test_enqueue_rolls_back_with_the_callers_transaction(db: Database) -> None:
    class Abort(Exception):
        pass

    try:
        with db.transaction() as session:
            outbox.enqueue(session, topic="route", payload={}, key="k", now=utcnow())
            raise Abort
    except Abort:
        pass

    assert counts(db) == status_counts()


def test_claim_leases_a_message_with_its_content(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now, topic="placements.plan")

    [message] = claim(db, now)

    assert message == Message(
        id=message_id,
        topic="placements.plan",
        key=message.key,
        payload={"n": 0, "tags": ["a", "b"]},
        attempts=1,
        token=message.token,
        created_at=now,
    )
    assert message.key.startswith("k-")
    assert message.token is not None and len(message.token) == 32
    assert counts(db) == status_counts(leased=1)


def test_a_leased_message_is_not_claimed_again_before_its_lease_expires(db: Database) -> None:
    now = utcnow()
    enqueue(db, now)
    assert len(claim(db, now)) == 1

    assert claim(db, now) == []
    assert claim(db, now + LEASE / 2) == []
    assert counts(db) == status_counts(leased=1)


def test_an_expired_lease_is_handed_out_again_as_a_new_attempt(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    claim(db, now)

    [again] = claim(db, now + LEASE + timedelta(seconds=1))

    assert again.id == message_id
    assert again.attempts == 2
    assert counts(db) == status_counts(leased=1)


def test_each_claim_holds_its_messages_with_a_token_of_its_own(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    [first] = claim(db, now)
    [second] = claim(db, now + LEASE + TICK)  # the first worker died: its lease lapsed

    assert first.token != second.token
    with db.transaction() as session:
        assert outbox.begin(session, message_id, first.token) is None
        assert outbox.begin(session, message_id, second.token) == second


def test_claim_skips_messages_not_yet_available(db: Database) -> None:
    now = utcnow()
    enqueue(db, now + timedelta(minutes=1))

    assert claim(db, now) == []
    assert len(claim(db, now + timedelta(minutes=1))) == 1


def test_claim_honours_the_limit_and_hands_out_oldest_first(db: Database) -> None:
    now = utcnow()
    ids = enqueue(db, now, count=5)

    first = claim(db, now, limit=2)
    rest = claim(db, now, limit=10)

    assert [m.id for m in first] == ids[:2]
    assert [m.id for m in rest] == ids[2:]
    assert all(m.attempts == 1 for m in first + rest)


def one_key_then_own_keys(
    db: Database, now: datetime, *, on_one_key: int, on_own_keys: int
) -> tuple[list[int], list[int]]:
    """Messages queued on one key, then as many others each on a key of its own."""
    with db.transaction() as session:
        hot = [
            outbox.enqueue(session, topic="route", payload={}, key="hot", now=now)
            for _ in range(on_one_key)
        ]
        free = [
            outbox.enqueue(session, topic="route", payload={}, key=f"k{n}", now=now)
            for n in range(on_own_keys)
        ]
    return hot, free


def test_a_claim_with_a_limit_looks_past_messages_waiting_behind_their_key(
    db: Database,
) -> None:
    now = utcnow()
    busy, free = one_key_then_own_keys(db, now, on_one_key=30, on_own_keys=3)
    assert [m.id for m in claim(db, now, limit=3)] == [busy[0], free[0], free[1]]
    assert [m.id for m in claim(db, now, limit=3)] == [free[2]]


# --- begin and complete ------------------------------------------------------------------------


def test_begin_returns_a_claimed_message(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    [claimed] = claim(db, now)

    with db.transaction() as session:
        assert outbox.begin(session, message_id) == claimed


def test_complete_marks_done_and_begin_then_refuses_it(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    claim(db, now)

    with db.transaction() as session:
        assert outbox.begin(session, message_id) is not None
        outbox.complete(session, message_id, now)

    with db.transaction() as session:
        assert outbox.begin(session, message_id) is None
    assert counts(db) == status_counts(done=1)
    assert claim(db, now + timedelta(days=1)) == []
    assert next_due(db) is None


def test_begin_of_an_unknown_message_returns_none(db: Database) -> None:
    [message_id] = enqueue(db, utcnow())

    with db.transaction() as session:
        assert outbox.begin(session, message_id + 1000) is None


def test_complete_rolled_back_with_the_handler_leaves_the_message_leased(db: Database) -> None:
    class HandlerFailed(Exception):
        pass

    now = utcnow()
    [message_id] = enqueue(db, now)
    claim(db, now)

    try:
        with db.transaction() as session:
            outbox.complete(session, message_id, now)
            raise HandlerFailed
    except HandlerFailed:
        pass

    assert counts(db) == status_counts(leased=1)


# --- fail, backoff and dead letters -----------------------------------------------------------


def test_fail_schedules_a_retry_in_the_future(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    claim(db, now)

    assert fail(db, message_id, now) is MessageStatus.PENDING

    due = next_due(db)
    assert due is not None
    assert due > now
    assert claim(db, now) == []
    assert claim(db, due - TICK) == []
    [retried] = claim(db, due)
    assert retried.id == message_id
    assert retried.attempts == 2


def test_backoff_grows_with_each_failure(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    delays = []
    for _ in range(2):
        [message] = claim(db, now)
        assert message.id == message_id
        fail(db, message_id, now, max_attempts=10)
        due = next_due(db)
        assert due is not None
        delays.append(due - now)
        now = due

    assert timedelta(0) < delays[0] < delays[1]


def test_fail_honours_retry_after(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    claim(db, now)

    assert fail(db, message_id, now, retry_after=120) is MessageStatus.PENDING

    assert next_due(db) == now + timedelta(seconds=120)
    assert claim(db, now + timedelta(seconds=119)) == []
    [retried] = claim(db, now + timedelta(seconds=120))
    assert retried.id == message_id


def test_fail_dead_letters_after_max_attempts(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    statuses = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [message] = claim(db, now)
        assert message.attempts == attempt
        statuses.append(fail(db, message_id, now, retry_after=0, error=f"boom {attempt}"))

    assert statuses == [MessageStatus.PENDING] * (MAX_ATTEMPTS - 1) + [MessageStatus.DEAD]
    assert counts(db) == status_counts(dead=1)
    assert claim(db, now + timedelta(days=1)) == []
    with db.transaction() as session:
        assert outbox.begin(session, message_id) is None
        [(dead, error)] = outbox.dead_letters(session)
    assert dead.id == message_id
    assert dead.attempts == MAX_ATTEMPTS
    assert error == f"boom {MAX_ATTEMPTS}"


def test_fail_with_no_attempts_allowed_dead_letters_at_once(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    claim(db, now)

    assert (
        fail(db, message_id, now, max_attempts=0, error="PayloadError: bad") is MessageStatus.DEAD
    )
    assert counts(db) == status_counts(dead=1)


def test_fail_does_not_resurrect_a_done_message(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    claim(db, now)
    with db.transaction() as session:
        outbox.complete(session, message_id, now)

    assert fail(db, message_id, now) is MessageStatus.DONE
    assert counts(db) == status_counts(done=1)


def test_claim_dead_letters_an_expired_lease_that_used_every_attempt(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    for _ in range(2):
        assert [m.id for m in claim(db, now, max_attempts=2)] == [message_id]
        now += LEASE + timedelta(seconds=1)

    assert claim(db, now, max_attempts=2) == []

    assert counts(db) == status_counts(dead=1)
    with db.transaction() as session:
        [(dead, error)] = outbox.dead_letters(session)
    assert dead.id == message_id
    assert dead.attempts == 2
    assert error is not None
    assert "lease expired" in error


def test_a_message_dead_after_its_workers_died_keeps_its_last_real_error(db: Database) -> None:
    """A target answering 500, then workers killed mid-run until the attempts ran out: the
    dead letter still names the 500, the operator's clue, beside why the attempts ran out."""
    now = utcnow()
    [message_id] = enqueue(db, now)
    [first] = claim(db, now, max_attempts=3)
    fail(db, first.id, now, max_attempts=3, error="TransientError: GitHub answered 500")
    now += timedelta(minutes=10)  # past the retry backoff
    for _ in range(2):  # two more claims whose workers die without recording anything
        assert [m.id for m in claim(db, now, max_attempts=3)] == [message_id]
        now += LEASE + timedelta(seconds=1)
    assert claim(db, now, max_attempts=3) == []
    with db.transaction() as session:
        [(_dead, error)] = outbox.dead_letters(session)
    assert error is not None
    assert error.startswith("lease expired on every attempt")
    assert error.endswith("the last error was: TransientError: GitHub answered 500")

    [other] = enqueue(db, now)
    with db.transaction() as session:  # a broker delivery finding every attempt spent
        row = session.get(OutboxRow, other)
        assert row is not None
        row.status, row.attempts = MessageStatus.LEASED, 3
        row.last_error = "JiraError: 503"
    with db.transaction() as session:
        refused = outbox.start_attempt(
            session, other, 3, token=outbox.new_token(), now=now, lease=LEASE
        )
    assert refused == MessageStatus.DEAD
    with db.transaction() as session:
        found = dict((m.id, e) for m, e in outbox.dead_letters(session))
    assert found[other] == (
        "every delivery died before finishing (max attempts reached); "
        "the last error was: JiraError: 503"
    )


def test_claim_keeps_a_live_lease_even_at_max_attempts(db: Database) -> None:
    now = utcnow()
    enqueue(db, now)
    claim(db, now, max_attempts=1)

    assert claim(db, now + LEASE / 2, max_attempts=1) == []
    assert counts(db) == status_counts(leased=1)


def test_dead_letters_are_listed_newest_first_with_a_limit(db: Database) -> None:
    now = utcnow()
    ids = enqueue(db, now, count=3)
    claim(db, now)
    for message_id in ids:
        fail(db, message_id, now, max_attempts=1, error=f"error {message_id}")

    with db.transaction() as session:
        everything = outbox.dead_letters(session)
        newest = outbox.dead_letters(session, limit=1)

    assert [(m.id, error) for m, error in everything] == [(i, f"error {i}") for i in ids[::-1]]
    assert [m.id for m, _ in newest] == [ids[-1]]


def test_requeue_dead_gives_dead_messages_a_fresh_start(db: Database) -> None:
    now = utcnow()
    dead_id, done_id = enqueue(db, now, count=2)
    claim(db, now)
    fail(db, dead_id, now, max_attempts=1)
    with db.transaction() as session:
        outbox.complete(session, done_id, now)

    later = now + timedelta(minutes=5)
    with db.transaction() as session:
        assert outbox.requeue_dead(session, later) == 1

    assert counts(db) == status_counts(pending=1, done=1)
    assert claim(db, later - TICK) == []
    [again] = claim(db, later)
    assert again.id == dead_id
    assert again.attempts == 1


# --- release and next_due -----------------------------------------------------------------------


def test_release_hands_leased_messages_back_at_once(db: Database) -> None:
    now = utcnow()
    first, _ = enqueue(db, now, count=2)
    claim(db, now)

    with db.transaction() as session:
        outbox.release(session, [first], now)
        outbox.release(session, [], now)

    assert counts(db) == status_counts(pending=1, leased=1)
    [again] = claim(db, now)
    assert again.id == first
    assert again.attempts == 2


def test_release_leaves_done_and_pending_messages_alone(db: Database) -> None:
    now = utcnow()
    done_id, pending_id = enqueue(db, now, count=2)
    claim(db, now, limit=1)
    with db.transaction() as session:
        outbox.complete(session, done_id, now)
        outbox.release(session, [done_id, pending_id], now + timedelta(hours=1))

    assert counts(db) == status_counts(pending=1, done=1)
    assert [m.id for m in claim(db, now)] == [pending_id]


def test_next_due_reports_the_earliest_claimable_time(db: Database) -> None:
    now = utcnow()
    enqueue(db, now + timedelta(minutes=10))
    assert next_due(db) == now + timedelta(minutes=10)

    enqueue(db, now + timedelta(minutes=5))
    assert next_due(db) == now + timedelta(minutes=5)

    [leased] = claim(db, now + timedelta(minutes=5))
    assert next_due(db) == now + timedelta(minutes=5) + LEASE

    with db.transaction() as session:
        outbox.complete(session, leased.id, now + timedelta(minutes=6))
    assert next_due(db) == now + timedelta(minutes=10)


def test_next_due_is_timezone_aware_utc(db: Database) -> None:
    now = utcnow()
    enqueue(db, now)

    due = next_due(db)

    assert isinstance(due, datetime)
    assert due.utcoffset() == timedelta(0)
    assert due == now


# --- concurrency --------------------------------------------------------------------------------


def test_concurrent_workers_never_claim_a_message_twice(db: Database) -> None:
    now = utcnow()
    ids = enqueue(db, now, count=200)
    workers = 4
    start = threading.Barrier(workers)

    def worker() -> list[int]:
        start.wait(timeout=30)
        mine: list[int] = []
        while True:
            batch = claim(db, now, max_attempts=5, limit=5)
            assert len(batch) <= 5
            if not batch:
                return mine
            mine.extend(m.id for m in batch)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
        claimed = [message_id for future in futures for message_id in future.result(timeout=120)]

    duplicates = [i for i, n in Counter(claimed).items() if n > 1]
    assert duplicates == []
    assert sorted(claimed) == ids
    assert counts(db) == status_counts(leased=200)


def test_messages_sharing_a_key_are_handed_out_one_at_a_time_in_order(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        first, second = (
            outbox.enqueue(session, topic="route", payload={}, key="github:acme/api#1", now=now)
            for _ in range(2)
        )
        other = outbox.enqueue(session, topic="route", payload={}, key="jira:PAY-1", now=now)
    assert [m.id for m in claim(db, now)] == [first, other]
    assert claim(db, now) == []  # the second waits while the first is leased
    with db.transaction() as session:
        outbox.complete(session, other, now)
        outbox.fail(session, first, error="busy", now=now, max_attempts=8, retry_after=60)
    assert claim(db, now + timedelta(seconds=30)) == []  # still behind its retrying elder
    [retried] = claim(db, now + timedelta(seconds=61))
    assert retried.id == first
    with db.transaction() as session:
        outbox.complete(session, first, now + timedelta(seconds=62))
    assert [m.id for m in claim(db, now + timedelta(seconds=62))] == [second]


def test_a_relay_claim_counts_no_attempt_and_never_dead_letters(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    for round_ in range(MAX_ATTEMPTS + 2):  # far more lease expiries than attempts allowed
        at = now + timedelta(hours=round_)
        with db.transaction() as session:
            claimed = outbox.claim(
                session, now=at, lease=LEASE, max_attempts=MAX_ATTEMPTS, count_attempt=False
            )
        assert [m.id for m in claimed] == [message_id]
        assert claimed[0].attempts == 0
    assert counts(db) == status_counts(leased=1)


def test_start_attempt_counts_deliveries_and_stops_a_crash_loop(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    with db.transaction() as session:
        outbox.claim(session, now=now, lease=LEASE, max_attempts=3, count_attempt=False)
    for n in range(3):  # three deliveries that die mid-run, each after the last one's lease
        with db.transaction() as session:
            assert start_attempt(session, message_id, now + (LEASE + TICK) * n) is None
    with db.transaction() as session:
        assert start_attempt(session, message_id, now + (LEASE + TICK) * 3) == MessageStatus.DEAD
    assert counts(db) == status_counts(dead=1)


def test_begin_refuses_a_message_that_is_not_leased(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    with db.transaction() as session:
        assert outbox.begin(session, message_id) is None  # pending: not handed out yet
        assert start_attempt(session, message_id, now) == MessageStatus.PENDING


# --- run tokens: one delivery runs a message at a time ------------------------------------------


def start_attempt(
    session: Session, message_id: int, now: datetime, token: str | None = None
) -> MessageStatus | None:
    return outbox.start_attempt(
        session, message_id, 3, token=token or outbox.new_token(), now=now, lease=LEASE
    )


def relay_claim(db: Database, now: datetime) -> list[Message]:
    with db.transaction() as session:
        return outbox.claim(
            session, now=now, lease=timedelta(minutes=5), max_attempts=3, count_attempt=False
        )


def row(db: Database, message_id: int) -> tuple[str, int, str | None, datetime | None]:
    with db.transaction() as session:
        found = session.get(OutboxRow, message_id)
        assert found is not None
        return found.status, found.attempts, found.run_token, found.leased_until


def test_a_second_delivery_does_not_start_while_the_first_holds_a_live_lease(
    db: Database,
) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    [published] = relay_claim(db, now)
    assert published.token is None  # a relay's claim holds no run

    with db.transaction() as session:
        assert start_attempt(session, message_id, now, "a" * 32) is None
    with db.transaction() as session:
        assert start_attempt(session, message_id, now + LEASE - TICK) == MessageStatus.LEASED

    # The refused copy counted no attempt and took nothing from the first run.
    assert row(db, message_id) == ("leased", 1, "a" * 32, now + LEASE)


def test_a_delivery_takes_over_a_run_whose_lease_lapsed(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    relay_claim(db, now)
    with db.transaction() as session:
        assert start_attempt(session, message_id, now, "a" * 32) is None

    later = now + LEASE + TICK  # the first run's process died: nothing renewed its lease
    with db.transaction() as session:
        assert start_attempt(session, message_id, later, "b" * 32) is None

    assert row(db, message_id) == ("leased", 2, "b" * 32, later + LEASE)
    with db.transaction() as session:
        assert outbox.begin(session, message_id, "a" * 32) is None
        assert outbox.begin(session, message_id, "b" * 32) is not None


def test_the_relay_republishes_a_run_only_after_its_lease_lapsed(db: Database) -> None:
    now = utcnow()
    an_hour_ago = now - timedelta(hours=1)
    [message_id] = enqueue(db, an_hour_ago)
    assert len(relay_claim(db, an_hour_ago)) == 1  # published an hour ago: that lease is over
    with db.transaction() as session:
        assert start_attempt(session, message_id, now, "a" * 32) is None

    assert relay_claim(db, now + LEASE - TICK) == []
    [again] = relay_claim(db, now + LEASE)
    assert (again.id, again.token) == (message_id, None)
    with db.transaction() as session:  # the republished copy may run: nobody holds it
        assert start_attempt(session, message_id, now + LEASE) is None


def take(db: Database, message_id: int, now: datetime, token: str) -> bool:
    with db.one_statement() as connection:
        return outbox.take(connection, message_id, 3, token=token, now=now, lease=LEASE)


def test_take_holds_a_free_message_in_one_statement_and_leaves_the_rest_to_start_attempt(
    db: Database,
) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    assert not take(db, message_id, now, "a" * 32)  # pending: not published yet
    assert row(db, message_id) == ("pending", 0, None, None)

    relay_claim(db, now)
    assert take(db, message_id, now, "a" * 32)
    assert row(db, message_id) == ("leased", 1, "a" * 32, now + LEASE)
    assert not take(db, message_id, now + LEASE - TICK, "b" * 32)  # a live lease
    assert row(db, message_id) == ("leased", 1, "a" * 32, now + LEASE)
    assert take(db, message_id, now + LEASE, "b" * 32)  # the lease ran out at that instant
    assert take(db, message_id, now + 2 * LEASE, "c" * 32)
    # Three attempts counted: the next delivery is refused here, and start_attempt kills it.
    assert not take(db, message_id, now + 3 * LEASE, "d" * 32)
    assert row(db, message_id) == ("leased", 3, "c" * 32, now + 3 * LEASE)
    with db.transaction() as session:
        assert start_attempt(session, message_id, now + 3 * LEASE) == MessageStatus.DEAD


def test_one_statement_on_postgresql_commits_without_a_transaction(postgres_url: str) -> None:
    """Autocommit: the statement is visible to another transaction before the block ends (in
    a transaction it would not be), and the pooled connection goes back to transactions."""
    db = Database(postgres_url, pool_size=1, max_overflow=1)
    migrate.upgrade(db)
    try:
        now = utcnow()
        [message_id] = enqueue(db, now)
        relay_claim(db, now)
        with db.one_statement() as connection:
            assert outbox.take(connection, message_id, 3, token="a" * 32, now=now, lease=LEASE)
            with db.transaction() as other:
                seen = other.get(OutboxRow, message_id)
                assert seen is not None and seen.run_token == "a" * 32
        with db.engine.connect() as connection:
            assert connection.get_isolation_level() == "READ COMMITTED"
    finally:
        db.dispose()


def test_extend_renews_only_the_holders_lease(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    [message] = claim(db, now)
    assert message.token is not None

    with db.transaction() as session:
        assert outbox.extend(session, message_id, message.token, now + 2 * LEASE) is True
        assert outbox.extend(session, message_id, "b" * 32, now + 3 * LEASE) is False
    assert claim(db, now + LEASE + TICK) == []  # renewed: not handed out again

    with db.transaction() as session:
        outbox.complete(session, message_id, now)
        assert outbox.extend(session, message_id, message.token, now + 3 * LEASE) is False
    assert row(db, message_id) == ("done", 1, None, None)


def test_a_run_that_lost_its_message_cannot_fail_it(db: Database) -> None:
    now = utcnow()
    [message_id] = enqueue(db, now)
    [first] = claim(db, now)
    [second] = claim(db, now + LEASE + TICK)

    with db.transaction() as session:
        status = outbox.fail(
            session, message_id, error="late", now=now, max_attempts=3, token=first.token
        )

    assert status == MessageStatus.LEASED
    assert row(db, message_id) == ("leased", 2, second.token, now + 2 * LEASE + TICK)
    with db.transaction() as session:
        status = outbox.fail(
            session, message_id, error="boom", now=now, max_attempts=3, token=second.token
        )
    assert status == MessageStatus.PENDING
    assert row(db, message_id)[2] is None


def test_extend_waiting_renews_a_claims_waiting_messages_only(db: Database) -> None:
    now = utcnow()
    ids = enqueue(db, now, count=3)
    batch = claim(db, now, limit=3)
    token = batch[0].token
    assert token is not None and {m.token for m in batch} == {token}
    with db.transaction() as session:
        outbox.complete(session, ids[2], now)
        renewed = outbox.extend_waiting(session, token, ids, now + 2 * LEASE)
        assert outbox.extend_waiting(session, "b" * 32, ids, now + 3 * LEASE) == set()
    assert renewed == {ids[0], ids[1]}  # the done one is not this claim's to renew
    assert claim(db, now + LEASE + TICK) == []  # renewed: not handed out again
    assert [row(db, i)[3] for i in ids[:2]] == [now + 2 * LEASE] * 2


@pytest.mark.postgres
def test_extend_waiting_skips_a_message_a_worker_has_begun_without_waiting(
    postgres_url: str,
) -> None:
    """A worker's `begin` holds the row lock while its handler runs (PostgreSQL; SQLite has
    one writer at a time): the renewal leaves that message to the run's own renewer rather
    than queue behind the lock."""
    db = Database(postgres_url)
    migrate.upgrade(db)
    now = utcnow()
    ids = enqueue(db, now, count=2)
    token = claim(db, now, limit=2)[0].token
    assert token is not None
    begun = threading.Event()
    finish = threading.Event()

    def worker() -> None:
        with db.transaction() as session:
            assert outbox.begin(session, ids[0], token) is not None
            begun.set()
            finish.wait(30)

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(worker)
        assert begun.wait(30)
        try:
            with db.transaction() as session:
                renewed = outbox.extend_waiting(session, token, ids, now + 2 * LEASE)
        finally:
            finish.set()
        running.result()
    db.dispose()
    assert renewed == {ids[1]}


# --- the claim's plan ----------------------------------------------------------------------------


def test_the_open_statuses_of_the_partial_indexes_are_pending_and_leased() -> None:
    assert set(OUTBOX_OPEN_STATUSES) == {MessageStatus.PENDING, MessageStatus.LEASED}


def test_a_claim_after_a_burst_probes_each_candidate_instead_of_joining_every_head(
    postgres_url: str,
) -> None:
    """With statistics taken before a burst (autovacuum has not analysed it yet), PostgreSQL
    planned the former claim, a join against every key's head, as a nested loop comparing every
    candidate with every head. The claim now walks the open messages in id order and checks
    each with a correlated lookup of its key's oldest open message: no join to mis-plan."""
    db = Database(postgres_url)
    migrate.upgrade(db)
    try:
        now = utcnow()
        history = enqueue(db, now, count=2000)
        with db.transaction() as session:
            for message_id in history:
                outbox.complete(session, message_id, now)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE outbox")  # statistics that know of no open message
        hot, free = one_key_then_own_keys(db, now, on_one_key=300, on_own_keys=300)
        with db.transaction() as session:
            compiled = outbox._CLAIMABLE.compile(session.get_bind())
            expanded = compiled.construct_expanded_state({"now": now, "claim_limit": 100})
            plan = "\n".join(
                session.connection()
                .exec_driver_sql(f"EXPLAIN {expanded.statement}", expanded.parameters)
                .scalars()
            )
        assert "Join" not in plan, plan
        assert "SubPlan" in plan, plan
        claimed = claim(db, now, limit=100)
        assert [m.id for m in claimed] == [hot[0], *free[:99]]
    finally:
        db.dispose()
