"""The whole loop through the app and the real PyGithub client against the fake, on both databases.

PR opened → the lesson appears in the body (one write); redelivery → nothing; new paths → the
newly matching lesson is added (one write, nothing duplicated); ticks, N/A reasons and merges
come back as signed `pull_request` webhooks and become signals; Cairn's own edits do not.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.github.fake import Delivery, FakeGitHub
from core.placement import Placement, PlacementState, Signal, SignalKind
from core.work import System
from store import placements
from store.engine import Database
from tests.router.support import EXAMPLES, drain, publish_examples, serving

SECRET = "It's a Secret to Everybody"
REPO = "acme/payments-api"
AUTHOR_TEXT = "Raise gunicorn workers from 4 to 8.\r\n\r\nCloses nothing; @octocat please review."
STATIC_RULES = """pack: github-e2e
level: organisation
priority: 100
rules:
  - id: static-assets-on-prs
    lesson: {tags: [frontend]}
    work_item: {systems: [github], paths: ["static/**"]}
    then: {form: github.pr_checklist, mandate: required, due: 2d}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    target.mkdir()
    for name in ("organisation.yaml", "team-payments.yaml"):
        shutil.copy(EXAMPLES / name, target / name)
    (target / "github-e2e.yaml").write_text(STATIC_RULES)
    return target


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(actor="cairn-bot").running() as server:
        yield server


@pytest.fixture
def app(
    database_url: str, webhook_secret: str, rules_dir: Path, fake: FakeGitHub
) -> Iterator[tuple[TestClient, Database]]:
    github = fake.target()
    with serving(
        database_url,
        webhook_secret,
        prepare=publish_examples,
        rules_path=rules_dir,
        github_webhook_secret=SECRET,
        targets={System.GITHUB: github},
    ) as running:
        yield running


def post(client: TestClient, delivery: Delivery, delivery_id: str | None = None) -> int:
    headers, body = FakeGitHub.signed(delivery, SECRET, delivery_id=delivery_id)
    return client.post("/hooks/github", content=body, headers=headers).status_code


def placed(db: Database, ref: str) -> dict[str, Placement]:
    with db.transaction() as session:
        return {p.lesson_id: p for p in placements.for_work_item(session, ref)}


def signals(db: Database, placement: Placement) -> list[Signal]:
    with db.transaction() as session:
        return placements.signals(session, placement.id)


def open_pull(fake: FakeGitHub, files: list[str]) -> Delivery:
    return fake.open_pull(REPO, title="More workers", body=AUTHOR_TEXT, files=files)


def test_the_loop_from_opened_to_ticked_and_dismissed(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    opened = open_pull(fake, ["src/payments/db/pool.py"])
    key, ref = (REPO, 1), f"github:{REPO}#1"
    assert post(client, opened, "d-1") == 202
    drain(db)
    body = fake.pulls[key].body or ""
    assert body.startswith(AUTHOR_TEXT + "\n\n<!-- cairn:lessons:start -->")
    assert "Derive the database pool size from the worker count" in body
    assert fake.writes[key] == 1
    pool = placed(db, ref)["derive-pool-size"]
    assert pool.state == PlacementState.EMBEDDED and pool.handle == f"cairn:item:{pool.id}"

    assert post(client, opened, "d-1") == 200  # a redelivery: same X-GitHub-Delivery
    drain(db)
    assert fake.writes[key] == 1

    own_edit = fake.deliveries[-1]  # the edited webhook Cairn's own PATCH caused
    assert own_edit.payload["sender"]["login"] == "cairn-bot"
    assert post(client, own_edit) == 202
    drain(db)
    assert signals(db, pool) == []

    assert post(client, fake.push(key, ["static/site.css"])) == 202
    drain(db)
    assert fake.writes[key] == 2
    body = fake.pulls[key].body or ""
    assert body.count("<!-- cairn:item:") == 2 and body.count("cairn:lessons:start") == 1
    assets = placed(db, ref)["cache-bust-css"]
    assert assets.state == PlacementState.EMBEDDED

    assert post(client, fake.tick(key, pool.id)) == 202
    drain(db)
    now = placed(db, ref)
    assert now["derive-pool-size"].state == PlacementState.COMPLETED
    assert [(s.kind, s.actor) for s in signals(db, pool)] == [(SignalKind.TICKED, "octocat")]

    assert post(client, fake.dismiss(key, assets.id, "no static assets here")) == 202
    drain(db)
    dismissed = placed(db, ref)["cache-bust-css"]
    assert (dismissed.state, dismissed.reason) == (
        PlacementState.DISMISSED,
        "no static assets here",
    )
    assert [s.kind for s in signals(db, assets)] == [SignalKind.DISMISSED]
    assert fake.writes[key] == 2  # feedback never writes
    assert (fake.pulls[key].body or "").startswith(AUTHOR_TEXT)


def test_merging_with_a_mandated_item_unticked(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    key, ref = (REPO, 1), f"github:{REPO}#1"
    assert post(client, open_pull(fake, ["src/payments/db/pool.py", "static/a.css"])) == 202
    drain(db)
    assert fake.writes[key] == 1  # two lessons, one write
    assets = placed(db, ref)["cache-bust-css"]
    assert post(client, fake.tick(key, placed(db, ref)["derive-pool-size"].id)) == 202
    drain(db)  # inbound deliveries are keyed by delivery, not serialised per pull request
    assert post(client, fake.merge(key)) == 202
    drain(db)
    assert [s.kind for s in signals(db, assets)] == [SignalKind.MERGED_UNCHECKED]
    pool = placed(db, ref)["derive-pool-size"]
    # The ticked item merged with its PR: the lesson was applied (verified).
    assert [s.kind for s in signals(db, pool)] == [SignalKind.TICKED, SignalKind.MERGED_CLEAN]


def test_a_rate_limit_is_waited_out(app: tuple[TestClient, Database], fake: FakeGitHub) -> None:
    client, db = app
    fake.fail(429, times=1, retry_after="1")
    assert post(client, open_pull(fake, ["src/payments/db/pool.py"])) == 202
    drain(db)
    assert fake.writes[(REPO, 1)] == 1
    assert placed(db, f"github:{REPO}#1")["derive-pool-size"].state == PlacementState.EMBEDDED


def test_bad_signatures_are_401_and_unknown_events_store_nothing(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    opened = open_pull(fake, ["src/payments/db/pool.py"])
    headers, body = FakeGitHub.signed(opened, "the wrong secret")
    assert client.post("/hooks/github", content=body, headers=headers).status_code == 401
    del headers["X-Hub-Signature-256"]
    assert client.post("/hooks/github", content=body, headers=headers).status_code == 401
    ignored = Delivery("issues", {"action": "opened", "issue": {"number": 1}})
    assert post(client, ignored) in (200, 202)
    drain(db)
    assert placed(db, f"github:{REPO}#1") == {}
    assert fake.writes[(REPO, 1)] == 0 and fake.reads[(REPO, 1)] == 0
