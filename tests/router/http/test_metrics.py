"""`/metrics` counts deliveries by answer and reads outbox counts from the database."""

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from connectors import generic
from connectors.generic.webhook import sign
from tests.router.support import serving

FIXTURE = Path(generic.__file__).parent / "fixtures" / "incident_resolved.json"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_after_accept_duplicate_and_forgery(sqlite_url: str, webhook_secret: str) -> None:
    body = FIXTURE.read_bytes()
    with serving(sqlite_url, webhook_secret) as (client, _db):
        before = _samples(client.get("/metrics").text)
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
            after = _samples(client.get("/metrics").text)
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
