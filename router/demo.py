"""`cairn demo`: the loop on the embedded default, over real HTTP, printed step by step."""

import asyncio
import base64
import logging
import secrets
import socket
import tempfile
from pathlib import Path

import httpx
import uvicorn
from pydantic import SecretStr, TypeAdapter

import rules
from connectors.generic import webhook as generic
from core.lesson import Lesson, LessonStatus
from router.app import create_app
from router.compose import build_runtime
from router.lessons_service import LessonService
from router.settings import Settings
from rules import reference
from rules.loader import RuleSet
from store import audit, inbox, incidents, lessons, migrate, outbox, placements, work_items
from store.engine import Database

FIXTURES = Path(generic.__file__).parent / "fixtures"
RULES = Path(rules.__file__).parent / "examples"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _say(step: str, text: str) -> None:
    print(f"[{step:>9}] {text}", flush=True)


async def _wait_processed(db: Database, seconds: float = 30.0) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        with db.transaction() as session:
            counts = {**inbox.counts(session), **outbox.counts(session)}
        drained = counts["pending"] + counts["leased"] == 0
        if (drained and counts["processed"] == counts["accepted"]) or loop.time() > deadline:
            return counts
        await asyncio.sleep(0.05)


def _publish_example_lessons(db: Database) -> None:
    """Each example lesson goes through review: captured, submitted, approved, published."""
    found = TypeAdapter(list[Lesson]).validate_json((RULES / "lessons.json").read_bytes())
    service = LessonService(db)
    for lesson in found:
        author = lesson.provenance.captured_by
        service.create(lesson, author)
        service.submit(lesson.id, author)
        service.approve(lesson.id, "reviewer", notes=lesson.applicability.adaptation_notes)
        published = service.publish(lesson.id, "reviewer")
        _say(
            "lesson",
            f"{published.id}@{published.version} captured by {author}, approved by reviewer, "
            f"published ({published.mandate.value}, owner {published.owner}): {published.title}",
        )


def run_demo(workdir: str | None) -> int:
    """Run the demo; returns the process exit code (0 when every step behaved)."""
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="cairn-demo-") as tmp:
        base = Path(workdir or tmp)
        base.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_demo(base))


async def _demo(base: Path) -> int:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    port = _free_port()
    settings = Settings(
        database_url=SecretStr(f"sqlite:///{base / 'cairn-demo.db'}"),
        broker_url=None,
        generic_webhook_secret=SecretStr(secret),
        rules_path=RULES,
        port=port,
    )
    db = Database(settings.database_url.get_secret_value())
    revision = migrate.upgrade(db)
    _say("store", f"SQLite database {base / 'cairn-demo.db'} at schema revision {revision}")
    _publish_example_lessons(db)
    runtime = build_runtime(settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.02)
    _say("serve", f"Cairn API and embedded workers on http://127.0.0.1:{port}")
    rule_set = runtime.rules.rule_set
    assert rule_set is not None
    _say("rules", f"rule set {rule_set.version} from {RULES}: {[p.pack for p in rule_set.packs]}")
    failures = 0
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            failures += await _send_events(client, secret)
        counts = await _wait_processed(db)
        _say("pipeline", f"{counts['processed']} of {counts['accepted']} deliveries processed")
        failures += counts["processed"] != counts["accepted"]
        failures += _report(db, rule_set)
    finally:
        server.should_exit = True
        await serving
        db.dispose()
    _say("result", "all steps behaved as expected" if not failures else f"{failures} failed")
    return 1 if failures else 0


async def _send_events(client: httpx.AsyncClient, secret: str) -> int:
    failures = 0
    sent: list[tuple[str, bytes]] = []
    for name in ("incident_resolved", "work_item_pull_request", "work_item_jira_issue"):
        body = (FIXTURES / f"{name}.json").read_bytes()
        msg_id = f"msg_demo_{name}"
        response = await client.post(
            "/hooks/generic", content=body, headers=generic.sign(secret, msg_id, body)
        )
        _say("ingress", f"POST /hooks/generic {name}: {response.status_code} {response.json()}")
        failures += response.status_code != 202
        sent.append((msg_id, body))
    msg_id, body = sent[0]
    response = await client.post(
        "/hooks/generic", content=body, headers=generic.sign(secret, msg_id, body)
    )
    _say("redeliver", f"same webhook-id again: {response.status_code} {response.json()['status']}")
    failures += response.status_code != 200
    forged = generic.sign(secret, "msg_demo_forged", body)
    response = await client.post("/hooks/generic", content=body + b" ", headers=forged)
    _say("forged", f"body changed after signing: {response.status_code} {response.json()}")
    failures += response.status_code != 401
    return failures


def _report(db: Database, rule_set: RuleSet | None) -> int:
    with db.transaction() as session:
        for incident in incidents.list_all(session):
            _say(
                "incident",
                f"{incident.ref} [{incident.severity.value}, {incident.status.value}] "
                f"{incident.title}",
            )
        for draft in lessons.list_lessons(session, status=LessonStatus.DRAFT):
            _say(
                "capture",
                f"draft lesson {draft.id} from {', '.join(draft.provenance.source_incidents)}: "
                f"{draft.title} (services {list(draft.applicability.services)}, "
                f"evidence {[str(link) for link in draft.provenance.evidence_links]})",
            )
        for ref in ("github:acme/payments-api#481", "jira:PAY-42"):
            item = work_items.get(session, ref)
            if item is not None:
                _say("work item", f"{item.ref} ({item.type}, team {item.team}) {item.title}")
            for placement in placements.for_work_item(session, ref):
                due = "" if placement.due_at is None else f", due {placement.due_at:%Y-%m-%d}"
                _say(
                    "placement",
                    f"{ref} <- {placement.lesson_id}@{placement.lesson_version} as "
                    f"{placement.form.value}, {placement.mandate.value}{due}; rule "
                    f"{placement.rule_id} (rule set {placement.rule_set_version}), "
                    f"{placement.state.value}",
                )
        item = work_items.get(session, "jira:PAY-42")
        if item is not None and rule_set is not None:
            why = reference.route(rule_set, lessons.published(session), item, explain=True)
            for skipped in why.skipped:
                _say("explain", f"{item.ref}: {skipped.lesson_id} not placed: {skipped.reason}")
        for entry in audit.entries(session):
            _say("audit", f"{entry.action} {entry.subject}")
        _say("queue", f"outbox {outbox.counts(session)}")
        pr_placements = placements.for_work_item(session, "github:acme/payments-api#481")
        captured = lessons.get(session, "from-generic-inc-2041")
    placed_ok = [p.lesson_id for p in pr_placements] == ["derive-pool-size"]
    return 0 if placed_ok and captured is not None else 1
