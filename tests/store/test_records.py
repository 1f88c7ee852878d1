"""Records contract: schema migrations, UTC timestamps, incidents, work items and the audit log."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import StatementError

from core.base import utcnow
from core.incident import Incident, IncidentStatus, Severity
from core.work import System, WorkItem
from store import audit, inbox, incidents, migrate, outbox, work_items
from store.engine import Database

PLUS_FIVE_THIRTY = timezone(timedelta(hours=5, minutes=30))
TICK = timedelta(microseconds=1)


def make_incident(external_id: str = "PABC123", **changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "source": "pagerduty",
        "external_id": external_id,
        "title": "Checkout latency",
        "status": IncidentStatus.TRIGGERED,
        "severity": Severity.HIGH,
        "services": ("checkout", "payments"),
        "teams": ("payments",),
        "started_at": datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
        "url": "https://acme.pagerduty.com/incidents/PABC123",
        "contributing_factors": ("retry storm", "no jitter"),
    }
    return Incident(**(fields | changes))


def make_work_item(ref: str = "github:acme/api#1", **changes: Any) -> WorkItem:
    fields: dict[str, Any] = {
        "system": System.GITHUB,
        "ref": ref,
        "url": "https://github.com/acme/api/pull/1",
        "project": "acme/api",
        "type": "pull_request",
        "title": "Add retries",
        "labels": ("payments",),
        "changed_paths": ("src/pay.py", "src/retry.py"),
        "base_branch": "main",
    }
    return WorkItem(**(fields | changes))


# --- schema ------------------------------------------------------------------------------------


def test_migrations_bring_the_database_to_head(db: Database) -> None:
    head = migrate.head_revision()

    assert head is not None
    assert migrate.current_revision(db) == head


def test_upgrading_again_is_a_no_op(db: Database) -> None:
    with db.transaction() as session:
        audit.record(session, actor="a", action="kept", subject="s", details={}, now=utcnow())

    assert migrate.upgrade(db) == migrate.head_revision()

    with db.transaction() as session:
        assert audit.count_by_action(session) == {"kept": 1}


def test_migrations_create_every_table(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())

    assert {
        "inbox",
        "outbox",
        "incidents",
        "work_items",
        "work_item_events",
        "lessons",
        "lesson_versions",
        "placements",
        "signals",
        "audit_log",
    } <= tables


def test_an_empty_database_has_no_revision(database_url: str) -> None:
    empty = Database(database_url)
    try:
        assert migrate.current_revision(empty) is None
        assert migrate.upgrade(empty) == migrate.head_revision()
    finally:
        empty.dispose()


# --- timestamps --------------------------------------------------------------------------------


def test_timestamps_come_back_aware_in_utc(db: Database) -> None:
    local = datetime(2025, 3, 1, 15, 0, 15, 123456, tzinfo=PLUS_FIVE_THIRTY)

    with db.transaction() as session:
        audit.record(session, actor="a", action="x", subject="s", details={}, now=local)
        inbox_id = inbox.accept(
            session, source="generic", delivery_key="d", headers={}, body=b"", now=local
        )
        work_items.record(session, make_work_item(), local)
    assert inbox_id is not None

    with db.transaction() as session:
        [entry] = audit.entries(session)
        delivery = inbox.get(session, inbox_id)
        [(observed_at, _)] = work_items.events_since(session, local - timedelta(seconds=1))
    assert delivery is not None

    for stamp in (entry.at, delivery.received_at, observed_at):
        assert stamp == local
        assert stamp.tzinfo is UTC
        assert (stamp.hour, stamp.minute, stamp.microsecond) == (9, 30, 123456)


def test_timestamps_compare_as_instants_across_offsets(db: Database) -> None:
    utc = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    with db.transaction() as session:
        work_items.record(session, make_work_item(), utc)

    with db.transaction() as session:
        just_after = work_items.events_since(session, utc.astimezone(PLUS_FIVE_THIRTY) + TICK)
        at = work_items.events_since(session, utc.astimezone(PLUS_FIVE_THIRTY))

    assert just_after == []
    assert [when for when, _ in at] == [utc]


@pytest.mark.parametrize("where", ["audit", "inbox", "outbox"])
def test_naive_timestamps_are_refused(db: Database, where: str) -> None:
    naive = datetime(2025, 3, 1, 9, 30)

    with pytest.raises(StatementError) as exc, db.transaction() as session:
        if where == "audit":
            audit.record(session, actor="a", action="x", subject="s", details={}, now=naive)
            session.flush()
        elif where == "inbox":
            inbox.accept(
                session, source="generic", delivery_key="d", headers={}, body=b"", now=naive
            )
        else:
            outbox.enqueue(session, topic="t", payload={}, key="k", now=naive)

    assert isinstance(exc.value.orig, ValueError)
    assert "naive" in str(exc.value.orig)
    with db.transaction() as session:
        assert audit.entries(session) == []
        assert inbox.counts(session)["accepted"] == 0
        assert sum(outbox.counts(session).values()) == 0


# --- incidents ---------------------------------------------------------------------------------


def test_upsert_reports_new_then_known(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        assert incidents.upsert(session, make_incident(), now) is True
    with db.transaction() as session:
        assert (
            incidents.upsert(session, make_incident(status=IncidentStatus.ACKNOWLEDGED), now)
            is False
        )


def test_incident_round_trips_exactly(db: Database) -> None:
    incident = make_incident(
        postmortem_url="https://docs.example.com/pm/1",
        summary="Retries without jitter amplified a blip.",
        action_items=("add jitter",),
    )
    with db.transaction() as session:
        incidents.upsert(session, incident, utcnow())

    with db.transaction() as session:
        assert incidents.get(session, "pagerduty:PABC123") == incident


def test_upsert_keeps_the_latest_state(db: Database) -> None:
    now = utcnow()
    triggered = make_incident()
    resolved = make_incident(
        status=IncidentStatus.RESOLVED,
        severity=Severity.CRITICAL,
        resolved_at=datetime(2025, 3, 1, 11, 0, tzinfo=UTC),
    )
    with db.transaction() as session:
        incidents.upsert(session, triggered, now)
    with db.transaction() as session:
        incidents.upsert(session, resolved, now + timedelta(minutes=90))

    with db.transaction() as session:
        assert incidents.get(session, triggered.ref) == resolved
        assert incidents.list_all(session) == [resolved]


def test_unknown_incident_is_none(db: Database) -> None:
    with db.transaction() as session:
        assert incidents.get(session, "pagerduty:nope") is None
        assert incidents.list_all(session) == []


def test_same_external_id_from_two_trackers_are_two_incidents(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        assert incidents.upsert(session, make_incident("42"), now) is True
        assert incidents.upsert(session, make_incident("42", source="opsgenie"), now) is True

    with db.transaction() as session:
        assert incidents.get(session, "pagerduty:42") is not None
        assert incidents.get(session, "opsgenie:42") is not None


def test_list_all_is_most_recently_updated_first_with_a_limit(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        for n, minutes in enumerate([5, 1, 9]):
            incidents.upsert(session, make_incident(f"I{n}"), now + timedelta(minutes=minutes))
    with db.transaction() as session:
        incidents.upsert(session, make_incident("I1", title="Bumped"), now + timedelta(hours=1))

    with db.transaction() as session:
        everything = incidents.list_all(session)
        two = incidents.list_all(session, limit=2)

    assert [i.external_id for i in everything] == ["I1", "I2", "I0"]
    assert everything[0].title == "Bumped"
    assert [i.external_id for i in two] == ["I1", "I2"]


# --- work items --------------------------------------------------------------------------------


def test_record_reports_new_then_known_and_get_returns_the_latest(db: Database) -> None:
    now = utcnow()
    opened = make_work_item()
    relabelled = make_work_item(labels=("payments", "retries"), title="Add bounded retries")

    with db.transaction() as session:
        assert work_items.record(session, opened, now) is True
    with db.transaction() as session:
        assert work_items.record(session, relabelled, now + timedelta(minutes=1)) is False

    with db.transaction() as session:
        assert work_items.get(session, opened.ref) == relabelled
        assert work_items.get(session, "github:acme/api#999") is None


def test_events_since_keeps_every_observed_state_oldest_first(db: Database) -> None:
    t0 = utcnow()
    states = [make_work_item(title=f"v{n}") for n in range(3)]
    other = make_work_item("jira:PAY-1", system=System.JIRA, project="PAY", type="Story", url=None)
    with db.transaction() as session:
        work_items.record(session, states[0], t0)
        work_items.record(session, other, t0 + timedelta(seconds=15))
    with db.transaction() as session:
        work_items.record(session, states[1], t0 + timedelta(seconds=30))
        work_items.record(session, states[2], t0 + timedelta(seconds=60))

    with db.transaction() as session:
        everything = work_items.events_since(session, t0)
        recent = work_items.events_since(session, t0 + timedelta(seconds=30))

    assert everything == [
        (t0, states[0]),
        (t0 + timedelta(seconds=15), other),
        (t0 + timedelta(seconds=30), states[1]),
        (t0 + timedelta(seconds=60), states[2]),
    ]
    assert recent == everything[2:]


def test_events_are_ordered_by_observation_time_not_arrival(db: Database) -> None:
    t0 = utcnow()
    late, early = make_work_item(title="late"), make_work_item(title="early")
    with db.transaction() as session:
        work_items.record(session, late, t0 + timedelta(minutes=2))
        work_items.record(session, early, t0 + timedelta(minutes=1))

    with db.transaction() as session:
        events = work_items.events_since(session, t0)

    assert [item.title for _, item in events] == ["early", "late"]


def test_events_observed_at_the_same_time_keep_their_arrival_order(db: Database) -> None:
    now = utcnow()
    titles = ["first", "second", "third"]
    with db.transaction() as session:
        for title in titles:
            work_items.record(session, make_work_item(title=title), now)

    with db.transaction() as session:
        assert [i.title for _, i in work_items.events_since(session, now)] == titles


# --- audit log ---------------------------------------------------------------------------------


def record_audit(db: Database, *entries: tuple[str, str, dict[str, Any]]) -> datetime:
    now = utcnow()
    with db.transaction() as session:
        for n, (action, subject, details) in enumerate(entries):
            audit.record(
                session,
                actor="router",
                action=action,
                subject=subject,
                details=details,
                now=now + timedelta(seconds=n),
            )
    return now


def test_audit_entries_come_back_oldest_first_with_their_details(db: Database) -> None:
    details = {"rule": {"id": "payments-prs", "version": 7}, "lessons": ["a", "b"], "ok": True}
    now = record_audit(
        db,
        ("placement.planned", "github:acme/api#1", details),
        ("placement.embedded", "github:acme/api#1", {}),
    )

    with db.transaction() as session:
        first, second = audit.entries(session)

    assert (first.at, first.actor, first.action, first.subject, first.details) == (
        now,
        "router",
        "placement.planned",
        "github:acme/api#1",
        details,
    )
    assert (second.at, second.action, second.details) == (
        now + timedelta(seconds=1),
        "placement.embedded",
        {},
    )
    assert first.id < second.id


def test_audit_entries_filter_by_action_subject_and_limit(db: Database) -> None:
    record_audit(
        db,
        ("placement.planned", "github:acme/api#1", {"n": 1}),
        ("placement.planned", "jira:PAY-1", {"n": 2}),
        ("lesson.published", "retry-budgets", {"n": 3}),
        ("placement.planned", "github:acme/api#1", {"n": 4}),
    )

    def numbers(**filters: Any) -> list[int]:
        with db.transaction() as session:
            return [e.details["n"] for e in audit.entries(session, **filters)]

    assert numbers() == [1, 2, 3, 4]
    assert numbers(action="placement.planned") == [1, 2, 4]
    assert numbers(subject="github:acme/api#1") == [1, 4]
    assert numbers(action="placement.planned", subject="jira:PAY-1") == [2]
    assert numbers(action="lesson.published", subject="jira:PAY-1") == []
    assert numbers(action="placement.planned", limit=2) == [1, 2]
    assert numbers(limit=1) == [1]


def test_count_by_action(db: Database) -> None:
    with db.transaction() as session:
        assert audit.count_by_action(session) == {}

    record_audit(
        db,
        ("placement.planned", "a", {}),
        ("placement.planned", "b", {}),
        ("signal.ticked", "a", {}),
    )

    with db.transaction() as session:
        assert audit.count_by_action(session) == {"placement.planned": 2, "signal.ticked": 1}


def test_audit_entries_written_in_a_failed_transaction_are_not_kept(db: Database) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort), db.transaction() as session:
        audit.record(session, actor="a", action="x", subject="s", details={}, now=utcnow())
        raise Abort

    with db.transaction() as session:
        assert audit.entries(session) == []
