"""Past the fatigue budget on a pull request, through the app, PyGithub and the contract fake.

Thirty required lessons, a budget of five: five items of their own and one grouped item linking
to the work item's list, in one write; a redelivery reads and writes nothing; ticking the grouped
item records a TICKED signal for each of its twenty-five lessons (one box, so no bulk-tick
theatre), and the adoption report counts every lesson on its own.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.github.fake import Delivery, FakeGitHub
from connectors.github.section import GROUP_PREFIX
from core.placement import Placement, PlacementState, SignalKind
from core.work import System
from store import placements
from store.engine import Database
from tests.connectors.budget_support import (
    GROUPED,
    OWN,
    REQUIRED,
    adoption_by_lesson,
    publish_required,
    rules,
)
from tests.router.support import drain, serving

SECRET = "It's a Secret to Everybody"
REPO = "acme/payments-api"
KEY, REF = (REPO, 1), f"github:{REPO}#1"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(actor="cairn-bot").running() as server:
        yield server


@pytest.fixture
def app(
    database_url: str, webhook_secret: str, tmp_path: Path, fake: FakeGitHub
) -> Iterator[tuple[TestClient, Database]]:
    (tmp_path / "budget.yaml").write_text(rules("github", "github.pr_checklist"))
    github = fake.target()
    with serving(
        database_url,
        webhook_secret,
        prepare=publish_required,
        rules_path=tmp_path / "budget.yaml",
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


def kinds(db: Database) -> dict[str, list[SignalKind]]:
    with db.transaction() as session:
        return {
            p.lesson_id: [s.kind for s in placements.signals(session, p.id)]
            for p in placements.for_work_item(session, REF)
        }


def tick_group(body: str) -> str:
    lines = body.split("\n")
    [index] = [i for i, line in enumerate(lines) if GROUP_PREFIX in line]
    lines[index] = lines[index].replace("- [ ]", "- [x]", 1)
    return "\n".join(lines)


def test_required_lessons_past_the_budget_share_one_item_and_are_signalled_each(
    app: tuple[TestClient, Database], fake: FakeGitHub
) -> None:
    client, db = app
    opened = fake.open_pull(REPO, title="More workers", body="Author text.", files=["src/a.py"])
    assert post(client, opened, "d-1") == 202
    drain(db)
    found = placed(db)
    assert len(found) == REQUIRED
    assert {k for k, p in found.items() if p.grouped} == GROUPED
    assert {p.state for p in found.values()} == {PlacementState.EMBEDDED}
    assert {found[k].handle for k in OWN} == {f"cairn:item:{found[k].id}" for k in OWN}
    assert {found[k].handle for k in GROUPED} == {f"{GROUP_PREFIX}{found[k].id}" for k in GROUPED}
    body = fake.pulls[KEY].body or ""
    assert body.count("<!-- cairn:item:") == 5 and body.count(GROUP_PREFIX) == 1
    assert "- [ ] **25 more required lessons**: grouped to keep this list short" in body
    assert (
        "[The 25 lessons](http://127.0.0.1:8000/ui/work/github%3Aacme%2Fpayments-api%231)" in body
    )
    assert "[Lesson](http://127.0.0.1:8000/ui/lessons/bulk-00)" in body
    assert "Required lesson number 29" not in body  # only in the list the item links to
    assert fake.writes[KEY] == 1

    reads = fake.reads[KEY]
    assert post(client, opened, "d-1") == 200  # a redelivery
    assert post(client, fake.push(KEY, ["src/b.py"])) == 202  # nothing new to place
    drain(db)
    assert fake.writes[KEY] == 1
    assert fake.reads[KEY] == reads + 1  # the push's changed files; no embed call at all

    assert post(client, fake.edit_body(KEY, tick_group(body))) == 202
    drain(db)
    after = placed(db)
    assert {after[k].state for k in GROUPED} == {PlacementState.COMPLETED}
    assert {after[k].state for k in OWN} == {PlacementState.EMBEDDED}
    signalled = kinds(db)
    assert {k: signalled[k] for k in GROUPED} == {k: [SignalKind.TICKED] for k in GROUPED}
    assert {k: signalled[k] for k in OWN} == {k: [] for k in OWN}

    report = client.get("/api/v1/reports/adoption", params={"by": "lesson"}).json()
    counts = adoption_by_lesson(report["rows"])
    assert counts == {
        **{k: {"delivered": 1} for k in OWN},
        **{k: {"acknowledged": 1} for k in GROUPED},
    }
    assert report["total"]["reach"] == REQUIRED
    assert "bulk_tick" not in report["total"]["theatre"]  # one box ticked, not a sweep

    assert post(client, fake.merge(KEY)) == 202
    drain(db)
    signalled = kinds(db)
    assert {k: signalled[k] for k in GROUPED} == {
        k: [SignalKind.TICKED, SignalKind.MERGED_CLEAN] for k in GROUPED
    }
    assert {k: signalled[k] for k in OWN} == {k: [SignalKind.MERGED_UNCHECKED] for k in OWN}
    report = client.get("/api/v1/reports/adoption", params={"by": "lesson"}).json()
    assert report["total"]["counts"]["verified"] == len(GROUPED)
    assert report["total"]["counts"]["ignored"] == len(OWN)
    assert fake.writes[KEY] == 1  # feedback never writes
