"""One GitHub delivery followed from ingress to its target write: JSON logs and one trace.

The real app and the real PyGithub client against the GitHub contract fake: the delivery's
correlation id is on the ingress log line, on every stage's lines and on the target write's,
and every span from the HTTP request to the write in the pull request shares one trace id.
"""

import io
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from connectors.github.fake import FakeGitHub
from core.base import utcnow
from core.placement import PlacementState
from core.work import System
from router.metrics import PLACEMENTS
from router.observability import changes, logs, tracing
from router.observability.correlation import CORRELATION_ID, TRACE_KEY, bound, split
from router.observability.stages import stamp
from store import placements
from store.engine import Database
from tests.router.http.test_metrics import samples
from tests.router.support import EXAMPLES, drain, publish_examples, serving
from tests.store.test_placements import make_placement

SECRET = "It's a Secret to Everybody"
REPO = "acme/payments-api"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logs.install(logging.StreamHandler(stream), "json")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.start(exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.stop()


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_a_delivery_is_followed_from_ingress_to_the_target_write(
    database_url: str,
    webhook_secret: str,
    tmp_path: Path,
    json_lines: io.StringIO,
    spans: InMemorySpanExporter,
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(EXAMPLES / "organisation.yaml", rules / "organisation.yaml")
    with FakeGitHub(actor="cairn-bot").running() as fake:
        github = fake.target()
        with serving(
            database_url,
            webhook_secret,
            prepare=publish_examples,
            rules_path=rules,
            github_webhook_secret=SECRET,
            targets={System.GITHUB: github},
        ) as (client, db):
            before = samples(client.get("/metrics").text)
            opened = fake.open_pull(
                REPO, title="More workers", body="Raise workers.", files=["src/pay/db/pool.py"]
            )
            fake.fail(429, times=1, retry_after="0")  # one rate-limited call, retried at once
            headers, body = FakeGitHub.signed(opened, SECRET, delivery_id="d-observed")
            assert client.post("/hooks/github", content=body, headers=headers).status_code == 202
            drain(db)
            assert fake.writes[(REPO, 1)] == 1
            after = samples(client.get("/metrics").text)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    form = "github.pr_checklist"
    assert moved("cairn_placements_total", form=form, state="planned") >= 1
    assert moved("cairn_placements_total", form=form, state="embedded") >= 1
    assert moved("cairn_outbound_calls_total", connector="github", result="ok") >= 2
    assert moved("cairn_rate_limit_waits_total", connector="github") == 1
    assert moved("cairn_stage_seconds_count", topic="embed", phase="perform") == 1
    assert moved("cairn_message_age_seconds_count", topic="route") >= 1

    records = _records(json_lines)
    accepted = [r for r in records if r["logger"] == "cairn.ingress"]
    assert len(accepted) == 1 and accepted[0]["message"].startswith("accepted github delivery")
    correlation_id = accepted[0]["correlation_id"]
    assert correlation_id.startswith("github:") and "d-observed" in correlation_id
    stage_lines = {
        r["message"].split(" took ")[0]: r["correlation_id"]
        for r in records
        if r["logger"] == "cairn.stage"
    }
    for step in ("stage inbound handle", "stage route handle", "stage embed perform"):
        assert stage_lines[step] == correlation_id, step
    assert {"time", "level", "logger", "message"} <= set(accepted[0])

    finished = spans.get_finished_spans()
    http = [s for s in finished if s.kind.name == "SERVER" and "/hooks/" in s.name]
    write = [s for s in finished if s.name == "cairn.embed perform"]
    assert len(http) == 1 and len(write) == 1
    assert write[0].attributes is not None
    assert write[0].attributes["cairn.correlation_id"] == correlation_id
    trace_id = http[0].context.trace_id
    followed = {s.name for s in finished if s.context.trace_id == trace_id}
    assert {"cairn.inbound handle", "cairn.route handle", "cairn.embed perform"} <= followed
    assert write[0].context.trace_id == trace_id


def test_messages_carry_the_correlation_id_and_stages_get_a_clean_payload() -> None:
    assert stamp({"ref": "x"}) == {"ref": "x"}  # nothing to carry: unchanged
    with bound("github:d-1"):
        stamped = stamp({"ref": "x"})
        assert CORRELATION_ID.get() == "github:d-1"
    assert CORRELATION_ID.get() is None
    assert stamped == {"ref": "x", TRACE_KEY: {"correlation_id": "github:d-1"}}
    assert split(stamped) == ({"ref": "x"}, {"correlation_id": "github:d-1"})
    assert split({"ref": "x", TRACE_KEY: "not a mapping"}) == ({"ref": "x"}, {})


def test_text_logs_stay_plain_and_json_logs_are_one_object_per_line() -> None:
    stream = io.StringIO()
    handler = logs.install(logging.StreamHandler(stream), "json")
    logger = logging.getLogger("cairn.test.observability")
    logger.addHandler(handler)
    try:
        with bound("jira:42"):
            logger.warning("went %s", "sideways")
        logs.install(handler, "text")
        logger.warning("plain")
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert json.loads(first)["correlation_id"] == "jira:42"
    assert json.loads(first)["message"] == "went sideways"
    assert second.endswith("WARNING cairn.test.observability: plain")
    assert len(handler.filters) == 1


def test_the_placement_counter_counts_the_state_a_placement_enters_not_every_update(
    db: Database,
) -> None:
    # cairn_placements_total counts placements by the state they entered: a reminder or a
    # revised text that keeps the state is not a placement entering it again.
    changes.install()
    planned = make_placement()
    form = planned.form.value

    def count(state: str) -> float:
        return float(PLACEMENTS.labels(form, state)._value.get())

    before_planned, before_embedded = count("planned"), count("embedded")
    with db.transaction() as session:
        placements.add(session, planned)
    embedded = planned.model_copy(update={"state": PlacementState.EMBEDDED, "handle": "item-1"})
    with db.transaction() as session:
        placements.update(session, embedded)
    with db.transaction() as session:
        placements.update(session, embedded.model_copy(update={"reminded_at": utcnow()}))
    assert count("planned") - before_planned == 1
    assert count("embedded") - before_embedded == 1
