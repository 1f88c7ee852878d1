"""`cairn demo`: the whole loop on the embedded default, over real HTTP, printed step by step.

A PagerDuty incident becomes a draft lesson, goes through review and is published; a GitHub pull
request and a Jira issue receive their lessons; a simulated engineer ticks one in each; a lesson
reaches the demo repository's pull-request template through Cairn's own pull request, which is
merged; the captured lesson is revised to version 2 and both items show the new text; the
placements and signals are shown at the end. The outside systems are the contract fakes that
the tests use, served on loopback; Cairn talks to them through the real clients. The rules are
the example packs and the demo's template pack (`router.demo.template`), in the demo's directory.
"""

import asyncio
import json
import logging
import secrets
import socket
import tempfile
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn
from pydantic import SecretStr, TypeAdapter

import rules
from connectors.github.fake import FakeGitHub
from connectors.jira.fake import JiraFake
from connectors.lms_target import LmsTarget
from connectors.moodle.fake import MoodleFake
from connectors.pagerduty import webhook as pagerduty
from connectors.pagerduty.client import PagerDutyClient
from connectors.pagerduty.fake import FakePagerDuty
from core.access import SYSTEM, Role
from core.lesson import Lesson, Mandate
from core.work import System
from router.access.tokens import TokenService
from router.compose import build_runtime
from router.demo.github import github_demo_target, run_github_demo
from router.demo.jira import run_jira_demo
from router.demo.review import DemoApi, publish_examples, show_refusals
from router.demo.revision import run_revision_demo
from router.demo.template import demo_rules, run_template_demo
from router.demo.training import run_training_demo
from router.http.app import create_app
from router.reports.adoption import Filters, GroupBy, ReportService
from router.reports.compliance import ComplianceService
from router.settings import Settings
from store import audit, inbox, incidents, lessons, migrate, outbox, placements
from store.engine import Database

PD_FIXTURES = Path(pagerduty.__file__).parent / "fixtures"
RULES = Path(rules.__file__).parent / "examples"
PD_TOKEN = "pd-demo-api-token"  # noqa: S105 (the fake's own credential)


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


def run_demo(workdir: str | None, *, keep_serving: bool = False) -> int:
    """Run the demo; returns the process exit code (0 when every step behaved).

    The demo's own `[step]` lines go to stdout; the service's log goes to `cairn-demo.log` in
    the demo's directory, which is kept (with its database) for the next steps it prints.
    """
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="cairn-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    log_file = base / "cairn-demo.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    kept = root.handlers[:]
    root.handlers[:] = [handler]
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    outcome = {"failures": 0}
    try:
        code = asyncio.run(_demo(base, outcome, keep_serving=keep_serving))
    except KeyboardInterrupt:
        # Ctrl-C while serving: uvicorn shut down cleanly and re-raised the signal.
        if not keep_serving:
            raise
        code = 1 if outcome["failures"] else 0
    finally:
        root.handlers[:] = kept
        handler.close()
    _next_steps(base, log_file)
    return code


def _next_steps(base: Path, log_file: Path) -> None:
    """Where the demo's data is, and what to try next."""
    url = f"sqlite:///{base / 'cairn-demo.db'}"
    _say("kept", f"database {base / 'cairn-demo.db'}, service log {log_file}")
    _say("next", f"look around: CAIRN_DATABASE_URL={url} cairn lessons list")
    _say(
        "next",
        f"backtest a rule change: CAIRN_DATABASE_URL={url} "
        "cairn rules backtest --rules rules/examples --since 1d",
    )
    _say(
        "next",
        "run it for real: cairn db upgrade && cairn tokens create --name me --role admin "
        "&& cairn serve (README: Running it, Access control)",
    )
    _say(
        "next",
        "connect a tracker: point a GitHub or Jira webhook at /hooks/github or /hooks/jira "
        "with its secret (README: GitHub, Jira)",
    )


async def _demo(base: Path, outcome: dict[str, int], *, keep_serving: bool = False) -> int:
    pd_secret, gh_secret, jira_secret = (secrets.token_hex(20) for _ in range(3))
    port = _free_port()
    settings = Settings(
        database_url=SecretStr(f"sqlite:///{base / 'cairn-demo.db'}"),
        broker_url=None,
        pagerduty_webhook_secret=SecretStr(pd_secret),
        github_webhook_secret=SecretStr(gh_secret),
        jira_webhook_secret=SecretStr(jira_secret),
        rules_path=demo_rules(RULES, base / "demo-rules"),
        port=port,
        public_url=f"http://127.0.0.1:{port}",
    )
    db = Database(settings.database_url.get_secret_value())
    revision = migrate.upgrade(db)
    _say("store", f"SQLite database {base / 'cairn-demo.db'} at schema revision {revision}")
    examples = TypeAdapter(list[Lesson]).validate_json((RULES / "lessons.json").read_bytes())
    failures = 0
    with ExitStack() as stack:
        pd = stack.enter_context(_pagerduty().running())
        github = stack.enter_context(FakeGitHub().running())
        jira = stack.enter_context(JiraFake().running())
        moodle = stack.enter_context(MoodleFake().running())
        enricher = stack.enter_context(PagerDutyClient(PD_TOKEN, base_url=pd.url))
        _say(
            "fakes",
            f"PagerDuty {pd.url}, GitHub {github.url}, Jira {jira.url}, Moodle {moodle.url} "
            "(loopback)",
        )
        runtime = build_runtime(
            settings,
            targets={
                System.GITHUB: github_demo_target(github),
                System.JIRA: jira.target(),
                System.LMS: LmsTarget(moodle.client()),
            },
            enrichers={"pagerduty": enricher},
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await asyncio.sleep(0.02)
        cairn_url = f"http://127.0.0.1:{port}"
        _say("serve", f"Cairn API and embedded workers on {cairn_url}")
        try:
            async with httpx.AsyncClient(base_url=cairn_url, timeout=10) as client:
                api = DemoApi(client, db)
                failures += await publish_examples(api, examples, _say)
                failures += await _capture(api, db, pd_secret)
            failures += not await run_github_demo(_say, cairn_url, db, github, gh_secret)
            failures += not await run_jira_demo(_say, cairn_url, db, jira, jira_secret)
            async with httpx.AsyncClient(base_url=cairn_url, timeout=10) as client:
                api.client = client  # the same people (tokens) as before
                failures += not await run_template_demo(_say, api, db, github, gh_secret)
                failures += not await run_revision_demo(_say, api, db, github, jira)
                failures += not await run_training_demo(
                    _say, api, db, moodle, examples, lambda: _wait_processed(db)
                )
            counts = await _wait_processed(db)
            _say("pipeline", f"{counts['processed']} of {counts['accepted']} deliveries processed")
            failures += counts["processed"] != counts["accepted"] or counts["dead"] > 0
            _report(db)
            _adoption_and_compliance(db)
            outcome["failures"] = failures
            if keep_serving:
                _say(
                    "result",
                    "all steps behaved as expected" if not failures else f"{failures} failed",
                )
                _dashboard_tokens(db, cairn_url)
                await serving  # until Ctrl-C, which uvicorn turns into a clean shutdown
        finally:
            server.should_exit = True
            await serving
            db.dispose()
    if not keep_serving:
        _say("result", "all steps behaved as expected" if not failures else f"{failures} failed")
    return 1 if failures else 0


def _pagerduty() -> FakePagerDuty:
    """PagerDuty holding the resolved incident and the notes its responders wrote."""
    event = json.loads((PD_FIXTURES / "incident_resolved.json").read_bytes())["event"]
    fake = FakePagerDuty(PD_TOKEN)
    fake.add_incident(event["data"])
    incident_id = event["data"]["id"]
    fake.add_note(incident_id, "Contributing factor: worker count doubled in one deploy")
    fake.add_note(incident_id, "Action item: derive the pool size from the worker count")
    return fake


async def _capture(api: DemoApi, db: Database, secret: str) -> int:
    """The resolved incident arrives, is read back, captured, reviewed and published."""
    failures = 0
    body = (PD_FIXTURES / "incident_resolved.json").read_bytes()
    client = api.client
    headers = {**pagerduty.sign(secret, body), "content-type": "application/json"}
    response = await client.post("/hooks/pagerduty", content=body, headers=headers)
    _say("ingress", f"POST /hooks/pagerduty incident.resolved: {response.status_code}")
    failures += response.status_code != 202
    response = await client.post("/hooks/pagerduty", content=body, headers=headers)
    _say("redeliver", f"same event again: {response.status_code} {response.json()['status']}")
    failures += response.status_code != 200
    response = await client.post("/hooks/pagerduty", content=body + b" ", headers=headers)
    _say("forged", f"body changed after signing: {response.status_code}")
    failures += response.status_code != 401
    await _wait_processed(db)
    with db.transaction() as session:
        [incident] = incidents.list_all(session)
        drafts = [d for d in lessons.list_lessons(session) if d.id.startswith("from-pagerduty-")]
    _say(
        "incident",
        f"{incident.ref} [{incident.severity.value}, {incident.status.value}] {incident.title}; "
        f"read back from PagerDuty: factors {list(incident.contributing_factors)}, "
        f"action items {list(incident.action_items)}",
    )
    if len(drafts) != 1:
        _say("capture", f"expected one draft lesson, found {len(drafts)}")
        return failures + 1
    draft = drafts[0]
    _say(
        "capture", f"draft lesson {draft.id} (provenance {list(draft.provenance.source_incidents)})"
    )
    owner = f"owner:{draft.owner}"
    edited = await api.call(
        owner,
        "PATCH",
        f"/api/v1/lessons/{draft.id}",
        {"statement": "Derive the connection-pool size from the worker count on every deploy."},
    )
    failures += edited.status_code != 200
    failures += await show_refusals(api, draft.id, draft.owner, _say)
    # The transferability check: the lesson holds for every service on the same database
    # pattern, and the incident was critical, so the reviewer makes it required.
    applies = draft.applicability.model_copy(update={"services": ("payments-api", "ledger-api")})
    approval = {
        "notes": (
            "Holds for every service that sizes its own pool; PgBouncer users size the bouncer."
        ),
        "applicability": applies.model_dump(mode="json"),
        "mandate": Mandate.REQUIRED.value,
    }
    response = await api.review(draft.id, draft.owner, approval)
    if response.status_code != 200:
        _say("review", f"refused: {response.status_code} {response.text}")
        return failures + 1
    published = response.json()
    _say(
        "review",
        f"{published['id']}@{published['version']} edited and submitted by "
        f"token:demo-{draft.owner}-lead, approved and published by "
        f"{published['review']['reviewer']} ({published['mandate']}, services "
        f"{published['applicability']['services']}): {published['statement']}",
    )
    return failures


def _adoption_and_compliance(db: Database) -> None:
    """The adoption report by lesson and the compliance matrix of the demo's own data."""
    rows, total = ReportService(db).adoption(GroupBy.LESSON, Filters())
    for row in [*rows, total]:
        tiers = ", ".join(f"{tier} {n}" for tier, n in sorted(row.tiers.items()) if n)
        _say("adoption", f"{row.group}: reach {row.reach}; {tiers}")
    matrix = ComplianceService(db).matrix(Filters())
    for lesson in matrix.lessons:
        cells = ", ".join(
            f"{team}: {matrix.cells[(lesson, team)].cell.value}" for team in matrix.teams
        )
        _say("matrix", f"{lesson} (mandated) -> {cells}")


def _dashboard_tokens(db: Database, url: str) -> None:
    """Tokens to sign in to the dashboard of the demo's data with, one per kind of user."""
    service = TokenService(db)
    for name, role in (
        ("dashboard-admin", Role.ADMIN),
        ("dashboard-reviewer", Role.REVIEWER),
        ("dashboard-compliance", Role.COMPLIANCE),
    ):
        created = service.create(name, role, (), timedelta(days=1), SYSTEM)
        _say("token", f"{role.value}: {created.secret}")
    _say("dashboard", f"{url}/ui/ (sign in with a token above; Ctrl-C stops the service)")


def _report(db: Database) -> None:
    """What a compliance reviewer sees: every placement, its state and the signals behind it."""
    with db.transaction() as session:
        for ref in placements.work_item_refs(session):
            for placement in placements.for_work_item(session, ref):
                kinds = [s.kind.value for s in placements.signals(session, placement.id)]
                _say(
                    "placement",
                    f"{ref} <- {placement.lesson_id}@{placement.lesson_version} "
                    f"{placement.form.value}, {placement.mandate.value}, rule {placement.rule_id}: "
                    f"{placement.state.value}{' ' + str(kinds) if kinds else ''}",
                )
        actions = audit.count_by_action(session)
        chain = audit.verify(session)
        _say("audit", ", ".join(f"{action} ×{n}" for action, n in sorted(actions.items())))
        _say(
            "audit", f"hash chain {'intact' if chain.intact else 'BROKEN'}: {chain.checked} entries"
        )
        _say("queue", f"inbox {inbox.counts(session)}, outbox {outbox.counts(session)}")
