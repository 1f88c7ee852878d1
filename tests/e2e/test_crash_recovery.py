"""`kill -9` mid-stream, in each mode: every accepted event is processed exactly once."""

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from store import audit, inbox, incidents, lessons, outbox
from store.engine import Database
from tests.e2e.serve import ServeProcess, free_port, incident_event, post_until_accepted

EVENTS = 200
KILL_AT = (50, 100, 150)
SENDERS = 4


def _counts(db: Database) -> dict[str, int]:
    with db.transaction() as session:
        return {**inbox.counts(session), **outbox.counts(session)}


class Sender(threading.Thread):
    """Posts every event until it is accepted, through restarts, like a retrying sender."""

    def __init__(self, url: str, secret: str, run: str) -> None:
        super().__init__(daemon=True)
        self.url, self.secret, self.run_id = url, secret, run
        self.statuses: dict[str, int] = {}
        self.error: BaseException | None = None

    def msg_id(self, number: int) -> str:
        return f"msg_{self.run_id}_{number:04d}"

    def run(self) -> None:
        # Several connections at once, so a kill lands with several requests in flight.
        def send(numbers: range) -> None:
            with httpx.Client(base_url=self.url, timeout=10.0) as client:
                for number in numbers:
                    msg_id = self.msg_id(number)
                    body = incident_event(number)
                    self.statuses[msg_id] = post_until_accepted(client, self.secret, msg_id, body)

        try:
            with ThreadPoolExecutor(SENDERS) as pool:
                futures = [pool.submit(send, range(i, EVENTS, SENDERS)) for i in range(SENDERS)]
                for future in futures:
                    future.result()
        except BaseException as exc:
            self.error = exc


def _crash_and_recover(
    server: ServeProcess, db: Database, secret: str, report: Callable[[str], None], mode: str
) -> None:
    server.cairn("db", "upgrade")
    server.start()
    assert httpx.get(f"{server.url}/readyz").json()["mode"] == mode.split()[0]
    sender = Sender(server.url, secret, uuid.uuid4().hex[:8])
    started = time.monotonic()
    sender.start()
    at_kill = []
    for threshold in KILL_AT:
        while len(sender.statuses) < threshold and sender.is_alive():
            time.sleep(0.005)
        server.kill()
        at_kill.append(_counts(db))
        server.start()
    sender.join(timeout=300)
    assert sender.error is None, repr(sender.error)
    assert not sender.is_alive()
    sent = time.monotonic() - started

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        counts = _counts(db)
        if counts["processed"] == counts["accepted"] and counts["pending"] + counts["leased"] == 0:
            break
        time.sleep(0.1)
    drained = time.monotonic() - started

    # Every event got a 2xx; a 200 means ingress had committed it before a kill ate the reply.
    assert len(sender.statuses) == EVENTS
    assert set(sender.statuses.values()) <= {200, 202}
    with db.transaction() as session:
        counts = {**inbox.counts(session), **outbox.counts(session)}
        recorded = audit.entries(session, action="incident.recorded", limit=10 * EVENTS)
        stored = incidents.list_all(session, limit=10 * EVENTS)
        captured = audit.entries(session, action="lesson.captured", limit=10 * EVENTS)
        drafts = lessons.list_lessons(session)
    assert counts["accepted"] == EVENTS, counts
    assert counts["processed"] == EVENTS, server.log_tail()
    # Three messages per resolved incident: inbound, the recurrence check, the capture.
    assert counts["done"] == 3 * EVENTS and counts["dead"] == 0, counts
    per_delivery = Counter(entry.details["inbox_id"] for entry in recorded)
    assert len(per_delivery) == EVENTS
    assert set(per_delivery.values()) == {1}, "some event was processed more than once"
    assert len({incident.ref for incident in stored}) == EVENTS
    per_lesson = Counter(entry.subject for entry in captured)
    assert len(per_lesson) == len(drafts) == EVENTS
    assert set(per_lesson.values()) == {1}, "some draft lesson was captured more than once"

    # The same 200 events again, same ids, fresh signatures: nothing new anywhere.
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        replies = Counter(
            post_until_accepted(client, secret, sender.msg_id(n), incident_event(n))
            for n in range(EVENTS)
        )
    assert replies == Counter({200: EVENTS})
    time.sleep(1.0)  # give any (wrongly) queued work the chance to show up before counting
    after = _counts(db)
    with db.transaction() as session:
        recorded_after = len(audit.entries(session, action="incident.recorded", limit=10 * EVENTS))
    assert after == counts
    assert recorded_after == EVENTS
    server.stop()

    lost_replies = sum(1 for status in sender.statuses.values() if status == 200)
    backlog = [c["accepted"] - c["processed"] for c in at_kill]
    report(
        f"{mode}: {EVENTS} events from {SENDERS} concurrent senders, {len(KILL_AT)} kill -9; "
        f"accepted/processed at each kill "
        f"{[(c['accepted'], c['processed']) for c in at_kill]} (unprocessed backlog {backlog}); "
        f"{lost_replies} replies lost to a kill and answered 200 on resend; all sent in "
        f"{sent:.1f}s, all processed after {drained:.1f}s; processed exactly once: "
        f"{len(per_delivery)}/{EVENTS}, draft lessons captured once: {len(per_lesson)}/{EVENTS}; "
        f"redelivery of {EVENTS}: {replies[200]}x 200, 0 new rows"
    )


def _env(database_url: str, secret: str, **extra: str) -> dict[str, str]:
    return {
        "CAIRN_DATABASE_URL": database_url,
        "CAIRN_GENERIC_WEBHOOK_SECRET": secret,
        "CAIRN_PORT": str(free_port()),
        "CAIRN_LEASE_SECONDS": "2",
        "CAIRN_REPUBLISH_SECONDS": "3",
        "CAIRN_POLL_INTERVAL": "0.2",
        "CAIRN_BROKER_URL": "",
        **extra,
    }


@pytest.mark.slow
def test_embedded_sqlite_survives_kill_9(
    sqlite_url: str, webhook_secret: str, tmp_path: Path, report: Callable[[str], None]
) -> None:
    server = ServeProcess(_env(sqlite_url, webhook_secret), tmp_path / "serve.log")
    db = Database(sqlite_url)
    try:
        _crash_and_recover(server, db, webhook_secret, report, "embedded on SQLite")
    finally:
        server.stop()
        db.dispose()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbit
def test_postgres_rabbitmq_survives_kill_9(
    postgres_url: str,
    rabbit_url: str,
    rabbit_prefix: str,
    webhook_secret: str,
    tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    env = _env(
        postgres_url, webhook_secret, CAIRN_BROKER_URL=rabbit_url, CAIRN_BROKER_PREFIX=rabbit_prefix
    )
    server = ServeProcess(env, tmp_path / "serve.log")
    db = Database(postgres_url)
    try:
        _crash_and_recover(server, db, webhook_secret, report, "rabbitmq with PostgreSQL")
    finally:
        server.stop()
        db.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_nats_survives_kill_9(
    postgres_url: str,
    nats_url: str,
    nats_prefix: str,
    webhook_secret: str,
    tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    env = _env(
        postgres_url, webhook_secret, CAIRN_BROKER_URL=nats_url, CAIRN_BROKER_PREFIX=nats_prefix
    )
    server = ServeProcess(env, tmp_path / "serve.log")
    db = Database(postgres_url)
    try:
        _crash_and_recover(server, db, webhook_secret, report, "nats with PostgreSQL")
    finally:
        server.stop()
        db.dispose()
