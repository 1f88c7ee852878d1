"""Routing in the running service: placements from the route stage, live rule reloads, API."""

import json
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import rules
from connectors.generic.webhook import sign
from core.base import utcnow
from router.pipeline import Dispatcher, Outcome
from router.ruleset.active import ActiveRules
from router.stages import build_stages
from store import audit, flags, inbox, outbox, placements
from store.engine import Database
from store.tables import OutboxRow
from tests.router.support import EXAMPLES, PR, PR_REF, drain, publish_examples, serving


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    target.mkdir()
    for name in ("organisation.yaml", "team-payments.yaml"):
        shutil.copy(EXAMPLES / name, target / name)
    return target


@pytest.fixture
def client(database_url: str, webhook_secret: str, rules_dir: Path) -> Iterator[TestClient]:
    with serving(
        database_url,
        webhook_secret,
        prepare=publish_examples,
        rules_path=rules_dir,
        rules_reload_seconds=0.1,
    ) as (test_client, _db):
        yield test_client


def test_a_pull_request_gets_its_lesson_once_with_rule_and_version(
    client: TestClient, database_url: str, webhook_secret: str
) -> None:
    db = Database(database_url)
    body = PR.read_bytes()
    for delivery in ("msg_pr_1", "msg_pr_2"):  # the PR changes again: a second event
        response = client.post(
            "/hooks/generic", content=body, headers=sign(webhook_secret, delivery, body)
        )
        assert response.status_code == 202
        drain(db)
    version = client.get("/api/v1/rules").json()["version"]
    with db.transaction() as session:
        placed = placements.for_work_item(session, PR_REF)
        planned = audit.entries(session, action="placement.planned")
    db.dispose()
    assert [(p.lesson_id, p.rule_id, p.rule_set_version) for p in placed] == [
        ("derive-pool-size", "team-payments/pool-sizing-is-required-here", version)
    ]
    assert placed[0].mandate.value == "required"
    assert placed[0].due_at is not None
    assert 2.9 < (placed[0].due_at - placed[0].created_at).total_seconds() / 86400 <= 3.0
    assert len(planned) == 1
    assert planned[0].details["rule_set_version"] == version

    listed = client.get("/api/v1/placements", params={"work_item": PR_REF}).json()
    assert [p["lesson_id"] for p in listed["items"]] == ["derive-pool-size"]
    assert (listed["total"], listed["items"][0]["tier"]) == (1, "undelivered")


def test_rule_edits_are_picked_up_live_and_invalid_edits_are_refused(
    client: TestClient, rules_dir: Path
) -> None:
    before = client.get("/api/v1/rules").json()
    assert before["packs"] == ["organisation", "team-payments"]
    team = rules_dir / "team-payments.yaml"
    team.write_text(
        team.read_text().replace("max_items_per_work_item: 3", "max_items_per_work_item: 2")
    )

    def current() -> dict[str, object]:
        return dict(client.get("/api/v1/rules").json())

    deadline = time.monotonic() + 10
    while current()["version"] == before["version"] and time.monotonic() < deadline:
        time.sleep(0.05)
    changed = current()
    assert changed["version"] != before["version"]
    assert "cairn_rules_reload_failing 0.0" in client.get("/metrics").text

    team.write_text(team.read_text() + "\n  - id: broken\n    then: {form: nope}\n")
    deadline = time.monotonic() + 10
    while current()["last_error"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    broken = current()
    assert broken["version"] == changed["version"]  # the last valid set stays in force
    assert f"{team}:" in str(broken["last_error"])
    assert "then.form" in str(broken["last_error"])
    metrics = client.get("/metrics").text
    assert f'cairn_rules_info{{version="{changed["version"]}"}} 1.0' in metrics
    assert "cairn_rules_reload_failing 1.0" in metrics


def test_active_rules_swap_only_on_valid_change(rules_dir: Path, sqlite_db: Database) -> None:
    active = ActiveRules(rules_dir)
    first = active.version
    assert active.reload() is False
    with sqlite_db.transaction() as session:
        engine = active.engine(session)
        assert engine is not None and engine.rule_set.version == first
        assert active.engine(session) is engine  # cached while rules and lessons are unchanged
    (rules_dir / "extra.yaml").write_text(
        "pack: extra\nrules:\n  - id: r\n"
        "    lesson: {tags: [x]}\n    then: {form: jira.checklist}\n"
    )
    assert active.reload() is True
    assert active.version != first
    with sqlite_db.transaction() as session:
        recompiled = active.engine(session)
        assert recompiled is not None and recompiled.rule_set.version == active.version
    unconfigured = ActiveRules(None)
    assert unconfigured.version is None and unconfigured.reload() is False
    with sqlite_db.transaction() as session:
        assert unconfigured.engine(session) is None


def test_a_broken_rule_set_stops_start_up(rules_dir: Path) -> None:
    (rules_dir / "bad.yaml").write_text("pack: bad\nrules: []\n")
    with pytest.raises(rules.loader.RuleSetError) as info:
        ActiveRules(rules_dir)
    assert str(rules_dir / "bad.yaml") + ":2:" in str(info.value)
    assert json.dumps(str(info.value))  # printable, no objects in the message


def test_warm_compiles_outside_the_route_stage_and_follows_lesson_changes(
    rules_dir: Path, sqlite_db: Database
) -> None:
    active = ActiveRules(rules_dir)
    active.warm(sqlite_db)
    with sqlite_db.transaction() as session:
        warmed = active.engine(session)
    assert warmed is not None and warmed.lessons == ()
    publish_examples(sqlite_db)  # the lessons change: the next warm compiles again
    active.warm(sqlite_db)
    with sqlite_db.transaction() as session:
        rewarmed = active.engine(session)
    assert rewarmed is not None and rewarmed is not warmed
    assert sorted(lesson.id for lesson in rewarmed.lessons) == [
        "cache-bust-css",
        "derive-pool-size",
    ]


ADVICE_PACK = """
pack: advice
rules:
  - id: pool-advice
    description: Every pool lesson, as advice, on pull requests.
    flag_action: suppress_advisory
    lesson:
      tags: [connection-pool]
    work_item:
      systems: [github]
    then:
      form: github.pr_checklist
      mandate: invited
"""


def test_a_flagged_rule_with_suppress_advisory_places_no_advice_until_cleared(
    database_url: str, webhook_secret: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "advice.yaml").write_text(ADVICE_PACK)
    body = PR.read_bytes()
    with serving(database_url, webhook_secret, prepare=publish_examples, rules_path=rules) as (
        client,
        db,
    ):
        with db.transaction() as session:
            flags.raise_flag(session, "rule", "advice/pool-advice", {"value": 0.1}, utcnow())
        client.post("/hooks/generic", content=body, headers=sign(webhook_secret, "m1", body))
        drain(db)
        with db.transaction() as session:
            assert placements.for_work_item(session, PR_REF) == []
            [held] = audit.entries(session, action="placement.suppressed_by_flag")
            flags.clear(session, "rule", "advice/pool-advice", "cli:ops", utcnow())
        assert held.details["rule"] == "advice/pool-advice"
        client.post("/hooks/generic", content=body, headers=sign(webhook_secret, "m2", body))
        drain(db)
        with db.transaction() as session:
            placed = placements.for_work_item(session, PR_REF)
    assert [(p.lesson_id, p.mandate.value) for p in placed] == [("derive-pool-size", "invited")]


def _inbound_messages(db: Database, bodies: list[bytes]) -> list[int]:
    """What ingress commits for each body: an inbox row and its inbound message."""
    ids = []
    with db.transaction() as session:
        for n, body in enumerate(bodies):
            now = utcnow()
            inbox_id = inbox.accept(
                session, source="generic", delivery_key=f"d{n}", headers={}, body=body, now=now
            )
            assert inbox_id is not None
            ids.append(
                outbox.enqueue(
                    session, topic="inbound", payload={"inbox_id": inbox_id}, key=f"d{n}", now=now
                )
            )
        outbox.claim(session, now=utcnow(), lease=timedelta(seconds=30), max_attempts=8)
    return ids


def test_a_delivered_work_item_is_routed_in_the_inbound_transaction(
    db: Database, rules_dir: Path
) -> None:
    publish_examples(db)
    dispatcher = Dispatcher(db, build_stages(ActiveRules(rules_dir)))
    [message_id] = _inbound_messages(db, [PR.read_bytes()])

    assert dispatcher.run(message_id) is Outcome.DONE

    with db.transaction() as session:
        placed = placements.for_work_item(session, PR_REF)
        actions = [e.action for e in audit.entries(session)]
        queued = session.scalars(select(OutboxRow.topic).order_by(OutboxRow.id)).all()
    assert [p.lesson_id for p in placed] == ["derive-pool-size"]
    assert actions == ["work_item.recorded", "placement.planned"]
    assert queued == ["inbound", "embed"]  # no `route` message: it ran in the same transaction


def test_two_deliveries_about_one_work_item_at_once_place_its_lesson_once(
    db: Database, rules_dir: Path
) -> None:
    publish_examples(db)
    dispatcher = Dispatcher(db, build_stages(ActiveRules(rules_dir)))
    body = json.loads(PR.read_bytes())
    edited = {**body, "work_item": {**body["work_item"], "title": "An edited title"}}
    ids = _inbound_messages(db, [PR.read_bytes(), json.dumps(edited).encode()])
    start = threading.Barrier(2)

    def run(message_id: int) -> Outcome:
        start.wait()
        return dispatcher.run(message_id)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(run, ids))

    assert outcomes == [Outcome.DONE, Outcome.DONE]
    with db.transaction() as session:
        placed = placements.for_work_item(session, PR_REF)
        planned = audit.entries(session, action="placement.planned")
        embeds = session.scalars(select(OutboxRow.id).where(OutboxRow.topic == "embed")).all()
    assert [p.lesson_id for p in placed] == ["derive-pool-size"]
    assert len(planned) == 1
    assert len(embeds) == 1
