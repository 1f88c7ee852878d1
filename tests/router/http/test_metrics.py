"""`/metrics`: deliveries by answer, stage timings, the outbox and the queue from the database."""

import time
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from connectors import generic
from connectors.generic.webhook import sign
from core.base import utcnow
from store.tables import OutboxRow
from tests.router.support import serving

FIXTURE = Path(generic.__file__).parent / "fixtures" / "incident_resolved.json"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_after_accept_duplicate_and_forgery(sqlite_url: str, webhook_secret: str) -> None:
    body = FIXTURE.read_bytes()
    with serving(sqlite_url, webhook_secret) as (client, _db):
        before = samples(client.get("/metrics").text)
        msg = f"msg_metrics_{time.monotonic_ns()}"
        assert (
            client.post(
                "/hooks/generic", content=body, headers=sign(webhook_secret, msg, body)
            ).status_code
            == 202
        )
        assert (
            client.post(
                "/hooks/generic", content=body, headers=sign(webhook_secret, msg, body)
            ).status_code
            == 200
        )
        forged = sign(webhook_secret, msg + "x", body)
        assert client.post("/hooks/generic", content=body + b" ", headers=forged).status_code == 401

        def delta(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return after.get(key, 0.0) - before.get(key, 0.0)

        # The counter moves just after the handler's commit; wait for both to show.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = samples(client.get("/metrics").text)
            # Three messages: inbound, the recurrence check and the capture of the draft lesson.
            done = after.get(("cairn_outbox_messages", (("status", "done"),)))
            if done == 3 and delta("cairn_pipeline_messages_total", outcome="done") == 3:
                break
            time.sleep(0.05)

    assert delta("cairn_webhook_deliveries_total", source="generic", outcome="accepted") == 1
    assert delta("cairn_webhook_deliveries_total", source="generic", outcome="duplicate") == 1
    assert delta("cairn_webhook_deliveries_total", source="generic", outcome="401") == 1
    assert delta("cairn_pipeline_messages_total", outcome="done") == 3
    assert after[("cairn_outbox_messages", (("status", "done"),))] == 3
    assert after[("cairn_outbox_messages", (("status", "dead"),))] == 0


def test_stage_timings_and_the_queue_depth_and_age(sqlite_url: str, webhook_secret: str) -> None:
    body = FIXTURE.read_bytes()
    with serving(sqlite_url, webhook_secret) as (client, db):
        before = samples(client.get("/metrics").text)
        # A message not due for a day waits in the queue, two minutes old.
        now = utcnow()
        with db.transaction() as session:
            session.add(
                OutboxRow(
                    topic="remind",
                    key="github:acme/api#9",
                    payload={"ref": "github:acme/api#9"},
                    status="pending",
                    attempts=0,
                    created_at=now - timedelta(minutes=2),
                    available_at=now + timedelta(days=1),
                )
            )
        msg = f"msg_stages_{time.monotonic_ns()}"
        headers = sign(webhook_secret, msg, body)
        assert client.post("/hooks/generic", content=body, headers=headers).status_code == 202
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = samples(client.get("/metrics").text)
            key = ("cairn_stage_seconds_count", (("phase", "handle"), ("topic", "inbound")))
            if after.get(key, 0) - before.get(key, 0) == 1:
                break
            time.sleep(0.05)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("cairn_stage_seconds_count", topic="inbound", phase="handle") == 1
    assert delta("cairn_stage_seconds_sum", topic="inbound", phase="handle") > 0
    assert delta("cairn_message_age_seconds_count", topic="inbound") == 1
    assert after[("cairn_queue_depth", (("topic", "remind"),))] == 1
    assert after[("cairn_queue_oldest_age_seconds", (("topic", "remind"),))] >= 120
    assert ("cairn_queue_depth", (("topic", "inbound"),)) not in after  # done: not waiting
