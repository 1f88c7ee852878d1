"""The merge gate: the `Cairn lessons` check run follows each rule's `gate` and the items' marks,
through the app and the real PyGithub client against the fake, on both databases."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.github.fake import Delivery, FakeGitHub
from connectors.github.target import CHECK_NAME, GitHubTarget
from connectors.retrying import RetryPolicy
from core.placement import Placement
from core.work import System
from router.access.operator import cli_principal
from router.reports.compliance import ComplianceService
from store import audit, placements
from store.engine import Database
from tests.router.support import drain, publish_examples, serving

SECRET = "It's a Secret to Everybody"
REPO = "acme/payments-api"
KEY, REF = (REPO, 1), f"github:{REPO}#1"
RULES = """pack: gates
level: organisation
rules:
  - id: pool
    lesson: {{ids: [derive-pool-size]}}
    work_item: {{systems: [github]}}
    then: {{form: github.pr_checklist, mandate: required}}
    {pool}
  - id: assets
    lesson: {{ids: [cache-bust-css]}}
    work_item: {{systems: [github]}}
    then: {{form: github.pr_checklist, mandate: required}}
    {assets}
"""


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(actor="cairn-bot").running() as server:
        yield server


@pytest.fixture
def gates() -> tuple[str, str]:
    """The `gate` lines of the two rules (an empty line: the default)."""
    return "gate: block", ""


@pytest.fixture
def app(
    database_url: str,
    webhook_secret: str,
    tmp_path: Path,
    fake: FakeGitHub,
    gates: tuple[str, str],
) -> Iterator[tuple[TestClient, Database]]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "gates.yaml").write_text(RULES.format(pool=gates[0], assets=gates[1]))
    github = GitHubTarget.with_token(
        "ghp_fake",
        base_url=fake.url,
        own_actor="cairn-bot",
        check_runs=True,
        policy=RetryPolicy(attempts=3, base_wait=0.01, max_wait=5),
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    with serving(
        database_url,
        webhook_secret,
        prepare=publish_examples,
        rules_path=rules,
        github_webhook_secret=SECRET,
        targets={System.GITHUB: github},
    ) as running:
        yield running


def post(client: TestClient, delivery: Delivery, delivery_id: str | None = None) -> int:
    headers, body = FakeGitHub.signed(delivery, SECRET, delivery_id=delivery_id)
    return client.post("/hooks/github", content=body, headers=headers).status_code


def placed(db: Database) -> dict[str, Placement]:
    with db.transaction() as session:
        return {p.lesson_id: p for p in placements.for_work_item(session, REF)}


def opened(client: TestClient, db: Database, fake: FakeGitHub) -> dict[str, Placement]:
    pull = fake.open_pull(
        REPO, title="More workers", body="Raise workers.", files=["a.py"], labels=["team:payments"]
    )
    assert post(client, pull) == 202
    drain(db)
    found = placed(db)
    assert set(found) == {"derive-pool-size", "cache-bust-css"}
    return found


def check(fake: FakeGitHub) -> dict[str, object]:
    run = fake.check_run(KEY)
    assert run is not None and run["name"] == CHECK_NAME and run["status"] == "completed"
    return run


def test_block_fails_until_every_required_item_is_ticked_or_justified(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    found = opened(client, db, fake)
    run = check(fake)
    assert run["conclusion"] == "failure"
    output = run["output"]
    assert isinstance(output, dict)
    assert output["title"] == "1 required lesson(s) to tick or justify before merging"
    summary = output["summary"]
    assert "/ui/lessons/derive-pool-size) (blocks the merge)" in summary
    assert "/ui/lessons/cache-bust-css) (warning)" in summary
    assert len(fake.check_runs) == 1  # one run per head commit, updated in place after this

    assert post(client, fake.tick(KEY, found["derive-pool-size"].id)) == 202
    drain(db)
    run = check(fake)
    assert run["conclusion"] == "neutral"  # only the `warn` rule's item is open
    assert "derive-pool-size" not in run["output"]["summary"]  # type: ignore[index]

    assert post(client, fake.dismiss(KEY, found["cache-bust-css"].id, "no CSS here")) == 202
    drain(db)
    run = check(fake)
    assert run["conclusion"] == "success"
    assert len(fake.check_runs) == 1
    with db.transaction() as session:
        updated = audit.entries(session, action="check.updated", subject=REF)
    assert [e.details["conclusion"] for e in updated] == ["neutral", "success"]


def test_a_dismissal_without_a_reason_keeps_the_item_open(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    found = opened(client, db, fake)
    assert post(client, fake.tick(KEY, found["cache-bust-css"].id)) == 202
    drain(db)
    assert check(fake)["conclusion"] == "failure"
    assert post(client, fake.dismiss(KEY, found["derive-pool-size"].id, "")) == 202
    drain(db)
    assert check(fake)["conclusion"] == "failure"


@pytest.mark.parametrize("gates", [("gate: warn", "gate: off")])
def test_warn_is_neutral_and_off_counts_nothing(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    found = opened(client, db, fake)
    run = check(fake)
    assert run["conclusion"] == "neutral"
    summary = run["output"]["summary"]  # type: ignore[index]
    assert "derive-pool-size" in summary and "cache-bust-css" not in summary
    assert post(client, fake.tick(KEY, found["derive-pool-size"].id)) == 202
    drain(db)
    assert check(fake)["conclusion"] == "success"  # the `off` item is still open


@pytest.mark.parametrize("gates", [("gate: off", "gate: off")])
def test_only_off_rules_leave_the_check_green(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    opened(client, db, fake)
    assert check(fake)["conclusion"] == "success"


@pytest.mark.parametrize("gates", [("gate: block", "gate: off")])
def test_a_waiver_turns_the_check_green(app: tuple[TestClient, Database], fake: FakeGitHub) -> None:
    client, db = app
    opened(client, db, fake)
    assert check(fake)["conclusion"] == "failure"
    ComplianceService(db).waive(
        cli_principal("tests"), "derive-pool-size", "payments", "legacy pool", timedelta(days=30)
    )
    drain(db)
    assert check(fake)["conclusion"] == "success"
    assert len(fake.check_runs) == 1


def test_the_check_is_not_rewritten_when_its_verdict_is_unchanged(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    found = opened(client, db, fake)
    run = check(fake)
    before = dict(run)
    edits = fake.requests.count(f"PATCH /repos/{REPO}/check-runs/1")
    # The author writes a note under the warn item: the section changes, the verdict does not.
    body = (fake.pulls[KEY].body or "").replace(
        f"cairn:item:{found['cache-bust-css'].id} -->",
        f"cairn:item:{found['cache-bust-css'].id} --> working on it",
    )
    assert post(client, fake.edit_body(KEY, body)) == 202
    drain(db)
    assert (
        fake.requests.count(f"GET /repos/{REPO}/commits/{fake.pulls[KEY].head_sha}/check-runs") >= 2
    )
    assert fake.requests.count(f"PATCH /repos/{REPO}/check-runs/1") == edits
    assert len(fake.check_runs) == 1 and check(fake) == before
    delivery = fake.tick(KEY, found["derive-pool-size"].id)
    assert post(client, delivery, "tick-1") == 202
    drain(db)
    patched = fake.requests.count(f"PATCH /repos/{REPO}/check-runs/1")
    assert patched == edits + 1
    assert post(client, delivery, "tick-1") == 200  # a redelivery: nothing at all
    drain(db)
    assert fake.requests.count(f"PATCH /repos/{REPO}/check-runs/1") == patched


def test_a_push_gets_the_check_on_its_new_head_commit(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    found = opened(client, db, fake)
    assert post(client, fake.tick(KEY, found["derive-pool-size"].id)) == 202
    drain(db)
    assert check(fake)["conclusion"] == "neutral"
    old_head = fake.pulls[KEY].head_sha
    assert post(client, fake.push(KEY, ["b.py"])) == 202
    drain(db)
    assert fake.pulls[KEY].head_sha != old_head
    run = check(fake)  # the newest run on the new head commit
    assert run["head_sha"] == fake.pulls[KEY].head_sha and run["conclusion"] == "neutral"
    assert len(fake.check_runs) == 2  # one per head commit
