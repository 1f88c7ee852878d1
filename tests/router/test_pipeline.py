"""The Dispatcher on real databases: atomic effects, idempotent reruns, retries and dead letters."""

import itertools
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.generic import webhook as generic
from core.base import utcnow
from core.errors import PayloadError, TransientError, UnsupportedEventError
from core.events import IncidentEvent, WorkItemEvent
from router.pipeline import Dispatcher, Effect, LongRuns, Outcome, Run, Stage, StageContext
from router.ruleset.active import ActiveRules
from router.stages import build_stages, inbound
from store import audit, inbox, incidents, outbox, work_items
from store.engine import Database
from store.tables import OutboxRow

STAGES = build_stages(ActiveRules(None))
FIXTURES = Path(generic.__file__).parent / "fixtures"
TOPIC = "test.topic"
FOLLOW_UP = "test.follow_up"


class Recorder:
    """A stage that writes an audit row and emits follow-up work, then does `then`."""

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        self.then = then
        self.calls: list[tuple[int, datetime, dict[str, Any]]] = []

    def __call__(self, ctx: StageContext, payload: dict[str, Any]) -> None:
        self.calls.append((ctx.message_id, ctx.now, payload))
        audit.record(
            ctx.session,
            actor="test",
            action="test.ran",
            subject=f"message:{ctx.message_id}",
            details={"payload": payload},
            now=ctx.now,
        )
        ctx.emit(FOLLOW_UP, {"after": ctx.message_id}, key=f"follow:{ctx.message_id}")
        if self.then is not None:
            self.then()


def _raise(exc: Exception) -> Callable[[], None]:
    def then() -> None:
        raise exc

    return then


KEYS = itertools.count()


def lease(session: Session, message_id: int) -> None:
    """Hand one message to a worker, as a transport's claim does (an attempt, a 30 s lease)."""
    message = session.get(OutboxRow, message_id)
    assert message is not None
    message.status = outbox.MessageStatus.LEASED
    message.leased_until = utcnow() + timedelta(seconds=30)
    message.attempts += 1


def enqueue(
    db: Database,
    topic: str = TOPIC,
    payload: dict[str, Any] | None = None,
    *,
    leased: bool = True,
) -> int:
    """A message with a key of its own; `leased`: already handed to this worker."""
    with db.transaction() as session:
        message_id = outbox.enqueue(
            session, topic=topic, payload=payload or {"n": 1}, key=f"k{next(KEYS)}", now=utcnow()
        )
        if leased:
            lease(session, message_id)
        return message_id


def claim(db: Database, *, at: datetime | None = None, max_attempts: int = 8) -> list[int]:
    """Lease due messages the way a transport does (each claim counts as an attempt)."""
    with db.transaction() as session:
        messages = outbox.claim(
            session,
            now=at or utcnow(),
            lease=timedelta(seconds=30),
            max_attempts=max_attempts,
            limit=50,
        )
    return [m.id for m in messages]


def row(db: Database, message_id: int) -> dict[str, Any]:
    with db.transaction() as session:
        found = session.get(OutboxRow, message_id)
        assert found is not None
        return {
            "topic": found.topic,
            "status": found.status,
            "attempts": found.attempts,
            "available_at": found.available_at,
            "leased_until": found.leased_until,
            "done_at": found.done_at,
            "last_error": found.last_error,
        }


def messages(db: Database) -> list[tuple[str, dict[str, Any], str]]:
    """Every outbox row as (topic, payload, status), oldest first."""
    with db.transaction() as session:
        rows = session.scalars(select(OutboxRow).order_by(OutboxRow.id))
        return [(r.topic, r.payload, r.status) for r in rows]


def audit_rows(db: Database) -> list[tuple[str, str]]:
    with db.transaction() as session:
        return [(e.action, e.subject) for e in audit.entries(session)]


def dispatcher(db: Database, stage: Stage, *, max_attempts: int = 8) -> Dispatcher:
    return Dispatcher(db, {TOPIC: stage}, max_attempts=max_attempts)


# --- commit together or not at all --------------------------------------------------------------


def test_success_commits_writes_follow_up_and_done_mark_together(db: Database) -> None:
    stage = Recorder()
    message_id = enqueue(db, payload={"hello": "world"})
    claim(db)

    assert dispatcher(db, stage).run(message_id) is Outcome.DONE

    (call,) = stage.calls
    assert call[0] == message_id
    assert call[1].tzinfo is not None
    assert call[2] == {"hello": "world"}
    assert audit_rows(db) == [("test.ran", f"message:{message_id}")]
    state = row(db, message_id)
    assert state["status"] == "done"
    assert state["done_at"] is not None
    assert state["leased_until"] is None
    assert messages(db) == [
        (TOPIC, {"hello": "world"}, "done"),
        (FOLLOW_UP, {"after": message_id}, "pending"),
    ]


def test_failure_rolls_back_writes_and_follow_up(db: Database) -> None:
    stage = Recorder(then=_raise(RuntimeError("boom after writing")))
    message_id = enqueue(db, leased=False)
    assert claim(db) == [message_id]
    before = utcnow()

    assert dispatcher(db, stage).run(message_id) is Outcome.RETRY

    assert len(stage.calls) == 1
    assert audit_rows(db) == []
    assert [m[0] for m in messages(db)] == [TOPIC]  # no follow-up work survived
    state = row(db, message_id)
    assert state["status"] == "pending"
    assert state["attempts"] == 1
    assert state["leased_until"] is None
    assert state["done_at"] is None
    assert state["last_error"] == "RuntimeError: boom after writing"
    assert state["available_at"] > before


@pytest.mark.parametrize("succeed", [True, False], ids=["stage-succeeds", "stage-fails"])
def test_emit_creates_work_only_when_the_stage_succeeds(db: Database, succeed: bool) -> None:
    stage = Recorder(then=None if succeed else _raise(TransientError("later")))
    message_id = enqueue(db)
    dispatcher(db, stage).run(message_id)
    follow_ups = [m for m in messages(db) if m[0] == FOLLOW_UP]
    expected = [(FOLLOW_UP, {"after": message_id}, "pending")] if succeed else []
    assert follow_ups == expected


# --- idempotence --------------------------------------------------------------------------------


def test_running_a_done_message_again_does_nothing(db: Database) -> None:
    stage = Recorder()
    message_id = enqueue(db)
    run = dispatcher(db, stage)
    assert run.run(message_id) is Outcome.DONE
    after_first = (row(db, message_id), messages(db), audit_rows(db))

    assert run.run(message_id) is Outcome.ALREADY_DONE
    assert run.run(message_id) is Outcome.ALREADY_DONE

    assert len(stage.calls) == 1
    assert (row(db, message_id), messages(db), audit_rows(db)) == after_first


def test_unknown_message_id_is_already_done(db: Database) -> None:
    stage = Recorder()
    assert dispatcher(db, stage).run(987654) is Outcome.ALREADY_DONE
    assert stage.calls == []
    assert messages(db) == []


def test_concurrent_deliveries_of_one_message_run_it_once(db: Database) -> None:
    def linger() -> None:
        time.sleep(0.2)  # widen the window in which the second delivery arrives

    stage = Recorder(then=linger)
    message_id = enqueue(db)
    run = dispatcher(db, stage)
    outcomes: list[Outcome] = []
    threads = [threading.Thread(target=lambda: outcomes.append(run.run(message_id))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    assert sorted(outcomes) == sorted([Outcome.DONE, Outcome.ALREADY_DONE])
    assert len(stage.calls) == 1
    assert len(audit_rows(db)) == 1
    assert sum(1 for m in messages(db) if m[0] == FOLLOW_UP) == 1


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [PayloadError("field x is missing"), UnsupportedEventError("ping events are ignored")],
    ids=["payload", "unsupported"],
)
def test_permanent_errors_dead_letter_at_once(db: Database, error: Exception) -> None:
    stage = Recorder(then=_raise(error))
    message_id = enqueue(db)
    claim(db)

    assert dispatcher(db, stage, max_attempts=8).run(message_id) is Outcome.DEAD

    state = row(db, message_id)
    assert state["status"] == "dead"
    assert state["attempts"] == 1
    assert state["last_error"] == f"{type(error).__name__}: {error}"
    assert audit_rows(db) == []
    assert claim(db, at=utcnow() + timedelta(days=1)) == []
    with db.transaction() as session:
        assert [m.id for m, _ in outbox.dead_letters(session)] == [message_id]


def test_dead_message_is_not_run_again(db: Database) -> None:
    stage = Recorder(then=_raise(PayloadError("never")))
    message_id = enqueue(db)
    run = dispatcher(db, stage)
    assert run.run(message_id) is Outcome.DEAD
    assert run.run(message_id) is Outcome.ALREADY_DONE
    assert len(stage.calls) == 1
    assert row(db, message_id)["status"] == "dead"


@pytest.mark.parametrize("retry_after", [0.0, 90.0, 3600.0])
def test_transient_error_honours_retry_after(db: Database, retry_after: float) -> None:
    stage = Recorder(then=_raise(TransientError("rate limited", retry_after=retry_after)))
    message_id = enqueue(db)
    claim(db)
    before = utcnow()

    assert dispatcher(db, stage).run(message_id) is Outcome.RETRY

    after = utcnow()
    state = row(db, message_id)
    assert state["status"] == "pending"
    assert state["last_error"] == "TransientError: rate limited"
    expected = timedelta(seconds=retry_after)
    assert before + expected <= state["available_at"] <= after + expected
    assert claim(db, at=before + expected - timedelta(seconds=1)) == []
    assert claim(db, at=after + expected + timedelta(seconds=1)) == [message_id]


def test_transient_error_without_retry_after_backs_off(db: Database) -> None:
    stage = Recorder(then=_raise(TransientError("timeout")))
    message_id = enqueue(db)
    claim(db)
    before = utcnow()
    assert dispatcher(db, stage).run(message_id) is Outcome.RETRY
    available_at = row(db, message_id)["available_at"]
    assert available_at >= before + timedelta(seconds=1)
    assert available_at <= utcnow() + timedelta(seconds=300)
    assert claim(db) == []  # not due yet


def test_dead_after_max_attempts(db: Database) -> None:
    stage = Recorder(then=_raise(ConnectionError("target down")))
    message_id = enqueue(db, leased=False)
    run = dispatcher(db, stage, max_attempts=3)
    outcomes = []
    at = utcnow()
    for _ in range(3):
        at += timedelta(hours=1)  # later than any backoff
        assert claim(db, at=at, max_attempts=3) == [message_id]
        outcomes.append(run.run(message_id))

    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DEAD]
    state = row(db, message_id)
    assert state["status"] == "dead"
    assert state["attempts"] == 3
    assert state["last_error"] == "ConnectionError: target down"
    assert len(stage.calls) == 3
    assert audit_rows(db) == []
    assert claim(db, at=at + timedelta(days=1), max_attempts=3) == []


def test_unknown_topic_is_dead(db: Database) -> None:
    stage = Recorder()
    message_id = enqueue(db, topic="no.such.topic")

    assert dispatcher(db, stage).run(message_id) is Outcome.DEAD

    state = row(db, message_id)
    assert state["status"] == "dead"
    assert state["last_error"] is not None
    assert "no.such.topic" in state["last_error"]
    assert stage.calls == []


def test_topics_lists_registered_stages(db: Database) -> None:
    run = Dispatcher(db, {"b": Recorder(), "a": Recorder()})
    assert run.topics == ["a", "b"]


# --- the real inbound stage ---------------------------------------------------------------------


def deliver(db: Database, body: bytes, key: str, source: str = "generic") -> tuple[int, int]:
    """What ingress commits: an inbox row and its inbound message, in one transaction."""
    with db.transaction() as session:
        now = utcnow()
        inbox_id = inbox.accept(
            session,
            source=source,
            delivery_key=key,
            headers={"webhook-id": key, "content-type": "application/json"},
            body=body,
            now=now,
        )
        assert inbox_id is not None
        message_id = outbox.enqueue(
            session, topic=inbound.TOPIC, payload={"inbox_id": inbox_id}, key=key, now=now
        )
        lease(session, message_id)
    return inbox_id, message_id


def test_every_pipeline_topic_is_registered() -> None:
    assert set(STAGES) == {
        "inbound",
        "enrich",
        "capture",
        "capture_work",
        "capture_notify",
        "route",
        "diffuse",
        "hydrate",
        "embed",
        "observe",
        "recurrence",
        "remind",
    }


def test_inbound_records_an_incident(db: Database) -> None:
    body = (FIXTURES / "incident_resolved.json").read_bytes()
    inbox_id, message_id = deliver(db, body, "msg_1")

    assert Dispatcher(db, STAGES).run(message_id) is Outcome.DONE

    with db.transaction() as session:
        incident = incidents.get(session, "generic:INC-2041")
        entries = audit.entries(session)
        delivery = inbox.get(session, inbox_id)
    assert incident is not None
    (event,) = generic.parse({}, body)
    assert isinstance(event, IncidentEvent)
    assert incident == event.incident
    (entry,) = entries
    assert entry.actor == inbound.ACTOR
    assert (entry.action, entry.subject) == ("incident.recorded", "generic:INC-2041")
    assert entry.details == {
        "inbox_id": inbox_id,
        "source": "generic",
        "created": True,
        "status": "resolved",
    }
    assert delivery is not None
    assert delivery.processed_at is not None
    assert row(db, message_id)["status"] == "done"


def test_inbound_updates_a_known_incident(db: Database) -> None:
    data = json.loads((FIXTURES / "incident_resolved.json").read_bytes())
    first = dict(data, incident=dict(data["incident"], status="triggered"))
    run = Dispatcher(db, STAGES)
    _, message_1 = deliver(db, json.dumps(first).encode(), "msg_1")
    _, message_2 = deliver(db, json.dumps(data).encode(), "msg_2")

    assert run.run(message_1) is Outcome.DONE
    assert run.run(message_2) is Outcome.DONE

    with db.transaction() as session:
        incident = incidents.get(session, "generic:INC-2041")
        entries = audit.entries(session)
    assert incident is not None
    assert incident.status.value == "resolved"
    assert [(e.details["created"], e.details["status"]) for e in entries] == [
        (True, "triggered"),
        (False, "resolved"),
    ]


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("work_item_jira_issue.json", "jira:PAY-42"),
        ("work_item_pull_request.json", "github:acme/payments-api#481"),
    ],
)
def test_inbound_records_a_work_item(db: Database, name: str, ref: str) -> None:
    body = (FIXTURES / name).read_bytes()
    inbox_id, message_id = deliver(db, body, f"msg_{name}")

    assert Dispatcher(db, STAGES).run(message_id) is Outcome.DONE

    with db.transaction() as session:
        item = work_items.get(session, ref)
        history = work_items.events_since(session, datetime(2000, 1, 1, tzinfo=UTC))
        entries = audit.entries(session)
    assert item is not None
    (event,) = generic.parse({}, body)
    assert isinstance(event, WorkItemEvent)
    assert item == event.work_item
    assert [h[1].ref for h in history] == [ref]
    assert [(e.action, e.subject, e.details["inbox_id"]) for e in entries] == [
        ("work_item.recorded", ref, inbox_id)
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({}, "integer inbox_id"),
        ({"inbox_id": "1"}, "integer inbox_id"),
        ({"inbox_id": 424242}, "does not exist"),
    ],
    ids=["missing", "string", "unknown"],
)
def test_inbound_dead_letters_bad_messages(
    db: Database, payload: dict[str, Any], reason: str
) -> None:
    message_id = enqueue(db, topic=inbound.TOPIC, payload=payload)
    assert Dispatcher(db, STAGES).run(message_id) is Outcome.DEAD
    state = row(db, message_id)
    assert state["last_error"] is not None
    assert state["last_error"].startswith("PayloadError: ")
    assert reason in state["last_error"]
    assert audit_rows(db) == []


def test_inbound_dead_letters_an_unknown_source(db: Database) -> None:
    body = (FIXTURES / "incident_resolved.json").read_bytes()
    inbox_id, message_id = deliver(db, body, "msg_x", source="retired-source")
    assert Dispatcher(db, STAGES).run(message_id) is Outcome.DEAD
    last_error = row(db, message_id)["last_error"]
    assert last_error is not None
    assert "retired-source" in last_error
    with db.transaction() as session:
        delivery = inbox.get(session, inbox_id)
        assert delivery is not None
        assert delivery.processed_at is None
        assert incidents.list_all(session) == []


def test_inbound_dead_letters_an_invalid_body_and_leaves_it_unprocessed(db: Database) -> None:
    inbox_id, message_id = deliver(db, b'{"type": "incident", "incident": {}}', "msg_bad")
    assert Dispatcher(db, STAGES).run(message_id) is Outcome.DEAD
    last_error = row(db, message_id)["last_error"]
    assert last_error is not None
    assert "incident.title" in last_error
    with db.transaction() as session:
        delivery = inbox.get(session, inbox_id)
        assert delivery is not None
        assert delivery.processed_at is None
    assert audit_rows(db) == []


# --- effects: an outside call between two transactions -----------------------------------------


class Calls:
    """Records what an Effect's three steps saw."""

    def __init__(self, record_failures: int = 0) -> None:
        self.performed: list[Any] = []
        self.recorded: list[Any] = []
        self.record_failures = record_failures
        self.in_transaction: list[bool] = []


def effect(db: Database, calls: Calls) -> Effect:
    def prepare(ctx: StageContext, payload: dict[str, Any]) -> Any:
        return None if payload.get("skip") else payload["n"]

    def perform(plan: Any) -> Any:
        # SQLite refuses a second writer while a transaction holds the lock: prove none is open.
        with db.transaction() as session:
            audit.record(
                session, actor="t", action="effect.performed", subject="s", details={}, now=utcnow()
            )
        calls.performed.append(plan)
        return plan * 10

    def record(ctx: StageContext, plan: Any, result: Any) -> None:
        if calls.record_failures:
            calls.record_failures -= 1
            raise RuntimeError("database went away")
        audit.record(
            ctx.session,
            actor="t",
            action="effect.recorded",
            subject="s",
            details={"result": result},
            now=ctx.now,
        )
        calls.recorded.append(result)

    return Effect(prepare=prepare, perform=perform, record=record)


def test_an_effect_calls_out_with_no_transaction_open_and_records_with_the_done_mark(
    db: Database,
) -> None:
    calls = Calls()
    dispatcher = Dispatcher(db, {TOPIC: effect(db, calls)})
    message_id = enqueue(db, payload={"n": 4})
    assert dispatcher.run(message_id) == Outcome.DONE
    assert dispatcher.run(message_id) == Outcome.ALREADY_DONE
    assert (calls.performed, calls.recorded) == ([4], [40])
    with db.transaction() as session:
        assert outbox.counts(session)["done"] == 1
        assert audit.count_by_action(session) == {"effect.performed": 1, "effect.recorded": 1}


def test_an_effect_with_nothing_to_do_completes_without_calling_out(db: Database) -> None:
    calls = Calls()
    dispatcher = Dispatcher(db, {TOPIC: effect(db, calls)})
    assert dispatcher.run(enqueue(db, payload={"n": 1, "skip": True})) == Outcome.DONE
    assert calls.performed == []


def test_an_effect_whose_record_fails_is_retried_and_calls_out_again(db: Database) -> None:
    calls = Calls(record_failures=1)
    dispatcher = Dispatcher(db, {TOPIC: effect(db, calls)})
    message_id = enqueue(db, payload={"n": 2})
    assert dispatcher.run(message_id) == Outcome.RETRY
    [again] = claim(db, at=utcnow() + timedelta(minutes=10))
    assert dispatcher.run(again) == Outcome.DONE
    # The call ran twice: this is why targets must read their markers before writing.
    assert (calls.performed, calls.recorded) == ([2, 2], [20])


# --- run tokens: one delivery of a message runs at a time ---------------------------------------


class Blocked:
    """An Effect whose call blocks until released, like an embed in flight."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.performed: list[Any] = []
        self.recorded: list[Any] = []

    def effect(self) -> Effect:
        def prepare(ctx: StageContext, payload: dict[str, Any]) -> Any:
            return payload["n"]

        def perform(plan: Any) -> Any:
            self.performed.append(plan)
            self.started.set()
            if not self.release.wait(30):
                raise TimeoutError("never released")
            return plan

        def record(ctx: StageContext, plan: Any, result: Any) -> None:
            self.recorded.append(result)

        return Effect(prepare=prepare, perform=perform, record=record)


def claimed(db: Database, *, at: datetime | None = None) -> outbox.Message:
    with db.transaction() as session:
        [message] = outbox.claim(
            session, now=at or utcnow(), lease=timedelta(seconds=30), max_attempts=8
        )
    return message


def test_a_broker_delivery_does_not_run_while_another_still_runs_it(db: Database) -> None:
    blocked = Blocked()
    run = Dispatcher(db, {TOPIC: blocked.effect()}, count_attempts=True)
    message_id = enqueue(db)
    attempts = row(db, message_id)["attempts"]
    first_outcome: list[Outcome] = []
    first = threading.Thread(
        target=lambda: first_outcome.append(run.run(message_id, lease_seconds=0.3))
    )
    first.start()
    try:
        assert blocked.started.wait(10)
        # Several leases long: the first run renews its own, so it has not lapsed.
        time.sleep(1.0)
        assert run.run(message_id, lease_seconds=0.3) is Outcome.BUSY
    finally:
        blocked.release.set()
        first.join(timeout=30)

    assert first_outcome == [Outcome.DONE]
    assert (blocked.performed, blocked.recorded) == ([1], [1])
    assert (row(db, message_id)["status"], row(db, message_id)["attempts"]) == (
        "done",
        attempts + 1,  # the refused delivery counted no attempt
    )


def test_a_broker_delivery_takes_over_when_the_first_runs_lease_lapsed(db: Database) -> None:
    calls = Calls()
    message_id = enqueue(db, payload={"n": 3})
    with db.transaction() as session:  # a delivery that started, then its process was killed
        started = outbox.start_attempt(
            session,
            message_id,
            8,
            token=outbox.new_token(),
            now=utcnow() - timedelta(seconds=31),
            lease=timedelta(seconds=30),
        )
    assert started is None

    run = Dispatcher(db, {TOPIC: effect(db, calls)}, count_attempts=True)
    assert run.run(message_id) is Outcome.DONE
    assert (calls.performed, calls.recorded) == ([3], [30])


def test_a_worker_that_lost_its_lease_records_nothing_over_the_new_holder(db: Database) -> None:
    blocked = Blocked()
    run = Dispatcher(db, {TOPIC: blocked.effect()})
    message_id = enqueue(db, leased=False)
    mine = claimed(db)
    outcomes: list[Outcome] = []
    worker = threading.Thread(target=lambda: outcomes.append(run.run(message_id, token=mine.token)))
    worker.start()
    try:
        assert blocked.started.wait(10)
        # As if this worker had hung past its lease: another worker's claim takes over.
        theirs = claimed(db, at=utcnow() + timedelta(seconds=31))
    finally:
        blocked.release.set()
        worker.join(timeout=30)

    assert outcomes == [Outcome.BUSY]
    assert blocked.recorded == []
    assert row(db, message_id)["status"] == "leased"
    assert run.run(message_id, token=theirs.token) is Outcome.DONE
    assert blocked.recorded == [1]


def test_a_worker_that_lost_its_lease_does_not_hand_the_message_back(db: Database) -> None:
    def perform(plan: Any) -> Any:
        # This worker's call outlasted its lease and another worker took the message over.
        claimed(db, at=utcnow() + timedelta(seconds=31))
        raise TransientError("the target timed out")

    stage = Effect(prepare=lambda ctx, payload: 1, perform=perform, record=lambda *_: None)
    message_id = enqueue(db, leased=False)
    mine = claimed(db)
    outcome = dispatcher(db, stage).run(message_id, token=mine.token)

    assert outcome is Outcome.BUSY
    found = row(db, message_id)
    assert (found["status"], found["attempts"], found["last_error"]) == ("leased", 2, None)


def _watched(lease: float, lasts: float, renews: list[int]) -> None:
    """A run of message 987654 watched by `LongRuns` for `lasts` seconds; `renews` gets each renewal
    a renewer made (the renewer here renews every third of the lease until the run ends)."""

    def renew(run: Run) -> None:
        while not run.ended.is_set():
            renews.append(run.message_id)
            run.ended.wait(lease / 3)

    runs = LongRuns(renew)
    run = runs.add(987654, "token", timedelta(seconds=lease))
    time.sleep(lasts)
    runs.remove(run)


def test_a_run_shorter_than_a_third_of_its_lease_starts_no_renewer() -> None:
    renews: list[int] = []
    _watched(lease=0.6, lasts=0.05, renews=renews)
    time.sleep(0.4)  # past the moment a renewal would have been due
    assert renews == []
    assert "cairn-lease-987654" not in {t.name for t in threading.enumerate()}


def test_a_run_that_lasts_is_renewed_before_its_lease_lapses_and_until_it_ends() -> None:
    started = time.monotonic()
    seen: list[float] = []

    def renew(run: Run) -> None:
        while not run.ended.is_set():
            seen.append(time.monotonic() - started)
            run.ended.wait(0.2)

    runs = LongRuns(renew)
    run = runs.add(1, "token", timedelta(seconds=0.6))
    time.sleep(1.1)
    runs.remove(run)
    time.sleep(0.25)
    count = len(seen)
    time.sleep(0.3)
    assert seen, "a run lasting nearly two leases was never renewed"
    # Not before a third of the lease (short runs need no thread), well before it lapses.
    assert 0.2 <= seen[0] < 0.6, seen
    assert len(seen) >= 3, seen  # then every third of the lease while it ran
    assert len(seen) == count, "the renewer went on after the run ended"
