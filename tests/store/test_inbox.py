"""Inbox contract: deliveries are stored verbatim and de-duplicated per (source, delivery key)."""

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from core.base import utcnow
from store import inbox
from store.engine import Database

HEADERS = {"webhook-id": "msg_1", "webhook-signature": "v1,abc=", "x-note": "café ✓"}
BODY = b'{"type":"work_item"}\r\n' + bytes(range(256)) + b"\xff\xfe\x00tail"


def accept(
    db: Database,
    source: str,
    key: str,
    *,
    body: bytes = BODY,
    headers: Mapping[str, str] = HEADERS,
    now: datetime | None = None,
) -> int | None:
    with db.transaction() as session:
        return inbox.accept(
            session,
            source=source,
            delivery_key=key,
            headers=headers,
            body=body,
            now=now or utcnow(),
        )


def counts(db: Database) -> dict[str, int]:
    with db.transaction() as session:
        return inbox.counts(session)


def test_first_delivery_gets_an_id_and_a_redelivery_gets_none(db: Database) -> None:
    first = accept(db, "github", "d-1")
    again = accept(db, "github", "d-1")

    assert isinstance(first, int)
    assert again is None
    assert counts(db) == {"accepted": 1, "processed": 0}


def test_redelivery_in_the_same_transaction_is_also_ignored(db: Database) -> None:
    with db.transaction() as session:
        ids = [
            inbox.accept(
                session, source="jira", delivery_key="d-1", headers={}, body=b"x", now=utcnow()
            )
            for _ in range(2)
        ]

    assert ids[0] is not None
    assert ids[1] is None
    assert counts(db)["accepted"] == 1


def test_redelivery_does_not_overwrite_the_stored_delivery(db: Database) -> None:
    first = accept(db, "github", "d-1", body=b"original")
    assert first is not None

    assert accept(db, "github", "d-1", body=b"replayed", headers={"h": "other"}) is None

    with db.transaction() as session:
        stored = inbox.get(session, first)
    assert stored is not None
    assert stored.body == b"original"
    assert dict(stored.headers) == HEADERS


def test_same_key_from_another_source_is_a_different_delivery(db: Database) -> None:
    github = accept(db, "github", "shared-key")
    jira = accept(db, "jira", "shared-key")
    other_key = accept(db, "github", "other-key")

    assert None not in (github, jira, other_key)
    assert len({github, jira, other_key}) == 3
    assert counts(db)["accepted"] == 3


def test_headers_and_body_round_trip_exactly(db: Database) -> None:
    now = utcnow()
    inbox_id = accept(db, "generic", "d-7", now=now)
    assert inbox_id is not None

    with db.transaction() as session:
        stored = inbox.get(session, inbox_id)

    assert stored is not None
    assert stored.id == inbox_id
    assert (stored.source, stored.delivery_key) == ("generic", "d-7")
    assert stored.body == BODY
    assert type(stored.body) is bytes
    assert dict(stored.headers) == HEADERS
    assert stored.received_at == now
    assert stored.received_at.utcoffset() == timedelta(0)
    assert stored.processed_at is None


def test_empty_body_and_headers_are_kept(db: Database) -> None:
    inbox_id = accept(db, "generic", "empty", body=b"", headers={})
    assert inbox_id is not None

    with db.transaction() as session:
        stored = inbox.get(session, inbox_id)

    assert stored is not None
    assert stored.body == b""
    assert dict(stored.headers) == {}


def test_mark_processed_records_the_time_and_counts(db: Database) -> None:
    ids = [accept(db, "github", f"d-{n}") for n in range(3)]
    first, second, _ = ids
    assert first is not None
    assert second is not None
    done_at = utcnow() + timedelta(seconds=5)

    with db.transaction() as session:
        inbox.mark_processed(session, second, done_at)

    with db.transaction() as session:
        processed = inbox.get(session, second)
        untouched = inbox.get(session, first)
        assert inbox.counts(session) == {"accepted": 3, "processed": 1}

    assert processed is not None
    assert processed.processed_at == done_at
    assert untouched is not None
    assert untouched.processed_at is None


def test_empty_inbox_counts_zero(db: Database) -> None:
    assert counts(db) == {"accepted": 0, "processed": 0}


def test_unknown_ids_read_as_none_and_marking_them_changes_nothing(db: Database) -> None:
    known = accept(db, "github", "d-1")
    assert known is not None

    with db.transaction() as session:
        inbox.mark_processed(session, known + 1000, utcnow())

    with db.transaction() as session:
        assert inbox.get(session, known + 1000) is None
        assert inbox.counts(session) == {"accepted": 1, "processed": 0}


def test_concurrent_redeliveries_are_accepted_exactly_once(db: Database) -> None:
    senders = 6
    start = threading.Barrier(senders)

    def deliver() -> int | None:
        start.wait(timeout=30)
        return accept(db, "github", "raced")

    with ThreadPoolExecutor(max_workers=senders) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(deliver) for _ in range(senders)]]

    assert len([r for r in results if r is not None]) == 1
    assert counts(db) == {"accepted": 1, "processed": 0}
